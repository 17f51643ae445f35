"""Bybit v5 live public market data (`--feed bybit`) on asyncio + `websockets`.

pybit's WebSocket is not used: it is thread-based, and a callback error or a
rejected subscribe ends it for good (../shared/reference/bybit-v5.md §3.5).

`BybitConnection` keeps one socket alive: connect, say hello (subscribe, or
auth for the private stream), send `{"op":"ping"}` every `ping_interval_s`,
and treat a ping unanswered for `pong_timeout_s`, or no message at all for
`stale_after_s`, as a dead connection. It then reconnects after an
exponential backoff with jitter, capped at `reconnect_max_s` (<= 30 s).

`BybitPublicFeed` subscribes every symbol to allLiquidation, publicTrade,
orderbook.50 and tickers, one symbol per request (one bad topic can fail a
whole request), splits a rejected request into single topics, and keeps the
order book honest: a snapshot or `u == 1` resets it, a gap in `u` triggers a
resubscribe (fresh snapshot) and deltas are dropped until it arrives.

Feed health is published per symbol and topic in `engine.feed_states`:
  "bybit"                      connection: LIVE | RECONNECTING
  "bybit.BTCUSDT.orderbook"    per topic: LIVE | STALE | RECONNECTING | REJECTED
  "book.BTCUSDT"               the symbol's book, for the risk gate: LIVE only when usable
and as `engine.notify("feed", FeedStatus(...))` on every change.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from ..config import BybitConfig, Settings
from ..events import BookDelta, BookSnapshot, FeedStatus
from .bybit_parse import (
    BookSequencer,
    BybitParser,
    MalformedMessage,
    UnsupportedTopic,
    decode,
    is_pong,
)

if TYPE_CHECKING:
    from ..bybit_rest import BybitRest
    from ..engine import Engine

log = logging.getLogger("liqdesk.bybit")

LIVE = "LIVE"
STALE = "STALE"
RECONNECTING = "RECONNECTING"
REJECTED = "REJECTED"

# Topics with a steady push cadence (book 20 ms, ticker 100 ms): silence means trouble.
# Trades and liquidations arrive only when they happen, so silence there is normal.
CONTINUOUS_KINDS = ("orderbook", "tickers")

MAINNET_PUBLIC = "wss://stream.bybit.com/v5/public/linear"
TESTNET_PUBLIC = "wss://stream-testnet.bybit.com/v5/public/linear"
PRIVATE_WS = {"live": "wss://stream.bybit.com/v5/private", "testnet": "wss://stream-testnet.bybit.com/v5/private",
              "demo": "wss://stream-demo.bybit.com/v5/private"}
REST_URL = {"live": "https://api.bybit.com", "testnet": "https://api-testnet.bybit.com",
            "demo": "https://api-demo.bybit.com"}


@dataclass(frozen=True, slots=True)
class Endpoints:
    public_ws: str
    private_ws: str
    rest: str


def endpoints(cfg: BybitConfig, mode: str) -> Endpoints:
    """Configured URLs, else the mode's defaults. Demo has no public stream: it uses mainnet's.
    Paper trades on mainnet public data."""
    net = mode if mode in ("testnet", "demo") else "live"
    public = TESTNET_PUBLIC if net == "testnet" else MAINNET_PUBLIC
    return Endpoints(cfg.public_ws_url or public, cfg.private_ws_url or PRIVATE_WS[net],
                     (cfg.rest_url or REST_URL[net]).rstrip("/"))


def is_loopback(url: str) -> bool:
    return (urlparse(url).hostname or "") in ("127.0.0.1", "localhost", "::1")


class RateLimitedLog:
    """At most one line per key per `interval_s`; the next line says how many were held back."""

    def __init__(self, sink: Callable[[str, str], None], interval_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic):
        self.sink = sink
        self.interval_s = interval_s
        self.clock = clock
        self._last: dict[str, list] = {}  # key -> [time of last line, suppressed since]

    def __call__(self, key: str, message: str, level: str = "warn") -> None:
        now = self.clock()
        st = self._last.get(key)
        if st is not None and now - st[0] < self.interval_s:
            st[1] += 1
            return
        held = st[1] if st is not None else 0
        self._last[key] = [now, 0]
        self.sink(message + (f" ({held} similar suppressed)" if held else ""), level)


class Backoff:
    """Exponential backoff with jitter: attempt n waits randomly in [d/2, d], d = min(cap, base * 2^n)."""

    def __init__(self, base_s: float, cap_s: float, rng: random.Random):
        self.base_s = base_s
        self.cap_s = cap_s
        self.rng = rng
        self.attempt = 0

    def next_delay(self) -> float:
        d = min(self.cap_s, self.base_s * (2 ** min(self.attempt, 30)))
        self.attempt += 1
        return d / 2 + self.rng.random() * d / 2

    def reset(self) -> None:
        self.attempt = 0


class ConnectionLost(Exception):
    """The watchdog or the server ended a connection; the message says why."""


Emit = Callable[[Any], Awaitable[None] | None]


class BybitConnection:
    """One Bybit v5 WebSocket kept alive. Subclasses implement `on_open` and `on_message`."""

    feed_name = "bybit"

    def __init__(self, url: str, cfg: BybitConfig, *, seed: int | None = None,
                 now_ns: Callable[[], int] = time.time_ns,
                 log_sink: Callable[[str, str], None] | None = None):
        self.url = url
        self.cfg = cfg
        self.now_ns = now_ns
        self.backoff = Backoff(cfg.reconnect_min_s, cfg.reconnect_max_s, random.Random(seed))
        self.counters: dict[str, int] = dict.fromkeys(
            ("messages", "events", "malformed", "unsupported", "errors", "pings", "pongs", "connects",
             "reconnects", "pong_timeouts", "data_timeouts"), 0)
        self.connected = asyncio.Event()
        self.state = RECONNECTING
        self.last_error = ""
        self._log_sink = log_sink
        self.warn = RateLimitedLog(self._log)
        self._ws: ClientConnection | None = None
        self._req = itertools.count(1)
        self._last_msg = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop the connection runs on
        self._ping_sent: float | None = None
        self._healthy = False

    # -- hooks ---------------------------------------------------------------------------------
    async def on_open(self, ws: ClientConnection) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    async def on_message(self, msg: dict, recv_ns: int) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def on_raw(self, recv_ns: int, raw: str | bytes) -> None:
        """Every frame as received (the recorder writes these)."""

    async def on_frame(self, raw: str | bytes, recv_ns: int) -> bool:
        """A fast path for frames a subclass can handle undecoded; True if handled."""
        return False

    def on_state(self, state: str, detail: str) -> None:
        """The connection went LIVE or RECONNECTING."""

    def on_tick(self, now: float) -> None:
        """Called by the watchdog a few times per staleness period."""

    # -- logging -------------------------------------------------------------------------------
    def _log(self, message: str, level: str = "info") -> None:
        if self._log_sink is not None:
            self._log_sink(f"{self.feed_name}: {message}", level)
        else:
            pylevel = logging.WARNING if level in ("warn", "error") else logging.INFO
            log.log(pylevel, "%s: %s", self.feed_name, message)

    # -- the connection loop -------------------------------------------------------------------
    async def send(self, payload: dict) -> None:
        ws = self._ws
        if ws is not None:
            await ws.send(orjson.dumps(payload).decode())

    def next_req_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._req)}"

    async def run_connection(self) -> None:
        """Connect and serve until cancelled; reconnect after every loss."""
        self._loop = asyncio.get_running_loop()
        first = True
        while True:
            reason = ""
            try:
                kw: dict[str, Any] = {"ping_interval": None, "open_timeout": 10, "close_timeout": 1,
                                      "max_size": 2 ** 24, "max_queue": 64}
                if is_loopback(self.url):
                    kw["proxy"] = None
                async with connect(self.url, **kw) as ws:
                    self._ws = ws
                    self.counters["connects"] += 1
                    loop = asyncio.get_running_loop()
                    self._last_msg = loop.time()
                    self._ping_sent = None
                    self._healthy = False
                    if not first:
                        self._log(f"reconnected to {self.url}")
                    first = False
                    await self.on_open(ws)
                    self._set_state(LIVE, "connected")
                    self.connected.set()
                    await self._serve(ws)
            except asyncio.CancelledError:
                self._ws = None
                self.connected.clear()
                raise
            except (OSError, WebSocketException, ConnectionLost, TimeoutError) as exc:
                reason = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ConnectionLost) else str(exc)
            self._ws = None
            self.connected.clear()
            self.last_error = reason or "closed"
            self.counters["reconnects"] += 1
            self._set_state(RECONNECTING, self.last_error)
            delay = self.backoff.next_delay()
            self.warn("reconnect", f"connection lost ({self.last_error}); reconnecting in {delay:.2f} s")
            await asyncio.sleep(delay)

    def _set_state(self, state: str, detail: str) -> None:
        if state != self.state:
            self.state = state
            self.on_state(state, detail)

    async def _serve(self, ws: ClientConnection) -> None:
        tasks = [asyncio.create_task(self._read(ws)), asyncio.create_task(self._ping_loop(ws)),
                 asyncio.create_task(self._watch())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for t in done:
            exc = t.exception()
            if exc is not None:
                raise exc
        raise ConnectionLost("closed by the server")

    async def _read(self, ws: ClientConnection) -> None:
        loop = asyncio.get_running_loop()
        counters = self.counters
        async for raw in ws:
            recv_ns = self.now_ns()
            self._last_msg = loop.time()
            counters["messages"] += 1
            self.on_raw(recv_ns, raw)
            try:
                if await self.on_frame(raw, recv_ns):
                    continue
                msg = decode(raw)
                if is_pong(msg):
                    counters["pongs"] += 1
                    self._ping_sent = None
                    continue
                await self.on_message(msg, recv_ns)
            except MalformedMessage as exc:
                counters["malformed"] += 1
                self.warn("malformed", f"malformed message skipped: {exc} ({_preview(raw)})")
            except UnsupportedTopic as exc:
                counters["unsupported"] += 1
                self.warn("unsupported", f"message on unexpected topic {exc} skipped")
            except (ConnectionLost, WebSocketException):
                raise
            except Exception as exc:  # a bug here must cost one message, not the feed
                counters["errors"] += 1
                self.warn("error", f"error handling a message: {type(exc).__name__}: {exc}", "error")

    async def _ping_loop(self, ws: ClientConnection) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.cfg.ping_interval_s)
            if self._ping_sent is None:
                self._ping_sent = loop.time()
            self.counters["pings"] += 1
            await ws.send(orjson.dumps({"req_id": self.next_req_id("ping"), "op": "ping"}).decode())

    async def _watch(self) -> None:
        cfg = self.cfg
        loop = asyncio.get_running_loop()
        tick = min(max(min(cfg.pong_timeout_s, cfg.stale_after_s, cfg.topic_stale_s) / 4, 0.005), 1.0)
        while True:
            await asyncio.sleep(tick)
            now = loop.time()
            if self._ping_sent is not None and now - self._ping_sent > cfg.pong_timeout_s:
                self.counters["pong_timeouts"] += 1
                raise ConnectionLost(f"no pong for {cfg.pong_timeout_s:g} s")
            if now - self._last_msg > cfg.stale_after_s:
                self.counters["data_timeouts"] += 1
                raise ConnectionLost(f"no message for {cfg.stale_after_s:g} s")
            self.on_tick(now)

    def mark_healthy(self) -> None:
        """Data flows after the hello: the next loss starts the backoff from the bottom again."""
        if not self._healthy:
            self._healthy = True
            self.backoff.reset()


def _preview(raw: str | bytes, n: int = 80) -> str:
    text = raw if isinstance(raw, str) else raw[:n * 2].decode("utf-8", "replace")
    return repr(text[:n])


async def call_emit(emit: Emit, ev: Any) -> None:
    r = emit(ev)
    if inspect.isawaitable(r):
        await r


class BybitPublicFeed(BybitConnection):
    """The live public feed (engine LiveFeed): allLiquidation, publicTrade, orderbook.50, tickers."""

    name = "bybit"
    live = True
    BOOK_DEPTH = 50

    def __init__(self, settings: Settings, symbols: list[str] | None = None, url: str | None = None, *,
                 rest: BybitRest | None = None, seed: int | None = None,
                 now_ns: Callable[[], int] = time.time_ns,
                 on_raw: Callable[[int, str | bytes], None] | None = None,
                 log_sink: Callable[[str, str], None] | None = None):
        cfg = settings.bybit
        super().__init__(url or endpoints(cfg, "paper").public_ws, cfg, seed=seed, now_ns=now_ns,
                         log_sink=log_sink)
        self.symbols = list(symbols if symbols is not None else settings.engine.symbols)
        self.rest = rest
        self.parser = BybitParser()
        self.sequencer = BookSequencer()
        self._raw_sink = on_raw
        self.topics: dict[str, list[str]] = {
            s: [f"allLiquidation.{s}", f"publicTrade.{s}", f"orderbook.{self.BOOK_DEPTH}.{s}", f"tickers.{s}"]
            for s in self.symbols}
        self.topic_state: dict[str, str] = {t: RECONNECTING for ts in self.topics.values() for t in ts}
        self._topic_last: dict[str, float] = {}
        self._pending: dict[str, list[str]] = {}  # subscribe req_id -> topics
        self._last_ratio_ts: dict[str, int] = {}
        self.counters.update(dict.fromkeys(
            ("gaps", "duplicates", "dropped_deltas", "book_resets", "resubscribes", "rejected_topics",
             "stale_topics"), 0))
        self.max_emit_wait_ms = 0.0
        self._resync: list[str] = []  # topics to resubscribe after a gap
        self.engine: Engine | None = None
        self._emit: Emit | None = None

    # -- wiring --------------------------------------------------------------------------------
    def attach(self, engine: Engine) -> None:
        """Publish states into `engine.feed_states` and log through the engine."""
        self.engine = engine
        if self._log_sink is None:
            self._log_sink = lambda message, level: engine.log(message, level)
        engine.feed_states[self.feed_name] = self.state
        for topic, st in self.topic_state.items():
            self._publish_topic(topic, st, "")

    async def run(self, emit: Emit) -> None:
        self._emit = emit
        if self.rest is not None and self.cfg.load_instruments:
            await self._load_instruments()
        poller = None
        if self.rest is not None and self.cfg.ratio_poll_s > 0:
            poller = asyncio.create_task(self._poll_ratios())
        try:
            await self.run_connection()
        finally:
            if poller is not None:
                poller.cancel()
                await asyncio.gather(poller, return_exceptions=True)

    def on_raw(self, recv_ns: int, raw: str | bytes) -> None:
        if self._raw_sink is not None:
            self._raw_sink(recv_ns, raw)

    # -- connection hooks ----------------------------------------------------------------------
    async def on_open(self, ws: ClientConnection) -> None:
        self.sequencer.reset()
        self._pending.clear()
        self._topic_last.clear()
        for topic in self.topic_state:
            if self.topic_state[topic] != REJECTED:
                self._set_topic(topic, RECONNECTING, "subscribing")
        batch = self.cfg.subscribe_batch
        for topics in self.topics.values():
            wanted = [t for t in topics if self.topic_state[t] != REJECTED]
            for i in range(0, len(wanted), batch):
                await self._subscribe(wanted[i:i + batch])

    def on_state(self, state: str, detail: str) -> None:
        if self.engine is not None:
            self.engine.feed_states[self.feed_name] = state
            self.engine.notify("feed", FeedStatus(self.now_ns(), self.feed_name, state, detail=detail,
                                                  counters=dict(self.counters)))
        if state == RECONNECTING:
            for topic, st in self.topic_state.items():
                if st != REJECTED:
                    self._set_topic(topic, RECONNECTING, detail)

    def on_tick(self, now: float) -> None:
        limit = self.cfg.topic_stale_s
        for topic, last in self._topic_last.items():
            if self.topic_state.get(topic) == LIVE and now - last > limit:
                self.counters["stale_topics"] += 1
                self._set_topic(topic, STALE, f"no update for {limit:g} s")
                self.warn(f"stale:{topic}", f"{topic} silent for {limit:g} s: STALE")

    async def on_frame(self, raw: str | bytes, recv_ns: int) -> bool:
        fast = self.parser.parse_book_frame(raw, recv_ns)
        if fast is None:
            return False
        await self._on_events(fast[0], fast[1])
        return True

    async def on_message(self, msg: dict, recv_ns: int) -> None:
        topic = msg.get("topic")
        if topic is None:
            if msg.get("op") == "subscribe":
                await self._on_subscribe_ack(msg)
            return
        await self._on_events(topic, self.parser.parse(msg, recv_ns))

    async def _on_events(self, topic: str, events: list) -> None:
        # The hot path (one call per book delta): no per-event coroutines or lookups it can avoid.
        if not self._healthy:
            self.mark_healthy()
        kind = topic.partition(".")[0]
        if kind in CONTINUOUS_KINDS:
            self._topic_last[topic] = (self._loop or asyncio.get_running_loop()).time()
        emit = self._emit
        counters = self.counters
        symbol = ""
        for ev in events:
            t = type(ev)
            if t is BookDelta or t is BookSnapshot:
                symbol = ev.symbol
                if not self._book_ok(topic, ev):
                    continue
            if emit is None:
                continue
            counters["events"] += 1
            r = emit(ev)
            if r is not None:
                t0 = time.perf_counter()
                await r
                waited = (time.perf_counter() - t0) * 1e3
                if waited > self.max_emit_wait_ms:
                    self.max_emit_wait_ms = waited
        if self._resync:
            topics, self._resync = self._resync, []
            for t in topics:
                await self._resubscribe(t)
        st = self.topic_state.get(topic)
        if st is not LIVE and st is not None and (kind != "orderbook" or symbol in self.sequencer.last):
            self._set_topic(topic, LIVE, "")

    def _book_ok(self, topic: str, ev: BookSnapshot | BookDelta) -> bool:
        """Apply this book event? A gap queues a resubscribe of the topic (fresh snapshot)."""
        had_base = ev.symbol in self.sequencer.last
        verdict = self.sequencer.check(ev)
        c = self.counters
        if verdict == BookSequencer.APPLY:
            if had_base and type(ev) is BookSnapshot:  # the server reset a live book (or u == 1 restart)
                c["book_resets"] += 1
            return True
        if verdict == BookSequencer.DUPLICATE:
            c["duplicates"] += 1
        elif verdict == BookSequencer.NO_BASE:
            c["dropped_deltas"] += 1
        else:
            c["gaps"] += 1
            c["dropped_deltas"] += 1
            self.warn(f"gap:{ev.symbol}", f"{ev.symbol} book gap at u={ev.update_id}: resubscribing {topic}")
            self._set_topic(topic, RECONNECTING, f"gap at u={ev.update_id}")
            self._resync.append(topic)
        return False

    async def _deliver(self, ev: Any) -> None:
        emit = self._emit
        if emit is None:
            return
        self.counters["events"] += 1
        await call_emit(emit, ev)

    # -- subscriptions -------------------------------------------------------------------------
    async def _subscribe(self, topics: list[str]) -> None:
        req_id = self.next_req_id("sub")
        self._pending[req_id] = topics
        await self.send({"req_id": req_id, "op": "subscribe", "args": topics})

    async def _resubscribe(self, topic: str) -> None:
        self.counters["resubscribes"] += 1
        await self.send({"req_id": self.next_req_id("unsub"), "op": "unsubscribe", "args": [topic]})
        await self._subscribe([topic])

    async def _on_subscribe_ack(self, msg: dict) -> None:
        topics = self._pending.pop(str(msg.get("req_id", "")), None)
        if msg.get("success"):
            for t in topics or ():
                if t.partition(".")[0] not in CONTINUOUS_KINDS:
                    self._set_topic(t, LIVE, "subscribed")
            return
        reason = str(msg.get("ret_msg", ""))
        if topics is None:  # no request to match: find our topics in the server's text
            topics = [t for t in self.topic_state if t in reason]
        if len(topics) > 1:  # one bad topic fails the whole request: find it by asking one at a time
            for t in topics:
                await self._subscribe([t])
            return
        for t in topics:
            self.counters["rejected_topics"] += 1
            self._set_topic(t, REJECTED, reason)
            self._log(f"subscription rejected: {t}: {reason}", "warn")

    # -- states --------------------------------------------------------------------------------
    def _set_topic(self, topic: str, state: str, detail: str) -> None:
        if self.topic_state.get(topic) == state:
            return
        self.topic_state[topic] = state
        self._publish_topic(topic, state, detail)

    def _publish_topic(self, topic: str, state: str, detail: str) -> None:
        engine = self.engine
        if engine is None:
            return
        kind = topic.partition(".")[0]
        symbol = topic.rpartition(".")[2]
        engine.feed_states[f"{self.feed_name}.{symbol}.{kind}"] = state
        if kind == "orderbook":
            engine.feed_states[f"book.{symbol}"] = state
        engine.notify("feed", FeedStatus(self.now_ns(), self.feed_name, state, symbol, kind, detail))

    def book_state(self, symbol: str) -> str:
        return self.topic_state.get(f"orderbook.{self.BOOK_DEPTH}.{symbol}", RECONNECTING)

    # -- REST side jobs ------------------------------------------------------------------------
    async def _load_instruments(self) -> None:
        assert self.rest is not None
        try:
            table = await self.rest.instruments()
        except Exception as exc:  # keep the defaults; the feed itself does not need them
            self._log(f"instruments-info failed, keeping default specs: {exc}", "warn")
            return
        if self.engine is not None:
            self.engine.instruments.update(table)
        self._log(f"loaded {len(table)} instruments")

    async def _poll_ratios(self) -> None:
        """account-ratio has no stream: poll it and emit each new LongShortRatio."""
        assert self.rest is not None
        while True:
            for sym in self.symbols:
                try:
                    rows = await self.rest.long_short_ratio(sym, period="5min", limit=1)
                except Exception as exc:
                    self.warn(f"ratio:{sym}", f"account-ratio {sym} failed: {exc}")
                    continue
                for r in rows:
                    if r.ts > self._last_ratio_ts.get(sym, 0):
                        self._last_ratio_ts[sym] = r.ts
                        await self._deliver(r)
            await asyncio.sleep(self.cfg.ratio_poll_s)


__all__ = ["BybitConnection", "BybitPublicFeed", "Endpoints", "endpoints", "RateLimitedLog", "Backoff",
           "LIVE", "STALE", "RECONNECTING", "REJECTED"]
