"""The risk gate: the one place where limits are enforced, for every strategy.

Every PlaceOrder passes `Risk.check` before approval and the broker. Prices and
quantities are put on the instrument grid for every order. Exits (take profit,
stop loss, timeouts, flatten, manual closes) are only rounded: a limit must never
stop a position from being closed. Entries are checked against, in this order:
the blacklist, the daily and weekly loss limits, the symbol's cooldown, market
data, leverage, minimum and maximum notional, one position per symbol, the
number of symbols with positions, and the total notional and account leverage.

`check` has no side effects besides the rounding, so strategies may ask it in
advance (`StrategyContext.precheck`) to explain a skip. The state that persists
(cooldowns, loss counters, halt, runtime blacklist) is `Risk.state`, saved by
the store through `snapshot()`/`restore()`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..config import Settings
from ..engine import RiskDecision
from ..events import NS
from ..orders import PlaceOrder, Purpose

if TYPE_CHECKING:
    from ..engine import Engine
    from ..portfolio import ClosedTrade

DAY_NS = 86_400 * NS
WEEK_NS = 7 * DAY_NS
# 1970-01-01 was a Thursday: shifting by 3 days makes UTC weeks start on Monday 00:00.
_MONDAY_SHIFT_NS = 3 * DAY_NS


def day_start(ts: int) -> int:
    return ts - ts % DAY_NS


def week_start(ts: int) -> int:
    return ts - (ts + _MONDAY_SHIFT_NS) % WEEK_NS


def fmt_utc(ts: int) -> str:
    return datetime.fromtimestamp(ts / NS, UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(slots=True)
class LossWindow:
    """Net PnL of the trades closed in one UTC day (or week) against its limit."""

    name: str  # daily | weekly
    start_ts: int = -1  # window start, ns; -1 = not started
    start_equity: float = 0.0  # realized equity when the window started: the limit's base
    pnl: float = 0.0  # net PnL (after fees and funding) of trades closed in the window
    blocked_until: int = 0  # ns; entries are refused before this time

    def loss_pct(self) -> float:
        return max(-self.pnl, 0.0) / self.start_equity * 100.0 if self.start_equity > 0 else 0.0


@dataclass(slots=True)
class RiskState:
    cooldowns: dict[str, int] = field(default_factory=dict)  # symbol -> entries allowed again at (ns)
    blacklist: list[str] = field(default_factory=list)  # added at runtime, on top of the config's
    daily: LossWindow = field(default_factory=lambda: LossWindow("daily"))
    weekly: LossWindow = field(default_factory=lambda: LossWindow("weekly"))
    halted: bool = False  # mirrors the engine's kill switch so that it survives a restart
    halt_reason: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RiskState:
        return cls(
            cooldowns={str(k): int(v) for k, v in d.get("cooldowns", {}).items()},
            blacklist=[str(s) for s in d.get("blacklist", [])],
            daily=LossWindow(**{**asdict(LossWindow("daily")), **d.get("daily", {})}),
            weekly=LossWindow(**{**asdict(LossWindow("weekly")), **d.get("weekly", {})}),
            halted=bool(d.get("halted", False)),
            halt_reason=str(d.get("halt_reason", "")),
        )


class Risk:
    """The risk gate (engine.RiskGate)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.cfg = settings.risk
        self.state = RiskState()
        self.engine: Engine | None = None

    def attach(self, engine: Engine) -> None:
        self.engine = engine

    # -- the gate ---------------------------------------------------------------------------
    def check(self, intent: PlaceOrder, engine: Engine) -> RiskDecision:
        reason = self._round(intent, engine)
        if not reason and intent.purpose is Purpose.ENTRY:
            reason = self._entry_reason(intent, engine)
        return RiskDecision(False, reason) if reason else RiskDecision(True, intent=intent)

    def _round(self, intent: PlaceOrder, engine: Engine) -> str:
        """Put price, trigger and qty on the grid. A buy limit rounds down and a sell limit up,
        so rounding never makes an order more aggressive than the strategy asked."""
        inst = engine.instrument(intent.symbol)
        if not all(v is None or (math.isfinite(v) and v > 0) for v in (intent.qty, intent.price,
                                                                      intent.trigger_price)):
            return f"invalid order: qty {intent.qty} price {intent.price} trigger {intent.trigger_price}"
        intent.qty = inst.round_qty(intent.qty)
        if intent.price is not None:
            intent.price = inst.round_price(intent.price, "down" if intent.side == "buy" else "up")
        if intent.trigger_price is not None:
            intent.trigger_price = inst.round_price(intent.trigger_price)
        if intent.qty <= 0:
            return f"quantity rounds to zero on the {inst.qty_step:g} step"
        return ""

    def _entry_reason(self, intent: PlaceOrder, engine: Engine) -> str:
        sym = intent.symbol
        now = engine.clock.now()
        st = self.state
        cfg = self.cfg
        if sym in cfg.blacklist or sym in st.blacklist:
            return f"{sym} is blacklisted"
        self.roll(now, engine.portfolio.realized_equity)
        for w in (st.daily, st.weekly):
            if now < w.blocked_until:
                return (f"{w.name} loss limit reached ({w.loss_pct():.2f}% >= "
                        f"{self._limit_pct(w):g}%): no new entries until {fmt_utc(w.blocked_until)}")
        until = st.cooldowns.get(sym, 0)
        if now < until:
            return f"{sym} cooldown for {(until - now) / NS:.0f} s more"
        m = engine.markets.get(sym)
        ref = intent.price or intent.trigger_price or (m.price if m is not None else None)
        if not ref:
            return f"no market price for {sym}"
        if m is not None and m.book_ts and now - m.book_ts > cfg.stale_book_s * NS:
            return f"{sym} book is stale ({(now - m.book_ts) / NS:.0f} s old)"
        feed_book = engine.feed_states.get(f"book.{sym}", "LIVE")  # set by live feeds (Bybit) on resync/stale
        if feed_book != "LIVE":
            return f"{sym} book is {feed_book}"
        inst = engine.instrument(sym)
        max_lev = min(cfg.max_leverage, inst.max_leverage)
        if intent.leverage > max_lev:
            return f"leverage {intent.leverage:g}x above the {max_lev:g}x cap"
        notional = intent.qty * ref
        if notional < inst.min_notional or intent.qty < inst.min_qty:
            return (f"notional {notional:.2f} USD below the minimum ({inst.min_notional:g} USD, "
                    f"qty {inst.min_qty:g})")
        if notional > cfg.max_order_notional_usd:
            return f"notional {notional:.0f} USD above the {cfg.max_order_notional_usd:.0f} USD order cap"
        pos = engine.portfolio.positions.get(sym)
        if pos is not None and pos.qty != 0.0:
            return f"{sym} already has a position (one per symbol)"
        busy, exposure = self._exposure(engine)
        if sym in busy and not self._is_added_layer(intent, engine):
            return f"{sym} already has a working entry (one per symbol)"
        if sym not in busy and len(busy) >= cfg.max_open_symbols:
            return f"{len(busy)} symbols already in use (max {cfg.max_open_symbols})"
        total = exposure + notional
        if total > cfg.max_total_notional_usd:
            return f"total notional {total:.0f} USD above the {cfg.max_total_notional_usd:.0f} USD cap"
        equity = engine.portfolio.realized_equity
        if equity <= 0 or total / equity > cfg.max_leverage:
            return f"account leverage {total / equity if equity > 0 else float('inf'):.1f}x above " \
                   f"{cfg.max_leverage:g}x"
        return ""

    @staticmethod
    def _is_added_layer(intent: PlaceOrder, engine: Engine) -> bool:
        """A further layer of one layered quote (LPI's Mode A): same strategy, symbol and side as every
        working entry there, and marked `meta["layer"]`. The layers form one entry decision, so they
        share the symbol's slot; their notional still counts against every cap."""
        if not intent.meta.get("layer"):
            return False
        working = [o for o in engine.open_orders.values() if o.purpose is Purpose.ENTRY and o.symbol == intent.symbol]
        return bool(working) and all(o.strategy == intent.strategy and o.side == intent.side for o in working)

    @staticmethod
    def _exposure(engine: Engine) -> tuple[set[str], float]:
        """Symbols with a position or a working entry, and their notional (positions at entry price)."""
        busy: set[str] = set()
        total = 0.0
        for p in engine.portfolio.positions.values():
            if p.qty != 0.0:
                busy.add(p.symbol)
                total += abs(p.qty) * p.entry_price
        for o in engine.open_orders.values():
            if o.purpose is Purpose.ENTRY:
                busy.add(o.symbol)
                total += o.remaining * (o.price or o.trigger_price or 0.0)
        return busy, total

    # -- state that moves ---------------------------------------------------------------------
    def _limit_pct(self, w: LossWindow) -> float:
        return self.cfg.daily_loss_limit_pct if w.name == "daily" else self.cfg.weekly_loss_limit_pct

    def roll(self, now: int, equity: float) -> None:
        """Start a new day/week window when the UTC day/week has changed."""
        for w, start in ((self.state.daily, day_start(now)), (self.state.weekly, week_start(now))):
            if w.start_ts != start:
                w.start_ts = start
                w.start_equity = equity
                w.pnl = 0.0

    def on_trade_closed(self, trade: ClosedTrade, engine: Engine) -> None:
        """Count the trade against the loss limits and start the symbol's cooldown."""
        now = engine.clock.now()
        self.roll(now, engine.portfolio.realized_equity - trade.net_pnl)
        cooldown_s = self._cooldown_s(trade.strategy)
        if cooldown_s > 0:
            self.state.cooldowns[trade.symbol] = now + int(cooldown_s * NS)
        windows = ((self.state.daily, day_start(now) + DAY_NS),
                   (self.state.weekly, week_start(now) + WEEK_NS))
        for w, nxt in windows:
            w.pnl += trade.net_pnl
            limit = self._limit_pct(w)
            if w.blocked_until <= now and w.loss_pct() >= limit:
                w.blocked_until = nxt
                engine.log(f"LOSS LIMIT {w.name}: {w.pnl:+.2f} USD is {w.loss_pct():.2f}% of "
                           f"{w.start_equity:.2f} USD (limit {limit:g}%): no new entries until "
                           f"{fmt_utc(nxt)}", "warn")
        engine.notify("risk", self.describe(now))

    def _cooldown_s(self, strategy: str) -> float:
        """The closing strategy's own `cooldown_s` setting (its config section), if it has one."""
        section = getattr(self.settings, strategy, None) if strategy else None
        return float(getattr(section, "cooldown_s", 0.0) or 0.0)

    def set_halt(self, halted: bool, reason: str = "") -> None:
        self.state.halted = halted
        self.state.halt_reason = reason if halted else ""

    def blacklist_add(self, symbol: str) -> None:
        if symbol not in self.state.blacklist:
            self.state.blacklist.append(symbol)

    def blacklist_remove(self, symbol: str) -> None:
        if symbol in self.state.blacklist:
            self.state.blacklist.remove(symbol)

    # -- views and the store ------------------------------------------------------------------
    def entries_blocked(self, now: int) -> str:
        """Why no strategy may enter right now ("" if entries are allowed): loss limits only."""
        for w in (self.state.daily, self.state.weekly):
            if now < w.blocked_until:
                return f"{w.name} loss limit until {fmt_utc(w.blocked_until)}"
        return ""

    def describe(self, now: int) -> dict:
        st = self.state
        return {
            "halted": st.halted,
            "halt_reason": st.halt_reason,
            "entries_blocked": self.entries_blocked(now),
            "cooldowns": {s: round((t - now) / NS, 1) for s, t in sorted(st.cooldowns.items()) if t > now},
            "blacklist": sorted(set(self.cfg.blacklist) | set(st.blacklist)),
            **{w.name: {"pnl_usd": round(w.pnl, 2), "loss_pct": round(w.loss_pct(), 3),
                        "limit_pct": self._limit_pct(w),
                        "blocked_until": fmt_utc(w.blocked_until) if now < w.blocked_until else ""}
               for w in (st.daily, st.weekly)},
        }

    def snapshot(self) -> dict:
        return self.state.to_dict()

    def restore(self, state: dict) -> None:
        self.state = RiskState.from_dict(state)
