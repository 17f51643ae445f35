"""maker-probe: one lot at each side of the touch, requoted on the 100 ms grid after a confirmed cancel."""

from __future__ import annotations

from cascade_helpers import settings

from engine.clock import SimClock
from engine.engine import Engine
from engine.events import NS, BookSnapshot
from engine.execution.paper import PaperExchange
from engine.execution.risk import Risk
from engine.instruments import Instrument
from engine.strategies import create

SYM = "TESTUSDT"
INST = Instrument(SYM, 0.1, 1.0, 1.0, 0.0, 100.0)
MS = 1_000_000
BASE = 1_736_121_600 * NS


def venue():
    s = settings(engine={"symbols": [SYM], "log_file": ""}, paper={"latency_ms": 10.0})
    strategy = create("maker-probe", s, [SYM])
    engine = Engine(
        s,
        clock=SimClock(BASE),
        strategies=[strategy],
        broker=PaperExchange(s),
        risk=Risk(s),
        instruments={SYM: INST},
    )
    return engine


def book(engine, t_ms: int, bid: float, ask: float) -> None:
    engine.dispatch(BookSnapshot(BASE + t_ms * MS, SYM, [(bid, 50.0)], [(ask, 50.0)]))


def quotes(engine) -> dict[str, float]:
    return {o.side: o.price for o in engine.open_orders.values()}


def test_quotes_one_lot_at_each_side_of_the_touch():
    e = venue()
    book(e, 0, 100.0, 100.1)
    assert quotes(e) == {"buy": 100.0, "sell": 100.1}
    assert all(o.qty == INST.min_qty and o.post_only for o in e.open_orders.values())
    book(e, 50, 100.0, 100.1)  # same 100 ms step: nothing new
    assert len(e.orders) == 2


def test_a_quote_off_the_touch_is_cancelled_then_replaced_at_the_next_step():
    e = venue()
    book(e, 0, 100.0, 100.1)
    book(e, 100, 99.9, 100.2)  # the spread widens: both quotes are off the touch, cancels go out
    assert {o.status.value for o in e.orders.values()} <= {"new", "pending"}
    book(e, 150, 99.9, 100.2)  # cancels confirmed (10 ms each way), but still the same step
    assert quotes(e) == {}
    book(e, 200, 99.9, 100.2)  # next step: requote at the new touch
    assert quotes(e) == {"buy": 99.9, "sell": 100.2}
    assert len(e.orders) == 4 and sum(o.status.value == "cancelled" for o in e.orders.values()) == 2


def test_the_opposite_touch_crossing_a_quote_fills_it_as_maker():
    e = venue()
    notes = e.notifier.subscribe(100)
    book(e, 0, 100.0, 100.1)
    book(e, 100, 100.2, 100.3)  # the bid moved through our ask at 100.1
    book(e, 130, 100.2, 100.3)  # the fill report arrives after the latency
    fills = [p for k, p in notes.drain() if k == "fill"]
    assert [(f.side, f.price, f.liquidity) for f in fills] == [("sell", 100.1, "maker")]
    assert e.portfolio.positions[SYM].qty == -1.0
