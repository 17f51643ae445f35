"""The live public feed against a fake Bybit stream on 127.0.0.1, with injected faults.

After every fault the client must reconnect/resubscribe as needed, its book must equal
the server's book, nothing may crash, and counters and feed states must say what happened.
Waits are on conditions (with a generous timeout), never on fixed sleeps, so the outcome
does not depend on machine speed.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from fake_bybit import FakePublicStream

from engine.config import Settings
from engine.engine import Engine
from engine.events import FeedStatus, Liquidation, Trade
from engine.feeds.bybit import LIVE, RECONNECTING, REJECTED, STALE, Backoff, BybitPublicFeed, RateLimitedLog

SYMS = ["BTCUSDT", "ETHUSDT"]


def fast_settings(**bybit) -> Settings:
    # timeouts far above the fake's response times, so that a busy machine does not fake a fault
    cfg = {"ping_interval_s": 0.05, "pong_timeout_s": 2.0, "stale_after_s": 4.0, "topic_stale_s": 1.0,
           "reconnect_min_s": 0.01, "reconnect_max_s": 0.05, "load_instruments": False, "ratio_poll_s": 0}
    cfg.update(bybit)
    return Settings(engine={"symbols": SYMS}, bybit=cfg)


async def until(cond, timeout: float = 10.0, what: str = "") -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await asyncio.sleep(0.005)


class Harness:
    def __init__(self, server: FakePublicStream, settings: Settings, emit_delay: float = 0.0):
        self.server = server
        self.engine = Engine(settings)
        self.notes = self.engine.notifier.subscribe()
        self.feed = BybitPublicFeed(settings, SYMS, server.url, seed=3)
        self.feed.attach(self.engine)
        self.events: list = []
        self.emit_delay = emit_delay
        self.task: asyncio.Task | None = None

    async def emit(self, ev) -> None:
        if self.emit_delay:
            await asyncio.sleep(self.emit_delay)
        self.events.append(ev)
        self.engine.dispatch(ev, live=True)

    def start(self) -> None:
        self.task = asyncio.create_task(self.feed.run(self.emit))

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    def book(self, sym: str):
        b = self.engine.market(sym).book
        return dict(b.bids), dict(b.asks)

    def in_sync(self, sym: str) -> bool:
        # STALE only means "quiet for a while"; the book is still the right one
        return self.book(sym) == self.server.book_floats(sym) and self.feed.book_state(sym) in (LIVE, STALE)

    async def synced(self) -> None:
        await until(lambda: all(self.in_sync(s) for s in SYMS), what="books in sync")


@pytest.fixture
async def server():
    s = FakePublicStream(SYMS)
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
async def harness(server):
    h = Harness(server, fast_settings())
    h.start()
    await h.synced()
    yield h
    await h.stop()


async def test_subscribes_one_symbol_per_request_and_streams_every_kind(harness, server):
    subs = [m["args"] for m in server.received if m.get("op") == "subscribe"]
    assert sorted(subs) == sorted([[f"allLiquidation.{s}", f"publicTrade.{s}", f"orderbook.50.{s}", f"tickers.{s}"]
                                   for s in SYMS])
    await server.liquidations("BTCUSDT", [("Buy", "100.5", "2"), ("Sell", "99.5", "3")])
    await server.trade("ETHUSDT", "Sell", "199.5", "0.5")
    await server.book_delta("BTCUSDT", bids=[("99.5", "0"), ("99.7", "4.000")], asks=[("100.5", "9.000")])
    await server.ticker_delta("BTCUSDT", {"markPrice": "100.3"})
    await until(lambda: harness.engine.market("BTCUSDT").mark == 100.3, what="ticker")
    liqs = [e for e in harness.events if isinstance(e, Liquidation)]
    assert [(e.side, e.price, e.qty) for e in liqs] == [("long", 100.5, 2.0), ("short", 99.5, 3.0)]
    (trade,) = [e for e in harness.events if isinstance(e, Trade)]
    assert (trade.symbol, trade.side, trade.price) == ("ETHUSDT", "sell", 199.5)
    assert harness.in_sync("BTCUSDT")
    m = harness.engine.market("BTCUSDT")
    assert (m.index, m.open_interest, m.funding_rate) == (100.2, 5000.0, 0.0001)  # kept from the snapshot
    states = harness.engine.feed_states
    assert states["bybit"] == LIVE and states["book.BTCUSDT"] == LIVE
    assert states["bybit.ETHUSDT.allLiquidation"] == LIVE and states["bybit.BTCUSDT.tickers"] == LIVE
    assert harness.feed.counters["malformed"] == 0 and harness.feed.counters["reconnects"] == 0
    assert all(e.recv_ts > 0 for e in harness.events)
    feed_notes = [p for kind, p in harness.notes.drain() if kind == "feed"]
    assert any(isinstance(p, FeedStatus) and (p.symbol, p.topic, p.state) == ("BTCUSDT", "orderbook", LIVE)
               for p in feed_notes)
    assert any(p.feed == "bybit" and not p.symbol and p.state == LIVE for p in feed_notes)


async def test_dropped_connection_reconnects_resubscribes_and_resyncs(harness, server):
    harness.feed.counters["reconnects"] = 0
    server.drop_all()
    await until(lambda: harness.feed.counters["reconnects"] == 1, what="reconnect")
    await server.book_delta("ETHUSDT", asks=[("200.5", "0")])  # changes while we were away
    await until(lambda: server.connects == 2 and len(server.subs) == 1 and len(next(iter(server.subs.values()))) == 8,
                what="resubscribed")
    await server.book_delta("BTCUSDT", bids=[("99.0", "7.000")])
    await harness.synced()
    assert harness.engine.feed_states["bybit"] == LIVE
    assert server.count("subscribe") == 4
    assert harness.feed.counters["connects"] == 2


async def test_unanswered_pings_force_a_reconnect(server):
    harness = Harness(server, fast_settings(pong_timeout_s=0.3))
    harness.start()
    await harness.synced()
    server.answer_pings = False
    await until(lambda: harness.feed.counters["pong_timeouts"] >= 1, what="pong timeout")
    assert harness.engine.feed_states["bybit"] in (RECONNECTING, LIVE)
    server.answer_pings = True
    await until(lambda: harness.feed.state == LIVE and server.connects >= 2, what="back")
    await server.book_delta("BTCUSDT", asks=[("100.5", "1.500")])
    await harness.synced()
    await until(lambda: harness.feed.counters["pongs"] > 0, what="pongs again")
    await harness.stop()


async def test_garbage_frames_are_counted_and_skipped(harness, server):
    for junk in ("not json at all", "[1,2,3]", '{"topic":"orderbook.50.BTCUSDT","type":"delta","data":{"s":"X"}}',
                 '{"topic":"publicTrade.BTCUSDT","ts":1,"data":[{"T":1,"s":"BTCUSDT","S":"Up","v":"1","p":"2"}]}',
                 '{"topic":"kline.1.BTCUSDT","type":"snapshot","ts":1,"data":[]}'):
        await server.send_raw(junk)
    await server.book_delta("BTCUSDT", bids=[("99.6", "1.250")])
    await harness.synced()
    c = harness.feed.counters
    assert (c["malformed"], c["unsupported"], c["reconnects"], c["errors"]) == (4, 1, 0, 0)
    assert harness.engine.feed_states["bybit"] == LIVE


async def test_skipped_update_id_triggers_a_resubscribe_and_a_fresh_book(harness, server):
    await server.book_delta("BTCUSDT", bids=[("99.8", "1.000")], skip=1)  # u jumps by 2
    await until(lambda: harness.feed.counters["gaps"] == 1, what="gap")
    await server.book_delta("BTCUSDT", asks=[("100.7", "2.000")])
    await harness.synced()
    c = harness.feed.counters
    assert (c["gaps"], c["resubscribes"], c["reconnects"]) == (1, 1, 0)
    assert server.count("unsubscribe") == 1
    assert harness.engine.feed_states["book.BTCUSDT"] == LIVE


async def test_u1_restart_snapshot_replaces_the_book(harness, server):
    await server.restart_book("ETHUSDT", {"180.0": "1.000", "179.5": "2.000"}, {"181.0": "3.000"})
    await server.book_delta("ETHUSDT", bids=[("180.5", "0.500")])  # u = 2 continues after the restart
    await harness.synced()
    assert harness.book("ETHUSDT") == ({180.5: 0.5, 180.0: 1.0, 179.5: 2.0}, {181.0: 3.0})
    c = harness.feed.counters
    assert (c["book_resets"], c["gaps"], c["resubscribes"]) == (1, 0, 0)


async def test_slow_consumer_keeps_the_book_correct(server):
    h = Harness(server, fast_settings(), emit_delay=0.002)
    h.start()
    await h.synced()
    for i in range(150):
        await server.book_delta("BTCUSDT", bids=[(f"{90 + i * 0.1:.1f}", f"{1 + i % 5}.000")])
    await until(lambda: h.in_sync("BTCUSDT"), timeout=20, what="slow consumer caught up")
    assert h.feed.max_emit_wait_ms >= 2.0
    assert h.feed.counters["errors"] == 0
    await h.stop()


async def test_rejected_topic_does_not_take_the_others_down():
    server = FakePublicStream(SYMS, reject_topics={"allLiquidation.ETHUSDT"})
    await server.start()
    h = Harness(server, fast_settings())
    h.start()
    try:
        await h.synced()
        await until(lambda: h.engine.feed_states.get("bybit.ETHUSDT.allLiquidation") == REJECTED, what="rejected")
        states = h.engine.feed_states
        assert states["bybit.ETHUSDT.publicTrade"] == LIVE and states["bybit.ETHUSDT.tickers"] == LIVE
        assert h.feed.counters["rejected_topics"] == 1
        # the failed 4-topic request was split into single topics to find the bad one
        singles = [m["args"] for m in server.received if m.get("op") == "subscribe" and len(m["args"]) == 1]
        assert sorted(a[0] for a in singles) == sorted(
            ["allLiquidation.ETHUSDT", "publicTrade.ETHUSDT", "orderbook.50.ETHUSDT", "tickers.ETHUSDT"])
        await server.trade("ETHUSDT", "Buy", "200.5", "1")
        await until(lambda: any(isinstance(e, Trade) for e in h.events), what="trade after rejection")
    finally:
        await h.stop()
        await server.stop()


async def test_silent_book_turns_stale_then_live_again(server):
    harness = Harness(server, fast_settings(topic_stale_s=0.3))
    harness.start()
    await harness.synced()
    await until(lambda: harness.engine.feed_states["book.ETHUSDT"] == STALE, what="stale book")
    assert harness.feed.counters["stale_topics"] >= 1
    assert harness.engine.feed_states["bybit"] == LIVE  # the connection itself is fine (pongs)
    await server.book_delta("ETHUSDT", bids=[("199.0", "1.000")])
    await until(lambda: harness.engine.feed_states["book.ETHUSDT"] == LIVE, what="live again")
    assert harness.in_sync("ETHUSDT")
    await harness.stop()


async def test_nothing_for_a_while_reconnects_with_backoff(server):
    """No message at all (pings unanswered, no data) for stale_after_s: reconnect."""
    h = Harness(server, fast_settings(ping_interval_s=5.0, stale_after_s=0.3, topic_stale_s=0.2))
    h.start()
    await h.synced()
    await until(lambda: h.feed.counters["data_timeouts"] >= 1, what="data timeout")
    await until(lambda: h.feed.state == LIVE and server.connects >= 2, what="reconnected")
    await h.synced()
    await h.stop()


def test_backoff_is_exponential_with_jitter_and_capped():
    import random
    b = Backoff(0.5, 30.0, random.Random(1))
    delays = [b.next_delay() for _ in range(10)]
    for n, d in enumerate(delays):
        cap = min(30.0, 0.5 * 2 ** n)
        assert cap / 2 <= d <= cap
    assert max(delays) <= 30.0 and delays[-1] >= 15.0
    b.reset()
    assert b.next_delay() <= 0.5


def test_rate_limited_log_holds_back_repeats():
    lines: list[str] = []
    now = [0.0]
    rl = RateLimitedLog(lambda m, level: lines.append(m), interval_s=10.0, clock=lambda: now[0])
    for _ in range(5):
        rl("k", "bad message")
    now[0] = 11.0
    rl("k", "bad message")
    rl("other", "different")
    assert lines == ["bad message", "bad message (4 similar suppressed)", "different"]
