"""Pilot test: the console's gauges pane shows LIT's per-symbol ratio, annualized funding, score,
entry state and blacklist (the generic gauges view draws `LitStrategy.gauges()`)."""

from __future__ import annotations

import pytest
from lit_helpers import LitWorld

from tui.app import LiqdeskApp
from tui.screens.main import MainScreen
from tui.screenshots import settle
from tui.widgets.gauges import GaugesView


def screen_text(app: LiqdeskApp) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
async def test_lit_gauges_in_the_console(size):
    w = LitWorld(["XRPUSDT", "DOGEUSDT"])
    w.setup("XRPUSDT", 2.5, 20.0)
    w.setup("DOGEUSDT", 1.2, 5.0)
    w.evaluate()  # XRPUSDT: short open; DOGEUSDT: no signal
    w.strategy.state["DOGEUSDT"].blacklist_until = w.now + 3600 * 10**9
    w.strategy.state["DOGEUSDT"].blacklist_reason = "test"
    app = LiqdeskApp(w.engine, None, settings=w.settings)
    async with app.run_test(size=size) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        screen.refresh_all()
        await settle(pilot)
        assert "L/S" in screen_text(app) and "lit" in screen_text(app)  # the pane is on screen ...
        view = app.query_one(GaugesView)  # ... and scrolls: every line it draws, at its width
        text = "\n".join(line.plain for line in view.build_lines(view.size.width))
        for piece in ("L/S", "2.50", "fund", "+20.0%", "score", "SHORT 2.5x", "blacklist", "1h00m",
                      "DOGEUSDT", "1.20", "+5.0%", "no", "blacklisted"):
            assert piece in text, piece
