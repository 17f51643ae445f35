"""Scrollable size changes without a layout pass of the whole screen.

Setting `virtual_size` on a widget asks Textual for a layout of the screen (it is a
reactive with layout=True). With all the console's panes a layout costs tens of ms, and
the tape, the alerts and the log grow on nearly every tick while their rings fill, so
their size is updated here: only the widget's scrollbars are recomputed and it is repainted.
A layout still happens when a scrollbar appears or goes (its reactive asks for one).
"""

from __future__ import annotations

from textual.geometry import Size
from textual.widget import Widget


def set_virtual_size(widget: Widget, size: Size) -> None:
    if size == widget.virtual_size:
        return
    widget.set_reactive(Widget.virtual_size, size)
    widget._scroll_update(size)
    widget.refresh()
