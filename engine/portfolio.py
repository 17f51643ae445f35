"""Positions, realized/unrealized PnL, fees, funding, equity and closed trades.

One net position per symbol. Fills move it; when a position returns to zero
(or flips) a ClosedTrade is recorded with the exit reason of the closing
order. Wins/losses/timeouts partition closed trades: a trade closed by a
timeout counts as a timeout whatever its PnL; the others are wins when their
net PnL (after fees and funding) is positive, losses otherwise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .events import NS
from .orders import Fill, Position


@dataclass(slots=True)
class ClosedTrade:
    symbol: str
    side: str  # long | short
    qty: float
    entry_price: float
    exit_price: float
    opened_ts: int
    closed_ts: int
    gross_pnl: float
    fees: float
    funding: float
    exit_reason: str  # tp | sl | timeout | signal | flatten | manual
    strategy: str
    max_profit: float = 0.0

    @property
    def net_pnl(self) -> float:
        return self.gross_pnl - self.fees + self.funding

    @property
    def return_pct(self) -> float:
        notional = self.qty * self.entry_price
        return 100.0 * self.net_pnl / notional if notional else 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["net_pnl"] = self.net_pnl
        return d


@dataclass(slots=True)
class SymbolCounters:
    orders: int = 0
    fills: int = 0
    closed_trades: int = 0
    wins: int = 0
    losses: int = 0
    timeouts: int = 0
    net_pnl_usd: float = 0.0
    fees_usd: float = 0.0
    funding_usd: float = 0.0
    exits: dict[str, int] = field(default_factory=dict)


class Portfolio:
    def __init__(self, initial_equity: float):
        self.initial_equity = float(initial_equity)
        self.positions: dict[str, Position] = {}
        self.closed: list[ClosedTrade] = []
        self.realized = 0.0  # gross realized PnL
        self.fees = 0.0
        self.funding = 0.0
        self.counters: dict[str, SymbolCounters] = {}
        self._peak_equity = self.initial_equity
        self._trough_equity = self.initial_equity
        self.max_drawdown = 0.0
        self.max_runup = 0.0
        self._pos_fees: dict[str, float] = {}
        self._pos_funding: dict[str, float] = {}

    # -- bookkeeping ------------------------------------------------------------------------
    def counter(self, symbol: str) -> SymbolCounters:
        c = self.counters.get(symbol)
        if c is None:
            c = self.counters[symbol] = SymbolCounters()
        return c

    def position(self, symbol: str) -> Position:
        p = self.positions.get(symbol)
        if p is None:
            p = self.positions[symbol] = Position(symbol)
        return p

    def open_positions(self) -> list[Position]:
        return [p for p in self.positions.values() if p.qty != 0.0]

    def apply_fill(self, fill: Fill, exit_reason: str = "", strategy: str = "",
                   leverage: float = 1.0) -> ClosedTrade | None:
        """Apply a fill; returns the ClosedTrade when the fill closes (or flips) a position."""
        pos = self.position(fill.symbol)
        c = self.counter(fill.symbol)
        c.fills += 1
        c.fees_usd += fill.fee
        self.fees += fill.fee
        self._pos_fees[fill.symbol] = self._pos_fees.get(fill.symbol, 0.0) + fill.fee
        signed = fill.qty if fill.side == "buy" else -fill.qty
        closed: ClosedTrade | None = None
        if pos.qty == 0.0 or (pos.qty > 0) == (signed > 0):
            new_qty = pos.qty + signed
            if pos.qty == 0.0:
                pos.opened_ts = fill.ts
                pos.strategy = strategy or pos.strategy
                pos.max_profit = 0.0
                pos.leverage = leverage
            pos.entry_price = (pos.entry_price * abs(pos.qty) + fill.price * fill.qty) / abs(new_qty)
            pos.qty = _clean(new_qty)
            return None
        # reducing, closing or flipping
        close_qty = min(abs(signed), abs(pos.qty))
        direction = 1.0 if pos.qty > 0 else -1.0
        gross = (fill.price - pos.entry_price) * close_qty * direction
        pos.realized_pnl += gross
        self.realized += gross
        remaining = _clean(pos.qty + signed)
        if remaining == 0.0 or (remaining > 0) != (pos.qty > 0):
            fees = self._pos_fees.pop(fill.symbol, 0.0)
            funding = self._pos_funding.pop(fill.symbol, 0.0)
            closed = ClosedTrade(
                symbol=fill.symbol, side="long" if direction > 0 else "short", qty=abs(pos.qty),
                entry_price=pos.entry_price, exit_price=fill.price, opened_ts=pos.opened_ts, closed_ts=fill.ts,
                gross_pnl=pos.realized_pnl, fees=fees, funding=funding, exit_reason=exit_reason or "exit",
                strategy=pos.strategy, max_profit=pos.max_profit)
            self._record_closed(closed)
            pos.realized_pnl = 0.0
            pos.take_profit = pos.stop_loss = None
            if remaining != 0.0:  # flipped: the rest opens a new position at the fill price
                pos.entry_price = fill.price
                pos.opened_ts = fill.ts
                pos.max_profit = 0.0
            else:
                pos.entry_price = 0.0
                pos.opened_ts = 0
        pos.qty = remaining
        return closed

    def _record_closed(self, t: ClosedTrade) -> None:
        self.closed.append(t)
        c = self.counter(t.symbol)
        c.closed_trades += 1
        c.net_pnl_usd += t.net_pnl
        c.exits[t.exit_reason] = c.exits.get(t.exit_reason, 0) + 1
        if t.exit_reason == "timeout":
            c.timeouts += 1
        elif t.net_pnl > 0:
            c.wins += 1
        else:
            c.losses += 1

    def apply_funding(self, symbol: str, mark: float, rate: float) -> float:
        """Book one funding payment on the open position; returns the amount (+ received)."""
        pos = self.positions.get(symbol)
        if pos is None or pos.qty == 0.0:
            return 0.0
        amount = -pos.qty * mark * rate  # longs pay positive funding
        pos.funding += amount
        self.funding += amount
        self._pos_funding[symbol] = self._pos_funding.get(symbol, 0.0) + amount
        self.counter(symbol).funding_usd += amount
        return amount

    def mark_to_market(self, marks: dict[str, float]) -> float:
        """Update max profit per position and the equity extremes; returns equity."""
        upnl = 0.0
        for sym, pos in self.positions.items():
            if pos.qty == 0.0:
                continue
            m = marks.get(sym)
            if m is None:
                continue
            u = pos.unrealized(m)
            if u > pos.max_profit:
                pos.max_profit = u
            upnl += u
        eq = self.initial_equity + self.realized - self.fees + self.funding + upnl
        if eq > self._peak_equity:
            self._peak_equity = eq
        if eq < self._trough_equity:
            self._trough_equity = eq
        self.max_drawdown = max(self.max_drawdown, self._peak_equity - eq)
        self.max_runup = max(self.max_runup, eq - self._trough_equity)
        return eq

    @property
    def realized_equity(self) -> float:
        return self.initial_equity + self.realized - self.fees + self.funding

    @property
    def net_pnl(self) -> float:
        return self.realized - self.fees + self.funding

    def performance(self, equity: float | None = None) -> dict:
        """The performance table shared by the console and reports."""
        eq = self.realized_equity if equity is None else equity
        wins = [t for t in self.closed if t.net_pnl > 0]
        losses = [t for t in self.closed if t.net_pnl <= 0]
        n = len(self.closed)
        net = eq - self.initial_equity

        def avg(xs, f):
            return sum(f(t) for t in xs) / len(xs) if xs else 0.0

        return {
            "initial_equity": self.initial_equity,
            "equity": eq,
            "net_profit": net,
            "net_profit_pct": 100.0 * net / self.initial_equity,
            "long_trades": sum(1 for t in self.closed if t.side == "long"),
            "short_trades": sum(1 for t in self.closed if t.side == "short"),
            "closed_trades": n,
            "win_rate_pct": 100.0 * len(wins) / n if n else 0.0,
            "avg_win": avg(wins, lambda t: t.net_pnl),
            "avg_win_pct": avg(wins, lambda t: t.return_pct),
            "avg_loss": avg(losses, lambda t: t.net_pnl),
            "avg_loss_pct": avg(losses, lambda t: t.return_pct),
            "max_runup": self.max_runup,
            "max_runup_pct": 100.0 * self.max_runup / self.initial_equity,
            "max_drawdown": self.max_drawdown,
            "max_drawdown_pct": 100.0 * self.max_drawdown / self.initial_equity,
            "return_over_max_drawdown": net / self.max_drawdown if self.max_drawdown > 0 else 0.0,
            "fees": self.fees,
            "funding": self.funding,
        }

    def snapshot(self) -> dict:
        return {
            "initial_equity": self.initial_equity,
            "positions": {s: asdict(p) for s, p in self.positions.items() if p.qty != 0.0},
            "realized": self.realized, "fees": self.fees, "funding": self.funding,
            "peak": self._peak_equity, "trough": self._trough_equity,
            "max_drawdown": self.max_drawdown, "max_runup": self.max_runup,
            "pos_fees": dict(self._pos_fees), "pos_funding": dict(self._pos_funding),
        }

    def restore(self, state: dict) -> None:
        self.positions = {s: Position(**p) for s, p in state.get("positions", {}).items()}
        self.realized = float(state.get("realized", 0.0))
        self.fees = float(state.get("fees", 0.0))
        self.funding = float(state.get("funding", 0.0))
        self._peak_equity = float(state.get("peak", self.initial_equity))
        self._trough_equity = float(state.get("trough", self.initial_equity))
        self.max_drawdown = float(state.get("max_drawdown", 0.0))
        self.max_runup = float(state.get("max_runup", 0.0))
        self._pos_fees = dict(state.get("pos_fees", {}))
        self._pos_funding = dict(state.get("pos_funding", {}))


def _clean(q: float) -> float:
    """Snap float dust to zero so that a closed position is exactly flat."""
    return 0.0 if abs(q) < 1e-12 else q


@dataclass(frozen=True, slots=True)
class PositionView:
    """One open position as the position table shows it (LTA manual, "Views"): numbers only; the
    console's positions pane and the bar backtest's printout format it the same way
    (tui/widgets/positions.py `position_cells`)."""

    symbol: str
    side: str  # long | short
    qty: float  # size, > 0
    entry: float
    mark: float | None  # current price; None before the first price
    duration_s: float | None  # None when the open time is unknown
    price_change_pct: float | None  # the price's move since entry, (mark - entry) / entry: + is up for both sides
    upnl: float  # current unrealized PnL in quote (before fees and funding)
    upnl_pct: float  # of the entry notional qty * entry
    max_profit: float  # best unrealized PnL since entry (never below 0 or below `upnl`)
    max_profit_pct: float  # of the entry notional


def position_view(symbol: str, qty: float, entry: float, mark: float | None, max_profit: float,
                  opened_ts: int, now: int) -> PositionView:
    """The position table's row for a position of signed `qty` opened at `opened_ts` (0: unknown).

    `max_profit` is the best unrealized PnL tracked so far (Portfolio.mark_to_market, or the LTA
    core's intrabar path); the current PnL counts too, so a mark newer than the last tracking
    step never shows a current PnL above the max. Percentages are of the entry notional, unlevered."""
    size = abs(qty)
    basis = size * entry
    upnl = (mark - entry) * qty if mark is not None else 0.0
    best = max(max_profit, upnl, 0.0)
    return PositionView(
        symbol=symbol, side="long" if qty > 0 else "short", qty=size, entry=entry, mark=mark,
        duration_s=max(now - opened_ts, 0) / NS if opened_ts else None,
        price_change_pct=100.0 * (mark - entry) / entry if mark is not None and entry else None,
        upnl=upnl, upnl_pct=100.0 * upnl / basis if basis else 0.0,
        max_profit=best, max_profit_pct=100.0 * best / basis if basis else 0.0)
