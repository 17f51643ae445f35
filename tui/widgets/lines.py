"""A widget drawn from Rich Text lines that are turned into strips once per change.

`Widget.render()` sends its renderable through Rich's console on every refresh (about
5 ms for the gauges or performance pane here); these panes change a few times a second
but are redrawn on every frame that touches them, so their lines and strips are cached.
"""

from __future__ import annotations

from rich.text import Text
from textual.strip import Strip
from textual.widget import Widget


class TextLines(Widget):
    """Subclasses implement `build_lines(width)` and call `invalidate()` when their data changes."""

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id)
        self._texts: list[Text] | None = None
        self._texts_width = -1
        self._strips: list[Strip] | None = None

    def build_lines(self, width: int) -> list[Text]:
        raise NotImplementedError

    def _lines_for(self, width: int) -> list[Text]:
        if self._texts is None or width != self._texts_width:
            self._texts = self.build_lines(width)
            self._texts_width = width
            self._strips = None
        return self._texts

    def invalidate(self) -> None:
        """The data changed: rebuild on the next draw, with a layout pass only if the height changed."""
        old = len(self._texts) if self._texts is not None else -1
        self._texts = None
        self.refresh(layout=len(self._lines_for(self.size.width)) != old)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._texts = None

    def get_content_height(self, container, viewport, width: int) -> int:
        return max(1, len(self._lines_for(width)))

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        texts = self._lines_for(width)
        base = self.rich_style
        if self._strips is None:
            console = self.app.console
            self._strips = [Strip(list(t.render(console))).apply_style(base).crop_extend(0, width, base)
                            for t in texts]
        return self._strips[y] if y < len(self._strips) else Strip.blank(width, base)
