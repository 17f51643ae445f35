"""Liquidation-cascade market making (the trading guide, docs/strategies/cascade.md).

Signal: the engine keeps, per symbol, a rolling P95 of liquidation notional
(`RollingQuantile`: last 1,000 liquidations, recomputed hourly, configured seed
thresholds until then) and a `CascadeDetector` (2+ liquidations at or above it
within 60 s of the first). This strategy subscribes to liquidations only and acts
on the liquidation that makes a window a cascade:

* longs liquidated dominate (price fell): PostOnly limit BUY `entry_offset_pct` below
  the current price; shorts dominate (price spiked): PostOnly limit SELL above it;
* once the entry fills: a reduce-only limit take profit and a stop-market stop loss
  (taker) around the fill price, and a position timeout;
* an unfilled entry is cancelled after `entry_timeout_s`; a position still open
  `position_timeout_s` after its fill is closed at market (exit reason "timeout").

Every cascade yields an Alert (symbol, dominant side, count, notional, duration,
and the action: order placed, queued for approval, or skipped with the reason)
and a log line. Limits that serve every strategy (cooldown, one position per
symbol, max symbols, loss limits, caps) are enforced by the risk gate; the
strategy asks it in advance only to say why it skipped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..events import NS, Liquidation
from ..orders import Alert, CancelOrder, ClosePosition, LogLine, OrderStatus, OrderType, PlaceOrder, Purpose
from .base import Gauge, Strategy

if TYPE_CHECKING:
    from ..config import CascadeConfig, Settings
    from ..engine import MarketState, StrategyContext
    from ..orders import Fill, Intent, Order, Position
    from ..stats import Cascade


RETRY_CLOSE_NS = 5 * NS  # a refused close at market (no liquidity, venue error) is sent again this much later


@dataclass(frozen=True, slots=True)
class CascadeParams:
    """Per-symbol order parameters, in percent (the config's overrides applied)."""

    entry_offset_pct: float
    take_profit_pct: float
    stop_loss_pct: float
    seed_threshold_usd: float

    @classmethod
    def for_symbol(cls, cfg: CascadeConfig, symbol: str) -> CascadeParams:
        ov = cfg.overrides.get(symbol)

        def pick(name: str, default: float) -> float:
            v = getattr(ov, name, None) if ov is not None else None
            return default if v is None else float(v)

        seed = cfg.seed_thresholds_usd.get(symbol, cfg.default_seed_threshold_usd)
        return cls(pick("entry_offset_pct", cfg.entry_offset_pct),
                   pick("take_profit_pct", cfg.take_profit_pct),
                   pick("stop_loss_pct", cfg.stop_loss_pct), pick("seed_threshold_usd", seed))


@dataclass(slots=True)
class SymbolState:
    """Where one symbol's trade is. Timers are kept as due times so that they survive a restart."""

    handled_cascade: int = -1  # start_ts of the last cascade acted on (each cascade acts once)
    entry_open: bool = False  # an entry is held for approval, in flight or working
    entry_side: str = ""
    entry_due: int = 0  # entry timeout (ns); 0 = none
    cut_partial: bool = False  # the rest of a partly filled entry has been cancelled
    protected: bool = False  # TP and SL have been sent for the position
    exit_due: int = 0  # position timeout (ns); 0 = none
    closing: bool = False  # a timeout/SL-fallback close at market has been sent
    close_reason: str = ""  # why it was sent (kept for a retry): timeout | sl

    def reset_trade(self) -> None:
        handled = self.handled_cascade
        for f in fields(self):
            setattr(self, f.name, f.default)
        self.handled_cascade = handled


class CascadeStrategy(Strategy):
    name = "cascade"
    subscriptions = (Liquidation,)

    def __init__(self, settings: Settings, symbols: list[str]):
        super().__init__(settings, symbols)
        self.cfg = settings.cascade
        self.params = {s: CascadeParams.for_symbol(self.cfg, s) for s in self.symbols}
        self.state = {s: SymbolState() for s in self.symbols}
        self.decisions: dict[str, int] = {}  # cascades by action: placed | queued | skipped
        self._ctx: StrategyContext | None = None
        self._markets: dict[str, MarketState] = {}
        self._pending_markets: dict[str, dict] = {}  # restored before the markets were bound

    # -- lifecycle -------------------------------------------------------------------------------
    def on_start(self, ctx: StrategyContext) -> list[Intent]:
        self._bind(ctx)
        self._arm_timers()
        return []

    def _bind(self, ctx: StrategyContext) -> None:
        self._ctx = ctx
        for s in self.symbols:
            m = self._markets[s] = ctx.market(s)
            saved = self._pending_markets.pop(s, None)
            if saved is not None:
                m.liq_threshold.restore(saved["threshold"])
                m.cascades.restore(saved["detector"])

    def _arm_timers(self) -> None:
        ctx = self._ctx
        if ctx is None:
            return
        for s, st in self.state.items():
            if st.entry_due:
                ctx.set_timer(st.entry_due, f"entry:{s}", while_paused=True)
            if st.exit_due:
                ctx.set_timer(st.exit_due, f"exit:{s}", while_paused=True)

    # -- the signal ----------------------------------------------------------------------------
    def on_event(self, ev: Any, ctx: StrategyContext) -> list[Intent]:
        st = self.state.get(ev.symbol)
        if st is None:
            return []
        cur = ctx.market(ev.symbol).cascades.current
        if cur is None or not cur.is_cascade or cur.start_ts == st.handled_cascade:
            return []
        st.handled_cascade = cur.start_ts  # the engine's detector just fired on this liquidation
        return self._on_cascade(cur, st, ctx)

    def _on_cascade(self, c: Cascade, st: SymbolState, ctx: StrategyContext) -> list[Intent]:
        sym = c.symbol
        side = "buy" if c.dominant == "long" else "sell"
        intent, skip = None, self._skip_reason(sym, st, ctx)
        if not skip:
            intent, skip = self._entry(sym, side, c, ctx)
        if not skip and intent is not None:
            skip = ctx.precheck(intent)
        liq_side = "longs" if c.dominant == "long" else "shorts"
        head = (f"CASCADE {sym} {liq_side} liquidated: {c.count} x P95+ "
                f"{c.notional / 1e3:,.0f}K USD in {c.duration_s:.1f} s (P95 {c.threshold / 1e3:,.0f}K)")
        data = {"symbol": sym, "dominant": c.dominant, "count": c.count, "notional": round(c.notional, 2),
                "duration_s": round(c.duration_s, 3), "threshold": round(c.threshold, 2), "side": side}
        if skip:
            action = f"skipped: {skip}"
            self._count("skipped")
            return [Alert(sym, "cascade", f"{head} -> {action}", self.name, {**data, "action": action})]
        assert intent is not None
        queued = ctx.settings.approval.mode == "manual"
        action = (f"{'queued for approval' if queued else 'placed'}: PostOnly {side.upper()} {intent.qty:g} "
                  f"@ {intent.price:g} ({intent.notional:,.0f} USD, {intent.leverage:g}x)")
        self._count("queued" if queued else "placed")
        st.entry_open = True
        st.entry_side = side
        st.entry_due = ctx.now + int(self.cfg.entry_timeout_s * NS)
        ctx.set_timer(st.entry_due, f"entry:{sym}", while_paused=True)
        return [Alert(sym, "cascade", f"{head} -> {action}", self.name, {**data, "action": action}), intent]

    def _skip_reason(self, sym: str, st: SymbolState, ctx: StrategyContext) -> str:
        """The strategy's own rules; the risk gate's are asked for by precheck."""
        pos = ctx.position(sym)
        if pos is not None and pos.is_open:
            return f"position open in {sym} ({pos.side} {abs(pos.qty):g})"
        if st.entry_open:
            return f"entry already working in {sym}"
        if ctx.halted:
            return "halted"
        if self.cfg.session_filter:
            hour = datetime.fromtimestamp(ctx.now / NS, UTC).hour
            if not self.cfg.session_start_utc_h <= hour < self.cfg.session_end_utc_h:
                return (f"outside the session {self.cfg.session_start_utc_h:02d}:00-"
                        f"{self.cfg.session_end_utc_h:02d}:00 UTC")
        return ""

    def _entry(self, sym: str, side: str, c: Cascade, ctx: StrategyContext) -> tuple[PlaceOrder | None, str]:
        m = ctx.market(sym)
        ref = m.price
        if not ref:
            return None, f"no market price for {sym}"
        inst = ctx.instrument(sym)
        off = self.params[sym].entry_offset_pct / 100.0
        if side == "buy":
            price = inst.round_price(ref * (1.0 - off), "down")
        else:
            price = inst.round_price(ref * (1.0 + off), "up")
        notional = ctx.equity * self.cfg.notional_pct_of_equity / 100.0
        qty = inst.round_qty(notional / price)
        if qty <= 0:
            return None, f"size rounds to zero ({notional:.0f} USD at {price:g})"
        reason = (f"cascade: {'longs' if c.dominant == 'long' else 'shorts'} liquidated x{c.count}, "
                  f"{c.notional / 1e3:,.0f}K USD in {c.duration_s:.1f} s; entry {off * 100:g}% from {ref:g}")
        return PlaceOrder(sym, side, qty, price, OrderType.LIMIT, post_only=True, purpose=Purpose.ENTRY,
                          strategy=self.name, reason=reason, leverage=self.cfg.leverage,
                          meta={"cascade_start_ts": c.start_ts, "ref_price": ref}), ""

    def _count(self, key: str) -> None:
        self.decisions[key] = self.decisions.get(key, 0) + 1

    # -- orders and fills ----------------------------------------------------------------------
    def on_order_update(self, order: Order, fill: Fill | None, ctx: StrategyContext) -> list[Intent]:
        st = self.state.get(order.symbol)
        if st is None:
            return []
        pos = ctx.position(order.symbol)
        flat = pos is None or not pos.is_open
        if order.purpose is Purpose.ENTRY:
            return self._on_entry_update(order, fill, st, pos, flat, ctx)
        if flat and not order.status.is_open:
            # The position is gone (TP, SL, timeout or flatten): drop the other exit orders. Only
            # the trade in its exit phase is reset, so a late report cannot clear a newer entry.
            out: list[Intent] = [CancelOrder(o.id, self.name, "position closed")
                                 for o in ctx.orders(order.symbol) if o.purpose is not Purpose.ENTRY]
            if st.protected or st.closing:
                st.reset_trade()
            return out
        if order.status is not OrderStatus.REJECTED or flat or ctx.flattening:
            return []
        if order.purpose is Purpose.STOP_LOSS and not st.closing:
            st.closing = True  # never hold a position without its stop
            st.close_reason = "sl"
            return [LogLine(f"{order.symbol} stop loss refused ({order.reject_reason}): closing at market",
                            self.name, "warn"), ClosePosition(order.symbol, self.name, "sl")]
        if order.purpose is Purpose.EXIT and st.closing:
            # The close at market was refused while the position is still open: try again shortly.
            st.closing = False
            st.exit_due = ctx.now + RETRY_CLOSE_NS
            ctx.set_timer(st.exit_due, f"exit:{order.symbol}", while_paused=True)
            return [LogLine(f"{order.symbol} close refused ({order.reject_reason}): retrying in "
                            f"{RETRY_CLOSE_NS // NS} s", self.name, "warn")]
        return []

    def _on_entry_update(self, order: Order, fill: Fill | None, st: SymbolState, pos: Position | None,
                         flat: bool, ctx: StrategyContext) -> list[Intent]:
        if fill is not None and order.status is OrderStatus.PARTIALLY_FILLED and not st.cut_partial:
            st.cut_partial = True  # take what filled; its TP/SL follow when the entry is done
            return [CancelOrder(order.id, self.name, "partly filled: keep the filled part")]
        if order.status.is_open:
            if order.status is OrderStatus.NEW and st.entry_open and not st.entry_due:
                # Its timeout ran out while it waited for approval: cancel it as soon as it works.
                return [CancelOrder(order.id, self.name, "entry timeout")]
            return []
        st.entry_open = False
        st.entry_due = 0
        if flat:  # rejected, cancelled or expired unfilled (or already closed by a flatten)
            st.reset_trade()
            return []
        if st.protected or ctx.flattening:  # a flatten closes the position itself
            return []
        return self._protect(order, fill, pos, st, ctx)

    def _protect(self, order: Order, fill: Fill | None, pos: Position, st: SymbolState,
                 ctx: StrategyContext) -> list[Intent]:
        """TP (reduce-only limit) and SL (stop-market) around the average fill, and the timeout."""
        sym = order.symbol
        inst = ctx.instrument(sym)
        p = self.params[sym]
        entry = order.avg_price or pos.entry_price
        qty = abs(pos.qty)
        long = pos.qty > 0
        exit_side = "sell" if long else "buy"
        tp = inst.round_price(entry * (1 + p.take_profit_pct / 100 * (1 if long else -1)))
        sl = inst.round_price(entry * (1 - p.stop_loss_pct / 100 * (1 if long else -1)))
        fill_ts = fill.ts if fill is not None else ctx.now
        st.protected = True
        st.exit_due = max(fill_ts + int(self.cfg.position_timeout_s * NS), ctx.now)
        ctx.set_timer(st.exit_due, f"exit:{sym}", while_paused=True)
        return [
            PlaceOrder(sym, exit_side, qty, tp, OrderType.LIMIT, reduce_only=True,
                       purpose=Purpose.TAKE_PROFIT, strategy=self.name,
                       reason=f"take profit {p.take_profit_pct:g}% from {entry:g}"),
            PlaceOrder(sym, exit_side, qty, None, OrderType.STOP, reduce_only=True, trigger_price=sl,
                       purpose=Purpose.STOP_LOSS, strategy=self.name,
                       reason=f"stop loss {p.stop_loss_pct:g}% from {entry:g}"),
            LogLine(f"{sym} {'long' if long else 'short'} {qty:g} @ {entry:g}: TP {tp:g}, SL {sl:g}, "
                    f"timeout {datetime.fromtimestamp(st.exit_due / NS, UTC):%H:%M:%S}", self.name),
        ]

    # -- timeouts ------------------------------------------------------------------------------
    def on_timer(self, now: int, key: str, ctx: StrategyContext) -> list[Intent]:
        kind, _, sym = key.partition(":")
        st = self.state.get(sym)
        if st is None:
            return []
        if kind == "entry" and st.entry_due and now >= st.entry_due and st.entry_open:
            st.entry_due = 0
            entries = [o for o in ctx.orders(sym) if o.purpose is Purpose.ENTRY]
            return [LogLine(f"{sym} entry unfilled after {self.cfg.entry_timeout_s / 60:g} min: cancel",
                            self.name),
                    *(CancelOrder(o.id, self.name, "entry timeout") for o in entries)]
        if kind == "exit" and st.exit_due and now >= st.exit_due and not st.closing:
            pos = ctx.position(sym)
            st.exit_due = 0
            if pos is None or not pos.is_open:
                return []
            st.closing = True
            if st.close_reason:  # a refused close, sent again
                line = f"{sym} close at market again ({st.close_reason})"
            else:
                st.close_reason = "timeout"
                line = (f"{sym} position open {self.cfg.position_timeout_s / 60:g} min after its fill: "
                        "close at market")
            return [LogLine(line, self.name), ClosePosition(sym, self.name, st.close_reason)]
        return []

    # -- views and state -----------------------------------------------------------------------
    def gauges(self) -> dict[str, list[Gauge]]:
        out: dict[str, list[Gauge]] = {}
        need = self.cfg.min_count
        for s in self.symbols:
            m = self._markets.get(s)
            threshold = m.liq_threshold.value if m is not None else self.params[s].seed_threshold_usd
            warm = m is not None and m.liq_threshold.warm
            live = m.cascades.live_count if m is not None else 0
            out[s] = [
                Gauge("P95 liq", threshold, 0.0, max(2 * self.params[s].seed_threshold_usd, threshold),
                      text=f"{threshold / 1e3:,.0f}K{'' if warm else ' (seed)'}"),
                Gauge("window", float(live), 0.0, float(2 * need), {"cascade": float(need)},
                      text=f"{live}/{need}", active=live >= need),
            ]
        return out

    def snapshot(self) -> dict:
        markets = {}
        for s in self.symbols:
            m = self._markets.get(s)
            if m is not None:
                markets[s] = {"threshold": m.liq_threshold.snapshot(), "detector": m.cascades.snapshot()}
            elif s in self._pending_markets:
                markets[s] = self._pending_markets[s]
        return {"symbols": {s: asdict(st) for s, st in self.state.items()}, "markets": markets,
                "decisions": dict(self.decisions)}

    def restore(self, state: dict) -> None:
        """Load thresholds, windows, trade states and timer due times; timers re-arm at once
        if the strategy has started, else at start."""
        for s, d in state.get("symbols", {}).items():
            if s in self.state:
                known = {f.name for f in fields(SymbolState)}
                self.state[s] = SymbolState(**{k: v for k, v in d.items() if k in known})
        self.decisions = {str(k): int(v) for k, v in state.get("decisions", {}).items()}
        for s, saved in state.get("markets", {}).items():
            m = self._markets.get(s)
            if m is None:
                self._pending_markets[s] = saved
            else:
                m.liq_threshold.restore(saved["threshold"])
                m.cascades.restore(saved["detector"])
        self._arm_timers()
