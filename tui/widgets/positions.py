"""Open positions: the position table (symbol, side, duration as Age, qty, entry, mark and its % change since
entry, max profit in $ and %, current uPnL in $ and %), then TP, SL and strategy.

The position table's cells come from `position_cells` over an `engine.portfolio.PositionView`: the
bar backtest prints its open positions with the same function (engine/backtest/bar_runner.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.orders import Position, Purpose
from engine.portfolio import PositionView, position_view

from .fmt import fmt_duration, fmt_pct, fmt_price, fmt_qty, fmt_usd, price_decimals
from .tables import CellValue, KeyedTable

if TYPE_CHECKING:
    from engine.engine import Engine

POSITION_COLUMNS = (("symbol", "Symbol"), ("side", "Side"), ("age", "Age"), ("qty", "Qty"), ("entry", "Entry"),
                    ("mark", "Mark"), ("chg", "Chg %"), ("max", "Max $"), ("max_pct", "Max %"),
                    ("upnl", "uPnL $"), ("upnl_pct", "uPnL %"))


def position_cells(v: PositionView, decimals: int) -> tuple[tuple[str, bool | None], ...]:
    """(text, positive?) per POSITION_COLUMNS entry; positive None means not coloured. `Chg %` is the
    price's move since entry (+ = up, for shorts too); the max profit is never negative; before the
    first price the mark, its change and the current PnL show "-"."""
    up = None if v.upnl == 0 else v.upnl > 0
    chg = v.price_change_pct
    return (
        (v.symbol, None), (v.side.upper(), v.side == "long"),
        ("-" if v.duration_s is None else fmt_duration(v.duration_s), None), (fmt_qty(v.qty), None),
        (fmt_price(v.entry, decimals), None), (fmt_price(v.mark, decimals), None),
        ("-" if chg is None else fmt_pct(chg), None),
        (fmt_usd(v.max_profit), None), (fmt_pct(v.max_profit_pct, signed=False), None),
        ("-", None) if v.mark is None else (fmt_usd(v.upnl, signed=True), up),
        ("-", None) if v.mark is None else (fmt_pct(v.upnl_pct), up),
    )


def position_mark(engine: Engine, symbol: str) -> float | None:
    m = engine.markets.get(symbol)
    return None if m is None else (m.mark or m.price)


def exit_levels(engine: Engine, pos: Position) -> tuple[float | None, float | None]:
    """TP and SL: the position's own levels, else the prices of its working TP/SL orders."""
    tp, sl = pos.take_profit, pos.stop_loss
    for o in engine.open_orders.values():
        if o.symbol != pos.symbol:
            continue
        if tp is None and o.purpose is Purpose.TAKE_PROFIT:
            tp = o.price or o.trigger_price
        elif sl is None and o.purpose is Purpose.STOP_LOSS:
            sl = o.trigger_price or o.price
    return tp, sl


def unrealized(engine: Engine) -> float:
    """Total unrealized PnL of the open positions at current marks."""
    total = 0.0
    for p in engine.portfolio.open_positions():
        mark = position_mark(engine, p.symbol)
        if mark is not None:
            total += p.unrealized(mark)
    return total


class PositionsTable(KeyedTable):
    COLUMNS = (*POSITION_COLUMNS, ("tp", "TP"), ("sl", "SL"), ("strategy", "Strategy"))

    def refresh_from(self, engine: Engine) -> bool:
        now = engine.clock.now()
        rows: dict[str, tuple[CellValue, ...]] = {}
        for p in sorted(engine.portfolio.open_positions(), key=lambda p: p.opened_ts):
            d = price_decimals(engine.instrument(p.symbol).tick_size)
            v = position_view(p.symbol, p.qty, p.entry_price, position_mark(engine, p.symbol), p.max_profit,
                              p.opened_ts, now)
            tp, sl = exit_levels(engine, p)
            rows[p.symbol] = (*(text if positive is None else self.styled(text, positive)
                                for text, positive in position_cells(v, d)),
                              fmt_price(tp, d), fmt_price(sl, d), p.strategy or "-")
        return self.sync(rows)

    def selected_strategy(self, engine: Engine) -> str | None:
        key = self.selected_key
        pos = engine.portfolio.positions.get(key) if key else None
        return pos.strategy if pos is not None and pos.strategy else None
