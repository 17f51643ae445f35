"""Console pieces without a terminal: formatting, gauge bars, keymap validation, the LIVE
confirmation, NO_COLOR, and that `engine/` never imports textual."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from textual.widgets import Input, Label

from engine.config import ConfigError, Settings
from engine.engine import Engine
from engine.runtime import RunOptions, build_engine
from engine.strategies.base import Gauge
from tui.app import LiqdeskApp, validate_keymap
from tui.demo import DemoSession
from tui.screens.confirm import ConfirmScreen, LiveConfirmScreen
from tui.screens.main import KEYS, MainScreen
from tui.screenshots import demo_app, settle
from tui.widgets.fmt import fmt_duration, fmt_price, fmt_qty, fmt_usd_short, price_decimals
from tui.widgets.gauges import MARK, bar
from tui.widgets.status import feed_state, loss_limit_state


def test_engine_never_imports_textual_or_tui():
    """Every engine module, imported in a fresh interpreter, leaves textual and tui out of sys.modules."""
    code = textwrap.dedent("""
        import importlib, pkgutil, sys
        import engine
        failed = []
        for m in pkgutil.walk_packages(engine.__path__, "engine."):
            try:
                importlib.import_module(m.name)
            except ImportError as exc:  # an optional dependency: still must not pull in textual
                failed.append(m.name)
        leaked = sorted(n for n in sys.modules if n.split(".")[0] in ("textual", "tui"))
        print(json.dumps({"failed": failed, "leaked": leaked}))
    """)
    out = subprocess.run([sys.executable, "-c", "import json\n" + code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["leaked"] == []
    assert not {"engine.engine", "engine.cli", "engine.runtime", "engine.headless"} & set(result["failed"])


def test_formatting():
    assert price_decimals(0.1) == 1 and price_decimals(0.00001) == 5 and price_decimals(1.0) == 0
    assert fmt_price(97115.6, 1) == "97,115.6" and fmt_price(None, 2) == "-"
    assert fmt_qty(0.03) == "0.03" and fmt_qty(7840.0) == "7,840" and fmt_qty(14.8) == "14.8"
    assert fmt_usd_short(833_000) == "$833.0K" and fmt_usd_short(1_250_000) == "$1.25M"
    assert fmt_duration(0.3) == "0.3s" and fmt_duration(66) == "1m06s" and fmt_duration(7500) == "2h05m"


def test_gauge_bar_marks_the_threshold():
    styles = {"fill": "", "empty": "", "mark": ""}
    b = bar(Gauge("window", 1.0, 0.0, 4.0, {"cascade": 2.0}), 8, styles).plain
    assert b == "██··" + MARK + "···"
    full = bar(Gauge("P95", 10.0, 0.0, 4.0), 6, styles).plain  # clamped at the top
    assert full == "██████"


def test_keymap_validation():
    assert validate_keymap({"kill": "ctrl+k"}) == {"kill": "ctrl+k"}
    with pytest.raises(ConfigError, match="unknown key binding id"):
        validate_keymap({"nuke": "n"})
    with pytest.raises(ConfigError, match="bound to both"):
        validate_keymap({"kill": "a"})


async def test_keymap_from_settings_rebinds_a_key():
    session = DemoSession()
    session.settings.tui.keymap = {"kill": "ctrl+k"}
    app = LiqdeskApp(session.engine, None, settings=session.settings)
    session.play(40)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("k")
        assert isinstance(app.screen, MainScreen)
        await pilot.press("ctrl+k")
        assert isinstance(app.screen, ConfirmScreen)


def live_app(tmp_path) -> LiqdeskApp:
    """A live-mode console over a bare engine with no feed (it stops at once when started)."""
    settings = Settings()
    settings.engine.log_file = ""
    engine = Engine(settings, mode="live")
    return LiqdeskApp(engine, [], settings=settings, opts=RunOptions(mode="live", db=str(tmp_path / "t.db")))


async def test_live_mode_needs_the_typed_word(tmp_path):
    app = live_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, LiveConfirmScreen)
        assert app.engine_worker is None
        await pilot.press(*"live", "enter")  # wrong case: refused, still waiting
        assert isinstance(app.screen, LiveConfirmScreen) and app.engine_worker is None
        assert app.screen.query_one(Input).value == ""
        await pilot.press("escape")
        await pilot.pause(0.1)
    assert app.return_code == 1 and app.engine_worker is None


async def test_live_mode_status_is_red_and_starts_after_confirmation(tmp_path):
    app = live_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press(*"LIVE", "enter")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        assert app.engine_worker is not None
        mode = app.query_one("#st-mode", Label)
        assert str(mode.content).strip() == "LIVE" and mode.has_class("-live")


def test_loss_limit_state_reads_the_risk_gate():
    session = DemoSession()
    session.play(10)
    text, hit = loss_limit_state(session.engine)
    assert text == "loss day 0.00/1% wk 0.00/2%" and not hit
    rs = session.engine.risk.state
    rs.daily.blocked_until = session.engine.clock.now() + 3600 * 10**9
    text, hit = loss_limit_state(session.engine)
    assert hit and text.startswith("LOSS LIMIT: daily loss limit until")


async def test_no_color_keeps_every_fact_in_words(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = demo_app()
    assert app.no_color
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        text = "\n".join(s.text for s in app.screen._compositor.render_strips())
        for word in ("LONG", "SHORT", "P95", "CASC", "Liquidation", "Cascade", "Positions", "PAPER", "TRADING"):
            assert word in text, word
        await pilot.press("h")
        text = "\n".join(s.text for s in app.screen._compositor.render_strips())
        assert "HALTED" in text


def test_every_binding_has_help_and_its_own_keys():
    assert all(k.help and k.label for k in KEYS.values())
    keys = [key for k in KEYS.values() for key in k.keys.split(",")]
    assert len(keys) == len(set(keys))


async def test_keys_are_in_the_command_palette():
    app = demo_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        halt = commands["Halt new entries; press again to resume (exits, TP and SL still work)"]
        assert halt.help == "key: h"
        await halt.callback()
        assert app.engine.halted


def test_feed_state_is_the_worst_reported():
    session = DemoSession()
    eng = session.engine
    assert feed_state(eng, running=False, progressing=False) == "STOPPED"
    assert feed_state(eng, running=True, progressing=True) == "LIVE"
    assert feed_state(eng, running=True, progressing=False) == "STALE"
    eng.feed_states.update({"bybit": "LIVE", "bybit.BTCUSDT.orderbook": "REJECTED"})
    assert feed_state(eng, running=True, progressing=True) == "STALE"
    eng.feed_states["bybit"] = "RECONNECTING"
    assert feed_state(eng, running=True, progressing=True) == "RECONNECTING"


async def test_a_corrupt_database_stops_the_console_with_exit_2(tmp_path):
    """As headless: the store refuses the file (one line, exit 2), and the file is left untouched."""
    bad = tmp_path / "bad.db"
    bad.write_bytes(bytes(range(256)) * 64)
    before = bad.read_bytes()
    settings = Settings()
    settings.engine.log_file = ""
    opts = RunOptions(db=str(bad))
    engine, feeds = build_engine(settings, opts)
    app = LiqdeskApp(engine, feeds, settings=settings, opts=opts)
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(200):  # wait for the store to refuse the file (not a fixed sleep)
            if app.return_code is not None:
                break
            await pilot.pause(0.05)
    assert app.return_code == 2
    assert bad.read_bytes() == before
