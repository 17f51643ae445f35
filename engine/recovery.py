"""Checkpoints of the whole engine state, restoring them at start, and reconciling with an exchange.

`capture` takes everything a restarted engine needs to continue where it stopped: the
clock, working orders, halt state, counters, each symbol's market state (rolling P95
window, cascade detector, book, marks, funding), the portfolio, the risk gate
(cooldowns, loss-limit windows, blacklist), the approval queue, the broker (the paper
exchange's resting orders with their queue positions and its messages in flight), each
strategy's `snapshot()`, and the feed's own state, so a synthetic market continues the
same path. The store writes it in the same transaction as the rows that led to it.

`restore` puts it back before the feed starts. Orders that the store committed after
that checkpoint (an entry's durable write precedes its batch by up to `batch_ms`) are
*orphans*: in paper mode the paper exchange restarts from the checkpoint, which never saw
them, so they are marked cancelled and their ids are never reused. In demo, testnet and
live modes `reconcile` compares with the exchange, logs every difference and adopts the
exchange's truth: positions, and open orders (orphans the exchange holds are adopted).

`StoreService` ties a Store to a running engine for the headless runner and the console.
"""

from __future__ import annotations

import inspect
import itertools
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from typing import TYPE_CHECKING, Any, Protocol

from .events import EVENT_TYPES, NS
from .orders import Fill, Order, OrderStatus, OrderType, Position, Purpose
from .portfolio import SymbolCounters
from .store import Checkpoint, Saved, Store, StoreError

CHECKPOINT_IDLE_S = 1.0  # wall seconds between checkpoints when no trading rows are pending

if TYPE_CHECKING:
    from .config import Settings
    from .engine import Engine, MarketState
    from .runtime import RunOptions

_EVENT_CLASSES = {cls.__name__: cls for cls in EVENT_TYPES}
_ORDER_ID_PREFIX = "L"  # Engine order ids are "<run_id or L>-<n>"


# --------------------------------------------------------------------------------------------
# (de)serializing the pieces that have no snapshot() of their own
# --------------------------------------------------------------------------------------------
def encode_event(ev: Any) -> dict | None:
    """Tagged with its type; the event itself stays a dataclass, which orjson serializes
    (checkpoints are serialized in the same step they are captured, so sharing is safe)."""
    return None if ev is None else {"type": type(ev).__name__, "event": ev}


def decode_event(d: dict | None) -> Any:
    if d is None:
        return None
    fields = dict(d["event"])
    for side in ("bids", "asks"):
        if side in fields:
            fields[side] = [tuple(level) for level in fields[side]]
    return _EVENT_CLASSES[d["type"]](**fields)


def order_from_dict(d: dict) -> Order:
    d = dict(d)
    d["order_type"] = OrderType(d["order_type"])
    d["purpose"] = Purpose(d["purpose"])
    d["status"] = OrderStatus(d["status"])
    return Order(**_fields(Order, d))


def _market_state(m: MarketState) -> dict:
    book = m.book
    return {
        "liq_threshold": m.liq_threshold.snapshot(), "cascades": m.cascades.snapshot(),
        "mark": m.mark, "index": m.index, "open_interest": m.open_interest, "funding_rate": m.funding_rate,
        "next_funding_ts": m.next_funding_ts, "funding_interval_h": m.funding_interval_h,
        "last_ts": m.last_ts, "book_ts": m.book_ts,
        "book": {"bids": list(book.bids.items()), "asks": list(book.asks.items()), "ts": book.ts,
                 "update_id": book.update_id},
        "last_trade": encode_event(m.last_trade), "long_short": encode_event(m.long_short),
        "last_bar": encode_event(m.last_bar),
    }


def _restore_market(m: MarketState, s: dict) -> None:
    m.liq_threshold.restore(s["liq_threshold"])
    m.cascades.restore(s["cascades"])
    for name in ("mark", "index", "open_interest", "funding_rate", "next_funding_ts", "funding_interval_h",
                 "last_ts", "book_ts"):
        setattr(m, name, s.get(name))
    m.last_ts = m.last_ts or 0
    m.book_ts = m.book_ts or 0
    b = s.get("book") or {}
    m.book.apply_snapshot([tuple(x) for x in b.get("bids", [])], [tuple(x) for x in b.get("asks", [])],
                          b.get("ts", 0), b.get("update_id", 0))
    m.last_trade = decode_event(s.get("last_trade"))
    m.long_short = decode_event(s.get("long_short"))
    m.last_bar = decode_event(s.get("last_bar"))


def _take_counter(engine: Engine) -> int:
    """The engine's next order number (itertools.count cannot be peeked: take it and put it back)."""
    n = next(engine._order_seq)
    engine._order_seq = itertools.count(n)
    return n


# --------------------------------------------------------------------------------------------
# capture
# --------------------------------------------------------------------------------------------
def capture(engine: Engine, feeds: list) -> Checkpoint:
    """The engine's whole state now, between two events."""
    pf = engine.portfolio
    components: dict[str, Any] = {
        "engine": {
            "clock_ns": engine.clock.now(),
            "next_order": _take_counter(engine),
            "halted": engine.halted, "halt_reason": engine.halt_reason, "flattening": engine.flattening,
            "flat_confirmed": getattr(engine, "flat_confirmed", False),
            "last_mtm_ts": engine._last_mtm_ts,
            "stats": engine.stats,
            "open_orders": list(engine.open_orders.values()),
            "exit_reasons": {oid: r for oid, r in engine.order_exit_reason.items() if oid in engine.open_orders},
            "unconsumed": [encode_event(ev) for ev in _unconsumed(engine, feeds)],
        },
        "markets": {sym: _market_state(m) for sym, m in engine.markets.items()},
        "portfolio": {**pf.snapshot(), "counters": dict(pf.counters)},
    }
    broker = engine.broker
    if broker is not None and hasattr(broker, "snapshot"):
        components["broker"] = {"name": broker.name, "state": broker.snapshot()}
    if hasattr(engine.approval, "snapshot"):
        components["approval"] = engine.approval.snapshot()
    feed_states = {f.name: f.snapshot() for f in feeds if hasattr(f, "snapshot") and not getattr(f, "live", False)}
    if feed_states:
        components["feeds"] = feed_states
    strategies = {st.name: (st.paused, st.snapshot()) for st in engine.strategies}
    risk = None
    if hasattr(engine.risk, "snapshot"):
        risk = (engine.halted, engine.halt_reason, engine.risk.snapshot())
    return Checkpoint(engine.clock.now(), components, strategies, risk, pf.open_positions())


def _unconsumed(engine: Engine, feeds: list) -> list:
    """Events read from the feed but not dispatched: the engine's, then a resumed feed's leftovers."""
    ev = getattr(engine, "unconsumed", None)
    return ([] if ev is None else [ev]) + [e for f in feeds if isinstance(f, ResumedFeed) for e in f.pending]


# --------------------------------------------------------------------------------------------
# restore
# --------------------------------------------------------------------------------------------
class ResumedFeed:
    """A feed that first replays the events its predecessor had read but the engine had not
    dispatched when it stopped, then continues with the restored feed."""

    def __init__(self, inner: Any, pending: list):
        self.inner = inner
        self.pending = pending
        self.name = inner.name
        self.live = getattr(inner, "live", False)

    def events(self) -> Iterator[Any]:
        while self.pending:  # taken off before it is dispatched; checkpoints see only what is left
            yield self.pending.pop(0)
        yield from self.inner.events()

    def snapshot(self) -> dict:
        return self.inner.snapshot()

    def __getattr__(self, name: str) -> Any:  # the rest of the feed's interface (episodes, status, ...)
        return getattr(self.inner, name)


@dataclass(slots=True)
class Restored:
    """What restore() put back, for the log line."""

    ts: int
    positions: list[Position]
    orders: int
    orphans: int
    cooldowns: int
    halted: bool
    halt_reason: str
    windows: int
    window_values: int
    strategies: list[str]
    broker: str
    feeds: list[str]

    def describe(self) -> str:
        when = datetime.fromtimestamp(self.ts / NS, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        pos = ", ".join(f"{p.symbol} {p.side} {abs(p.qty):g} @ {p.entry_price:g}" for p in self.positions)
        parts = [f"{len(self.positions)} open position{'s' * (len(self.positions) != 1)}"
                 + (f" ({pos})" if pos else ""),
                 f"{self.orders} working order{'s' * (self.orders != 1)}"]
        if self.orphans:
            parts.append(f"{self.orphans} order{'s' * (self.orphans != 1)} placed after the checkpoint "
                         "marked cancelled")
        parts += [f"{self.cooldowns} cooldown{'s' * (self.cooldowns != 1)}",
                  f"halt {'on (' + self.halt_reason + ')' if self.halted else 'off'}",
                  f"P95 windows for {self.windows} symbols ({self.window_values} liquidations)"]
        if self.strategies:
            parts.append("strategy state " + ", ".join(self.strategies))
        if self.broker:
            parts.append(self.broker)
        if self.feeds:
            parts.append("feed " + ", ".join(self.feeds))
        return f"restored state from the checkpoint at {when}: " + "; ".join(parts)


@contextmanager
def _restoring(what: str) -> Iterator[None]:
    """A saved part that no longer fits the code is a clear one-line error, not a traceback."""
    try:
        yield
    except StoreError:
        raise
    except Exception as exc:
        raise StoreError(f"store error: cannot restore the {what} saved in the database ({type(exc).__name__}: "
                         f"{exc}); start with another --db") from None


def _fields(cls: type, d: dict) -> dict:
    """The keys of `d` that `cls` (a dataclass) still has: counters added later start at their default."""
    known = cls.__dataclass_fields__
    return {k: v for k, v in d.items() if k in known}


def restore(engine: Engine, saved: Saved, store: Store, feeds: list) -> Restored:
    """Put a checkpoint back into a freshly built engine (before the feed starts)."""
    c = saved.components
    es = c.get("engine", {})
    with _restoring("feed state"):  # first: it may refuse a database of another market
        feed_names = _restore_feeds(feeds, c.get("feeds", {}), es.get("unconsumed", []))
    with _restoring("engine state"):
        _restore_engine(engine, es, saved.ts, store)
    window_values = 0
    with _restoring("market state"):
        for sym, ms in c.get("markets", {}).items():
            _restore_market(engine.market(sym), ms)
            window_values += len(ms["liq_threshold"].get("values", []))
    pf = engine.portfolio
    if c.get("portfolio"):
        with _restoring("portfolio"):
            pf.restore(c["portfolio"])
            pf.counters = {s: SymbolCounters(**_fields(SymbolCounters, v))
                           for s, v in c["portfolio"].get("counters", {}).items()}
            pf.closed = store.closed_trades()
    cooldowns = 0
    if saved.risk is not None and hasattr(engine.risk, "restore"):
        with _restoring("risk state"):
            engine.risk.restore(saved.risk[2])
            now = engine.clock.now()
            cooldowns = sum(1 for t in saved.risk[2].get("cooldowns", {}).values() if int(t) > now)
    if "approval" in c and hasattr(engine.approval, "restore"):
        with _restoring("approval queue"):
            engine.approval.restore(c["approval"])
    broker_note = ""
    b = c.get("broker")
    if b is not None and engine.broker is not None and b.get("name") == engine.broker.name \
            and hasattr(engine.broker, "restore"):
        with _restoring(f"{engine.broker.name} exchange state"):
            engine.broker.restore(b["state"])
        broker_note = _describe_broker(engine.broker.name, b["state"])
    restored_strategies = []
    for st in engine.strategies:
        if st.name in saved.strategies:
            paused, state = saved.strategies[st.name]
            with _restoring(f"state of strategy {st.name}"):
                st.restore(state)
            st.paused = paused
            restored_strategies.append(st.name)
    orphans = _cancel_orphans(engine, store) if engine.mode == "paper" else 0
    return Restored(engine.clock.now(), pf.open_positions(), len(engine.open_orders), orphans, cooldowns,
                    engine.halted, engine.halt_reason, len(c.get("markets", {})), window_values, restored_strategies,
                    broker_note, feed_names)


def _restore_engine(engine: Engine, es: dict, ts: int, store: Store) -> None:
    clock_ns = int(es.get("clock_ns", ts))
    if clock_ns > engine.clock.now():
        engine.clock.advance_to(clock_ns)
    engine.resumed = True
    next_order = max(int(es.get("next_order", 1)), store.max_order_number(engine.run_id or _ORDER_ID_PREFIX) + 1)
    engine._order_seq = itertools.count(next_order)
    engine.halted = bool(es.get("halted", False))
    engine.halt_reason = str(es.get("halt_reason", ""))
    engine.flattening = bool(es.get("flattening", False))
    engine.flat_confirmed = bool(es.get("flat_confirmed", False))
    engine._last_mtm_ts = int(es.get("last_mtm_ts", 0))
    if es.get("stats"):
        engine.stats = type(engine.stats)(**_fields(type(engine.stats), es["stats"]))
    for d in es.get("open_orders", []):
        o = order_from_dict(d)
        engine.orders[o.id] = o
        engine.open_orders[o.id] = o
    engine.order_exit_reason.update(es.get("exit_reasons", {}))


def _describe_broker(name: str, state: dict) -> str:
    n = len(state.get("working", []))
    inflight = len(state.get("inflight", []))
    return (f"{name} exchange with {n} resting order{'s' * (n != 1)} (queue positions kept) and "
            f"{inflight} message{'s' * (inflight != 1)} in flight")


def _restore_feeds(feeds: list, states: dict, unconsumed: list) -> list[str]:
    names = []
    for i, f in enumerate(feeds):
        state = states.get(f.name)
        if state is None or not hasattr(f, "restore"):
            continue
        try:
            f.restore(state)
        except ValueError as exc:
            raise StoreError(f"store error: the database continues another {f.name} feed ({exc}); run with the "
                             "same --seed and settings, or use another --db") from None
        names.append(f.name)
        if unconsumed and len(feeds) == 1:
            feeds[i] = ResumedFeed(f, [decode_event(d) for d in unconsumed])
    return names


def _cancel_orphans(engine: Engine, store: Store) -> int:
    """Orders committed after the checkpoint that the restored paper exchange never saw."""
    n = 0
    for row in store.open_order_rows():
        if row["id"] in engine.open_orders:
            continue
        o = _order_from_row(row)
        o.status = OrderStatus.CANCELLED
        o.reject_reason = "placed after the last checkpoint; the paper exchange restarted from that checkpoint"
        o.updated_ts = engine.clock.now()
        store.record_order(o)
        n += 1
    return n


def _order_from_row(row: dict) -> Order:
    d = {k: row[k] for k in Order.__dataclass_fields__ if k in row}
    d["post_only"] = bool(d["post_only"])
    d["reduce_only"] = bool(d["reduce_only"])
    return order_from_dict(d)


# --------------------------------------------------------------------------------------------
# reconciliation with an exchange (demo, testnet, live)
# --------------------------------------------------------------------------------------------
class ExchangePosition(Protocol):
    symbol: str
    qty: float  # signed: > 0 long
    entry_price: float


class ExchangeOrder(Protocol):
    id: str  # our client order id
    symbol: str
    side: str
    qty: float
    price: float | None


def reconcile(engine: Engine, positions: Iterable[ExchangePosition], orders: Iterable[ExchangeOrder],
              store: Store | None = None) -> list[str]:
    """Adopt the exchange's positions and open orders; returns one line per difference.

    A position that differs is corrected by a `reconcile` fill for the difference (at the
    exchange's entry price when it holds a position, else at the last mark), so that every
    position stays the sum of its fills; closing that way books the PnL at the mark, which
    is an estimate the log says so. Our working orders the exchange does not have are
    marked cancelled (executions missed while down are the broker's to replay before this
    runs); orders it has that we do not are adopted.
    """
    diffs: list[str] = []
    pf = engine.portfolio
    theirs = {p.symbol: p for p in positions}
    for sym in sorted(set(theirs) | {p.symbol for p in pf.open_positions()}):
        ours = pf.positions.get(sym)
        have = ours.qty if ours is not None else 0.0
        ex = theirs.get(sym)
        want = ex.qty if ex is not None else 0.0
        step = engine.instrument(sym).qty_step
        if abs(want - have) < step / 2:
            continue
        m = engine.markets.get(sym)
        price = ex.entry_price if ex is not None and want else ((m.mark or m.price) if m is not None else None)
        price = price or (ours.entry_price if ours is not None else 0.0)
        delta = want - have
        fill = Fill(engine.clock.now(), "reconcile", sym, "buy" if delta > 0 else "sell", price, abs(delta), 0.0,
                    "reconcile", fill_id=f"R{engine.clock.now()}-{sym}")
        if store is not None:
            store.record_fill(fill, kind="reconcile")
        closed = pf.apply_fill(fill, "reconcile", ours.strategy if ours is not None else "external")
        if closed is not None and store is not None:
            store.record_closed_trade(closed)
        if want and ex is not None:
            pf.positions[sym].entry_price = ex.entry_price
        diffs.append(f"{sym} position: ours {have:+g}, exchange {want:+g}; adopted the exchange's"
                     + (" (closing PnL estimated at the mark)" if closed is not None else ""))

    at_exchange = {o.id: o for o in orders}
    for oid, o in list(engine.open_orders.items()):
        if oid in at_exchange:
            continue
        o.status = OrderStatus.CANCELLED
        o.reject_reason = "not open at the exchange after restart"
        o.updated_ts = engine.clock.now()
        engine.open_orders.pop(oid, None)
        if store is not None:
            store.record_order(o)
        diffs.append(f"order {oid} {o.symbol} {o.side} {o.remaining:g}: not at the exchange; marked cancelled")
    known = {r["id"]: r for r in store.open_order_rows()} if store is not None else {}
    for oid, ex in at_exchange.items():
        mine = engine.open_orders.get(oid)
        if mine is None:
            row = known.get(oid)
            adopted = _order_from_row(row) if row is not None else Order(
                id=oid, ts=engine.clock.now(), symbol=ex.symbol, side=ex.side, qty=ex.qty, price=ex.price,
                order_type=_order_type(getattr(ex, "order_type", "limit")), purpose=Purpose.EXIT,
                strategy="external", reason="found at the exchange")
            adopted.status = OrderStatus.NEW
            adopted.updated_ts = engine.clock.now()
            engine.orders[oid] = adopted
            engine.open_orders[oid] = adopted
            if store is not None:
                store.record_order(adopted, source="exchange")
            diffs.append(f"order {oid} {ex.symbol} {ex.side} {ex.qty:g} @ {ex.price}: open at the exchange only; "
                         "adopted")
        elif abs(mine.qty - ex.qty) > 1e-12 or (ex.price is not None and mine.price != ex.price):
            diffs.append(f"order {oid}: ours {mine.qty:g} @ {mine.price}, exchange {ex.qty:g} @ {ex.price}; "
                         "adopted the exchange's")
            mine.qty, mine.price = ex.qty, ex.price
            if store is not None:
                store.record_order(mine)
    return diffs


def _order_type(text: Any) -> OrderType:
    try:
        return OrderType(str(text).lower())
    except ValueError:
        return OrderType.LIMIT


async def reconcile_with_broker(engine: Engine, store: Store | None) -> list[str]:
    """Ask the broker for the exchange's positions and open orders and reconcile.

    The broker's `positions()` and `open_orders()` (plain or async) must return what the
    exchange says *now* and raise if they cannot: a position list that merely failed to
    load would otherwise look like "flat" and close every position. A broker without
    `positions()` is not reconciled here. Orders are matched by our id (`id`, else the
    client id the exchange echoes back, `link_id`).
    """
    broker = engine.broker
    get_pos = getattr(broker, "positions", None)
    get_orders = getattr(broker, "open_orders", None)
    if not callable(get_pos) or not callable(get_orders):
        return []
    try:
        positions = get_pos()
        if inspect.isawaitable(positions):
            positions = await positions
        orders = get_orders()
        if inspect.isawaitable(orders):
            orders = await orders
    except Exception as exc:  # the exchange is unreachable: keep the restored state, say so
        return [f"could not read the exchange ({type(exc).__name__}: {exc}); kept the restored state"]
    return reconcile(engine, positions, [_ExchangeOrderView(o) for o in orders], store)


class _ExchangeOrderView:
    """An exchange's order under our id."""

    __slots__ = ("id", "symbol", "side", "qty", "price", "order_type")

    def __init__(self, o: Any):
        self.id = getattr(o, "id", None) or getattr(o, "link_id", "")
        self.symbol, self.side, self.qty, self.price = o.symbol, o.side, o.qty, o.price
        order_type = getattr(o, "order_type", "limit")
        self.order_type = str(getattr(order_type, "value", order_type)).lower()


# --------------------------------------------------------------------------------------------
# the service
# --------------------------------------------------------------------------------------------
def _version() -> str:
    try:
        return metadata.version("liqdesk")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class StoreService:
    """Opens the store for an engine, restores the last checkpoint, runs the writer, stops cleanly.

    `feeds` may be replaced in place by `ResumedFeed` wrappers: pass the same list to the engine.
    """

    def __init__(self, engine: Engine, feeds: list, store: Store):
        self.engine = engine
        self.feeds = feeds
        self.store = store
        self.restored: Restored | None = None
        self.differences: list[str] = []
        self._last_capture: tuple[int, int] | None = None
        self._last_capture_wall = 0.0
        self._force_capture = False  # set for the final flush at stop

    @classmethod
    async def open(cls, engine: Engine, feeds: list, settings: Settings, opts: RunOptions) -> StoreService:
        store = Store(opts.db, settings.store.batch_ms, settings.store.log_retention_rows)
        svc = cls(engine, feeds, store)
        try:
            await svc._start(settings, opts)
        except BaseException as exc:
            if store.run_id:
                store.end_run(_utc_now(), f"failed to start: {exc}"[:200], None)
            store.close_sync()
            raise
        return svc

    async def _start(self, settings: Settings, opts: RunOptions) -> None:
        engine, store = self.engine, self.store
        saved = store.load_checkpoint()
        seed = settings.engine.seed if opts.seed is None else opts.seed
        store.begin_run(version=_version(), mode=opts.mode, feed=opts.feed, seed=seed, config=settings.public_dict(),
                        started_at=_utc_now(), sim_start_ns=saved.ts if saved is not None else None,
                        restored_seq=saved.seq if saved is not None else None)
        if saved is not None:
            self.restored = restore(engine, saved, store, self.feeds)
        engine.store = store
        store.capture = self._capture
        store.on_failure = self._on_failure
        if self.restored is not None:
            engine.log(self.restored.describe())
        store.start()

    async def reconcile(self) -> list[str]:
        """Demo, testnet and live: adopt the exchange's truth (call once the broker is connected)."""
        if self.engine.mode == "paper":
            return []
        self.differences = await reconcile_with_broker(self.engine, self.store)
        for line in self.differences:
            self.engine.log(f"RECONCILE {line}", "warn")
        if not self.differences:
            self.engine.log("RECONCILE: positions and open orders agree with the exchange")
        return self.differences

    def _capture(self, trading_rows: bool, rows_pending: bool) -> Checkpoint | None:
        """A checkpoint with every batch that carries orders, fills or funding (so that a committed
        file is always consistent); otherwise at most once per CHECKPOINT_IDLE_S of wall time.

        Capturing and serializing the whole state costs milliseconds on the event loop that the
        console shares; doing it every 100 ms batch made keys lag. Between trading rows, an older
        checkpoint only means a restart replays a little more of the feed.
        """
        e = self.engine
        key = (e.stats.events, e.clock.now())
        if key == self._last_capture:
            return None
        now = time.monotonic()
        if (not trading_rows and not self._force_capture and self._last_capture is not None
                and now - self._last_capture_wall < CHECKPOINT_IDLE_S):
            return None
        self._last_capture = key
        self._last_capture_wall = now
        return capture(e, self.feeds)

    def _on_failure(self, error: str) -> None:
        if error:
            self.engine.log(f"STORE WRITE FAILED: {error}; entries refused until the store recovers", "error")
        else:
            self.engine.log("store writes recovered")

    async def stop(self) -> None:
        engine = self.engine
        self._force_capture = True  # the final checkpoint is always written
        await self.store.close("clean", _utc_now(), engine.clock.now())
        engine.store = None
