"""The liquidation tape: newest on top, P95+ rows highlighted, cascade members marked."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from engine.events import Liquidation

from .fmt import fmt_price, fmt_qty, fmt_time, fmt_usd_short
from .rows import Cell, Column, RowsView

TapeRow = tuple[Liquidation, bool, bool]  # (event, P95+, cascade member): the engine's notification payload

WIDE = (Column("Time", 8), Column("Symbol", 8), Column("Side", 5), Column("Price", 10, True),
        Column("Qty", 8, True), Column("Notional", 8, True), Column("Flag", 8))
NARROW = (Column("Time", 8), Column("Symbol", 8), Column("Side", 5), Column("Price", 9, True),
          Column("Notional", 8, True), Column("", 1))


class LiquidationTape(RowsView):
    """Which side was liquidated (LONG/SHORT, coloured), price, qty and notional.

    Flags: `P95` for a liquidation at or above the symbol's P95 threshold, `CASC`
    for a member of a live cascade; the words keep it readable with NO_COLOR.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = RowsView.COMPONENT_CLASSES | {
        "tape--long", "tape--short", "tape--big", "tape--cascade"}
    IMMUTABLE_ROWS = True

    def __init__(self, max_rows: int, price_decimals: Callable[[str], int], **kw):
        super().__init__(max_rows, **kw)
        self.price_decimals = price_decimals

    def columns(self, width: int) -> Sequence[Column]:
        return WIDE if width >= sum(c.width + 1 for c in WIDE) else NARROW

    def row_class(self, row: TapeRow) -> str:
        _ev, big, in_cascade = row
        return "tape--cascade" if in_cascade else "tape--big" if big else ""

    def cells(self, row: TapeRow, columns: Sequence[Column]) -> list[Cell]:
        ev, big, in_cascade = row
        side_cls = "tape--long" if ev.side == "long" else "tape--short"
        flag = " ".join(f for f, on in (("P95", big), ("CASC", in_cascade)) if on)
        out: list[Cell] = [(fmt_time(ev.ts), ""), (ev.symbol, ""), (ev.side.upper(), side_cls),
                           (fmt_price(ev.price, self.price_decimals(ev.symbol)), "")]
        if columns is WIDE:
            out.append((fmt_qty(ev.qty), ""))
            out += [(fmt_usd_short(ev.notional), ""), (flag, "")]
        else:
            out += [(fmt_usd_short(ev.notional), ""), ("C" if in_cascade else "*" if big else "", "")]
        return out
