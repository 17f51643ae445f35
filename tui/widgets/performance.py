"""Performance: the portfolio's own `performance()` table, laid out as label/value pairs."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text

from .fmt import fmt_pct, fmt_usd
from .lines import TextLines


def performance_lines(p: dict) -> list[tuple[str, str, bool | None]]:
    """(label, value, positive?) for each row; positive None means not coloured."""

    def signed(v: float) -> bool | None:
        return None if v == 0 else v > 0

    return [
        ("Initial equity", fmt_usd(p["initial_equity"]), None),
        ("Equity", fmt_usd(p["equity"]), None),
        ("Net profit", f"{fmt_usd(p['net_profit'], True)} {fmt_pct(p['net_profit_pct'])}", signed(p["net_profit"])),
        ("Trades L/S", f"{p['long_trades']} / {p['short_trades']}", None),
        ("Closed trades", str(p["closed_trades"]), None),
        ("Win rate", fmt_pct(p["win_rate_pct"], signed=False), None),
        ("Avg win", f"{fmt_usd(p['avg_win'], True)} {fmt_pct(p['avg_win_pct'])}", signed(p["avg_win"])),
        ("Avg loss", f"{fmt_usd(p['avg_loss'], True)} {fmt_pct(p['avg_loss_pct'])}", signed(p["avg_loss"])),
        ("Max run-up", f"{fmt_usd(p['max_runup'])} {fmt_pct(p['max_runup_pct'], signed=False)}", None),
        ("Max drawdown", f"{fmt_usd(p['max_drawdown'])} {fmt_pct(p['max_drawdown_pct'], signed=False)}", None),
        ("Ret / max DD", f"{p['return_over_max_drawdown']:.2f}", None),
        ("Fees", fmt_usd(p["fees"]), None),
    ]


class PerformanceView(TextLines, can_focus=True):
    COMPONENT_CLASSES: ClassVar[set[str]] = {"perf--label", "perf--up", "perf--down"}
    TWO_COLUMNS_MIN_WIDTH = 64

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id)
        self.lines: list[tuple[str, str, bool | None]] = []

    def show(self, performance: dict) -> None:
        lines = performance_lines(performance)
        if lines != self.lines:
            self.lines = lines
            self.invalidate()

    def _pairs_per_row(self, width: int) -> int:
        return 2 if width >= self.TWO_COLUMNS_MIN_WIDTH else 1

    def build_lines(self, width: int) -> list[Text]:
        """Label/value columns, values right-aligned in each column."""
        n = self._pairs_per_row(width)
        col = width // n
        label = self.get_component_rich_style("perf--label", partial=True)
        up = self.get_component_rich_style("perf--up", partial=True)
        down = self.get_component_rich_style("perf--down", partial=True)
        rows = -(-len(self.lines) // n)
        out: list[Text] = []
        for r in range(rows):
            line = Text(no_wrap=True)
            for c in range(n):
                i = r + c * rows
                if i >= len(self.lines):
                    continue
                name, value, positive = self.lines[i]
                line.append(name, style=label)
                line.append(value.rjust(max(col - len(name) - 1, 0)) + " ",
                            style=up if positive else down if positive is False else "")
            out.append(line)
        return out
