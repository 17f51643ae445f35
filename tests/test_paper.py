"""The paper exchange: PostOnly, queue position, fill rules, stops, latency, fees, funding, records."""

from __future__ import annotations

import json

import pytest
from cascade_helpers import settings

from engine.clock import SimClock
from engine.engine import Engine
from engine.events import NS, BookDelta, BookSnapshot, Ticker, Trade
from engine.execution.paper import PaperExchange
from engine.instruments import Instrument
from engine.orders import OrderStatus, OrderType, PlaceOrder, Purpose

SYM = "TESTUSDT"
INST = Instrument(SYM, 0.1, 1.0, 1.0, 0.0, 100.0)  # quant.md 4.2: tick 0.1, lot 1
MS = 1_000_000
BASE = 1_736_121_600 * NS  # 2025-01-06 00:00 UTC; test times are seconds after it


def ts(t_s: float) -> int:
    return BASE + int(round(t_s * NS))


class Venue:
    """An engine with only the paper exchange (PassRisk, auto approval) on one test symbol."""

    def __init__(self, latency_ms: float = 100.0, queue_model: str = "riskaverse", power: float = 2.0):
        s = settings(engine={"symbols": [SYM], "log_file": ""},
                     paper={"latency_ms": latency_ms, "queue_model": queue_model, "queue_power": power})
        self.clock = SimClock(BASE)
        self.paper = PaperExchange(s)
        self.engine = Engine(s, clock=self.clock, broker=self.paper, instruments={SYM: INST})
        self.notes = self.engine.notifier.subscribe(10_000)
        self.reports: list[tuple[str, str, str]] = []  # (order id, status, reason) as the engine hears them
        hear = self.engine.on_order_update

        def record(upd):
            self.reports.append((upd.order_id, upd.status.value, upd.reason))
            hear(upd)
        self.engine.on_order_update = record

    def at(self, t_s: float, ev_cls, *args, **kw):
        ev = ev_cls(ts(t_s), SYM, *args, **kw)
        self.engine.dispatch(ev)
        return ev

    def book(self, t_s: float, bids, asks):
        return self.at(t_s, BookSnapshot, bids, asks)

    def delta(self, t_s: float, bids=(), asks=()):
        return self.at(t_s, BookDelta, list(bids), list(asks))

    def trade(self, t_s: float, side: str, price: float, qty: float):
        return self.at(t_s, Trade, side, price, qty)

    def place(self, side: str, qty: float, price: float | None = None, **kw):
        kw.setdefault("order_type", OrderType.LIMIT if price is not None else OrderType.MARKET)
        kw.setdefault("purpose", Purpose.EXIT if kw.get("reduce_only") else Purpose.ENTRY)
        return self.engine.place(PlaceOrder(SYM, side, qty, price, **kw))

    def wait_until(self, t_s: float) -> None:
        self.clock.advance_to(ts(t_s))

    def fills(self):
        return [p for k, p in self.notes.drain() if k == "fill"]

    def statuses(self, order_id: str) -> list[str]:
        return [status for oid, status, _ in self.reports if oid == order_id]


def test_post_only_that_would_cross_is_accepted_then_rejected_with_a_reason():
    v = Venue()
    v.book(0, [(100.0, 10)], [(100.1, 10)])
    o = v.place("buy", 1, 100.1, post_only=True)
    v.wait_until(1)
    assert o.status is OrderStatus.REJECTED
    assert "PostOnly" in o.reject_reason and "100.1" in o.reject_reason
    assert v.statuses(o.id) == ["new", "rejected"]  # accepted, then rejected, as Bybit reports it
    assert v.paper.stats.rejects == 1 and not v.paper.working
    assert v.engine.portfolio.positions.get(SYM) is None


def test_crossing_plain_limit_fills_at_once_as_taker_at_the_best_price():
    v = Venue(latency_ms=0)
    v.book(0, [(100.0, 10)], [(100.1, 10)])
    o = v.place("buy", 2, 100.5)
    v.wait_until(1)
    (f,) = v.fills()
    assert (f.price, f.qty, f.liquidity) == (100.1, 2, "taker")
    assert o.status is OrderStatus.FILLED


def test_queue_position_needs_volume_through_it():
    """Joined behind 10: trades at our price eat the queue; the fill needs half a lot through it."""
    v = Venue(latency_ms=0)
    v.book(0, [(100.0, 10)], [(100.1, 10)])
    o = v.place("buy", 1, 100.0)
    v.trade(1, "sell", 100.0, 6)
    v.trade(2, "buy", 100.0, 50)  # a buyer lifting asks at our price does not touch our bid queue
    v.trade(3, "sell", 100.0, 4)  # queue ahead now exactly 0: not yet through us
    assert v.paper.working[SYM][o.id].front == pytest.approx(0.0)
    assert o.status is OrderStatus.NEW
    v.trade(4, "sell", 100.0, 1)
    v.wait_until(5)
    (f,) = v.fills()
    assert (f.price, f.liquidity, f.queue_ahead, f.ts) == (100.0, "maker", 10, ts(4))
    assert f.time_to_fill_ns == 4 * NS and o.status is OrderStatus.FILLED


def test_a_trade_through_the_price_fills_whatever_the_queue():
    v = Venue(latency_ms=0)
    v.book(0, [(100.0, 500)], [(100.1, 10)])
    o = v.place("buy", 3, 100.0)
    v.trade(1, "sell", 99.9, 0.5)  # one small print below our bid: the whole level traded
    v.wait_until(2)
    (f,) = v.fills()
    assert (f.price, f.qty, f.liquidity, f.queue_ahead) == (100.0, 3, "maker", 500)
    assert o.status is OrderStatus.FILLED


def test_opposite_best_crossing_our_price_fills_without_a_trade():
    v = Venue(latency_ms=0)
    v.book(0, [(100.0, 10)], [(100.1, 10)])
    o = v.place("sell", 1, 100.3)
    v.book(1, [(100.2, 10)], [(100.4, 10)])  # bid moved up but below us: no fill
    assert o.status is OrderStatus.NEW
    v.book(2, [(100.3, 4)], [(100.4, 10)])  # best bid reaches our ask
    v.wait_until(3)
    (f,) = v.fills()
    assert (f.price, f.side, f.liquidity) == (100.3, "sell", "maker")


def test_shrinking_level_caps_the_queue_and_growth_does_not_move_it():
    v = Venue(latency_ms=0)
    v.book(0, [(100.0, 10)], [(100.1, 10)])
    o = v.place("buy", 1, 100.0)
    v.delta(1, bids=[(100.0, 40)])
    assert v.paper.working[SYM][o.id].front == 10  # 30 joined behind us
    v.delta(2, bids=[(100.0, 3)])
    assert v.paper.working[SYM][o.id].front == 3  # we cannot be further back than the level
    v.trade(3, "sell", 100.0, 4)
    v.wait_until(4)
    (f,) = v.fills()
    assert f.queue_ahead == 10 and f.ts == ts(3)


@pytest.mark.parametrize("model,power,filled_at", [
    ("riskaverse", 2.0, 7), ("power", 1.0, 5), ("power", 3.0, 6), ("power2", 3.0, 5), ("power3", 3.0, 7),
    ("log", 2.0, 5), ("log2", 2.0, 6),
])
def test_queue_models_reproduce_the_hftbacktest_vector(model, power, filled_at):
    """quant.md 4.2: BUY 1 @ 100.0 joins behind 10; level grows to 30, shrinks to 20; sells of 9,1,1,1."""
    v = Venue(latency_ms=0.001, queue_model=model, power=power)
    v.book(0, [(100.0, 10)], [(100.1, 10)])
    v.wait_until(2)
    o = v.place("buy", 1, 100.0)
    v.delta(3, bids=[(100.0, 30)])
    v.delta(4, bids=[(100.0, 20)])
    for t, q in ((5, 9), (6, 1), (7, 1), (8, 1)):
        v.trade(t, "sell", 100.0, q)
    v.wait_until(9)
    (f,) = v.fills()
    assert f.ts == ts(filled_at) and o.status is OrderStatus.FILLED


def test_stop_triggers_on_trade_price_and_walks_the_book_as_taker():
    v = Venue(latency_ms=0)
    v.book(0, [(100.0, 10)], [(100.1, 10)])
    v.place("buy", 3)  # market: long 3
    v.wait_until(0.5)
    stop = v.place("sell", 3, None, order_type=OrderType.STOP, trigger_price=99.5, reduce_only=True,
                   purpose=Purpose.STOP_LOSS)
    v.wait_until(1)
    assert stop.status is OrderStatus.UNTRIGGERED
    v.book(2, [(99.4, 1), (99.3, 1), (99.2, 5)], [(99.6, 10)])  # the book alone never triggers a stop
    v.trade(3, "sell", 99.6, 1)
    assert stop.status is OrderStatus.UNTRIGGERED
    v.trade(4, "sell", 99.5, 1)
    v.wait_until(5)
    fills = v.fills()
    f = fills[-1]
    assert f.order_id == stop.id and f.liquidity == "taker"
    assert f.price == pytest.approx((99.4 + 99.3 + 99.2) / 3)  # walked three levels: slippage
    assert f.fee == pytest.approx(f.price * 3 * 5.5e-4)
    assert v.paper.positions[SYM] == 0.0 and v.engine.portfolio.positions[SYM].qty == 0.0
    assert v.engine.portfolio.closed[-1].exit_reason == "sl"


def test_latency_applies_each_way():
    v = Venue(latency_ms=100)
    v.book(0, [(100.0, 10)], [(100.1, 10)])
    o = v.place("buy", 1, 99.0)
    v.wait_until(0.099)
    assert not v.paper.working  # still on its way to the exchange
    v.wait_until(0.1)
    assert o.id in v.paper.working[SYM] and o.status is OrderStatus.PENDING  # resting; the ack is on its way
    v.wait_until(0.2)
    assert o.status is OrderStatus.NEW and o.updated_ts == ts(0.1)  # stamped with exchange time
    v.trade(1.0, "sell", 98.0, 1)
    v.wait_until(1.099)
    assert not v.fills()
    v.wait_until(1.1)
    (f,) = v.fills()
    assert f.ts == ts(1) and f.placed_ts == ts(0) and f.time_to_fill_ns == 1 * NS
    v.engine.cancel_order(o.id)  # too late: it filled; nothing changes
    v.wait_until(2)
    assert o.status is OrderStatus.FILLED


def test_cancel_reaches_the_exchange_after_the_latency_and_an_order_can_fill_meanwhile():
    v = Venue(latency_ms=100)
    v.book(0, [(100.0, 10)], [(100.1, 10)])
    o = v.place("buy", 1, 99.0)
    v.wait_until(0.5)
    v.engine.cancel_order(o.id)
    v.trade(0.55, "sell", 98.9, 1)  # fills before the cancel arrives at 0.6
    v.wait_until(1)
    assert o.status is OrderStatus.FILLED and len(v.fills()) == 1
    o2 = v.place("buy", 1, 99.0)
    v.wait_until(1.5)
    v.engine.cancel_order(o2.id)
    v.wait_until(1.7)
    assert o2.status is OrderStatus.CANCELLED and SYM not in v.paper.working


def test_maker_and_taker_fees():
    v = Venue(latency_ms=0)
    v.book(0, [(100.0, 10)], [(100.1, 10)])
    v.place("buy", 10, 100.0)
    v.trade(1, "sell", 99.9, 1)
    v.wait_until(2)
    v.place("sell", 10)
    v.wait_until(3)
    maker, taker = v.fills()
    assert maker.fee == pytest.approx(100.0 * 10 * 2e-4) and maker.liquidity == "maker"
    assert taker.fee == pytest.approx(100.0 * 10 * 5.5e-4) and taker.liquidity == "taker"
    assert v.paper.stats.fees == pytest.approx(maker.fee + taker.fee)


def test_reduce_only_never_opens_and_a_closed_position_cancels_the_rest():
    v = Venue(latency_ms=0)
    v.book(0, [(100.0, 10)], [(100.1, 10)])
    lone = v.place("sell", 1, 101.0, reduce_only=True)
    v.wait_until(0.5)
    assert lone.status is OrderStatus.REJECTED and "reduce-only" in lone.reject_reason
    v.place("buy", 2)
    v.wait_until(1)
    tp = v.place("sell", 2, 100.5, reduce_only=True, purpose=Purpose.TAKE_PROFIT)
    sl = v.place("sell", 2, None, order_type=OrderType.STOP, trigger_price=99.0, reduce_only=True,
                 purpose=Purpose.STOP_LOSS)
    v.wait_until(1.5)
    v.trade(2, "buy", 100.6, 1)  # through the TP
    v.wait_until(3)
    assert tp.status is OrderStatus.FILLED
    assert sl.status is OrderStatus.CANCELLED  # the exchange dropped it when the position closed
    assert v.engine.portfolio.closed[-1].exit_reason == "tp" and not v.paper.working


def test_take_profit_and_stop_loss_due_in_the_same_update_the_stop_wins():
    """The tie rule: in one update, triggered stops are matched before resting limits.

    One print can only be due for both when the feed is inconsistent with the book (a trade at
    99.0 while the book shows 97.9/98.1, as replayed data with different feed delays can show):
    it is through the resting sell at 98.0 and at the stop's trigger.
    """
    v = Venue(latency_ms=0)
    v.book(0, [(100.0, 10)], [(100.1, 10)])
    v.place("buy", 1)  # long 1 (market: no trade print needed)
    v.book(1, [(97.9, 10)], [(98.1, 10)])
    tp = v.place("sell", 1, 98.0, reduce_only=True, purpose=Purpose.TAKE_PROFIT)
    sl = v.place("sell", 1, None, order_type=OrderType.STOP, trigger_price=99.0, reduce_only=True,
                 purpose=Purpose.STOP_LOSS)
    v.wait_until(2)
    assert (tp.status, sl.status) == (OrderStatus.NEW, OrderStatus.UNTRIGGERED)
    v.trade(3, "buy", 99.0, 1)
    v.wait_until(4)
    assert sl.status is OrderStatus.FILLED and tp.status is OrderStatus.CANCELLED
    assert [t.exit_reason for t in v.engine.portfolio.closed] == ["sl"]
    assert v.engine.portfolio.closed[0].exit_price == 97.9  # the stop walked the bid as a taker


def test_funding_is_paid_on_the_exchange_position_at_funding_time():
    v = Venue(latency_ms=0)
    v.book(0, [(60_000.0, 10)], [(60_000.1, 10)])
    v.place("buy", 2)
    v.wait_until(1)
    f8 = ts(8 * 3600)
    v.at(2, Ticker, mark=60_000.0, funding_rate=0.0001, next_funding_ts=f8)
    v.at(3600, Ticker, mark=60_000.0)
    assert v.engine.portfolio.funding == 0.0
    v.at(8 * 3600, Ticker, mark=60_000.0, next_funding_ts=f8 + 8 * 3600 * NS)  # the funding time has passed
    assert v.engine.portfolio.funding == pytest.approx(-12.0)  # quant.md 6.3: long 2 BTC at 60,000 pays 12
    assert v.paper.stats.funding == pytest.approx(-12.0)


def test_events_for_symbols_without_orders_are_ignored_fast():
    v = Venue(latency_ms=0)
    v.engine.dispatch(Trade(ts(1), "OTHERUSDT", "sell", 1.0, 1.0))
    assert v.paper.working == {}


def test_snapshot_restore_keeps_queue_positions_and_messages_in_flight():
    v = Venue(latency_ms=100)
    v.book(0, [(100.0, 10)], [(100.1, 10)])
    o = v.place("buy", 1, 100.0)
    v.wait_until(0.15)  # resting at the exchange with queue 10; its ack still in flight
    v.trade(0.16, "sell", 100.0, 4)
    state = json.loads(json.dumps(v.paper.snapshot()))
    assert state["working"][0]["front"] == 6 and state["inflight"][0][2] == "update"

    w = Venue(latency_ms=100)
    w.engine.orders[o.id] = w.engine.open_orders[o.id] = o  # what the store restores on the engine side
    w.clock.advance_to(ts(0.16))
    w.paper.restore(state)
    assert w.paper.snapshot() == state
    w.book(0.17, [(100.0, 6)], [(100.1, 10)])
    w.wait_until(0.2)
    assert o.status is OrderStatus.NEW  # the ack restored in flight arrived on time
    w.trade(0.3, "sell", 100.0, 7)
    w.wait_until(0.5)
    (f,) = w.fills()
    assert f.queue_ahead == 10 and o.status is OrderStatus.FILLED
