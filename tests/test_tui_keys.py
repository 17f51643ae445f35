"""Pilot tests: every key of the console does what it says to the engine, at 120x40 and 80x24.

The engine is not running: a scripted, seeded session (tui/demo.py) is its feed, with the
real cascade strategy, risk gate, approval gate and paper exchange. `session.play(t)` moves
the market (and the paper exchange's latency timers) on to t seconds.
"""

from __future__ import annotations

import pytest
from textual.widgets import Input, Label

from engine.orders import Purpose
from tui.app import LiqdeskApp
from tui.demo import DEMO_SECONDS, DemoSession
from tui.screens.confirm import ConfirmScreen
from tui.screens.help import HelpScreen
from tui.screens.main import MainScreen
from tui.screenshots import settle
from tui.widgets.orders import ORDER, OrdersTable
from tui.widgets.output import OutputLog
from tui.widgets.positions import PositionsTable

SIZES = [(120, 40), (80, 24)]


@pytest.fixture(params=SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def size(request) -> tuple[int, int]:
    return request.param


def start(approval: str = "auto") -> tuple[DemoSession, LiqdeskApp]:
    session = DemoSession(approval)
    app = LiqdeskApp(session.engine, None, settings=session.settings)
    session.play()
    return session, app


def status(app: LiqdeskApp, field: str) -> str:
    return str(app.query_one(f"#st-{field}", Label).content)


def screen_text(app: LiqdeskApp) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def test_approval_keys(size):
    """r rejects the selected entry, a approves it (it reaches the broker), A approves all."""
    session, app = start("manual")
    eng = session.engine
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        orders = app.query_one(OrdersTable)
        assert [a.symbol for a in orders.approvals] == ["ETHUSDT"]
        assert "APPROVE?" in str(orders.get_row_at(0)[2])

        await pilot.press("r")
        assert eng.approval.pending() == []
        assert not any(o.symbol == "ETHUSDT" and o.purpose is Purpose.ENTRY for o in eng.open_orders.values())

        session.cascade_now("XRPUSDT")
        await settle(pilot)
        [pending] = orders.approvals
        sent = eng.broker.stats.orders
        await pilot.press("a")
        assert eng.approval.pending() == []
        assert eng.broker.stats.orders == sent + 1
        session.play(DEMO_SECONDS + 2)  # past the paper exchange's latency
        entry = next(o for o in eng.open_orders.values() if o.symbol == "XRPUSDT")
        assert entry.purpose is Purpose.ENTRY and entry.id in eng.broker.working["XRPUSDT"]

        session.play(DEMO_SECONDS + 65)  # the ETH cascade window (60 s) is over: a new one can fire
        session.cascade_now("DOGEUSDT", "short")
        session.cascade_now("ETHUSDT", "short")
        await settle(pilot)
        assert len(orders.approvals) == 2
        await pilot.press("A")
        session.play(DEMO_SECONDS + 67)
        assert eng.approval.pending() == []
        assert {"DOGEUSDT", "ETHUSDT"} <= set(eng.broker.working)


async def test_trading_keys(size):
    """h, p, / and f, tab, ?, c and x."""
    session, app = start()
    eng = session.engine
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        assert status(app, "halt") == "TRADING"
        await pilot.press("h")
        assert eng.halted and status(app, "halt").startswith("HALTED")
        assert "HALTED" in screen_text(app)
        await pilot.press("h")
        assert not eng.halted and status(app, "halt") == "TRADING"

        await pilot.press("p")
        assert eng.strategies[0].paused
        await settle(pilot)
        assert "PAUSED" in screen_text(app)
        await pilot.press("p")
        assert not eng.strategies[0].paused

        log = app.query_one(OutputLog)
        total = log.line_count
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"fill")
        await pilot.press("enter")
        shown = list(log.lines)
        assert shown and all("fill" in line.lower() for line in shown) and len(shown) < total
        await pilot.press("f")  # the other filter key opens it again
        assert isinstance(app.focused, Input)
        await pilot.press("escape")
        assert log.line_count == total

        app.query_one("#tape").focus()
        await pilot.press("tab")
        assert app.focused is not None and app.focused.id == "alerts"

        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)

        orders = app.query_one(OrdersTable)
        entry = next(o for o in eng.open_orders.values() if o.purpose is Purpose.ENTRY)
        orders.focus()
        orders.move_cursor(row=orders.get_row_index(ORDER + entry.id))
        await pilot.press("c")
        session.play(DEMO_SECONDS + 2)
        assert entry.id not in eng.open_orders
        assert eng.orders[entry.id].status.value == "cancelled"

        app.query_one(PositionsTable).focus()
        await pilot.press("x")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert eng.portfolio.positions["BTCUSDT"].is_open
        await pilot.press("x", "y")
        session.play(DEMO_SECONDS + 4)
        assert not eng.portfolio.positions["BTCUSDT"].is_open
        assert eng.portfolio.closed[-1].exit_reason == "manual"


async def test_kill_switch(size):
    """k asks first; yes leaves no orders and no positions, and halts."""
    session, app = start()
    eng = session.engine
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        assert eng.open_orders and eng.portfolio.open_positions()
        await pilot.press("k")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert not eng.halted and eng.open_orders

        await pilot.press("k", "y")
        assert eng.halted and eng.flattening
        session.play(DEMO_SECONDS + 3)
        await settle(pilot)
        assert eng.open_orders == {}
        assert eng.portfolio.open_positions() == []
        assert eng.flat_confirmed
        assert status(app, "halt") == "FLAT · HALTED"

        await pilot.press("q")  # flat now: quits without asking
        await pilot.pause(0.1)
        assert not app.is_running
    assert app.return_code == 0


async def test_quit_asks_when_positions_are_open(size):
    session, app = start()
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert isinstance(app.screen, MainScreen) and app.is_running
        entry = next(o for o in session.engine.open_orders.values() if o.purpose is Purpose.ENTRY)
        await pilot.press("q", "y")
        await pilot.pause(0.1)
    assert app.return_code == 0
    # the clean stop cancels working entries and leaves TP and SL in place
    assert session.engine.orders[entry.id].status.is_open  # the cancel is in flight: latency
    session.play(DEMO_SECONDS + 2)
    purposes = {o.purpose for o in session.engine.open_orders.values()}
    assert purposes == {Purpose.TAKE_PROFIT, Purpose.STOP_LOSS}
