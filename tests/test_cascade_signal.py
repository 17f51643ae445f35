"""Cascade signal: P95 warm-up and hourly refresh, 60 s window edges, dominance, BTC parameters,
alerts, and every rule that makes the strategy skip a cascade."""

from __future__ import annotations

import pytest
from cascade_helpers import World

from engine.events import NS
from engine.orders import Purpose

ETH, BTC = "ETHUSDT", "BTCUSDT"


def eth() -> World:
    w = World()
    w.around(ETH, 2500.0)
    return w


def gauge(w: World, sym: str, name: str):
    return next(g for g in w.strategy.gauges()[sym] if g.name == name)


def test_threshold_starts_from_the_seed_then_warms_up_on_the_1000th_liquidation():
    w = eth()
    assert gauge(w, ETH, "P95 liq").value == 80_000.0 and gauge(w, ETH, "P95 liq").text == "80K (seed)"
    for i in range(1, 1000):  # 61 s apart: the big ones never share a 60 s window
        w.liq(ETH, "long", 100.0 * i, dt=61)
    assert w.engine.market(ETH).liq_threshold.value == 80_000.0  # 999 liquidations: still the seed
    w.liq(ETH, "long", 100_000.0, dt=61)
    p95 = 100.0 * (1 + 0.95 * 999)  # numpy's linear P95 of 100, 200, ..., 100,000
    assert gauge(w, ETH, "P95 liq").value == pytest.approx(p95) and gauge(w, ETH, "P95 liq").text == "95K"
    assert w.alerts() == []  # none of those was a cascade of two P95+ liquidations


def test_threshold_is_recomputed_hourly_not_on_every_liquidation():
    w = World(cascade={"quantile_window": 100})
    w.around(ETH, 2500.0)
    for _ in range(100):
        w.liq(ETH, "long", 1_000.0, dt=1.0)
    m = w.engine.market(ETH)
    assert m.liq_threshold.value == pytest.approx(1_000.0)
    computed_at = w.now
    for _ in range(50):
        w.liq(ETH, "long", 5_000.0, dt=61.0)  # 51 minutes of bigger liquidations
    assert m.liq_threshold.value == pytest.approx(1_000.0)  # stable between refreshes
    assert w.alerts() == []  # ... though each was above it: they came too far apart to cascade
    w.clock.advance_to(computed_at + 3600 * NS - 1)
    w.liq(ETH, "long", 5_000.0)
    assert m.liq_threshold.value == pytest.approx(1_000.0)
    w.liq(ETH, "long", 5_000.0, dt=1e-9)  # one hour after the last computation
    assert m.liq_threshold.value == pytest.approx(5_000.0)


def test_two_p95_liquidations_exactly_60_s_apart_are_a_cascade():
    w = eth()
    w.liq(ETH, "long", 100_000.0, dt=1)
    w.liq(ETH, "long", 100_000.0, dt=60)
    (a,) = w.alerts()
    assert a.data["count"] == 2 and a.data["duration_s"] == 60.0


def test_one_nanosecond_past_60_s_starts_a_new_window():
    w = eth()
    w.liq(ETH, "long", 100_000.0, dt=1)
    w.liq(ETH, "long", 100_000.0, dt=60 + 1e-9)
    assert w.alerts() == []
    assert gauge(w, ETH, "window").value == 1.0 and gauge(w, ETH, "window").text == "1/2"
    w.liq(ETH, "long", 100_000.0, dt=1)
    assert len(w.alerts()) == 1


def test_liquidations_below_p95_never_count():
    w = eth()
    w.liq(ETH, "long", 100_000.0, dt=1)
    w.liq(ETH, "long", 79_999.0, dt=1)
    w.liq(ETH, "short", 50_000.0, dt=1)
    assert w.alerts() == [] and gauge(w, ETH, "window").value == 1.0
    w.liq(ETH, "long", 80_000.0, dt=1)  # at the threshold counts
    assert len(w.alerts()) == 1 and gauge(w, ETH, "window").active


def test_longs_liquidated_place_a_postonly_buy_below_the_price():
    w = eth()
    w.cascade(ETH, "long")
    o = w.entry()
    assert (o.side, o.price, o.post_only, o.purpose) == ("buy", 2496.25, True, Purpose.ENTRY)  # 0.15% below
    assert o.qty == 1.2 and o.leverage == 5.0  # 30% of 10,000 USD equity = 3,000 USD


def test_shorts_liquidated_place_a_postonly_sell_above_the_price():
    w = eth()
    w.cascade(ETH, "short")
    o = w.entry()
    assert (o.side, o.price, o.post_only) == ("sell", 2503.75, True)  # 0.15% above


def test_dominance_is_by_notional_not_count():
    w = eth()
    w.liq(ETH, "long", 90_000.0, dt=1)
    w.liq(ETH, "long", 90_000.0, dt=1)  # fires: longs dominate so far
    assert w.entry().side == "buy"
    w2 = eth()
    w2.liq(ETH, "long", 90_000.0, dt=1)
    w2.liq(ETH, "short", 200_000.0, dt=1)  # one big short liquidation outweighs the long one
    (a,) = w2.alerts()
    assert a.data["dominant"] == "short" and w2.entry().side == "sell"


def test_btc_uses_its_own_parameters():
    w = World(symbols=[BTC])
    w.around(BTC, 100_000.0)
    w.liq(BTC, "long", 150_000.0, dt=1)
    w.liq(BTC, "long", 150_000.0, dt=1)
    assert w.alerts() == []  # BTC's seed threshold is 200K
    w.cascade(BTC, "long")
    o = w.entry(BTC)
    assert o.price == 99_900.0 and o.qty == 0.03  # 0.10% below; 3,000 USD
    w.fill_entry(BTC)
    tp = w.orders(BTC, Purpose.TAKE_PROFIT)[0]
    sl = w.orders(BTC, Purpose.STOP_LOSS)[0]
    assert tp.price == 100_399.5  # +0.50% from the fill
    assert sl.trigger_price == pytest.approx(99_650.2)  # -0.25% from the fill, on the 0.1 tick
    assert tp.reduce_only and sl.reduce_only and sl.price is None


def test_every_cascade_gives_an_alert_and_a_log_line_with_the_action():
    w = eth()
    w.liq(ETH, "long", 120_000.0, dt=1)
    w.liq(ETH, "long", 100_000.0, dt=3.5)
    w.liq(ETH, "long", 100_000.0, dt=1)  # a third member of the same cascade: no second action
    (a,) = w.alerts()
    assert a.kind == "cascade" and a.symbol == ETH and a.strategy == "cascade"
    assert {k: a.data[k] for k in ("symbol", "dominant", "count", "notional", "duration_s")} == {
        "symbol": ETH, "dominant": "long", "count": 2, "notional": 220_000.0, "duration_s": 3.5}
    assert a.data["action"] == "placed: PostOnly BUY 1.2 @ 2496.25 (2,996 USD, 5x)"
    assert w.log_has("CASCADE ETHUSDT longs liquidated: 2 x P95+ 220K USD in 3.5 s (P95 80K) -> placed: "
                     "PostOnly BUY 1.2 @ 2496.25")


def skipped(w: World) -> str:
    a = w.alerts()[-1]
    assert a.data["action"].startswith("skipped: ")
    return a.data["action"]


def test_a_working_entry_or_a_position_makes_a_new_cascade_ignored():
    w = eth()
    w.cascade(ETH, "long")
    w.wait(61)
    w.cascade(ETH, "short")
    assert skipped(w) == "skipped: entry already working in ETHUSDT"
    w.fill_entry()
    w.wait(61)
    w.cascade(ETH, "long")
    assert skipped(w) == "skipped: position open in ETHUSDT (long 1.2)"
    assert w.log_has("-> skipped: position open in ETHUSDT")
    assert len(w.orders(ETH, Purpose.ENTRY)) == 0 and w.position() == 1.2


def test_cooldown_five_minutes_after_a_trade():
    w = eth()
    w.cascade(ETH, "long")
    w.fill_entry()
    w.trade(ETH, "buy", 2500.0, 1.0, dt=1)  # through the TP at 2499.99
    w.wait(0.2)
    assert w.closed()[-1].exit_reason == "tp"
    w.wait(60)
    w.around(ETH, 2500.0)
    w.cascade(ETH, "long")
    assert "cooldown" in skipped(w)
    w.clock.advance_to(w.closed()[-1].closed_ts + 300 * NS + 200_000_000)
    w.around(ETH, 2500.0)
    w.cascade(ETH, "long")
    assert w.alerts()[-1].data["action"].startswith("placed")


def test_at_most_four_symbols_with_positions():
    syms = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT"]
    mids = dict(zip(syms, (100_000.0, 2500.0, 180.0, 2.0, 0.3)))
    w = World(symbols=syms)
    for sym in syms[:4]:
        w.around(sym, mids[sym])
        w.cascade(sym, "long")
        w.fill_entry(sym)
    assert sum(1 for s in syms if w.position(s)) == 4
    w.around("DOGEUSDT", 0.3)
    w.cascade("DOGEUSDT", "long")
    assert skipped(w) == "skipped: 4 symbols already in use (max 4)"


@pytest.mark.parametrize("hour,placed", [(12, False), (13, True), (17, True), (18, False)])
def test_session_filter_13_to_18_utc(hour, placed):
    w = World(cascade={"session_filter": True})
    w.clock.advance_to(w.now + hour * 3600 * NS - 3 * NS)
    w.around(ETH, 2500.0)
    w.cascade(ETH, "long")  # fires at hour:00:00
    action = w.alerts()[-1].data["action"]
    if placed:
        assert action.startswith("placed")
    else:
        assert action == "skipped: outside the session 13:00-18:00 UTC"


def test_session_filter_off_trades_around_the_clock():
    w = World()
    w.clock.advance_to(w.now + 3 * 3600 * NS)
    w.around(ETH, 2500.0)
    w.cascade(ETH, "long")
    assert w.alerts()[-1].data["action"].startswith("placed")


def test_loss_limit_skips_with_the_reason_in_the_alert():
    w = eth()
    w.risk.state.daily.blocked_until = w.now + 3600 * NS
    w.cascade(ETH, "long")
    assert skipped(w).startswith("skipped: daily loss limit reached")
    assert w.entry() is None


def test_halted_skips():
    w = eth()
    w.engine.halt("test")
    w.cascade(ETH, "long")
    assert skipped(w) == "skipped: halted"


def test_sizing_follows_equity_and_configured_leverage():
    w = World(engine={"account_equity_usd": 20_000.0},
              cascade={"notional_pct_of_equity": 20.0, "leverage": 8.0})
    w.around(ETH, 2500.0)
    w.cascade(ETH, "long")
    o = w.entry()
    assert o.qty == 1.6 and o.leverage == 8.0  # 4,000 USD / 2,496.25
