"""LIT scenarios on a hand-driven market (docs/strategies/lit.md): entry conditions, ranking,
sizing and caps, the min-notional skip, every exit, funding in PnL, max positions, the blacklist
(entry, expiry, unblacklist, persistence), retries that reuse the order id, INTERVAL."""

from __future__ import annotations

import pytest
from cascade_helpers import ScriptedBroker
from lit_helpers import LitWorld

from engine.control import unblacklist
from engine.events import NS
from engine.orders import Fill, OrderStatus, OrderUpdate, Purpose
from engine.strategies.lit import LitStrategy

XRP = "XRPUSDT"


def opened(w: LitWorld, sym: str = XRP, ratio: float = 2.5, apr: float = 20.0) -> float:
    w.setup(sym, ratio, apr)
    w.evaluate()
    return w.position(sym)


# -- entries ----------------------------------------------------------------------------------------
def test_crowded_longs_paid_funding_open_a_short_sized_by_collateral():
    w = LitWorld([XRP])
    assert opened(w) == -12.0  # 10.1 USD x 2.5x = 25.25 USD at 2.0 -> 12 on the 1-unit step
    o = next(o for o in w.engine.orders.values() if o.purpose is Purpose.ENTRY)
    assert (o.side, o.leverage, o.strategy) == ("sell", 2.5, "lit")
    assert w.log_has("longs crowded 2.50x, contrarian paid 20.0% APR, score 2.66 [ratio synthetic]")
    st = w.strategy.state[XRP]
    assert st.collateral == pytest.approx(12 * 1.9999 / 2.5)


def test_crowded_shorts_with_negative_funding_open_a_long():
    w = LitWorld([XRP])
    assert opened(w, ratio=0.4, apr=-20.0) == 12.0


@pytest.mark.parametrize(("ratio", "apr", "why"), [
    (1.9, 40.0, "ratio 1.90 below 2"),
    (2.5, 14.0, "funding +14.0% APR for the contrarian side, needs > 15%"),
    (2.5, -40.0, "funding -40.0% APR for the contrarian side"),  # longs crowded but longs are paid
    (0.4, 40.0, "funding -40.0% APR for the contrarian side"),
])
def test_no_entry_unless_both_conditions_hold(ratio, apr, why):
    w = LitWorld([XRP])
    assert opened(w, ratio=ratio, apr=apr) == 0.0
    assert not w.engine.orders
    assert w.log_has(why)


def test_risk_gate_and_kill_switch_refusals_are_skips_with_the_reason():
    w = LitWorld([XRP], risk={"blacklist": [XRP]})
    assert opened(w) == 0.0
    assert w.log_has("skipped: XRPUSDT is blacklisted")
    w2 = LitWorld([XRP])
    w2.engine.halt("test")
    assert opened(w2) == 0.0
    assert w2.log_has("-> skipped: halted")


def test_candidates_ranked_by_score_and_at_most_three_positions():
    syms = ["XRPUSDT", "DOGEUSDT", "SOLUSDT", "ETHUSDT"]
    w = LitWorld(syms)
    w.setup("XRPUSDT", 2.5, 20.0)  # score 2.65
    w.setup("DOGEUSDT", 4.0, 20.0)  # 3.33
    w.setup("SOLUSDT", 3.0, 30.0)  # 3.58
    w.setup("ETHUSDT", 2.2, 16.0)  # 2.20: fourth
    w.evaluate()
    held = {s for s in syms if w.position(s)}
    assert held == {"XRPUSDT", "DOGEUSDT", "SOLUSDT"}
    assert w.log_has("LIT ETHUSDT") and w.log_has("skipped: max positions reached (3 of 3)")
    order = [line.split()[3] for line in w.lines if "-> placed" in line]
    assert order == ["SOLUSDT", "DOGEUSDT", "XRPUSDT"]


def test_leverage_tier_is_sent_with_the_order():
    w = LitWorld(["DOGEUSDT"])
    w.setup("DOGEUSDT", 6.0, 20.0)  # ratio above 5: 2.5 x 1.5 = 3.75x
    w.evaluate()
    o = next(iter(w.engine.orders.values()))
    assert o.leverage == 3.75
    assert o.qty == 126.0  # 10.1 x 3.75 = 37.875 USD at 0.3


def test_a_position_below_the_venue_minimum_is_skipped_with_the_reason():
    w = LitWorld(["BTCUSDT"])
    assert opened(w, "BTCUSDT") == 0.0
    assert not w.engine.orders
    assert w.log_has("skipped: below the venue minimum: 10.1 USD x 2.5x = 25.25 USD is 0 on the 0.001 step")


# -- exits ------------------------------------------------------------------------------------------
def test_take_profit_on_pnl_over_collateral():
    w = LitWorld([XRP])
    opened(w)
    w.mark(XRP, 1.985)  # +0.18 USD: 1.9% of 9.6 USD collateral, hold
    w.wait(1)
    assert w.position(XRP) == -12.0
    w.mark(XRP, 1.97)  # +0.36 USD - fee: above 3%
    w.wait(1)
    assert w.position(XRP) == 0.0
    assert w.closed()[-1].exit_reason == "tp"


def test_stop_loss_and_price_basis_alternative():
    w = LitWorld([XRP])
    opened(w)
    w.mark(XRP, 2.03)  # -0.37 USD: -3.9%
    w.wait(1)
    assert w.position(XRP) == -12.0
    w.mark(XRP, 2.035)
    w.wait(1)
    assert w.closed()[-1].exit_reason == "sl"
    p = LitWorld([XRP], lit={"pnl_basis": "price"})
    opened(p)
    p.mark(XRP, 2.05)  # price +2.5%: a 6% loss on collateral, but on the price basis only 2.5% of 4%
    p.wait(1)
    assert p.position(XRP) == -12.0
    p.mark(XRP, 2.081)
    p.wait(1)
    assert p.closed()[-1].exit_reason == "sl"


def test_max_hold_closes_after_24_hours():
    w = LitWorld([XRP])
    opened(w)
    w.wait(86_400 - 10)
    assert w.position(XRP) == -12.0
    w.wait(20)
    assert w.position(XRP) == 0.0
    assert w.closed()[-1].exit_reason == "max_hold"


@pytest.mark.parametrize(("ratio", "apr"), [(1.4, 20.0), (2.5, -5.0), (0.4, 20.0)])
def test_normalization_exit_at_the_next_evaluation(ratio, apr):
    w = LitWorld([XRP])
    opened(w)
    w.setup(XRP, ratio, apr)
    w.evaluate()
    assert w.position(XRP) == 0.0
    assert w.closed()[-1].exit_reason == "normalized"


def test_funding_is_booked_into_the_position_pnl():
    w = LitWorld([XRP])
    assert opened(w, apr=1500.0) == -18.0  # tier2: 10.1 x 3.75 at 2.0
    w.clock.advance_to(w.now + 8 * 3600 * NS)  # past the 08:00 funding time, price unchanged
    w.ratio(XRP, 2.5)
    w.mark(XRP, 2.0)  # the ticker that moves the funding time on settles the rate
    w.wait(1)
    w.mark(XRP, 2.0)
    w.wait(1)
    t = w.closed()[-1]
    assert t.exit_reason == "tp"  # 18 x 2.0 x 1.37% = 0.49 USD received: over 3% of 9.6 USD collateral
    assert t.funding == pytest.approx(18 * 2.0 * 15.0 / 1095, rel=1e-3)
    assert t.net_pnl == pytest.approx(t.gross_pnl - t.fees + t.funding)


# -- blacklist ------------------------------------------------------------------------------------
def stop_out(w: LitWorld) -> None:
    w.mids[XRP] = 2.0
    w.evaluate()
    assert w.position(XRP) == -12.0
    w.mark(XRP, 2.05)
    w.wait(1)
    assert w.closed()[-1].exit_reason == "sl"
    w.mids[XRP] = 2.0


def test_two_consecutive_stop_losses_blacklist_for_24_hours_then_it_expires():
    w = LitWorld([XRP])
    w.setup(XRP, 2.5, 20.0)
    stop_out(w)
    stop_out(w)
    assert w.log_has("LIT XRPUSDT blacklisted until 01-07 00:31 UTC: 2 consecutive stop losses")
    w.evaluate()
    assert w.position(XRP) == 0.0
    assert w.log_has("skipped: blacklisted until 01-07 00:31 UTC")
    gauges = {g.name: g for g in w.strategy.gauges()[XRP]}
    assert gauges["blacklist"].active and gauges["blacklist"].text == "23h30m"
    while w.now < w.strategy.state[XRP].blacklist_until:
        w.evaluate()
    assert w.log_has("XRPUSDT blacklist expired (2 consecutive stop losses)")
    assert w.position(XRP) == -12.0


def test_a_take_profit_between_stop_losses_resets_the_count():
    w = LitWorld([XRP])
    w.setup(XRP, 2.5, 20.0)
    stop_out(w)
    w.evaluate()
    w.mark(XRP, 1.95)
    w.wait(1)
    stop_out(w)
    assert w.strategy.state[XRP].blacklist_until == 0


def test_unblacklist_and_persistence_of_the_blacklist():
    w = LitWorld([XRP])
    w.setup(XRP, 2.5, 20.0)
    stop_out(w)
    stop_out(w)
    saved = w.strategy.snapshot()
    again = LitStrategy(w.settings, [XRP])
    again.restore(saved)
    assert again.blacklisted(w.now)[XRP][1] == "2 consecutive stop losses"
    ok, text = unblacklist(w.engine, "xrpusdt")
    assert ok and text == "XRPUSDT removed from the blacklist (lit)"
    assert unblacklist(w.engine, XRP) == (False, "XRPUSDT is not blacklisted")
    w.evaluate()
    assert w.position(XRP) == -12.0


# -- retries ------------------------------------------------------------------------------------------
def test_exchange_errors_retry_with_backoff_reusing_the_order_id_then_blacklist():
    broker = ScriptedBroker()
    w = LitWorld([XRP], broker=broker)
    w.setup(XRP, 2.5, 20.0)
    w.evaluate()
    sent_at = []
    for backoff in (5, 10, 20, 40):
        o = broker.sent[-1]
        sent_at.append(w.now)
        w.engine.on_order_update(OrderUpdate(w.now, o.id, OrderStatus.REJECTED, "bybit 10016: Service is busy"))
        w.wait(backoff - 1)
        w.mark(XRP, 2.0)  # the book stays fresh
        w.wait(1)
    assert len(broker.sent) == 4
    assert [(b - a) // NS for a, b in zip(sent_at, sent_at[1:])] == [5, 10, 20]
    assert len({o.id for o in broker.sent}) == 1  # one orderLinkId for every attempt
    assert w.log_has("retry 1 of 3 in 5 s, same order id") and w.log_has("retry 3 of 3 in 20 s")
    assert w.strategy.state[XRP].blacklist_until > w.now
    assert w.log_has("entry failed after 4 attempts: bybit 10016: Service is busy")


def test_a_retry_that_fills_gives_one_position_and_a_duplicate_is_not_resent():
    broker = ScriptedBroker()
    w = LitWorld([XRP], broker=broker)
    w.setup(XRP, 2.5, 20.0)
    w.evaluate()
    first = broker.sent[-1]
    w.engine.on_order_update(OrderUpdate(w.now, first.id, OrderStatus.REJECTED, "bybit 10016: busy"))
    w.wait(6)
    second = broker.sent[-1]
    assert second.id == first.id and len(broker.sent) == 2
    w.engine.on_fill(Fill(w.now, second.id, XRP, "sell", 2.0, second.qty, 0.01, "taker"))
    assert w.position(XRP) == -12.0
    w.wait(60)
    assert len(broker.sent) == 2  # nothing more sent
    d = LitWorld([XRP], broker=(b2 := ScriptedBroker()))
    d.setup(XRP, 2.5, 20.0)
    d.evaluate()
    d.engine.on_order_update(OrderUpdate(d.now, b2.sent[-1].id, OrderStatus.REJECTED,
                                         "bybit 110072: OrderLinkedID is duplicate"))
    d.wait(60)
    assert len(b2.sent) == 1 and not d.strategy.state[XRP].blacklist_until


# -- the interval ----------------------------------------------------------------------------------------
def test_interval_env_sets_the_evaluation_period(monkeypatch):
    monkeypatch.setenv("INTERVAL", "900")
    w = LitWorld([XRP])
    w.setup(XRP, 1.2, 0.0)
    w.evaluate()
    first = w.now
    w.evaluate()
    assert w.strategy.interval_s == 900.0
    assert (w.now - first) // NS == 900
    assert w.strategy.evaluations == 2


def test_gauges_show_ratio_funding_score_state_and_blacklist():
    w = LitWorld([XRP])
    w.setup(XRP, 2.5, 20.0)
    g = {x.name: x for x in w.strategy.gauges()[XRP]}
    assert (g["L/S"].text, g["fund"].text, g["score"].text, g["state"].text, g["blacklist"].text) == (
        "2.50", "+20.0%", "2.66", "SELL signal", "no")
    w.evaluate()
    g = {x.name: x for x in w.strategy.gauges()[XRP]}
    assert g["state"].text == "SHORT 2.5x" and g["state"].active


def test_a_paused_strategy_skips_evaluations_and_resumes_on_schedule():
    w = LitWorld([XRP])
    w.setup(XRP, 2.5, 20.0)
    w.engine.pause_strategy("lit")
    w.evaluate()
    w.evaluate()
    assert w.position(XRP) == 0.0 and w.strategy.evaluations == 0
    w.engine.pause_strategy("lit")
    w.evaluate()
    assert w.position(XRP) == -12.0


async def test_ctl_unblacklist_through_the_control_server():
    from engine.control import ControlServer, check_command
    w = LitWorld([XRP])
    w.setup(XRP, 2.5, 20.0)
    stop_out(w)
    stop_out(w)
    check_command("unblacklist", XRP)
    with pytest.raises(Exception, match="needs SYMBOL"):
        check_command("unblacklist", None)
    server = ControlServer(w.engine, "unused.sock")
    resp = await server.execute("unblacklist", XRP)
    assert resp["ok"] and resp["text"] == "XRPUSDT removed from the blacklist (lit)"
    assert w.log_has("UNBLACKLIST XRPUSDT (lit)")
    resp = await server.execute("unblacklist", XRP)
    assert not resp["ok"] and resp["text"] == "XRPUSDT is not blacklisted"
