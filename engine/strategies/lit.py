"""Liquidity Imbalance Tracker (LIT): fade crowded long/short positioning that funding pays to fade.

docs/strategies/lit.md has the rules, the imbalance score and every choice the seed document
leaves open; the rules themselves are pure functions in `lit_rules.py`. In short:

* every `interval_s` (the INTERVAL environment variable overrides it) the strategy evaluates
  all symbols: a symbol qualifies when one side holds at least `ratio_entry` times the other
  and funding pays the contrarian side more than `funding_entry_apr` (annualized with the
  symbol's own funding interval); qualifying symbols are ranked by the imbalance score and
  entered (market order, collateral x tiered leverage) while LIT holds fewer than
  `max_positions` positions and the symbol is not blacklisted;
* exits: TP/SL on position profit (PnL with fees and booked funding over collateral, or the
  price move), checked on every mark or bar; the 24 h maximum hold (a timer); normalization
  (checked at each evaluation): crowding back under `ratio_exit`, the crowd flipped, or
  funding no longer paying the contrarian side;
* an entry refused by the exchange is sent again with backoff under the *same* order id (the
  orderLinkId on Bybit, so the exchange refuses a duplicate); after `max_retries` it
  blacklists the symbol, as do `blacklist_after_sl` consecutive stop losses. The blacklist
  expires after `blacklist_s`, is part of the strategy's snapshot (saved by the store), shown
  in the gauges, and `liqdesk ctl unblacklist SYMBOL` lifts it.

The long/short ratio comes from the LongShortRatio events whose source is in `ratio_sources`
(synthetic, Bybit's account-ratio, Binance metrics' global account ratio); the source used
is recorded per symbol, in every decision's log line and alert.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..events import NS, Bar, LongShortRatio, Ticker
from ..orders import Alert, ClosePosition, LogLine, OrderStatus, OrderType, PlaceOrder, Purpose
from . import lit_rules as rules
from .base import Gauge, Strategy

if TYPE_CHECKING:
    from ..config import Settings
    from ..engine import MarketState, StrategyContext
    from ..orders import Fill, Intent, Order, Position

EXPECTATIONS = {  # the seed document's "Performance Expectations" (the backtest prints them)
    "win_rate_pct": (55.0, 60.0), "avg_win_pct": (2.0, 3.0), "avg_loss_pct": (2.0, 4.0),
    "sharpe": (1.2, 1.5), "max_drawdown_pct": (10.0, 15.0)}


HELD = "LIT already holds or is entering this symbol"


def fmt_ts(ts: int) -> str:
    return datetime.fromtimestamp(ts / NS, UTC).strftime("%m-%d %H:%M")


def fmt_left(ns: int) -> str:
    """Time left, compact for the gauges: 23h59m, 5m."""
    m = max(ns, 0) // (60 * NS)
    return f"{m // 60}h{m % 60:02d}m" if m >= 60 else f"{m}m"


def market_price(m: MarketState) -> float | None:
    """Mark, else mid / last trade, else the last bar's close (kline-only data)."""
    p = m.mark or m.price
    if p:
        return p
    return m.last_bar.close if m.last_bar is not None else None


@dataclass(slots=True)
class LitSymbol:
    """One symbol's ratio, trade and blacklist. Times are ns; everything here survives a restart."""

    ratio: float = 0.0  # long share / short share; 0 = none seen yet
    ratio_ts: int = 0
    source: str = ""  # where the ratio came from
    side: str = ""  # long | short while LIT has an entry or a position here
    entry_id: str = ""  # the entry's order id (= orderLinkId), reused by every retry
    entry_qty: float = 0.0
    entry_leverage: float = 0.0
    entry_reason: str = ""
    attempts: int = 0  # sends of the current entry
    retry_due: int = 0
    opened_ts: int = 0  # entry fill time; 0 = no position yet
    collateral: float = 0.0  # margin of the position: entry notional / leverage
    fees: float = 0.0  # entry fees paid
    closing: str = ""  # the exit reason sent (tp | sl | max_hold | normalized)
    consecutive_sl: int = 0
    blacklist_until: int = 0
    blacklist_reason: str = ""

    def reset_trade(self) -> None:
        keep = {k: getattr(self, k) for k in ("ratio", "ratio_ts", "source", "consecutive_sl", "blacklist_until",
                                              "blacklist_reason")}
        for f in fields(self):
            setattr(self, f.name, f.default)
        for k, v in keep.items():
            setattr(self, k, v)


class LitStrategy(Strategy):
    name = "lit"
    subscriptions = (LongShortRatio, Ticker, Bar)
    expectations = EXPECTATIONS

    def __init__(self, settings: Settings, symbols: list[str]):
        super().__init__(settings, symbols)
        self.cfg = settings.lit
        self.interval_s = rules.interval_s(self.cfg)
        self.sources = list(self.cfg.ratio_sources)
        self.state = {s: LitSymbol() for s in self.symbols}
        self.next_eval = 0  # ns; 0 = not scheduled yet (the first accepted ratio schedules it)
        self.evaluations = 0
        self.decisions: list[str] = []  # the last evaluation's decisions, one line each
        self.counts: dict[str, int] = {}  # entries, skips, exits by kind
        self.once = False  # `liqdesk lit --once`: one evaluation, `once_warmup_s` after the first ratio
        self.on_done: Callable[[], None] | None = None  # --once: called `once_settle_s` after the evaluation
        self._ctx: StrategyContext | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def on_start(self, ctx: StrategyContext) -> list[Intent]:
        self._ctx = ctx
        if self.once:  # a restored schedule is not this run's: evaluate after the warm-up from now
            restored = ctx.now > 0 and any(st.ratio for st in self.state.values())
            self.next_eval = ctx.now + int(self.cfg.once_warmup_s * NS) if restored else 0
        self._arm(ctx)
        return []

    def _arm(self, ctx: StrategyContext) -> None:
        if self.next_eval:
            ctx.set_timer(self.next_eval, "eval", while_paused=True)
        for sym, st in self.state.items():
            if st.opened_ts:
                ctx.set_timer(st.opened_ts + int(self.cfg.max_hold_s * NS), f"hold:{sym}", while_paused=True)
            if st.retry_due:
                ctx.set_timer(st.retry_due, f"retry:{sym}", while_paused=True)

    # -- market events ------------------------------------------------------------------------------
    def on_event(self, ev: Any, ctx: StrategyContext) -> list[Intent]:
        st = self.state.get(ev.symbol)
        if st is None:
            return []
        t = type(ev)
        if t is LongShortRatio:
            if ev.source in self.sources and ev.ts >= st.ratio_ts and ev.short_share > 0 and ev.long_share > 0:
                if (st.source in self.sources and self.sources.index(ev.source) > self.sources.index(st.source)
                        and ev.ts - st.ratio_ts < self.cfg.ratio_max_age_s * NS):
                    return []  # a recent ratio from a preferred source is kept
                st.ratio, st.ratio_ts, st.source = ev.ratio, ev.ts, ev.source
                if not self.next_eval:
                    delay = self.cfg.once_warmup_s if self.once else self.cfg.first_eval_s
                    self.next_eval = ev.ts + int(delay * NS)
                    ctx.set_timer(self.next_eval, "eval", while_paused=True)
            return []
        if not st.opened_ts or st.closing:
            return []
        price = (ev.mark or ev.last) if t is Ticker else ev.close
        if not price:
            return []
        return self._check_exit(ev.symbol, st, price, ctx, with_signal=False)

    # -- the evaluation -----------------------------------------------------------------------------
    def on_timer(self, now: int, key: str, ctx: StrategyContext) -> list[Intent]:
        kind, _, sym = key.partition(":")
        if kind == "eval":
            if not self.next_eval or now < self.next_eval:
                return []  # a stale timer (re-armed after a restore)
            out = self.evaluate(ctx) if not self.paused else []  # paused: no evaluation, the schedule goes on
            self.next_eval = 0 if self.once else now + int(self.interval_s * NS)
            if self.next_eval:
                ctx.set_timer(self.next_eval, "eval", while_paused=True)
            else:
                ctx.set_timer(now + int(self.cfg.once_settle_s * NS), "done", while_paused=True)
            return out
        if kind == "done":
            if self.on_done is not None:
                self.on_done()
            return []
        st = self.state.get(sym)
        if st is None:
            return []
        if kind == "hold" and st.opened_ts and not st.closing:
            price = market_price(ctx.market(sym))
            return self._check_exit(sym, st, price or 0.0, ctx, with_signal=False)
        if kind == "retry" and st.retry_due and now >= st.retry_due:
            st.retry_due = 0
            return self._retry(sym, st, ctx)
        return []

    def view(self, sym: str, ctx: StrategyContext | None = None) -> dict[str, Any]:
        """The symbol's live signal: ratio, annualized funding, score and the entry decision."""
        ctx = ctx or self._ctx
        st = self.state[sym]
        m = ctx.market(sym) if ctx is not None else None
        apr = None
        if m is not None and m.funding_rate is not None:
            interval_h = m.funding_interval_h or ctx.instrument(sym).funding_interval_h or 8.0
            apr = rules.annualized_funding_pct(m.funding_rate, interval_h)
        now = ctx.now if ctx is not None else 0
        fresh = bool(st.ratio) and now - st.ratio_ts <= self.cfg.ratio_max_age_s * NS
        sig = None
        if fresh and apr is not None:
            sig = rules.entry_signal(st.ratio, apr, self.cfg)
        return {"ratio": st.ratio if st.ratio else None, "fresh": fresh, "apr": apr, "signal": sig,
                "source": st.source}

    def evaluate(self, ctx: StrategyContext) -> list[Intent]:
        """One evaluation: expire blacklists, exits (normalization included), then ranked entries."""
        self._ctx = ctx
        now = ctx.now
        self.evaluations += 1
        out: list[Intent] = []
        lines: list[str] = []
        for sym, st in self.state.items():
            if st.blacklist_until and now >= st.blacklist_until:
                lines.append(f"{sym} blacklist expired ({st.blacklist_reason})")
                st.blacklist_until, st.blacklist_reason = 0, ""
        views = {s: self.view(s, ctx) for s in self.symbols}
        for sym, st in self.state.items():
            if st.opened_ts and not st.closing:
                price = market_price(ctx.market(sym))
                if price:
                    exits = self._check_exit(sym, st, price, ctx, with_signal=True, view=views[sym])
                    lines += [i.message for i in exits if isinstance(i, LogLine)]
                    out += exits
        candidates = sorted((s for s in self.symbols if views[s]["signal"] is not None and views[s]["signal"].side),
                            key=lambda s: (-views[s]["signal"].score, s))
        busy = self._busy(ctx)
        for sym in candidates:
            sig = views[sym]["signal"]
            intent, skip = self._entry(sym, sig, views[sym]["source"], busy, ctx)
            head = (f"LIT {sym} {sig.reason}, score {sig.score:.2f} [ratio {views[sym]['source']}]")
            data = {"symbol": sym, "ratio": views[sym]["ratio"], "crowding": round(sig.crowding, 4),
                    "funding_apr": round(views[sym]["apr"], 4), "score": round(sig.score, 4),
                    "source": views[sym]["source"], "side": sig.side}
            if skip == HELD:  # the trade is on: a line in the log, no new alert
                lines.append(f"{head} -> held")
                continue
            if skip:
                self._count("skipped")
                lines.append(f"{head} -> skipped: {skip}")
                out.append(Alert(sym, "lit", f"{head} -> skipped: {skip}", self.name, {**data, "action": skip}))
                continue
            assert intent is not None
            busy.add(sym)
            self._count("entries")
            action = (f"{'queued for approval' if ctx.settings.approval.mode == 'manual' else 'placed'}: "
                      f"market {intent.side.upper()} {intent.qty:g} (~{intent.notional:,.2f} USD, "
                      f"{intent.leverage:g}x, {intent.meta['tier']})")
            lines.append(f"{head} -> {action}")
            out += [Alert(sym, "lit", f"{head} -> {action}", self.name, {**data, "action": action}), intent]
        reasons = []
        for s in self.symbols:
            v = views[s]
            if s not in candidates:
                reasons.append(f"{s} {v['signal'].reason}" if v["signal"] is not None else
                               f"{s} {'no ratio' if not v['fresh'] else 'no funding'}")
        if reasons:
            lines.append(f"{'no entry' if not candidates else 'no signal'}: " + "; ".join(reasons))
        self.decisions = [f"evaluation {self.evaluations} at {fmt_ts(now)} UTC"] + lines
        out = [LogLine(line, self.name) for line in lines if not line.startswith("LIT ")] + out
        return out

    def _busy(self, ctx: StrategyContext) -> set[str]:
        """Symbols where LIT holds a position or an entry is in flight (or waiting to be retried)."""
        busy = {s for s, st in self.state.items() if st.side}
        busy |= {p.symbol for p in ctx.open_positions() if p.strategy == self.name}
        return busy

    def _entry(self, sym: str, sig: rules.Signal, source: str, busy: set[str],
               ctx: StrategyContext) -> tuple[PlaceOrder | None, str]:
        st = self.state[sym]
        cfg = self.cfg
        if st.blacklist_until > ctx.now:
            return None, f"blacklisted until {fmt_ts(st.blacklist_until)} UTC ({st.blacklist_reason})"
        if sym in busy:
            return None, HELD
        pos = ctx.position(sym)
        if pos is not None and pos.is_open:
            return None, f"position open in {sym} ({pos.strategy or 'other'})"
        if len(busy) >= cfg.max_positions:
            return None, f"max positions reached ({len(busy)} of {cfg.max_positions})"
        if ctx.halted:
            return None, "halted"
        price = market_price(ctx.market(sym))
        if not price:
            return None, f"no market price for {sym}"
        inst = ctx.instrument(sym)
        lev, tier = rules.leverage_for(sig.crowding, sig.support_apr, cfg, inst.max_leverage,
                                       ctx.settings.risk.max_leverage)
        notional = cfg.collateral_usd * lev
        qty = inst.round_qty(notional / price)
        if qty < inst.min_qty or qty * price < inst.min_notional:
            return None, (f"below the venue minimum: {cfg.collateral_usd:g} USD x {lev:g}x = {notional:.2f} USD is "
                          f"{qty:g} on the {inst.qty_step:g} step ({qty * price:.2f} USD; minimum {inst.min_qty:g} "
                          f"and {inst.min_notional:g} USD)")
        intent = PlaceOrder(sym, sig.side, qty, price, OrderType.MARKET, purpose=Purpose.ENTRY, strategy=self.name,
                            reason=f"LIT: {sig.reason}; score {sig.score:.2f}", leverage=lev,
                            meta={"tier": tier, "score": round(sig.score, 4), "source": source})
        skip = ctx.precheck(intent)
        if skip:
            return None, skip
        st.side = "long" if sig.side == "buy" else "short"
        st.entry_id, st.entry_qty, st.entry_leverage = "", qty, lev
        st.entry_reason, st.attempts = intent.reason, 1
        return intent, ""

    # -- exits ----------------------------------------------------------------------------------------
    def _lit_position(self, sym: str, ctx: StrategyContext) -> Position | None:
        pos = ctx.position(sym)
        return pos if pos is not None and pos.is_open and pos.strategy == self.name else None

    def _check_exit(self, sym: str, st: LitSymbol, price: float, ctx: StrategyContext, *, with_signal: bool,
                    view: dict | None = None) -> list[Intent]:
        pos = self._lit_position(sym, ctx)
        if pos is None:
            return []
        crowd = support = None
        same = True
        v: dict = {}
        if with_signal:
            v = view or self.view(sym, ctx)
            if v["fresh"] and v["apr"] is not None:
                crowd = rules.crowding(v["ratio"])
                support = rules.contrarian_support(v["ratio"], v["apr"])
                crowd_now = rules.crowd_side(v["ratio"])
                same = crowd_now == ("short" if st.side == "long" else "long")
        price = price or pos.entry_price
        net = pos.unrealized(price) + pos.funding - st.fees
        reason = rules.exit_reason(side=pos.side, entry_price=pos.entry_price, price=price, net_pnl=net,
                                   collateral=st.collateral, held_s=(ctx.now - st.opened_ts) / NS, crowd=crowd,
                                   support_apr=support, crowd_is_same=same, cfg=self.cfg)
        if not reason:
            return []
        st.closing = reason
        self._count(f"exit_{reason}")
        pct = 100.0 * net / st.collateral if st.collateral else 0.0
        detail = f"PnL {net:+.4f} USD ({pct:+.2f}% of {st.collateral:.2f} USD collateral, funding {pos.funding:+.4f})"
        if reason == "normalized":
            detail += (f"; ratio {v['ratio']:.2f}, contrarian funding {support:+.1f}% APR")
        line = f"LIT {sym} exit {reason}: {pos.side} {abs(pos.qty):g} @ {pos.entry_price:g} -> {price:g}, {detail}"
        return [LogLine(line, self.name), ClosePosition(sym, self.name, reason)]

    # -- orders ---------------------------------------------------------------------------------------
    def on_order_update(self, order: Order, fill: Fill | None, ctx: StrategyContext) -> list[Intent]:
        st = self.state.get(order.symbol)
        if st is None:
            return []
        pos = self._lit_position(order.symbol, ctx)
        if order.purpose is Purpose.ENTRY:
            return self._on_entry(order, fill, st, pos, ctx)
        if pos is None and st.opened_ts and (fill is not None or not order.status.is_open):
            return self._on_closed(order.symbol, st, ctx)
        if order.status is OrderStatus.REJECTED and pos is not None and st.closing:
            reason, st.closing = st.closing, ""  # checked again at the next mark
            return [LogLine(f"LIT {order.symbol} close ({reason}) refused: {order.reject_reason}; will retry",
                            self.name, "warn")]
        return []

    def _on_entry(self, order: Order, fill: Fill | None, st: LitSymbol, pos: Position | None,
                  ctx: StrategyContext) -> list[Intent]:
        sym = order.symbol
        if not st.side:
            return []
        st.entry_id = st.entry_id or order.id
        if fill is not None:
            st.fees += fill.fee
        if pos is not None and not st.opened_ts:
            st.opened_ts = fill.ts if fill is not None else ctx.now
            st.collateral = abs(pos.qty) * pos.entry_price / (st.entry_leverage or 1.0)
            st.retry_due = 0
            ctx.set_timer(st.opened_ts + int(self.cfg.max_hold_s * NS), f"hold:{sym}", while_paused=True)
            return [LogLine(f"LIT {sym} {pos.side} {abs(pos.qty):g} @ {pos.entry_price:g} open: collateral "
                            f"{st.collateral:.2f} USD at {st.entry_leverage:g}x, max hold until "
                            f"{fmt_ts(st.opened_ts + int(self.cfg.max_hold_s * NS))} UTC", self.name)]
        if order.status.is_open or pos is not None:
            if pos is not None and pos.is_open and not order.status.is_open:
                st.collateral = abs(pos.qty) * pos.entry_price / (st.entry_leverage or 1.0)
            return []
        # the entry ended with no position
        if order.status is OrderStatus.REJECTED and rules.retryable(order.reject_reason):
            if st.attempts <= self.cfg.max_retries:
                delay = rules.backoff_s(self.cfg, st.attempts)
                st.retry_due = ctx.now + int(delay * NS)
                ctx.set_timer(st.retry_due, f"retry:{sym}", while_paused=True)
                self._count("retries")
                return [LogLine(f"LIT {sym} entry {order.id} refused ({order.reject_reason}): retry "
                                f"{st.attempts} of {self.cfg.max_retries} in {delay:g} s, same order id", self.name,
                                "warn")]
            line = self._blacklist(sym, st, ctx.now, f"entry failed after {st.attempts} attempts: "
                                                      f"{order.reject_reason}")
            st.reset_trade()
            return [LogLine(line, self.name, "warn")]
        why = order.reject_reason or order.status.value
        st.reset_trade()
        return [LogLine(f"LIT {sym} entry {order.id} not filled ({why})", self.name)]

    def _retry(self, sym: str, st: LitSymbol, ctx: StrategyContext) -> list[Intent]:
        if not st.side or st.opened_ts:
            return []
        price = market_price(ctx.market(sym))
        side = "buy" if st.side == "long" else "sell"
        intent = PlaceOrder(sym, side, st.entry_qty, price, OrderType.MARKET, purpose=Purpose.ENTRY,
                            strategy=self.name, reason=st.entry_reason, leverage=st.entry_leverage,
                            client_id=st.entry_id, meta={"retry": st.attempts})
        skip = ctx.precheck(intent) if price else f"no market price for {sym}"
        if skip:
            st.reset_trade()
            return [LogLine(f"LIT {sym} retry abandoned: {skip}", self.name, "warn")]
        st.attempts += 1
        return [LogLine(f"LIT {sym} entry retry {st.attempts - 1}: order {st.entry_id} sent again", self.name),
                intent]

    def _on_closed(self, sym: str, st: LitSymbol, ctx: StrategyContext) -> list[Intent]:
        reason = st.closing or "external"
        out: list[Intent] = []
        if reason == "sl":
            st.consecutive_sl += 1
            if st.consecutive_sl >= self.cfg.blacklist_after_sl:
                out.append(LogLine(self._blacklist(sym, st, ctx.now, f"{st.consecutive_sl} consecutive stop losses"),
                                   self.name, "warn"))
                st.consecutive_sl = 0
        else:
            st.consecutive_sl = 0
        st.reset_trade()
        return out

    def _blacklist(self, sym: str, st: LitSymbol, now: int, reason: str) -> str:
        st.blacklist_until = now + int(self.cfg.blacklist_s * NS)
        st.blacklist_reason = reason
        self._count("blacklisted")
        return f"LIT {sym} blacklisted until {fmt_ts(st.blacklist_until)} UTC: {reason}"

    def unblacklist(self, symbol: str) -> bool:
        """Lift a blacklist (`liqdesk ctl unblacklist SYMBOL`); False if the symbol was not blacklisted."""
        st = self.state.get(symbol.upper())
        if st is None or not st.blacklist_until:
            return False
        st.blacklist_until, st.blacklist_reason = 0, ""
        return True

    def blacklisted(self, now: int) -> dict[str, tuple[int, str]]:
        return {s: (st.blacklist_until, st.blacklist_reason) for s, st in self.state.items()
                if st.blacklist_until > now}

    def _count(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    # -- views and state ----------------------------------------------------------------------------
    def entry_state(self, sym: str, v: dict, now: int) -> tuple[str, bool]:
        st = self.state[sym]
        if st.opened_ts:
            return (f"{st.side.upper()} {st.entry_leverage:g}x" + (f" closing ({st.closing})" if st.closing else ""),
                    True)
        if st.side:
            return (f"entering {st.side}" + (f" (retry {st.attempts})" if st.retry_due else ""), True)
        if st.blacklist_until > now:
            return "blacklisted", False
        sig = v["signal"]
        if sig is None:
            return ("no ratio" if not v["fresh"] else "no funding"), False
        return (f"{'SELL' if sig.side == 'sell' else 'BUY'} signal" if sig.side else "watch"), bool(sig.side)

    def gauges(self) -> dict[str, list[Gauge]]:
        cfg = self.cfg
        ctx = self._ctx
        now = ctx.now if ctx is not None else 0
        out: dict[str, list[Gauge]] = {}
        for sym in self.symbols:
            st = self.state[sym]
            v = self.view(sym, ctx) if ctx is not None else {"ratio": None, "fresh": False, "apr": None,
                                                              "signal": None, "source": ""}
            ratio = v["ratio"]
            crowd = rules.crowding(ratio) if ratio else 1.0
            crowd = crowd if math.isfinite(crowd) else 2 * cfg.tier2_ratio
            apr = v["apr"]
            sig = v["signal"]
            score = sig.score if sig is not None else 0.0
            state, active = self.entry_state(sym, v, now)
            bl = st.blacklist_until > now
            out[sym] = [
                Gauge("L/S", crowd, 1.0, max(cfg.tier2_ratio, crowd),
                      {"entry": cfg.ratio_entry, "exit": cfg.ratio_exit},
                      text=f"{ratio:.2f}" if ratio else "-", active=crowd >= cfg.ratio_entry),
                Gauge("fund", apr or 0.0, -2 * cfg.tier2_funding_apr, 2 * cfg.tier2_funding_apr,
                      {"+": cfg.funding_entry_apr, "-": -cfg.funding_entry_apr},
                      text=f"{apr:+.1f}%" if apr is not None else "-",
                      active=sig is not None and sig.support_apr > cfg.funding_entry_apr),
                Gauge("score", score, 0.0, 2 * cfg.score_cap, {"entry": 2.0}, text=f"{score:.2f}" if sig else "-",
                      active=sig is not None and bool(sig.side)),
                Gauge("state", 1.0 if active else 0.0, 0.0, 1.0, text=state, active=active),
                Gauge("blacklist", (st.blacklist_until - now) / NS if bl else 0.0, 0.0, cfg.blacklist_s,
                      text=fmt_left(st.blacklist_until - now) if bl else "no", active=bl),
            ]
        return out

    def snapshot(self) -> dict:
        return {"symbols": {s: asdict(st) for s, st in self.state.items()}, "next_eval": self.next_eval,
                "evaluations": self.evaluations, "counts": dict(self.counts)}

    def restore(self, state: dict) -> None:
        known = {f.name for f in fields(LitSymbol)}
        for s, d in (state.get("symbols") or {}).items():
            if s in self.state:
                self.state[s] = LitSymbol(**{k: v for k, v in d.items() if k in known})
        self.next_eval = int(state.get("next_eval") or 0)
        self.evaluations = int(state.get("evaluations") or 0)
        self.counts = {str(k): int(v) for k, v in (state.get("counts") or {}).items()}
        if self._ctx is not None:
            self._arm(self._ctx)
