"""Help: every key of the main screen with what it does, as currently mapped (keymap applied)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static

NOTES = ("Keys are remapped in the config file: [tui.keymap] kill = \"ctrl+k\" (binding id = keys).\n"
         "Every key is also in the command palette (ctrl+p). Select rows with the arrow keys; "
         "tab moves between panes.")


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss_help", "Close")]

    def __init__(self, keys: list[tuple[str, str, str]]):
        """`keys`: (keys as shown, description, binding id)."""
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        with Vertical(id="help"):
            yield Label("liqdesk keys", id="dialog-title")
            table: DataTable = DataTable(id="help-keys", cursor_type="none", show_cursor=False)
            table.add_columns("Key", "Does", "Keymap id")
            for shown, description, binding_id in self.keys:
                table.add_row(shown, description, binding_id)
            yield table
            yield Static(NOTES, id="help-notes")

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
