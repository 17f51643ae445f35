"""`liqdesk screenshots`: SVGs of the console on the scripted demo session (tui/demo.py).

The same session feeds the snapshot tests, so the pictures in the README are the
screens the tests check.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from textual.pilot import Pilot

from .app import LiqdeskApp
from .demo import DemoSession
from .screens.main import MainScreen
from .widgets.orders import OrdersTable


def demo_app(approval: str = "auto") -> LiqdeskApp:
    """The console over an engine that has played the demo script (the engine is not running)."""
    session = DemoSession(approval)
    app = LiqdeskApp(session.engine, None, settings=session.settings)  # subscribes before the play
    session.play()
    return app


async def settle(pilot: Pilot) -> None:
    """Draw everything the engine published, now, instead of waiting for the timers."""
    await pilot.pause()
    screen = pilot.app.screen
    if isinstance(screen, MainScreen):
        screen.refresh_all()
    await pilot.pause()


async def select_approval(pilot: Pilot) -> None:
    await settle(pilot)
    orders = pilot.app.query_one(OrdersTable)
    orders.focus()
    await settle(pilot)


async def open_kill_dialog(pilot: Pilot) -> None:
    await settle(pilot)
    await pilot.press("k")
    await pilot.pause()


@dataclass(frozen=True, slots=True)
class Shot:
    filename: str
    approval: str
    size: tuple[int, int]
    prepare: Callable[[Pilot], Awaitable[None]]


SHOTS = (
    Shot("main.svg", "auto", (120, 40), settle),
    Shot("approval.svg", "manual", (120, 40), select_approval),
    Shot("kill-confirm.svg", "auto", (120, 40), open_kill_dialog),
    Shot("main-80x24.svg", "auto", (80, 24), settle),
)


async def take(shot: Shot, out: Path) -> Path:
    app = demo_app(shot.approval)
    async with app.run_test(size=shot.size) as pilot:
        await shot.prepare(pilot)
        return Path(app.save_screenshot(shot.filename, str(out)))


def write_screenshots(out: str | Path = "screenshots") -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return [asyncio.run(take(shot, out)) for shot in SHOTS]
