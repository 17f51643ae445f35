"""The approval gate: auto and manual, approve, reject, expiry, approve_all; exits never wait."""

from __future__ import annotations

import json

from cascade_helpers import World

from engine.orders import Purpose

ETH = "ETHUSDT"


def manual(**sections) -> World:
    w = World(approval={"mode": "manual", **sections.pop("approval", {})}, **sections)
    w.around(ETH, 2500.0)
    return w


def test_auto_mode_sends_entries_at_once():
    w = World()
    w.around(ETH, 2500.0)
    w.cascade(ETH)
    assert w.entry() is not None and w.approval.pending() == []


def test_manual_entry_waits_in_the_queue_with_what_a_person_needs_to_decide():
    w = manual()
    w.cascade(ETH)
    assert w.entry() is None and not w.paper.stats.orders  # nothing reached the broker
    (item,) = w.approval.pending()
    d = item.describe()
    assert {k: d[k] for k in ("id", "symbol", "side", "price", "qty", "notional")} == {
        "id": 1, "symbol": ETH, "side": "buy", "price": 2496.25, "qty": 1.2, "notional": 2995.5}
    assert d["reason"].startswith("cascade: longs liquidated x2") and d["expires_in_s"] == 20.0
    w.wait(5)
    assert item.describe(w.now)["expires_in_s"] == 15.0
    assert w.approval.pending()[0].describe()["expires_in_s"] == 15.0  # the countdown views read
    assert w.log_has("APPROVAL #1 waiting 20 s: BUY ETHUSDT 1.2 @ 2496.25 (2,996 USD)")
    assert w.alerts()[-1].data["action"].startswith("queued for approval")
    assert w.engine.status()["pending_approvals"][0]["id"] == 1


def test_approve_sends_the_entry():
    w = manual()
    w.cascade(ETH)
    order = w.engine.approve(1)
    assert order is not None and w.entry() is order and w.approval.pending() == []
    assert w.log_has("APPROVED #1: BUY ETHUSDT 1.2 @ 2496.25")
    w.wait(0.2)
    w.fill_entry()
    # exits never wait: TP and SL went straight to the broker
    assert w.approval.pending() == []
    assert {o.purpose for o in w.orders(ETH)} == {Purpose.TAKE_PROFIT, Purpose.STOP_LOSS}


def test_reject_refuses_the_entry_and_frees_the_symbol():
    w = manual()
    w.cascade(ETH)
    assert w.engine.reject("#1")
    assert w.approval.pending() == [] and w.entry() is None
    assert w.log_has("approval #1 rejected by operator")
    assert not w.strategy.state[ETH].entry_open
    assert not w.engine.reject(1)  # gone
    assert w.engine.approve(99) is None and w.log_has("no pending approval #99")


def test_expiry_counts_as_a_reject():
    w = manual(approval={"timeout_s": 5.0})
    w.cascade(ETH)
    w.wait(4.9)
    assert len(w.approval.pending()) == 1
    w.wait(0.1)
    assert w.approval.pending() == [] and w.entry() is None
    assert w.log_has("approval #1 expired after 5 s")
    assert not w.strategy.state[ETH].entry_open
    assert w.engine.approve(1) is None  # too late


def test_approve_runs_the_risk_gate_again():
    w = manual()
    w.cascade(ETH)
    w.risk.blacklist_add(ETH)
    assert w.engine.approve(1) is None
    assert w.log_has("REJECT ETHUSDT buy 1.2 @ 2496.25: ETHUSDT is blacklisted")
    assert not w.strategy.state[ETH].entry_open


def test_approve_all_and_halt_empties_the_queue():
    w = World(symbols=[ETH, "SOLUSDT", "XRPUSDT"], approval={"mode": "manual"})
    for sym, mid in ((ETH, 2500.0), ("SOLUSDT", 180.0), ("XRPUSDT", 2.0)):
        w.around(sym, mid)
    w.cascade(ETH)
    w.cascade("SOLUSDT")
    assert w.engine.approve_all() == 2
    assert {o.symbol for o in w.orders(purpose=Purpose.ENTRY)} == {ETH, "SOLUSDT"}
    w.cascade("XRPUSDT")
    assert len(w.approval.pending()) == 1
    w.engine.halt("test")
    assert w.approval.pending() == [] and w.log_has("approval #3 halted (test)")


def test_queue_snapshot_restores_and_keeps_its_deadline():
    w = manual()
    w.cascade(ETH)
    w.wait(8)
    state = json.loads(json.dumps(w.approval.snapshot()))
    w2 = manual()
    w2.clock.advance_to(w.now)
    w2.approval.restore(state)
    (item,) = w2.approval.pending()
    assert item.describe()["expires_in_s"] == 12.0 and item.intent.price == 2496.25
    assert w2.approval.snapshot() == state
    w2.wait(12)
    assert w2.approval.pending() == [] and w2.log_has("approval #1 expired after 20 s")
