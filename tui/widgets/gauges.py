"""Gauges: one row per symbol and strategy, each live value drawn as a bar with its thresholds marked.

Reads `Strategy.gauges()` at the screen's gauge rate. When the pane is too
narrow for a symbol's gauges on one line, each gauge gets its own line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.style import Style
from rich.text import Text

from engine.strategies.base import Gauge

from .fmt import fmt_compact
from .lines import TextLines

PARTIALS = " ▏▎▍▌▋▊▉"
MARK = "┃"
SYMBOL_WIDTH = 9
MIN_BAR = 4


@dataclass(slots=True)
class StrategyGauges:
    """One strategy's state for the pane, copied from the engine at refresh time."""

    name: str
    paused: bool
    gauges: dict[str, list[Gauge]]


def bar(g: Gauge, width: int, styles: dict[str, Style]) -> Text:
    """A horizontal bar from g.lo to g.hi with a mark at each threshold.

    `styles` maps "fill", "empty" and "mark" to the pane's component styles.
    """
    span = g.hi - g.lo
    frac = 0.0 if span <= 0 else min(max((g.value - g.lo) / span, 0.0), 1.0)
    eighths = round(frac * width * 8)
    full, part = divmod(eighths, 8)
    cells = ["█"] * full + ([PARTIALS[part]] if part and full < width else [])
    cells += ["·"] * (width - len(cells))
    kinds = ["fill"] * width
    for i in range(full + (1 if part else 0), width):
        kinds[i] = "empty"
    for mark in g.marks.values():
        if span > 0:
            pos = min(max(int((mark - g.lo) / span * width), 0), width - 1)
            cells[pos] = MARK
            kinds[pos] = "mark"
    out = Text()
    for ch, kind in zip(cells, kinds, strict=True):
        out.append(ch, style=styles[kind])
    return out


def gauge_value_text(g: Gauge) -> str:
    if g.text:
        return g.text
    if g.marks:
        first = next(iter(g.marks.values()))
        return f"{fmt_compact(g.value)}/{fmt_compact(first)}"
    return fmt_compact(g.value)


class GaugesView(TextLines):
    """Grouped by strategy, with its state (running or PAUSED)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "gauges--fill", "gauges--empty", "gauges--mark", "gauges--active", "gauges--paused", "gauges--dim"}

    def __init__(self, symbols: Sequence[str], *, id: str | None = None):
        super().__init__(id=id)
        self.symbols = list(symbols)
        self.strategies: list[StrategyGauges] = []

    def show(self, strategies: list[StrategyGauges]) -> None:
        if strategies != self.strategies:
            self.strategies = strategies
            self.invalidate()

    def build_lines(self, width: int) -> list[Text]:
        return self.render_lines_text(width)

    def _styles(self) -> dict[str, Style]:
        return {k: self.get_component_rich_style(f"gauges--{k}", partial=True)
                for k in ("fill", "empty", "mark", "active", "paused", "dim")}

    def render_lines_text(self, width: int) -> list[Text]:
        styles = self._styles()
        if not self.strategies:
            return [Text("no strategies running", style=styles["dim"])]
        lines: list[Text] = []
        for st in self.strategies:
            head = Text(st.name, style=Style(bold=True))
            head.append("  PAUSED" if st.paused else "  running", style=styles["paused" if st.paused else "dim"])
            lines.append(head)
            rows = [(sym, st.gauges[sym]) for sym in self.symbols if st.gauges.get(sym)]
            widths = self._column_widths([gs for _, gs in rows])
            for sym, gs in rows:
                for line in self._symbol_lines(sym, gs, width, widths, styles):
                    line.truncate(width)
                    lines.append(line)
        return lines

    @staticmethod
    def _column_widths(rows: list[list[Gauge]]) -> list[tuple[int, int]]:
        """Per gauge position, the widest name and value text, so that the bars line up."""
        widths: list[tuple[int, int]] = []
        for gs in rows:
            for i, g in enumerate(gs):
                name_w, value_w = len(g.name), len(gauge_value_text(g))
                if i < len(widths):
                    widths[i] = (max(widths[i][0], name_w), max(widths[i][1], value_w))
                else:
                    widths.append((name_w, value_w))
        return widths

    def _symbol_lines(self, symbol: str, gauges: list[Gauge], width: int, widths: list[tuple[int, int]],
                      styles: dict[str, Style]) -> list[Text]:
        """One line with every gauge, or one line per gauge when they would not fit."""
        widths = widths[:len(gauges)]
        fixed = sum(nw + vw + 3 for nw, vw in widths)
        per_line = len(gauges)
        if (width - SYMBOL_WIDTH - fixed) // per_line < MIN_BAR:
            per_line = 1
            fixed = max(nw + vw + 3 for nw, vw in widths)
        bar_width = max((width - SYMBOL_WIDTH - fixed) // per_line, MIN_BAR)
        lines: list[Text] = []
        for i, (g, (nw, vw)) in enumerate(zip(gauges, widths, strict=False)):
            if i % per_line == 0:
                lines.append(Text(f"{symbol if i == 0 else '':<{SYMBOL_WIDTH}}", no_wrap=True))
            line = lines[-1]
            emphasis = styles["active"] if g.active else Style()
            line.append(f"{g.name:<{nw}} ", style=emphasis)
            line.append_text(bar(g, bar_width, styles))
            line.append(f" {gauge_value_text(g):<{vw}} ", style=emphasis)
        return lines
