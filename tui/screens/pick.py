"""Pick a strategy to pause or resume, when the selection does not say which."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option


class StrategyPicker(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, strategies: list[tuple[str, bool]]):
        """`strategies`: (name, paused)."""
        super().__init__()
        self.strategies = strategies

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Pause or resume which strategy?", id="dialog-title")
            yield OptionList(*[Option(f"{name}  ({'PAUSED: Enter resumes' if paused else 'running: Enter pauses'})",
                                      id=name) for name, paused in self.strategies], id="strategy-list")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
