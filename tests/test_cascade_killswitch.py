"""The three-level kill switch: halt, cancel_all, flatten; and resume."""

from __future__ import annotations

from cascade_helpers import ScriptedBroker, World

from engine.orders import Fill, OrderStatus, OrderUpdate, Purpose

ETH, SOL = "ETHUSDT", "SOLUSDT"


def two_symbols() -> World:
    """ETH long with TP/SL resting, SOL with a working entry."""
    w = World(symbols=[ETH, SOL])
    w.around(ETH, 2500.0)
    w.around(SOL, 180.0)
    w.cascade(ETH, "long")
    w.fill_entry(ETH)
    w.around(SOL, 180.0)
    w.cascade(SOL, "short")
    w.wait(0.2)
    return w


def test_halt_stops_new_entries_but_exits_and_cancels_go_on():
    w = two_symbols()
    w.engine.halt("ctl")
    assert w.engine.status()["halted"] and w.engine.status()["halt_reason"] == "ctl"
    assert w.log_has("HALT: no new entries (ctl)")
    assert ("halt", True) in w._notes()
    entry = w.entry(SOL)
    assert entry.status is OrderStatus.NEW  # halting does not cancel
    w.around(ETH, 2500.0, dt=61)
    w.trade(ETH, "buy", 2500.0, 1.0)  # the ETH take profit still works
    w.wait(0.2)
    assert w.closed()[-1].exit_reason == "tp"
    w.engine.cancel_order(entry.id)  # cancels pass
    w.wait(0.2)
    assert entry.status is OrderStatus.CANCELLED
    w.around(SOL, 180.0, dt=400)
    w.cascade(SOL, "long")
    assert w.alerts()[-1].data["action"] == "skipped: halted" and w.entry(SOL) is None
    w.engine.resume()
    assert not w.engine.halted and w.log_has("RESUME: entries allowed")
    w.around(SOL, 180.0, dt=61)
    w.cascade(SOL, "long")
    assert w.alerts()[-1].data["action"].startswith("placed")


def test_cancel_all_cancels_every_working_order_and_keeps_positions():
    w = two_symbols()
    assert len(w.orders()) == 3  # ETH TP + SL, SOL entry
    assert w.engine.cancel_all() == 3
    assert w.log_has("CANCEL ALL: 3 working orders")
    w.wait(0.2)
    assert w.orders() == [] and w.position(ETH) == 1.2
    assert not w.engine.halted  # the lightest level: nothing else changes


def test_flatten_closes_everything_and_says_flat_only_when_the_broker_confirms():
    w = two_symbols()
    w.engine.flatten()
    assert w.engine.halted and w.engine.flattening and not w.engine.flat_confirmed
    assert not w.log_has("FLAT:")  # cancels and the close are still on their way
    w.wait(0.1)
    assert not w.engine.flat_confirmed  # the exchange has acted; its reports are in flight
    w.wait(0.1)
    assert w.engine.flat_confirmed and w.engine.is_flat and w.paper.is_flat()
    assert [t.exit_reason for t in w.closed()] == ["flatten"]
    assert sum(1 for line in w.lines if "FLAT:" in line) == 1
    assert w.summary(ETH)["exits"] == {"flatten": 1}
    # it stays in force until resumed
    w.around(ETH, 2500.0, dt=61)
    w.cascade(ETH, "long")
    assert w.alerts()[-1].data["action"] == "skipped: halted"
    assert w.engine.status()["flattening"] and w.engine.status()["flat_confirmed"]
    w.engine.resume()
    w.around(ETH, 2500.0, dt=400)
    w.cascade(ETH, "long")
    assert w.alerts()[-1].data["action"].startswith("placed")


def test_flatten_also_closes_an_entry_that_fills_before_its_cancel_arrives():
    w = World()
    w.around(ETH, 2500.0)
    w.cascade(ETH, "long")
    w.wait(0.2)
    w.engine.flatten()  # the cancel reaches the exchange 100 ms from now
    w.trade(ETH, "sell", 2496.0, 1.0, dt=0.05)  # ... but the entry fills first
    w.wait(0.1)
    assert w.position() == 1.2 and not w.engine.flat_confirmed
    w.wait(0.5)
    assert w.position() == 0.0 and [t.exit_reason for t in w.closed()] == ["flatten"]
    assert w.engine.flat_confirmed and w.orders() == []


def test_flatten_with_nothing_open_is_flat_at_once():
    w = World()
    w.engine.flatten()
    assert w.engine.flat_confirmed and w.log_has("FLAT: the broker confirms")


def test_flat_needs_the_brokers_own_confirmation():
    class SlowBroker(ScriptedBroker):
        flat = False

        def is_flat(self) -> bool:
            return self.flat

    b = SlowBroker()
    w = World(broker=b)
    w.around(ETH, 2500.0)
    w.cascade(ETH, "long")
    entry = b.sent[0]
    w.engine.on_fill(Fill(w.now, entry.id, ETH, "buy", 2496.25, 1.2, 0.6, "maker"))
    w.engine.flatten()
    close = next(o for o in b.sent if o.purpose is Purpose.EXIT)
    for o in b.sent[1:3]:  # TP and SL cancelled
        w.engine.on_order_update(OrderUpdate(w.now, o.id, OrderStatus.CANCELLED))
    w.engine.on_fill(Fill(w.now, close.id, ETH, "sell", 2495.0, 1.2, 1.6, "taker"))
    assert w.engine.is_flat and not w.engine.flat_confirmed  # our books say flat; the broker has not
    b.flat = True  # e.g. its position stream reports the close
    w.engine.check_flat()
    assert w.engine.flat_confirmed
