"""Text output: the engine's `HH:MM:SS >> ...` lines in a bounded log, with a filter."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Log


class OutputPane(Vertical):
    """A ring of every line, and a `Log` showing those that match the filter (case-insensitive)."""

    BINDINGS = [Binding("escape", "clear_filter", "Clear filter", show=False)]

    def __init__(self, max_lines: int, *, id: str | None = None):
        super().__init__(id=id)
        self.ring: deque[str] = deque(maxlen=max_lines)
        self.filter_text = ""

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter the log (Enter keeps it, Esc clears)", id="log-filter")
        yield Log(max_lines=self.ring.maxlen, auto_scroll=True, id="log")

    @property
    def log_widget(self) -> Log:
        return self.query_one("#log", Log)

    @property
    def filter_input(self) -> Input:
        return self.query_one("#log-filter", Input)

    def matches(self, line: str) -> bool:
        return not self.filter_text or self.filter_text in line.lower()

    def push(self, lines: list[str]) -> None:
        """Append a batch: one `write_lines` call, and only as many lines as the log can hold."""
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
