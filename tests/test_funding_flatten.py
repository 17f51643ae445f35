"""The kill switch and funding pairs: flatten closes every pair (both legs) and says "flat" only
once every leg's close is confirmed; halt keeps the pairs and stops new ones and switches."""

from __future__ import annotations

import asyncio

import pytest
from test_funding_arb import RATES, World

from engine import control
from engine.control import ControlServer, format_status

SYMBOLS = ("BTCUSDT", "ETHUSDT")


def two_open_pairs(**cfg) -> World:
    """BTC a/b opens at the first check (60 s), ETH a/b at the second (120 s); both legs fill 100 ms later."""
    w = World(RATES, symbols=SYMBOLS, **cfg)
    for t in (60, 61, 120, 121):
        w.at(t)
    assert sorted((p.symbol, p.long_dex, p.short_dex) for p in w.open) == [("BTCUSDT", "a", "b"),
                                                                          ("ETHUSDT", "a", "b")]
    return w


def test_flatten_closes_every_pair_with_both_legs_and_is_flat_only_when_the_venues_confirm():
    w = two_open_pairs()
    pairs = list(w.strategy.pairs.values())
    st = w.engine.status()
    assert [(h["kind"], h["symbol"], h["status"], h["strategy"]) for h in st["external_positions"]] == [
        ("funding pair", "BTCUSDT", "open", "funding_arb"), ("funding pair", "ETHUSDT", "open", "funding_arb")]
    assert "held by strategies (2 funding pairs):" in format_status(st)
    assert "BTCUSDT long a / short b 2,500 USD per leg open legs filled/filled  [funding_arb]" in format_status(st)
    submitted = {v: w.svc.legs[v].submitted for v in ("a", "b")}

    w.engine.flatten()  # the engine holds no order and no position: only the pairs are left
    assert w.engine.halted and w.engine.flattening and not w.engine.flat_confirmed
    assert all(p.status == "pending_close" and p.close_reason == "FLATTEN" for p in pairs)
    assert all(leg.state == "closing" for p in pairs for leg in p.legs.values())  # all four legs at once
    assert {v: w.svc.legs[v].submitted - submitted[v] for v in ("a", "b")} == {"a": 2, "b": 2}
    assert any("funding_arb: FLATTEN: closing 2 pairs" in ln for ln in w.lines)
    st = w.engine.status()
    assert len(st["external_positions"]) == 2 and {h["status"] for h in st["external_positions"]} == {
        "pending_close"}
    assert "HALTED (flatten: closing in progress)" in format_status(st)
    assert not any("FLAT:" in ln for ln in w.lines)

    w.at(121.2)  # the venues answer the four closes
    assert all(p.status == "closed" for p in pairs) and not w.strategy.pairs
    assert all(leg.state == "closed" for p in pairs for leg in p.legs.values())
    assert w.engine.flat_confirmed and w.engine.status()["external_positions"] == []
    assert sum(1 for ln in w.lines if "FLAT: the broker confirms" in ln) == 1
    s = w.strategy.run_summary()
    assert (s["pairs_opened"], s["pairs_closed"], s["open_pairs"], s["close_reasons"]) == (2, 2, 0, {"FLATTEN": 2})
    assert sum(1 for a in w.alerts() if "by FLATTEN" in a.message) == 2
    assert w.engine.summary()["funding_arb"]["open_pairs"] == 0
    w.at(600)  # it stays in force: no new pair
    assert not w.strategy.pairs and any("halted: no new pairs" in ln for ln in w.lines)


def test_flatten_unwinds_a_pair_still_legging_and_waits_for_its_late_leg():
    from test_funding_arb import Silent

    w = World(RATES, symbols=SYMBOLS)
    w.at(60)
    w.at(61)  # BTC a/b open
    silent = Silent(w.svc.legs["b"])
    w.svc.legs["b"] = silent
    w.at(120)
    w.at(121)  # ETH a/b: long filled, short unanswered
    eth = next(p for p in w.strategy.pairs.values() if p.symbol == "ETHUSDT")
    assert eth.status == "pending_open" and eth.legs["long"].state == "filled"
    w.engine.flatten()
    assert eth.status == "pending_close" and eth.close_reason == "FLATTEN_UNWIND"
    assert eth.legs["long"].state == "closing" and eth.legs["short"].state == "abandoned"
    w.at(121.5)
    assert [p.symbol for p in w.strategy.pairs.values()] == ["ETHUSDT"] and not w.engine.flat_confirmed
    silent.answer_late(w.clock.now())  # the short leg filled after all: unwound, then flat
    w.at(121.8)
    assert not w.strategy.pairs and w.engine.flat_confirmed
    s = w.strategy.run_summary()
    assert s["close_reasons"] == {"FLATTEN": 1, "FLATTEN_UNWIND": 1} and s["pairs_closed"] == 1


def test_halt_keeps_the_pairs_and_stops_new_pairs_and_switches():
    w = World(RATES, symbols=(*SYMBOLS, "SOLUSDT"), rules=["combined"], max_per_venue=3)
    for t in (60, 61, 120, 121):
        w.at(t)
    assert len(w.open) == 2  # SOL would come at the next check
    w.engine.halt("test")
    w.set_rate("c", -40e-5)  # long c / short b would earn far more: BETTER_OPPORTUNITY, if not halted
    for t in (180, 181, 240, 241):
        w.at(t)
    assert len(w.open) == 2 and {p.symbol for p in w.open} == set(SYMBOLS)  # kept, not switched
    assert not any(p.close_reason for p in w.strategy.pairs.values())
    assert any("not taken: halted: no new pairs" in ln for ln in w.lines)
    assert len(w.engine.status()["external_positions"]) == 2
    w.engine.resume()  # the switch was held back by the halt only
    w.at(300)
    assert any(p.close_reason == "BETTER_OPPORTUNITY" for p in w.strategy.pairs.values())


async def test_ctl_flatten_waits_for_the_pairs_and_reports_those_still_closing(monkeypatch):
    w = two_open_pairs()
    server = ControlServer(w.engine, "unused.sock")
    loop = asyncio.get_running_loop()
    loop.call_later(0.2, w.at, 121.2)  # the venues answer while ctl waits
    r = await server.execute("flatten", None)
    assert r["text"].startswith("flat: the broker confirms") and r["status"]["external_positions"] == []

    w2 = two_open_pairs()
    monkeypatch.setattr(control, "FLAT_WAIT_S", 0.1)
    r = await ControlServer(w2.engine, "unused.sock").execute("flatten", None)  # nobody advances the clock
    assert r["text"].startswith("flattening: 0 positions, 0 orders and 2 funding pairs not yet confirmed closed")
    assert len(r["status"]["external_positions"]) == 2 and not r["status"]["flat_confirmed"]


@pytest.mark.parametrize("paused", [False, True])
def test_a_restart_mid_flatten_closes_pairs_restored_open(paused):
    """Flatten requested, then the process died before the pairs' closes were saved: the first
    check of the new run, still flattening, closes them (paused or not)."""
    w = two_open_pairs()
    state = w.strategy.snapshot()
    w2 = World(RATES, symbols=SYMBOLS)
    w2.strategy.restore(state)
    w2.strategy.paused = paused
    w2.engine.halted = w2.engine.flattening = True  # as the store restores them
    w2.at(60)  # the new run's first check
    assert [p.close_reason for p in w2.strategy.pairs.values()] == ["FLATTEN", "FLATTEN"]
    w2.at(60.2)
    assert not w2.strategy.pairs and w2.engine.flat_confirmed


async def test_console_kill_switch_counts_and_closes_the_pairs_and_quit_asks_while_they_are_open():
    from tui.app import LiqdeskApp
    from tui.screens.confirm import ConfirmScreen
    from tui.screenshots import settle

    w = two_open_pairs()
    app = LiqdeskApp(w.engine, None, settings=w.settings)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("q")  # no engine position, but two pairs: it asks
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.body.startswith("2 funding pairs stay open on their venues")
        await pilot.press("n")
        await pilot.press("k")
        assert isinstance(app.screen, ConfirmScreen)
        assert "close 0 position(s) and 2 funding pairs at market" in app.screen.body
        await pilot.press("y")
        assert w.engine.flattening and all(p.close_reason == "FLATTEN" for p in w.strategy.pairs.values())
        w.at(121.2)
        await settle(pilot)
        assert w.engine.flat_confirmed and not w.strategy.pairs
        await pilot.press("q")  # flat now: quits without asking
        await pilot.pause(0.1)
        assert not app.is_running
