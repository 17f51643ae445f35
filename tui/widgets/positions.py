"""Open positions: symbol, side, qty, entry, mark, uPnL in $ and %, max profit, duration, TP, SL, strategy."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.events import NS
from engine.orders import Position, Purpose

from .fmt import fmt_duration, fmt_pct, fmt_price, fmt_qty, fmt_usd, price_decimals
from .tables import CellValue, KeyedTable

if TYPE_CHECKING:
    from engine.engine import Engine


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
    COLUMNS = (("symbol", "Symbol"), ("side", "Side"), ("qty", "Qty"), ("entry", "Entry"), ("mark", "Mark"),
               ("upnl", "uPnL $"), ("upnl_pct", "uPnL %"), ("tp", "TP"), ("sl", "SL"), ("max", "Max profit"),
               ("age", "Duration"), ("strategy", "Strategy"))

    def refresh_from(self, engine: Engine) -> bool:
        now = engine.clock.now()
        rows: dict[str, tuple[CellValue, ...]] = {}
        for p in sorted(engine.portfolio.open_positions(), key=lambda p: p.opened_ts):
            d = price_decimals(engine.instrument(p.symbol).tick_size)
            mark = position_mark(engine, p.symbol)
            upnl = p.unrealized(mark) if mark is not None else 0.0
            basis = abs(p.qty) * p.entry_price
            pct = 100.0 * upnl / basis if basis else 0.0
            tp, sl = exit_levels(engine, p)
            rows[p.symbol] = (
                p.symbol, self.styled(p.side.upper(), p.qty > 0), fmt_qty(abs(p.qty)), fmt_price(p.entry_price, d),
                fmt_price(mark, d), self.styled(fmt_usd(upnl, signed=True), upnl >= 0 if upnl else None),
                self.styled(fmt_pct(pct), pct >= 0 if upnl else None), fmt_price(tp, d), fmt_price(sl, d),
                fmt_usd(p.max_profit), fmt_duration((now - p.opened_ts) / NS) if p.opened_ts else "-",
                p.strategy or "-")
        return self.sync(rows)

    def selected_strategy(self, engine: Engine) -> str | None:
        key = self.selected_key
        pos = engine.portfolio.positions.get(key) if key else None
        return pos.strategy if pos is not None and pos.strategy else None
