"""Event ordering across feeds, SimClock timers, RollingQuantile and CascadeDetector edges."""

from __future__ import annotations

import asyncio

import pytest

from engine.clock import SimClock
from engine.config import Settings
from engine.engine import Engine
from engine.events import NS, BookSnapshot, Liquidation, Ticker, Trade
from engine.stats import CascadeDetector, RollingQuantile
from engine.strategies.base import Strategy


class ListFeed:
    live = False

    def __init__(self, name, events):
        self.name = name
        self._events = events

    def events(self):
        return iter(self._events)


def trade(ts, sym="BTCUSDT", px=100.0, tid=""):
    return Trade(ts, sym, "buy", px, 1.0, tid)


class Recorder(Strategy):
    name = "recorder"
    subscriptions = (Trade, Liquidation, Ticker, BookSnapshot)

    def __init__(self, settings, symbols):
        super().__init__(settings, symbols)
        self.seen = []

    def on_event(self, ev, ctx):
        self.seen.append((ev.ts, getattr(ev, "trade_id", ""), ctx.now))
        return []


def test_merge_orders_by_ts_then_feed_then_arrival():
    a = ListFeed("a", [trade(1, tid="a1"), trade(5, tid="a5"), trade(5, tid="a5b"), trade(9, tid="a9")])
    b = ListFeed("b", [trade(0, tid="b0"), trade(5, tid="b5"), trade(7, tid="b7")])
    got = [e.trade_id for e in Engine.merge([a, b])]
    assert got == ["b0", "a1", "a5", "a5b", "b5", "b7", "a9"]
    # feed order is the tie-break: swapping the feeds swaps who goes first at ts=5
    got2 = [e.trade_id for e in Engine.merge([b, a])]
    assert got2 == ["b0", "a1", "b5", "a5", "a5b", "b7", "a9"]


def test_engine_dispatches_in_merged_order_and_moves_the_clock():
    s = Settings()
    rec = Recorder(s, s.engine.symbols)
    eng = Engine(s, strategies=[rec])
    a = ListFeed("a", [trade(10 * NS, tid="x"), trade(20 * NS, tid="y")])
    b = ListFeed("b", [trade(10 * NS, tid="z")])
    asyncio.run(eng.run([a, b]))
    assert [t for _, t, _ in rec.seen] == ["x", "z", "y"]
    assert all(ts == now for ts, _, now in rec.seen)  # the clock is at the event's time
    assert eng.stats.events == 3


def test_duration_counts_feed_seconds():
    s = Settings()
    eng = Engine(s)
    feed = ListFeed("a", [trade(i * NS) for i in range(100)])
    asyncio.run(eng.run([feed], duration_s=10))
    assert eng.stats.events == 11  # t = 0..10 s inclusive
    assert eng.clock.now() == 10 * NS


def test_simclock_fires_timers_in_order_with_ties_by_registration():
    c = SimClock(0)
    fired = []
    c.call_at(5, lambda now: fired.append(("a", now)))
    c.call_at(3, lambda now: fired.append(("b", now)))
    c.call_at(5, lambda now: fired.append(("c", now)))
    t = c.call_at(4, lambda now: fired.append(("cancelled", now)))
    t.cancel()
    assert c.advance_to(4) == 1
    assert fired == [("b", 3)]
    assert c.now() == 4
    c.advance_to(5)
    assert fired == [("b", 3), ("a", 5), ("c", 5)]


def test_simclock_timer_scheduled_inside_interval_fires_and_time_never_goes_back():
    c = SimClock(100)
    fired = []

    def first(now):
        fired.append(now)
        c.call_later(10, lambda n: fired.append(n))

    c.call_at(105, first)
    c.advance_to(200)
    assert fired == [105, 115]
    c.advance_to(150)
    assert c.now() == 200
    # a timer in the past fires at the current time, not before it
    c.call_at(50, lambda n: fired.append(("late", n)))
    c.advance_to(200)
    assert fired[-1] == ("late", 200)


def test_rolling_quantile_uses_seed_until_the_window_is_full_then_refreshes_on_schedule():
    rq = RollingQuantile(0.95, size=1000, refresh_ns=3600 * NS, seed=12345.0)
    for i in range(999):
        rq.add(float(i), ts=i)
    assert rq.value == 12345.0 and not rq.warm
    rq.add(999.0, ts=999)  # the 1,000th value computes at once
    assert rq.warm
    assert rq.value == pytest.approx(949.05)  # numpy linear quantile of 0..999
    for i in range(1000, 1500):  # inside the hour: no recomputation
        rq.add(float(i), ts=1000 + i)
    assert rq.value == pytest.approx(949.05)
    rq.add(1500.0, ts=999 + 3600 * NS)  # exactly an hour after the last computation
    assert rq.value == pytest.approx(501 + 949.05)


def liq(t_s, notional, side="long", sym="ETHUSDT"):
    return Liquidation(int(t_s * NS), sym, side, 100.0, notional / 100.0, "Buy" if side == "long" else "Sell")


def test_cascade_window_is_inclusive_at_exactly_60s():
    d = CascadeDetector("ETHUSDT", window_ns=60 * NS, min_count=2)
    assert d.on_liquidation(liq(0, 100_000), 80_000) is None
    c = d.on_liquidation(liq(60, 90_000), 80_000)
    assert c is not None and c.count == 2 and c.duration_s == 60.0
    assert d.fired == 1


def test_cascade_window_excludes_60s_plus_1ns_and_ignores_small_liquidations():
    d = CascadeDetector("ETHUSDT", window_ns=60 * NS, min_count=2)
    d.on_liquidation(liq(0, 100_000), 80_000)
    assert d.on_liquidation(liq(30, 79_999), 80_000) is None  # below threshold: not a member
    late = Liquidation(60 * NS + 1, "ETHUSDT", "long", 100.0, 1000.0, "Buy")
    assert d.on_liquidation(late, 80_000) is None  # opens a new window instead
    assert d.current.start_ts == 60 * NS + 1 and d.current.count == 1
    assert d.fired == 0


def test_cascade_tracks_sides_dominance_and_fires_once():
    d = CascadeDetector("ETHUSDT", window_ns=60 * NS, min_count=2)
    d.on_liquidation(liq(0, 100_000, "short"), 80_000)
    c = d.on_liquidation(liq(5, 300_000, "long"), 80_000)
    assert c is not None and c.dominant == "long"
    assert d.on_liquidation(liq(8, 90_000, "short"), 80_000) is None  # already fired
    assert (c.count, c.long_count, c.short_count) == (3, 1, 2)
    assert c.long_notional == pytest.approx(300_000) and c.short_notional == pytest.approx(190_000)
    assert c.duration_s == 8.0
    finished = d.expire(int(61 * NS))
    assert finished is c and d.completed == 1 and d.mean_duration_s == 8.0


def test_engine_counts_cascades_with_threshold_from_1000th_liquidation():
    s = Settings()
    eng = Engine(s)
    evs = [liq(i, 1_000.0 + i) for i in range(1000)]  # ETH seed threshold is 80K: none qualify
    for e in evs:
        eng.dispatch(e)
    assert eng.stats.per_symbol_cascades.get("ETHUSDT", 0) == 0
    thr = eng.markets["ETHUSDT"].liq_threshold.value
    assert thr == pytest.approx(1000 + 949.05)
    eng.dispatch(liq(2000, thr + 1))
    eng.dispatch(liq(2010, thr + 5))
    assert eng.stats.per_symbol_cascades["ETHUSDT"] == 1


def test_wallclock_starts_at_wall_time_and_sync_fires_due_timers():
    import time

    from engine.clock import WallClock

    before = time.time_ns()
    c = WallClock()
    assert before <= c.now() <= time.time_ns()
    fired = []
    c.call_later(0, fired.append)
    c.call_later(3600 * NS, fired.append)  # an hour away: not due
    assert c.sync() == 1 and len(fired) == 1 and fired[0] >= before
    assert c.now() >= fired[0]
