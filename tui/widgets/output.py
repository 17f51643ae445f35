"""Text output: the engine's `HH:MM:SS >> ...` lines in a bounded log, with a filter.

The log is a ring drawn with the Line API (only visible lines are rendered) and it
grows without a layout pass of the screen (see scrolling.py); it follows the newest
line unless the trader has scrolled up.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from rich.segment import Segment
from rich.style import Style
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Input

from .scrolling import set_virtual_size


class OutputLog(ScrollView, can_focus=True):
    """Lines oldest first, newest at the bottom."""

    def __init__(self, max_lines: int, *, id: str | None = None):
        super().__init__(id=id)
        self.lines: deque[str] = deque(maxlen=max_lines)
        self._width = 0
        self._style: Style | None = None

    @property
    def line_count(self) -> int:
        return len(self.lines)

    @property
    def following(self) -> bool:
        """At the newest line (or not laid out yet): new lines keep the view at the bottom."""
        return self.size.height == 0 or self.scroll_y >= self.max_scroll_y

    def write_lines(self, lines: Iterable[str]) -> None:
        follow = self.following
        for line in lines:
            self.lines.append(line)
            self._width = max(self._width, len(line))
        self._resize()
        if follow:
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)
        self.refresh()

    def on_resize(self) -> None:
        self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)

    def clear(self) -> None:
        self.lines.clear()
        self._width = 0
        self._resize()
        self.refresh()

    def _resize(self) -> None:
        set_virtual_size(self, Size(self._width, len(self.lines)))

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._style = None

    def render_line(self, y: int) -> Strip:
        if self._style is None:
            self._style = self.rich_style  # resolving it walks the DOM: once per theme
        width = max(self.scrollable_content_region.width, 0)
        idx = int(self.scroll_y) + y
        if idx >= len(self.lines):
            return Strip.blank(width, self._style)
        x = int(self.scroll_x)
        return Strip([Segment(self.lines[idx][x:x + width].ljust(width), self._style)], width)


class OutputPane(Vertical):
    """A ring of every line, and the log showing those that match the filter (case-insensitive)."""

    BINDINGS = [Binding("escape", "clear_filter", "Clear filter", show=False)]

    def __init__(self, max_lines: int, *, id: str | None = None):
        super().__init__(id=id)
        self.ring: deque[str] = deque(maxlen=max_lines)
        self.filter_text = ""

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter the log (Enter keeps it, Esc clears)", id="log-filter")
        yield OutputLog(self.ring.maxlen or 1000, id="log")

    @property
    def log_widget(self) -> OutputLog:
        return self.query_one("#log", OutputLog)

    @property
    def filter_input(self) -> Input:
        return self.query_one("#log-filter", Input)

    def matches(self, line: str) -> bool:
        return not self.filter_text or self.filter_text in line.lower()

    def push(self, lines: list[str]) -> None:
        """Append a batch: one write, and only as many lines as the log can hold."""
        self.ring.extend(lines)
        shown = [ln for ln in lines if self.matches(ln)] if self.filter_text else lines
        if shown:
            self.log_widget.write_lines(shown[-(self.ring.maxlen or len(shown)):])

    def set_filter(self, text: str) -> None:
        self.filter_text = text.strip().lower()
        self._rebuild(self.ring)
        self.border_subtitle = f"filter: {text.strip()}" if self.filter_text else ""

    def _rebuild(self, lines: Iterable[str]) -> None:
        log = self.log_widget
        log.clear()
        log.write_lines([ln for ln in lines if self.matches(ln)])

    def open_filter(self) -> None:
        self.add_class("-filtering")
        self.filter_input.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.set_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if not event.value.strip():
            self.remove_class("-filtering")
        self.log_widget.focus()

    def action_clear_filter(self) -> None:
        self.filter_input.value = ""
        self.set_filter("")
        self.remove_class("-filtering")
        self.log_widget.focus()
