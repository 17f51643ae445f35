"""A newest-first table drawn with Textual's Line API.

Only the visible lines are rendered, whatever the arrival rate, and the rows
live in a ring (`deque(maxlen=...)`), so memory is bounded. The tape and the
cascade alerts are built on it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from .scrolling import set_virtual_size


@dataclass(frozen=True, slots=True)
class Column:
    title: str
    width: int
    right: bool = False  # right-align (numbers)


Cell = tuple[str, str]  # (text, component class name or "")


class RowsView(ScrollView, can_focus=True):
    """Rows newest first under a fixed header line. Subclasses say how a row looks."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"rows--header"}
    LINES_PER_ROW: ClassVar[int] = 1  # lines after the first come from `more_lines`
    IMMUTABLE_ROWS: ClassVar[bool] = False  # True: a row never changes, so its drawn line is cached

    def __init__(self, max_rows: int, *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self.rows: deque[Any] = deque(maxlen=max_rows)
        self._styles: dict[tuple[str, str], Style] = {}  # (row class, cell class) -> combined style
        self._drawn: dict[int, tuple[Any, Strip]] = {}  # id(row) -> (row, line), for IMMUTABLE_ROWS
        self._drawn_width = -1

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._drawn.clear()

    # -- subclass hooks ------------------------------------------------------------------------
    def columns(self, width: int) -> Sequence[Column]:
        raise NotImplementedError

    def cells(self, row: Any, columns: Sequence[Column]) -> list[Cell]:
        raise NotImplementedError

    def row_class(self, row: Any) -> str:
        """A component class applied under the whole row (e.g. a highlight), or ""."""
        return ""

    def more_lines(self, row: Any) -> list[Cell]:
        """Lines 2.. of a row (LINES_PER_ROW - 1 of them), each one cell across the full width."""
        return []

    # -- data ----------------------------------------------------------------------------------
    def push(self, batch: Iterable[Any]) -> int:
        """Add rows (oldest first in `batch`); keeps the view still if the user scrolled down."""
        n = 0
        for row in batch:
            self.rows.appendleft(row)
            n += 1
        if n:
            self._resize()
            if self.scroll_y > 0:
                self.scroll_to(y=min(self.scroll_y + n * self.LINES_PER_ROW, self.max_scroll_y), animate=False,
                               immediate=True)
            self.refresh()
        return n

    def clear_rows(self) -> None:
        self.rows.clear()
        self._resize()
        self.refresh()

    def _resize(self) -> None:
        set_virtual_size(self, Size(self.size.width, len(self.rows) * self.LINES_PER_ROW + 1))

    def on_resize(self) -> None:
        self._resize()

    # -- drawing -------------------------------------------------------------------------------
    def _style(self, under: str, cls: str) -> Style:
        """The pane's style, then the row's (complete, so that a translucent background is
        blended with the pane's), then the cell's (partial: colour, bold). Cached: resolving
        a component style walks the DOM."""
        key = (under, cls)
        style = self._styles.get(key)
        if style is None:
            style = self.rich_style
            if under:
                style += self.get_component_rich_style(under)
            if cls:
                style += self.get_component_rich_style(cls, partial=True)
            self._styles[key] = style
        return style

    def _strip(self, cells: list[Cell], columns: Sequence[Column], under: str) -> Strip:
        segments = []
        length = 0
        for (text, cls), col in zip(cells, columns, strict=False):
            t = text[: col.width]
            t = (t.rjust(col.width) if col.right else t.ljust(col.width)) + " "
            segments.append(Segment(t, self._style(under, cls)))
            length += len(t)
        return Strip(segments, length)

    def _first_line(self, row: Any, columns: Sequence[Column], under: str, width: int) -> Strip:
        if not self.IMMUTABLE_ROWS:
            return self._strip(self.cells(row, columns), columns, under)
        if width != self._drawn_width or len(self._drawn) > 4 * max(self.size.height, 1) * self.LINES_PER_ROW:
            self._drawn.clear()  # only the rows on screen (and recently on screen) are kept
            self._drawn_width = width
        hit = self._drawn.get(id(row))
        if hit is not None and hit[0] is row:
            return hit[1]
        strip = self._strip(self.cells(row, columns), columns, under)
        self._drawn[id(row)] = (row, strip)
        return strip

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        columns = self.columns(width)
        base = self._style("", "")
        if y == 0:
            header = [(c.title, "") for c in columns]
            strip = self._strip(header, columns, "rows--header")
        else:
            idx, sub = divmod(int(self.scroll_y) + y - 1, self.LINES_PER_ROW)
            if idx >= len(self.rows):
                return Strip.blank(width, base)
            row = self.rows[idx]
            under = self.row_class(row)
            if sub == 0:
                strip = self._first_line(row, columns, under, width)
            else:
                lines = self.more_lines(row)
                cell = lines[sub - 1] if sub - 1 < len(lines) else ("", "")
                strip = self._strip([cell], [Column("", width)], under)
        return strip.extend_cell_length(width, base).crop(0, width)
