"""Cascade orders and exits: TP, SL, the tie rule, timeouts, PostOnly rejects, partial entries."""

from __future__ import annotations

import pytest
from cascade_helpers import ScriptedBroker, World

from engine.events import NS, Trade
from engine.orders import Fill, OrderStatus, OrderType, OrderUpdate, Purpose

ETH = "ETHUSDT"


def long_eth() -> World:
    """Long 1.2 ETH from 2496.25 with its TP (2499.99) and SL (2490.01) resting at the exchange."""
    w = World()
    w.around(ETH, 2500.0)
    w.cascade(ETH, "long")
    w.fill_entry()
    return w


def test_entry_fill_places_reduce_only_tp_and_stop_sl_around_the_fill():
    w = long_eth()
    tp, sl = w.tp(), w.sl()
    assert (tp.side, tp.price, tp.order_type, tp.reduce_only, tp.status) == (
        "sell", 2499.99, OrderType.LIMIT, True, OrderStatus.NEW)  # 2496.25 x 1.0015, a resting maker limit
    assert (sl.side, sl.trigger_price, sl.order_type, sl.reduce_only, sl.status) == (
        "sell", 2490.01, OrderType.STOP, True, OrderStatus.UNTRIGGERED)  # 2496.25 x 0.9975
    assert tp.qty == sl.qty == 1.2
    assert w.log_has("ETHUSDT long 1.2 @ 2496.25: TP 2499.99, SL 2490.01, timeout 00:30:03")


def test_take_profit_fills_as_maker_and_cancels_the_stop():
    w = long_eth()
    w.trade(ETH, "buy", 2500.0, 0.5, dt=30)
    w.wait(0.2)
    (t,) = w.closed()
    assert (t.exit_reason, t.side, t.entry_price, t.exit_price) == ("tp", "long", 2496.25, 2499.99)
    assert w.orders(ETH) == [] and w.position() == 0.0
    fills = [p for k, p in w._notes() if k == "fill"]
    assert [f.liquidity for f in fills] == ["maker", "maker"]
    assert w.summary()["exits"] == {"tp": 1} and w.summary()["wins"] == 1
    assert not w.strategy.state[ETH].protected  # ready for the next cascade


def test_stop_loss_triggers_on_a_trade_and_fills_as_taker_with_slippage():
    w = long_eth()
    w.book(ETH, 2490.0, 2490.1, size=0.5, dt=10)  # thin bids: the stop will walk them
    w.trade(ETH, "sell", 2490.01, 0.1, dt=1)
    w.wait(0.2)
    (t,) = w.closed()
    assert t.exit_reason == "sl"
    # walked three levels
    assert t.exit_price == pytest.approx((0.5 * 2490.0 + 0.5 * 2489.99 + 0.2 * 2489.98) / 1.2)
    assert t.exit_price < 2490.01  # slipped past the trigger
    assert w.orders(ETH) == [] and w.summary()["exits"] == {"sl": 1} and w.summary()["losses"] == 1


def test_short_side_mirrors_tp_below_and_sl_above():
    w = World()
    w.around(ETH, 2500.0)
    w.cascade(ETH, "short")
    w.fill_entry()
    assert w.position() == -1.19  # 3,000 USD at 2503.75, rounded down to the 0.01 step
    assert w.tp().side == "buy" and w.tp().price == 2499.99  # 2503.75 x 0.9985 = 2499.994
    assert w.sl().side == "buy" and w.sl().trigger_price == 2510.01  # 2503.75 x 1.0025
    w.trade(ETH, "buy", 2510.5, 0.1, dt=5)
    w.wait(0.2)
    assert w.closed()[0].exit_reason == "sl" and w.closed()[0].side == "short"


def test_tie_rule_for_events_at_the_same_timestamp_first_come_first_served():
    """The stop's trigger print and a book update through the TP carry the same timestamp: they
    are applied in feed order, so the stop (first here) closes the position and the exchange
    cancels the TP (reduce-only with no position left)."""
    w = long_eth()
    t = w.now + 5 * NS
    w.send(Trade(t, ETH, "sell", 2490.0, 0.1))
    w.book(ETH, 2500.0, 2500.1, dt=0)  # same timestamp: bid above the TP
    w.wait(0.2)
    assert [c.exit_reason for c in w.closed()] == ["sl"] and w.orders(ETH) == []
    assert w.position() == 0.0 and w.paper.positions[ETH] == 0.0


def test_tie_rule_reverse_order_gives_the_take_profit():
    w = long_eth()
    w.book(ETH, 2500.0, 2500.1, dt=5)
    w.send(Trade(w.now, ETH, "sell", 2490.0, 0.1))  # same timestamp, after the book
    w.wait(0.2)
    assert [c.exit_reason for c in w.closed()] == ["tp"] and w.orders(ETH) == []


def test_unfilled_entry_is_cancelled_after_30_minutes():
    w = World()
    w.around(ETH, 2500.0)
    w.cascade(ETH, "long")
    placed = w.entry()
    w.clock.advance_to(placed.ts + 1800 * NS - 1)
    assert placed.status is OrderStatus.NEW
    w.wait(0.2 + 1e-9)
    assert placed.status is OrderStatus.CANCELLED
    assert w.log_has("ETHUSDT entry unfilled after 30 min: cancel")
    assert not w.strategy.state[ETH].entry_open
    w.around(ETH, 2500.0)
    w.cascade(ETH, "long")  # free again: no cooldown, since there was no trade
    assert w.alerts()[-1].data["action"].startswith("placed")


def test_position_is_closed_at_market_30_minutes_after_the_fill():
    w = long_eth()
    fill_ts = w.engine.portfolio.positions[ETH].opened_ts
    w.clock.advance_to(fill_ts + 1800 * NS - 1)
    w.around(ETH, 2497.0)
    assert w.position() == 1.2
    w.wait(1e-9)
    assert w.log_has("ETHUSDT position open 30 min after its fill: close at market")
    w.wait(0.3)
    (t,) = w.closed()
    assert t.exit_reason == "timeout" and t.exit_price == pytest.approx(2496.99)
    assert w.orders(ETH) == [] and w.summary()["timeouts"] == 1 and w.summary()["exits"] == {"timeout": 1}


def test_a_paused_strategy_still_times_its_position_out_but_takes_no_new_signal():
    w = long_eth()
    assert w.engine.pause_strategy("cascade") and w.strategy.paused
    w.wait(1800)
    w.around(ETH, 2497.0)
    w.wait(0.3)
    assert [t.exit_reason for t in w.closed()] == ["timeout"]
    w.around(ETH, 2500.0, dt=400)
    w.cascade(ETH, "long")
    assert len(w.alerts()) == 1 and w.entry() is None  # paused: the new cascade is not acted on


def test_entry_postonly_reject_frees_the_symbol():
    w = World()
    w.around(ETH, 2500.0)
    w.cascade(ETH, "long")
    w.book(ETH, 2496.0, 2496.2, dt=0.05)  # the price falls through our bid before the order arrives
    w.wait(0.3)
    assert w.entry() is None and w.position() == 0.0
    assert w.log_has("rejected: PostOnly buy 2496.25 would take liquidity (best ask 2496.2)")
    assert not w.strategy.state[ETH].entry_open
    w.around(ETH, 2500.0, dt=61)
    w.cascade(ETH, "long")
    assert w.entry() is not None


def test_exits_split_by_reason_in_the_summary():
    w = World(cascade={"cooldown_s": 0.0})
    w.around(ETH, 2500.0)
    for outcome in ("tp", "sl", "timeout"):
        w.cascade(ETH, "long")
        w.fill_entry()
        if outcome == "tp":
            w.trade(ETH, "buy", w.tp().price + 0.01, 1.0, dt=1)
        elif outcome == "sl":
            w.trade(ETH, "sell", w.sl().trigger_price - 0.01, 1.0, dt=1)
        else:
            w.wait(1800)
        w.wait(0.5)
        w.around(ETH, 2500.0, dt=61)
        w.trade(ETH, "buy", 2500.0, 0.1)  # the last price is back up (a stop triggers at once otherwise)
    s = w.summary()
    assert s["exits"] == {"sl": 1, "timeout": 1, "tp": 1} and s["closed_trades"] == 3
    assert s["wins"] + s["losses"] + s["timeouts"] == 3


def scripted() -> tuple[World, ScriptedBroker]:
    b = ScriptedBroker()
    w = World(broker=b)
    w.around(ETH, 2500.0)
    w.cascade(ETH, "long")
    return w, b


def test_partly_filled_entry_keeps_the_filled_part_and_protects_it():
    w, b = scripted()
    (entry,) = b.sent
    w.engine.on_order_update(OrderUpdate(w.now, entry.id, OrderStatus.NEW))
    w.engine.on_fill(Fill(w.now, entry.id, ETH, "buy", 2496.25, 0.5, 0.25, "maker"))
    assert b.cancels == [entry.id]  # the rest is cancelled at once
    w.engine.on_order_update(OrderUpdate(w.now, entry.id, OrderStatus.CANCELLED))
    tp, sl = b.sent[1:]
    assert (tp.purpose, tp.qty, sl.purpose, sl.qty) == (Purpose.TAKE_PROFIT, 0.5, Purpose.STOP_LOSS, 0.5)


def test_a_refused_stop_loss_closes_the_position_at_market():
    w, b = scripted()
    entry = b.sent[0]
    w.engine.on_fill(Fill(w.now, entry.id, ETH, "buy", 2496.25, 1.2, 0.6, "maker"))
    sl = b.sent[2]
    w.engine.on_order_update(OrderUpdate(w.now, sl.id, OrderStatus.REJECTED, "trigger price invalid"))
    close = b.sent[-1]
    assert (close.order_type, close.reduce_only, close.qty, close.side) == (
        OrderType.MARKET, True, 1.2, "sell")
    assert w.log_has("ETHUSDT stop loss refused (trigger price invalid): closing at market")
    w.engine.on_fill(Fill(w.now, close.id, ETH, "sell", 2495.0, 1.2, 1.6, "taker"))
    assert w.closed()[0].exit_reason == "sl"


def test_a_refused_close_is_sent_again_with_its_reason():
    w, b = scripted()
    entry = b.sent[0]
    w.engine.on_fill(Fill(w.now, entry.id, ETH, "buy", 2496.25, 1.2, 0.6, "maker"))
    w.engine.on_order_update(OrderUpdate(w.now, b.sent[2].id, OrderStatus.REJECTED, "bad trigger"))
    first = b.sent[-1]
    w.engine.on_order_update(OrderUpdate(w.now, first.id, OrderStatus.REJECTED, "no liquidity"))
    assert w.log_has("ETHUSDT close refused (no liquidity): retrying in 5 s")
    w.wait(4.9)
    assert b.sent[-1] is first
    w.wait(0.1)
    again = b.sent[-1]
    assert again is not first and again.order_type is OrderType.MARKET
    assert w.log_has("close at market again (sl)")
    w.engine.on_fill(Fill(w.now, again.id, ETH, "sell", 2495.0, 1.2, 1.6, "taker"))
    assert w.closed()[0].exit_reason == "sl"


def test_an_entry_approved_after_its_timeout_is_cancelled_once_working():
    w = World(approval={"mode": "manual", "timeout_s": 3600.0}, cascade={"entry_timeout_s": 60.0})
    w.around(ETH, 2500.0)
    w.cascade(ETH, "long")
    w.wait(61)
    assert len(w.approval.pending()) == 1
    w.around(ETH, 2500.0)
    order = w.engine.approve(1)
    w.wait(0.5)
    assert order.status is OrderStatus.CANCELLED and not w.strategy.state[ETH].entry_open


def test_strategy_state_round_trips_with_timers_due():
    import json

    w = long_eth()
    state = json.loads(json.dumps(w.strategy.snapshot()))
    assert state["symbols"][ETH]["protected"] and state["symbols"][ETH]["exit_due"] > w.now
    assert state["markets"][ETH]["threshold"]["value"] == 80_000.0
    assert state["markets"][ETH]["detector"]["fired"] == 1
    w2 = World()
    w2.strategy.restore(state)
    assert w2.strategy.snapshot() == state
    # the restored position timeout fires in the new engine too (here: nothing open, so nothing to do)
    w2.clock.advance_to(state["symbols"][ETH]["exit_due"])
    assert w2.strategy.state[ETH].exit_due == 0
