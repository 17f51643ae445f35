"""A keyed table with a row cursor, drawn with the Line API.

Rows are diffed by key: `sync(rows)` re-renders only the rows whose cells changed (each
row's strip is cached), and the cursor stays on the same key whatever moves around it.
Textual's DataTable re-renders every visible cell on any change (reference/textual.md §4),
which cost 10-35 ms a frame here under a 5,000 events/s load; this costs a cache lookup
per visible line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from .scrolling import set_virtual_size

CellValue = str | Text
PAD = 1  # spaces each side of a cell


def _plain(cell: CellValue) -> str:
    return cell.plain if isinstance(cell, Text) else cell


class KeyedTable(ScrollView, can_focus=True):
    """Subclasses set COLUMNS as (key, label) pairs and call `sync(rows)` with key -> cells."""

    COLUMNS: ClassVar[Sequence[tuple[str, str]]] = ()
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "table--header", "table--cursor", "table--cursor-blurred", "table--up", "table--down"}
    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "cursor(-10)", "Page up", show=False),
        Binding("pagedown", "cursor(10)", "Page down", show=False),
        Binding("home", "cursor(-1000000)", "First", show=False),
        Binding("end", "cursor(1000000)", "Last", show=False),
        Binding("left", "scroll_left", "Left", show=False),
        Binding("right", "scroll_right", "Right", show=False),
    ]

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id)
        self._rows: dict[str, tuple[CellValue, ...]] = {}
        self._keys: list[str] = []
        self._widths = [len(label) for _, label in self.COLUMNS]
        self._strips: dict[str, Strip] = {}  # row key -> rendered row (no cursor), for the current widths
        self._styles: dict[str, Style] = {}
        self.cursor_row = 0

    # -- data ----------------------------------------------------------------------------------
    @property
    def row_count(self) -> int:
        return len(self._keys)

    def styled(self, text: str, positive: bool | None) -> Text:
        """Green/red (theme) for positive/negative values; plain when None."""
        if positive is None:
            return Text(text)
        return Text(text, style=self._style("table--up" if positive else "table--down"))

    def sync(self, rows: dict[str, tuple[CellValue, ...]]) -> bool:
        """Show `rows`, in their order; the cursor stays on its key. Returns True if anything changed."""
        selected = self.selected_key
        changed = [k for k, cells in rows.items() if self._rows.get(k) != cells]
        if not changed and list(rows) == self._keys:
            return False
        widths = [len(label) for _, label in self.COLUMNS]
        for cells in rows.values():
            for i, cell in enumerate(cells):
                widths[i] = max(widths[i], len(_plain(cell)))
        if widths != self._widths:
            self._widths = widths
            self._strips.clear()
        for k in changed:
            self._strips.pop(k, None)
        self._rows = dict(rows)
        self._keys = list(rows)
        if selected in self._rows:
            self.cursor_row = self._keys.index(selected)
        self.cursor_row = min(self.cursor_row, max(len(self._keys) - 1, 0))
        set_virtual_size(self, Size(sum(w + 2 * PAD for w in self._widths), len(self._keys) + 1))
        self.refresh()
        return True

    @property
    def selected_key(self) -> str | None:
        """The key of the row under the cursor, or None when the table is empty."""
        return self._keys[self.cursor_row] if self._keys else None

    def get_row_index(self, key: str) -> int:
        return self._keys.index(key)

    def get_row_at(self, index: int) -> tuple[CellValue, ...]:
        return self._rows[self._keys[index]]

    # -- cursor ----------------------------------------------------------------------------------
    def move_cursor(self, row: int) -> None:
        if not self._keys:
            return
        self.cursor_row = min(max(row, 0), len(self._keys) - 1)
        visible = max(self.scrollable_content_region.height - 1, 1)
        if self.cursor_row < self.scroll_y:
            self.scroll_to(y=self.cursor_row, animate=False, immediate=True)
        elif self.cursor_row >= self.scroll_y + visible:
            self.scroll_to(y=self.cursor_row - visible + 1, animate=False, immediate=True)
        self.refresh()

    def action_cursor(self, step: int) -> None:
        self.move_cursor(self.cursor_row + step)

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1:
            self.move_cursor(int(self.scroll_y) + event.y - 1)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    # -- drawing ---------------------------------------------------------------------------------
    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._strips.clear()

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = self.rich_style if not name else self.get_component_rich_style(name)
        return style

    def _line(self, cells: Sequence[CellValue], base: Style) -> Strip:
        segments = []
        for cell, width in zip(cells, self._widths, strict=False):
            text = _plain(cell)
            style = base + cell.style if isinstance(cell, Text) and isinstance(cell.style, Style) else base
            pad = " " * PAD
            segments.append(Segment(pad, base))
            segments.append(Segment(text.ljust(width)[:width], style))
            segments.append(Segment(pad, base))
        return Strip(segments)

    def _with_cursor(self, strip: Strip) -> Strip:
        """The row under the cursor: the cursor's background (and text style) over the row's."""
        name = "table--cursor" if self.has_focus else "table--cursor-blurred"
        cursor = self._styles.get(name + "/partial")
        if cursor is None:
            cursor = self._styles[name + "/partial"] = self.get_component_rich_style(name, partial=True)
        return Strip([Segment(seg.text, (seg.style or Style()) + cursor, seg.control) for seg in strip])

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        scroll_x = int(self.scroll_x)
        if y == 0:
            header = self._style("table--header")
            strip = self._line([label for _, label in self.COLUMNS], header)
            return strip.crop_extend(scroll_x, scroll_x + width, header)
        idx = int(self.scroll_y) + y - 1
        if idx >= len(self._keys):
            return Strip.blank(width, self._style(""))
        key = self._keys[idx]
        strip = self._strips.get(key)
        if strip is None:
            strip = self._strips[key] = self._line(self._rows[key], self._style(""))
        strip = strip.crop_extend(scroll_x, scroll_x + width, self._style(""))
        return self._with_cursor(strip) if idx == self.cursor_row else strip
