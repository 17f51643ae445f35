"""Liquidity Trading Algorithm (LTA), docs/strategies/lta.md.

`LtaCore` is the whole algorithm for one instrument, bar by bar, with no engine in sight, so the
bar backtester (engine/backtest/bar_runner.py) and the live strategy run the same code:

* at each bar close: LDPM/LDPS (engine/lta_metrics.py) -> the assessment style's decision tree
  -> outlook (bullish / bearish / neutral) -> the target position after the trade-direction
  allowance -> AMS, Impose Wait and the built-in one-bar wait of a direct switch -> orders;
* inside each bar: TP, SL and the trailing stop, on the documented path open -> adverse
  extreme -> favourable extreme -> close. Stops are never delayed by Wait and act even while
  AMS is active.

`LtaStrategy` runs one core per symbol on bars built live from trades (engine/bars.py) and
turns the core's orders into market orders through the engine (risk gate, approvals, broker).
Stops are checked on every trade there, which is the real intrabar path.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

import numpy as np

from ..bars import BarBuilder
from ..events import NS, Bar, Trade
from ..lta_metrics import ldpm, ldps
from ..orders import ClosePosition, LogLine, OrderStatus, OrderType, PlaceOrder, Purpose
from ..portfolio import PositionView, position_view
from .base import Gauge, Strategy

if TYPE_CHECKING:
    from ..config import LtaConfig, Settings
    from ..engine import StrategyContext
    from ..orders import Fill, Intent, Order

INTERNAL_MAX_UNITS = 100_000.0
BULL, BEAR, NEUTRAL = "bullish", "bearish", "neutral"
SIDE_OF = {BULL: "long", BEAR: "short", NEUTRAL: "flat"}


@dataclass(frozen=True, slots=True)
class StyleParams:
    """One assessment style: data windows and how much evidence changes the outlook.

    short/long: the metrics' averaging and normalizing windows (bars). enter: |LDPM| needed for a
    directional view, and (against the current view) for a flip. exit_at: a bullish view turns
    neutral when LDPM falls below exit_at (a bearish one when it rises above -exit_at); exit_at =
    enter means "drop the view as soon as its evidence is gone", a negative exit_at "drop it only
    when the contrary is shown". confirm: consecutive bar closes a new outlook must be indicated
    before it is adopted. The table is documented in docs/strategies/lta.md."""

    short: int
    long: int
    enter: float
    exit_at: float
    confirm: int


STYLES: dict[str, StyleParams] = {
    "aggressive": StyleParams(short=3, long=48, enter=0.25, exit_at=0.25, confirm=1),
    "balanced": StyleParams(short=6, long=96, enter=0.35, exit_at=0.0, confirm=2),
    "conservative": StyleParams(short=12, long=192, enter=0.45, exit_at=-0.3, confirm=3),
    "diamond": StyleParams(short=24, long=384, enter=0.6, exit_at=-0.6, confirm=4),
}
AMS_SHORT = 2  # AMS watches LDPS averaged over this many bars: faster than any style


def round_size(qty: float, fractional: bool) -> float:
    """Fractional: 4 decimals, half up (0.00005 -> 0.0001, 0.0000499 -> 0); else whole units, down.
    Never above the internal maximum of 100,000 units."""
    qty = min(max(qty, 0.0), INTERNAL_MAX_UNITS)
    if not fractional:
        return float(math.floor(qty + 1e-9))
    return float(Decimal(repr(qty)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def position_size(cfg: LtaConfig, funds: float, price: float) -> float:
    """Fixed-Share: max_size, no balance check. Fixed-Percentage: allotment % of the available funds
    at `price`, capped by max_size (when > 0). Both capped at 100,000 units, then rounded."""
    if cfg.sizing == "fixed-share":
        raw = cfg.max_size
    else:
        raw = max(funds, 0.0) * cfg.portfolio_allotment_pct / 100.0 / price if price > 0 else 0.0
        if cfg.max_size > 0:
            raw = min(raw, cfg.max_size)
    return round_size(raw, cfg.fractional)


@dataclass(slots=True)
class LtaPosition:
    side: str = "flat"  # long | short | flat
    qty: float = 0.0
    entry: float = 0.0
    opened_ts: int = 0
    best: float = 0.0  # most favourable price since entry (the trailing stop follows it)
    max_profit: float = 0.0  # $ at `best`

    @property
    def sign(self) -> int:
        return 1 if self.side == "long" else -1 if self.side == "short" else 0

    def pnl(self, price: float) -> float:
        return self.sign * (price - self.entry) * self.qty


@dataclass(slots=True)
class LtaOrder:
    """An order the core wants: `kind` enter | exit, filled at `price` (the bar close or a stop level)."""

    kind: str
    side: str  # long | short: the position entered or exited
    qty: float
    price: float
    ts: int
    reason: str  # entry: "signal"; exit: signal | ams | tp | sl | trail


@dataclass(slots=True)
class Pending:
    target: str  # the position the order-in-waiting leads to: long | short | flat
    kind: str  # enter | exit
    since: int  # bar index at which it was first indicated


@dataclass
class LtaCore:
    """One instrument's LTA. Feed `on_bar`; read `orders` it returns; `lines` is the text output."""

    cfg: LtaConfig
    symbol: str
    capital: float
    fee_bps: float = 0.0
    style: StyleParams = field(init=False)
    outlook: str = NEUTRAL
    pos: LtaPosition = field(default_factory=LtaPosition)
    cash: float = 0.0  # capital + realized net PnL (the available funds)
    bar_index: int = -1
    streak_target: str = ""
    streak: int = 0
    pending: Pending | None = None
    ams_active: bool = False
    blocked_side: str = ""  # a stop closed this side: no re-entry into it until the outlook changes
    no_entry_bar: int = -1  # the bar of an exit: entries wait for the next bar (built-in one-bar wait)
    last: dict = field(default_factory=dict)  # latest metric values
    lines: list[str] = field(default_factory=list)
    trades: int = 0
    long_entries: int = 0
    short_entries: int = 0
    start_ns: int = 0  # bars before this are used for the metrics only (backtest start date)
    entry_fee: float = 0.0  # fee paid on the open position's entry (an exit's profit is net of both)

    def __post_init__(self) -> None:
        self.style = STYLES[self.cfg.style]
        self.cash = float(self.capital)
        n = self.style.long + self.style.short + 2
        self._hist: dict[str, deque] = {k: deque(maxlen=n) for k in ("h", "l", "c", "v", "q")}
        if not self.cfg.blank_banner:
            c = self.cfg
            wait = f"{c.impose_wait_bars} bars ({c.wait_mode})" if c.impose_wait_bars else "off"
            self.say(0, f"LTA on {self.symbol}: style {c.style.title()}, interval {c.interval}, trades "
                        f"{c.direction}, AMS {'on' if c.ams else 'off'}, impose wait {wait}, sizing "
                        f"{c.sizing} (allotment {c.portfolio_allotment_pct:g}%, max {c.max_size:g}), capital "
                        f"{self.capital:,.2f}", stamp=False)

    # -- text output -------------------------------------------------------------------------------
    def say(self, ts: int, msg: str, stamp: bool = True) -> None:
        self.lines.append(f"{datetime.fromtimestamp(ts / NS, UTC):%H:%M:%S} >> {msg}" if stamp else msg)

    # -- metrics -----------------------------------------------------------------------------------
    def _metrics_now(self) -> tuple[float, float, float]:
        h = {k: np.fromiter(d, dtype=np.float64) for k, d in self._hist.items()}
        s = self.style
        m = ldpm(h["c"], h["v"], h["q"], s.short, s.long)[-1]
        q = ldps(h["h"], h["l"], h["c"], h["v"], h["q"], s.short, s.long)[-1]
        f = ldps(h["h"], h["l"], h["c"], h["v"], h["q"], AMS_SHORT, s.long)[-1]
        return float(m), float(q), float(f)

    # -- intrabar stops ----------------------------------------------------------------------------
    def stop_levels(self) -> tuple[float | None, float | None, float | None]:
        """(take profit, stop loss, trailing stop) prices of the open position; None when off/inactive."""
        p, c = self.pos, self.cfg
        if not p.sign:
            return None, None, None
        sg = p.sign
        tp = p.entry * (1 + sg * c.take_profit_pct / 100) if c.take_profit_pct > 0 else None
        sl = p.entry * (1 - sg * c.stop_loss_pct / 100) if c.stop_loss_pct > 0 else None
        trail = None
        if c.trailing_stop_pct > 0:
            gain = sg * (p.best - p.entry) / p.entry * 100
            if gain >= c.trailing_activation_pct:
                trail = p.best * (1 - sg * c.trailing_stop_pct / 100)
        return tp, sl, trail

    def on_price(self, ts: int, price: float, at_level: bool = True) -> list[LtaOrder]:
        """One price on the intrabar path: stop checks, then the favourable extreme moves. A stop that
        triggers fills at its level when the path moved continuously to it (`at_level`), else at `price`
        (a gap, or a live trade through the level)."""
        p = self.pos
        if not p.sign:
            return []
        sg = p.sign
        tp, sl, trail = self.stop_levels()
        hit: tuple[str, float] | None = None
        # adverse levels first (the stop loss before the trail: the nearer one is hit first going down)
        for name, level in sorted((x for x in (("sl", sl), ("trail", trail)) if x[1] is not None),
                                  key=lambda x: -sg * x[1]):
            if sg * (price - level) <= 0:
                hit = (name, level)
                break
        if hit is None and tp is not None and sg * (price - tp) >= 0:
            hit = ("tp", tp)
        if hit is None:
            if sg * (price - p.best) > 0:
                p.best = price
                p.max_profit = max(p.max_profit, p.pnl(price))
            return []
        return [self._exit(ts, hit[1] if at_level else price, hit[0])]

    def on_bar_path(self, bar: Bar) -> list[LtaOrder]:
        """Stops inside a bar on the path open -> adverse extreme -> favourable extreme -> close.
        A level gapped through at the open fills at the open; otherwise at the level itself."""
        p = self.pos
        if not p.sign:
            return []
        adverse, favourable = (bar.low, bar.high) if p.sign > 0 else (bar.high, bar.low)
        for i, price in enumerate((bar.open, adverse, favourable, bar.close)):
            out = self.on_price(bar.ts, price, at_level=i > 0)  # a level gapped through fills at the open
            if out:
                return out
        return []

    # -- bar close ---------------------------------------------------------------------------------
    def on_bar(self, bar: Bar, metrics: tuple[float, float, float] | None = None) -> list[LtaOrder]:
        """The bar has closed: intrabar stops (backtest path), then the assessment. `metrics` =
        (LDPM, LDPS, AMS LDPS) when precomputed for the whole series (same values)."""
        m, q, f = self.observe(bar, metrics)
        if bar.ts < self.start_ns:
            return []
        out = self.on_bar_path(bar)
        out += self._assess(bar, m, q, f)
        if self.pos.sign:
            self.pos.max_profit = max(self.pos.max_profit, self.pos.pnl(self.pos.best))
        return out

    def observe(self, bar: Bar, metrics: tuple[float, float, float] | None = None) -> tuple[float, float, float]:
        """Take the bar into the metrics' history without assessing it (also the first step of `on_bar`)."""
        self.bar_index += 1
        for k, x in zip("hlcvq", (bar.high, bar.low, bar.close, bar.volume, bar.turnover), strict=True):
            self._hist[k].append(x)
        m, q, f = metrics if metrics is not None else self._metrics_now()
        self.last = {"ldpm": m, "ldps": q, "ams_ldps": f, "close": bar.close, "ts": bar.ts}
        return m, q, f

    def _desired(self, m: float, q: float) -> str:
        s, o = self.style, self.outlook
        if not (math.isfinite(m) and math.isfinite(q)):
            return o
        stable = q >= -self.cfg.ldps_gate
        if o == BULL:
            if m < -s.enter and stable:
                return BEAR
            return NEUTRAL if m < s.exit_at else BULL
        if o == BEAR:
            if m > s.enter and stable:
                return BULL
            return NEUTRAL if m > -s.exit_at else BEAR
        if m > s.enter and stable:
            return BULL
        if m < -s.enter and stable:
            return BEAR
        return NEUTRAL

    def _assess(self, bar: Bar, m: float, q: float, f: float) -> list[LtaOrder]:
        ts, c = bar.ts, self.cfg
        want = self._desired(m, q)
        if want != self.outlook:
            self.streak = self.streak + 1 if want == self.streak_target else 1
            self.streak_target = want
            if self.streak >= self.style.confirm:
                self.outlook, self.streak, self.streak_target = want, 0, ""
                self.blocked_side = ""
        else:
            self.streak, self.streak_target = 0, ""
        self.say(ts, f"Checking conditions ... outlook {self.outlook} (LDPM {m:+.2f}, LDPS {q:+.2f})")
        out: list[LtaOrder] = []
        if c.ams:
            was = self.ams_active
            if math.isfinite(f):
                if not was and f < -c.ams_activate:
                    self.ams_active = True
                elif was and f > -c.ams_deactivate:
                    self.ams_active = False
            if self.ams_active and not was:
                if self.pos.sign:
                    self.say(ts, "AM Protocol activated ... exiting position ...")
                    out.append(self._exit(ts, bar.close, "ams"))
                else:
                    self.say(ts, "AM Protocol activated ...")
            elif was and not self.ams_active:
                self.say(ts, "AM Protocol deactivated ... conditions improved")
        target = SIDE_OF[self.outlook]
        if (c.direction == "long" and target == "short") or (c.direction == "short" and target == "long"):
            target = "flat"
        if target == self.blocked_side:
            target = "flat" if not self.pos.sign else self.pos.side
        cur = self.pos.side
        if target == cur:
            if self.pending is not None:
                self.say(ts, "Conditions changed ... order-in-waiting removed")
                self.pending = None
            return out
        if self.ams_active:
            self.pending = None
            if target != "flat":
                self.say(ts, "AM protocol prevented entry ... waiting ...")
            return out
        kind = "exit" if cur != "flat" else "enter"
        wait = c.impose_wait_bars if (kind == "enter" or c.wait_mode == "wait") else 0
        if self.pending is not None and (self.pending.target != target or self.pending.kind != kind):
            self.say(ts, "Conditions changed ... order-in-waiting removed, count reset")
            self.pending = None
        if kind == "enter" and self.bar_index <= self.no_entry_bar:
            return out  # built-in wait: a position exited at this bar close cannot be replaced at it
        if wait > 0:
            if self.pending is None:
                self.pending = Pending(target, kind, self.bar_index)
            waited = self.bar_index - self.pending.since
            if waited < wait:
                self.say(ts, f"Impose Wait: {kind} {target} in {wait - waited} bar(s) ...")
                return out
            self.pending = None
        if kind == "exit":
            out.append(self._exit(ts, bar.close, "signal"))
        else:
            o = self._enter(ts, bar.close, target)
            if o is not None:
                out.append(o)
        return out

    # -- orders ------------------------------------------------------------------------------------
    def _enter(self, ts: int, price: float, side: str) -> LtaOrder | None:
        qty = position_size(self.cfg, self.cash, price)
        if qty <= 0:
            self.say(ts, f"Entry {side} skipped: size rounds to 0 at {price:g}")
            return None
        fee = qty * price * self.fee_bps / 1e4
        self.cash -= fee
        self.pos = LtaPosition(side, qty, price, ts, price, 0.0)
        self.entry_fee = fee
        if side == "long":
            self.long_entries += 1
        else:
            self.short_entries += 1
        self.say(ts, f"Entry Order Created: {side} qty: {qty:g} @ {price:g}")
        return LtaOrder("enter", side, qty, price, ts, "signal")

    def _exit(self, ts: int, price: float, reason: str) -> LtaOrder:
        p = self.pos
        fee = p.qty * price * self.fee_bps / 1e4
        gross = p.pnl(price)
        self.cash += gross - fee
        net = gross - fee - self.entry_fee
        pct = 100 * net / (p.qty * p.entry) if p.qty * p.entry else 0.0
        label = {"ams": "Early Exit (AMS): ", "tp": "Take Profit: ", "sl": "Stop Loss: ",
                 "trail": "Trailing Stop: "}.get(reason, "")
        self.say(ts, f"{label}Exit Order Created for qty: {p.qty:g}, profit: {net:,.2f} ({pct:.2f}%)")
        o = LtaOrder("exit", p.side, p.qty, price, ts, reason)
        if reason in ("tp", "sl", "trail"):
            self.blocked_side = p.side
        self.pos = LtaPosition()
        self.pending = None
        self.no_entry_bar = self.bar_index
        self.trades += 1
        return o

    def fill_price(self, kind: str, price: float) -> None:
        """The live strategy's real fill: re-base the entry (and cash) on it."""
        if kind == "enter" and self.pos.sign:
            self.pos.entry = price
            self.pos.best = price

    def cancel_entry(self) -> None:
        """The entry was refused (risk gate, venue): the core is flat again."""
        if self.pos.sign:
            self.cash += self.entry_fee
            self.pos = LtaPosition()

    # -- views ---------------------------------------------------------------------------------
    def position_view(self, price: float, now: int) -> PositionView | None:
        """The position table's row (duration, side, entry, current price and its % change, max profit
        and current PnL in $ and %) at `price`, through the same `position_view` as the console's
        positions pane; None when flat."""
        p = self.pos
        if not p.sign:
            return None
        return position_view(self.symbol, p.sign * p.qty, p.entry, price, p.max_profit, p.opened_ts, now)

    def snapshot(self) -> dict:
        return {"outlook": self.outlook, "pos": asdict(self.pos), "cash": self.cash, "bar_index": self.bar_index,
                "streak_target": self.streak_target, "streak": self.streak,
                "pending": asdict(self.pending) if self.pending else None, "ams_active": self.ams_active,
                "blocked_side": self.blocked_side, "no_entry_bar": self.no_entry_bar,
                "hist": {k: list(d) for k, d in self._hist.items()}, "trades": self.trades,
                "entry_fee": self.entry_fee}

    def restore(self, d: dict) -> None:
        self.outlook = d.get("outlook", NEUTRAL)
        self.pos = LtaPosition(**d.get("pos", {}))
        self.cash = float(d.get("cash", self.capital))
        self.bar_index = int(d.get("bar_index", -1))
        self.streak_target, self.streak = d.get("streak_target", ""), int(d.get("streak", 0))
        self.pending = Pending(**d["pending"]) if d.get("pending") else None
        self.ams_active = bool(d.get("ams_active", False))
        self.blocked_side = d.get("blocked_side", "")
        self.no_entry_bar = int(d.get("no_entry_bar", -1))
        self.trades = int(d.get("trades", 0))
        self.entry_fee = float(d.get("entry_fee", 0.0))
        for k, xs in d.get("hist", {}).items():
            if k in self._hist:
                self._hist[k].clear()
                self._hist[k].extend(xs)


def interval_s(cfg: LtaConfig, override: str | None = None) -> int:
    from ..feeds.importers.ohlcv import interval_seconds

    return interval_seconds(override or cfg.interval)


class LtaStrategy(Strategy):
    """LTA on bars built live from trades, one core per symbol; orders at market."""

    name = "lta"
    subscriptions = (Trade,)

    def __init__(self, settings: Settings, symbols: list[str]):
        super().__init__(settings, symbols)
        self.cfg = settings.lta
        self.interval_s = interval_s(self.cfg)
        share = self.cfg.initial_capital / max(len(self.symbols), 1)
        fee = settings.paper.taker_fee_bps
        self.cores = {s: LtaCore(self.cfg, s, share, fee) for s in self.symbols}
        self.builders = {s: BarBuilder(s, self.interval_s) for s in self.symbols}
        self._working: dict[str, str] = {}  # symbol -> kind of the order in flight (enter | exit)
        self._said: dict[str, int] = {s: 0 for s in self.symbols}

    def on_start(self, ctx: StrategyContext) -> list[Intent]:
        return self._flush_lines()

    def _flush_lines(self) -> list[Intent]:
        out: list[Intent] = []
        for s, core in self.cores.items():
            new = core.lines[self._said[s]:]
            self._said[s] = len(core.lines)
            out += [LogLine(f"{s} {line}", self.name) for line in new]
            if len(core.lines) > 1000:  # the engine logs them; keep memory bounded
                del core.lines[:-100]
                self._said[s] = len(core.lines)
        return out

    def on_event(self, ev: Any, ctx: StrategyContext) -> list[Intent]:
        core = self.cores.get(ev.symbol)
        if core is None:
            return []
        orders: list[LtaOrder] = []
        if ev.symbol not in self._working:
            orders += core.on_price(ev.ts, ev.price, at_level=False)  # stops on the real intrabar path
        for bar in self.builders[ev.symbol].add(ev.ts, ev.price, ev.qty):
            if ev.symbol in self._working:
                core.observe(bar)  # an order is still in flight: the bar feeds the metrics, no decision
            else:
                orders += core.on_bar(bar)
        intents = [self._intent(ev.symbol, o, ctx) for o in orders]
        return [*self._flush_lines(), *(i for i in intents if i is not None)]

    def _intent(self, sym: str, o: LtaOrder, ctx: StrategyContext) -> Intent | None:
        self._working[sym] = o.kind
        if o.kind == "exit":
            return ClosePosition(sym, self.name, o.reason)
        inst = ctx.instrument(sym)
        qty = inst.round_qty(o.qty)
        if qty <= 0:
            self._working.pop(sym, None)
            self.cores[sym].cancel_entry()
            return None
        return PlaceOrder(sym, "buy" if o.side == "long" else "sell", qty, None, OrderType.MARKET,
                          purpose=Purpose.ENTRY, strategy=self.name, reason=f"LTA outlook {self.cores[sym].outlook}")

    def on_order_update(self, order: Order, fill: Fill | None, ctx: StrategyContext) -> list[Intent]:
        sym = order.symbol
        core = self.cores.get(sym)
        if core is None or order.status.is_open:
            return []
        kind = self._working.pop(sym, None)
        if kind == "enter":
            if order.filled_qty > 0:
                core.fill_price("enter", order.avg_price)
            else:
                core.cancel_entry()
                return [LogLine(f"{sym} entry not filled ({order.status.value}"
                                f"{': ' + order.reject_reason if order.status is OrderStatus.REJECTED else ''})",
                                self.name, "warn")]
        return []

    def gauges(self) -> dict[str, list[Gauge]]:
        out = {}
        for s, core in self.cores.items():
            m, q = core.last.get("ldpm", 0.0), core.last.get("ldps", 0.0)
            m = m if math.isfinite(m) else 0.0
            q = q if math.isfinite(q) else 0.0
            out[s] = [Gauge("LDPM", m, -2.0, 2.0, {"enter": core.style.enter}, text=f"{m:+.2f} {core.outlook}"),
                      Gauge("LDPS", q, -2.0, 2.0, text=f"{q:+.2f}", active=core.ams_active)]
        return out

    def snapshot(self) -> dict:
        return {"cores": {s: c.snapshot() for s, c in self.cores.items()},
                "builders": {s: b.snapshot() for s, b in self.builders.items()}}

    def restore(self, state: dict) -> None:
        for s, d in state.get("cores", {}).items():
            if s in self.cores:
                self.cores[s].restore(d)
                self._said[s] = len(self.cores[s].lines)
        for s, d in state.get("builders", {}).items():
            if s in self.builders:
                self.builders[s].restore(d)
