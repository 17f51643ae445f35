"""Cascade alerts: symbol, dominant side, count, notional, duration and the action taken.

A row starts when the engine reports a cascade and keeps growing (count,
notional, duration) until the cascade ends; the strategy's alert fills in the
action (order placed, or skipped with the reason).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from engine.orders import Alert
from engine.stats import Cascade

from .fmt import fmt_duration, fmt_time, fmt_usd_short
from .rows import Cell, Column, RowsView


@dataclass(slots=True)
class AlertRow:
    symbol: str
    ts: int
    cascade: Cascade | None = None  # the engine's live object: it grows until the cascade ends
    action: str = ""
    ended: bool = False
    data: dict[str, Any] | None = None  # an alert with no cascade behind it

    def side(self) -> str:
        if self.cascade is not None:
            return self.cascade.dominant
        data = self.data or {}
        return str(data.get("dominant", data.get("side", "")))

    def count(self) -> int:
        return self.cascade.count if self.cascade is not None else int((self.data or {}).get("count", 0))

    def notional(self) -> float:
        if self.cascade is not None:
            return self.cascade.notional
        return float((self.data or {}).get("notional", 0.0))

    def duration_s(self) -> float:
        if self.cascade is not None:
            return self.cascade.duration_s
        return float((self.data or {}).get("duration_s", 0.0))


COLUMNS = (Column("Time", 8), Column("Symbol", 8), Column("Side", 5), Column("Count", 5, True),
           Column("Notional", 8, True), Column("Duration", 8, True), Column("State", 5))
NARROW = (Column("Symbol", 8), Column("Side", 5), Column("N", 2, True), Column("Notional", 8, True),
          Column("Dur", 5, True))


def action_text(alert: Alert) -> str:
    """The action from the strategy's alert: `data["action"]` when given, else its message."""
    action = alert.data.get("action") if alert.data else None
    return str(action) if action else alert.message


class CascadeAlerts(RowsView):
    """Two lines per cascade: the numbers, then the action taken."""

    LINES_PER_ROW = 2
    COMPONENT_CLASSES: ClassVar[set[str]] = RowsView.COMPONENT_CLASSES | {
        "alerts--long", "alerts--short", "alerts--live", "alerts--skip", "alerts--action"}

    def columns(self, width: int) -> Sequence[Column]:
        return COLUMNS if width >= sum(c.width + 1 for c in COLUMNS) else NARROW

    @property
    def live(self) -> bool:
        """True while some cascade is still growing (the screen refreshes the pane then)."""
        return any(r.cascade is not None and not r.ended for r in self.rows)

    def on_cascade(self, c: Cascade) -> None:
        self.push([AlertRow(c.symbol, c.fired_ts or c.start_ts, cascade=c)])

    def on_cascade_end(self, c: Cascade) -> None:
        for r in self.rows:
            if r.cascade is c:
                r.ended = True
                self.refresh()
                return

    def on_alert(self, alert: Alert) -> None:
        text = action_text(alert)
        for r in self.rows:
            if r.symbol == alert.symbol and r.cascade is not None and not r.action:
                r.action = text
                self.refresh()
                return
        self.push([AlertRow(alert.symbol, int(alert.data.get("ts", 0)) if alert.data else 0, action=text,
                            data=alert.data)])

    def row_class(self, row: AlertRow) -> str:
        return "alerts--live" if row.cascade is not None and not row.ended else ""

    def cells(self, row: AlertRow, columns: Sequence[Column]) -> list[Cell]:
        side = row.side()
        cells: list[Cell] = [(row.symbol, ""), (side.upper(), "alerts--long" if side == "long" else "alerts--short"),
                             (str(row.count()), ""), (fmt_usd_short(row.notional()), ""),
                             (fmt_duration(row.duration_s()), "")]
        if columns is NARROW:
            return cells
        live = row.cascade is not None and not row.ended
        return [(fmt_time(row.ts) if row.ts else "", ""), *cells, ("live" if live else "done", "")]

    def more_lines(self, row: AlertRow) -> list[Cell]:
        action = row.action or "no action reported"
        skipped = action.lower().startswith(("skip", "ignored", "reject"))
        return [(f"  -> {action}", "alerts--skip" if skipped else "alerts--action")]
