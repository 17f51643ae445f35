"""The position table (issue 9, "Views"): one `position_view` + `position_cells` for the console's
positions pane and the LTA bar backtest's printout; the max profit is tracked per open position,
given back without being forgotten, and kept through a restart."""

from __future__ import annotations

import asyncio

import pytest

from engine.config import Settings
from engine.events import NS
from engine.orders import Fill
from engine.portfolio import Portfolio, position_view
from engine.recovery import StoreService
from engine.runtime import RunOptions, build_engine
from tui.app import LiqdeskApp
from tui.demo import DemoSession
from tui.screenshots import settle
from tui.widgets.positions import POSITION_COLUMNS, PositionsTable, position_cells, position_mark

T = 1_736_150_000 * NS
KEYS = [key for key, _ in POSITION_COLUMNS]


def cells(v, decimals: int) -> dict:
    return dict(zip(KEYS, (text for text, _ in position_cells(v, decimals)), strict=True))


def test_a_short_shows_the_price_change_as_a_price_move_and_its_loss_against_the_max_profit():
    v = position_view("ETHUSDT", -0.5, 2000.0, 2040.0, 30.0, T - 125 * NS, T)
    assert (v.side, v.qty, v.duration_s) == ("short", 0.5, 125.0)
    assert (v.price_change_pct, v.upnl, v.upnl_pct, v.max_profit, v.max_profit_pct) == pytest.approx(
        (2.0, -20.0, -2.0, 30.0, 3.0))
    assert cells(v, 2) == {"symbol": "ETHUSDT", "side": "SHORT", "age": "2m05s", "qty": "0.5", "entry": "2,000.00",
                           "mark": "2,040.00", "chg": "+2.00%", "max": "$30.00", "max_pct": "3.00%",
                           "upnl": "-$20.00", "upnl_pct": "-2.00%"}
    colours = dict(zip(KEYS, (up for _, up in position_cells(v, 2)), strict=True))
    assert (colours["side"], colours["upnl"], colours["upnl_pct"], colours["max"]) == (False, False, False, None)


def test_the_max_profit_never_shows_below_the_current_pnl_or_below_zero_and_no_price_shows_dashes():
    fresh = position_view("BTCUSDT", 0.2, 50_000.0, 50_250.0, 0.0, T, T)  # marked before its tracking caught up
    assert (fresh.upnl, fresh.max_profit, fresh.max_profit_pct) == pytest.approx((50.0, 50.0, 0.5))
    losing = position_view("BTCUSDT", 0.2, 50_000.0, 49_000.0, 0.0, T, T)
    assert (losing.upnl, losing.max_profit) == pytest.approx((-200.0, 0.0))
    unknown = position_view("XRPUSDT", 100.0, 2.5, None, 0.0, 0, T)
    assert cells(unknown, 4) == {"symbol": "XRPUSDT", "side": "LONG", "age": "-", "qty": "100", "entry": "2.5000",
                                 "mark": "-", "chg": "-", "max": "$0.00", "max_pct": "0.00%", "upnl": "-",
                                 "upnl_pct": "-"}


def test_the_portfolio_tracks_the_best_unrealized_pnl_per_position_through_snapshot_and_restore():
    pf = Portfolio(10_000.0)
    pf.apply_fill(Fill(T, "o1", "BTCUSDT", "buy", 100.0, 2.0, 0.0, "taker"), strategy="lta")
    pf.apply_fill(Fill(T, "o2", "ETHUSDT", "sell", 50.0, 4.0, 0.0, "taker"), strategy="lta")
    for btc, eth in ((112.0, 45.0), (103.0, 48.0)):
        pf.mark_to_market({"BTCUSDT": btc, "ETHUSDT": eth})
    again = Portfolio(10_000.0)
    again.restore(pf.snapshot())
    btc, eth = again.positions["BTCUSDT"], again.positions["ETHUSDT"]
    assert (btc.max_profit, eth.max_profit) == pytest.approx((24.0, 20.0))
    assert cells(position_view("BTCUSDT", btc.qty, btc.entry_price, 103.0, btc.max_profit, btc.opened_ts, T), 1) \
        == {"symbol": "BTCUSDT", "side": "LONG", "age": "0.0s", "qty": "2", "entry": "100.0", "mark": "103.0",
                 "chg": "+3.00%", "max": "$24.00", "max_pct": "12.00%", "upnl": "+$6.00", "upnl_pct": "+3.00%"}
    closed = again.apply_fill(Fill(T + NS, "o3", "BTCUSDT", "sell", 103.0, 2.0, 0.0, "taker"), "signal", "lta")
    assert closed is not None and closed.max_profit == pytest.approx(24.0)
    again.apply_fill(Fill(T + 2 * NS, "o4", "BTCUSDT", "buy", 103.0, 1.0, 0.0, "taker"), strategy="lta")
    assert again.positions["BTCUSDT"].max_profit == 0.0  # a new position starts from nothing


def test_the_max_profit_of_an_open_position_survives_a_restart(tmp_path):
    settings = Settings(engine={"log_file": ""})
    opts = RunOptions(seed=5, speed=None, duration_s=None, db=str(tmp_path / "p.db"), mode="paper")

    async def segment(first: bool):
        engine, feeds = build_engine(settings, opts, output=[].append)
        svc = await StoreService.open(engine, feeds, settings, opts)
        try:
            if first:
                engine.clock.advance_to(T)
                engine.on_fill(Fill(T, "manual-1", "BTCUSDT", "buy", 97_000.0, 0.1, 0.0, "taker", fill_id="F1"))
                for i, mark in enumerate((97_600.0, 97_300.0)):
                    engine.clock.advance_to(T + (i + 1) * 60 * NS)
                    engine.market("BTCUSDT").mark = mark
                    engine.mark_to_market()
            p = engine.portfolio.positions["BTCUSDT"]
            return position_view(p.symbol, p.qty, p.entry_price, position_mark(engine, p.symbol), p.max_profit,
                                 p.opened_ts, engine.clock.now())
        finally:
            await svc.stop()

    before = asyncio.run(segment(True))
    after = asyncio.run(segment(False))
    assert after == before
    assert cells(after, 1) == {"symbol": "BTCUSDT", "side": "LONG", "age": "2m00s", "qty": "0.1", "entry": "97,000.0",
                               "mark": "97,300.0", "chg": "+0.31%", "max": "$60.00", "max_pct": "0.62%",
                               "upnl": "+$30.00", "upnl_pct": "+0.31%"}


@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
async def test_the_console_pane_shows_the_demo_positions_max_profit_and_what_is_left(size):
    """The demo's BTCUSDT long peaked at +$1.96 and shows +$1.84 now. At 120x40 every column of the
    pane fits; at 80x24 the position table's columns up to the current PnL do (the rest scroll)."""
    session = DemoSession("auto")
    app = LiqdeskApp(session.engine, None, settings=session.settings)
    session.play()
    p = session.engine.portfolio.positions["BTCUSDT"]
    assert p.max_profit == pytest.approx(1.96, abs=0.005) and p.unrealized(position_mark(session.engine, "BTCUSDT")) \
        == pytest.approx(1.839, abs=0.001)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        table = app.query_one(PositionsTable)
        row = dict(zip([key for key, _ in table.COLUMNS], (str(c) for c in table.get_row_at(0)), strict=True))
        assert row == {"symbol": "BTCUSDT", "side": "LONG", "age": "1m06s", "qty": "0.03", "entry": "97,115.6",
                       "mark": "97,176.9", "chg": "+0.06%", "max": "$1.96", "max_pct": "0.07%", "upnl": "+$1.84",
                       "upnl_pct": "+0.06%", "tp": "97,601.2", "sl": "96,872.8", "strategy": "cascade"}
        screen = "\n".join(strip.text for strip in app.screen._compositor.render_strips())
        header = next(line for line in screen.splitlines() if "Chg %" in line)
        shown = [label for _, label in table.COLUMNS if label in header]
        if size == (120, 40):
            assert table.virtual_size.width <= table.scrollable_content_region.width
            assert shown == [label for _, label in table.COLUMNS]
        else:
            assert shown[:10] == [label for _, label in POSITION_COLUMNS[:10]]
