"""Confirmation dialogs: a yes/no modal for destructive keys, and the typed LIVE confirmation."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static


class ConfirmScreen(ModalScreen[bool]):
    """`y` confirms; `n` or Escape refuses. The No button has the focus, so Enter is safe."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, title: str, body: str, yes: str = "Yes", *, danger: bool = True):
        super().__init__(classes="-danger" if danger else "")
        self.title_text = title
        self.body = body
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="dialog-title")
            yield Static(self.body, id="dialog-body", markup=False)
            with Horizontal(id="dialog-buttons"):
                yield Button(f"{self.yes} (y)", id="yes", variant="error")
                yield Button("No (n)", id="no", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


LIVE_WORD = "LIVE"


class LiveConfirmScreen(ModalScreen[bool]):
    """Before the engine starts in --mode live, the trader types LIVE; Escape quits without trading."""

    BINDINGS = [Binding("escape", "refuse", "Quit")]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("LIVE TRADING", id="dialog-title")
            yield Static(
                "This session sends real orders to Bybit mainnet with real money.\n"
                f"Type {LIVE_WORD} and press Enter to start, or Esc to quit without trading.",
                id="dialog-body")
            yield Input(placeholder=f"type {LIVE_WORD}", id="live-word")
            yield Label("", id="live-error")

    def on_mount(self) -> None:
        self.query_one("#live-word", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip() == LIVE_WORD:
            self.dismiss(True)
        else:
            self.query_one("#live-error", Label).update(f"type {LIVE_WORD} exactly (capitals), or Esc to quit")
            event.input.value = ""

    def action_refuse(self) -> None:
        self.dismiss(False)
