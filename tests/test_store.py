"""The SQLite store: file validation, migrations, batching, durable entries and ordering guarantees."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import pytest

from engine import store as store_mod
from engine.clock import SimClock
from engine.config import ConfigError, Settings
from engine.engine import Engine
from engine.events import NS
from engine.orders import Fill, Order, OrderStatus, OrderType, PlaceOrder, Purpose
from engine.store import APPLICATION_ID, SCHEMA_VERSION, Store, StoreError

T0 = 1_736_121_600 * NS  # 2025-01-06 00:00 UTC


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sidecars(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name != path.name and p.name.startswith(path.name))


def make_order(oid: str = "L-1", status: OrderStatus = OrderStatus.PENDING, purpose: Purpose = Purpose.ENTRY,
               ts: int = T0) -> Order:
    return Order(id=oid, ts=ts, symbol="ETHUSDT", side="buy", qty=1.0, price=2500.0, order_type=OrderType.LIMIT,
                 purpose=purpose, strategy="test", post_only=True, status=status, updated_ts=ts)


def make_fill(oid: str = "L-1", qty: float = 1.0, side: str = "buy", ts: int = T0, fid: str = "P1") -> Fill:
    return Fill(ts, oid, "ETHUSDT", side, 2500.0, qty, 0.5, "maker", queue_ahead=3.0, placed_ts=ts - NS,
                fill_id=fid)


# --------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------
def test_a_new_store_is_versioned_marked_and_in_wal_mode(tmp_path):
    s = Store(tmp_path / "new.db")
    s.close_sync()
    conn = sqlite3.connect(tmp_path / "new.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"runs", "orders", "order_events", "fills", "positions", "funding", "cascades", "signals",
            "strategy_state", "risk_state", "engine_state", "log"} <= tables


def test_an_empty_file_becomes_a_store(tmp_path):
    p = tmp_path / "empty.db"
    p.write_bytes(b"")
    Store(p).close_sync()
    assert store_mod.inspect_file(p) == SCHEMA_VERSION


@pytest.mark.parametrize("kind", ["random", "text", "truncated_header"])
def test_a_corrupt_file_is_refused_untouched(tmp_path, kind):
    p = tmp_path / "bad.db"
    data = {"random": os.urandom(65536), "text": b"customer,name\n1,Ann\n" * 100,
            "truncated_header": b"SQLite format 3\x00" + b"\x00" * 20}[kind]
    p.write_bytes(data)
    before = sha(p)
    with pytest.raises(StoreError) as err:
        Store(p)
    msg = str(err.value)
    assert "\n" not in msg and "not a SQLite database" in msg
    assert isinstance(err.value, ConfigError)  # the CLI maps it to exit code 2
    assert sha(p) == before and sidecars(p) == []


def test_a_damaged_sqlite_file_is_refused_untouched(tmp_path):
    p = tmp_path / "damaged.db"
    Store(p).close_sync()
    data = bytearray(p.read_bytes())
    data[4096:8192] = os.urandom(4096)  # the second page: a table's b-tree
    p.write_bytes(bytes(data))
    before = sha(p)
    with pytest.raises(StoreError, match="damaged"):
        Store(p)
    assert sha(p) == before


def test_another_applications_database_is_refused_untouched(tmp_path):
    p = tmp_path / "foreign.db"
    conn = sqlite3.connect(p)
    conn.execute("create table customers(id int, name text)")
    conn.commit()
    conn.close()
    before = sha(p)
    with pytest.raises(StoreError, match="another application's SQLite database .*customers"):
        Store(p)
    assert sha(p) == before and sidecars(p) == []


def test_a_newer_schema_is_refused_untouched(tmp_path):
    p = tmp_path / "newer.db"
    Store(p).close_sync()
    conn = sqlite3.connect(p)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 3}")
    conn.close()
    before = sha(p)
    with pytest.raises(StoreError, match=f"schema v{SCHEMA_VERSION + 3}, newer"):
        Store(p)
    assert sha(p) == before


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(StoreError, match="directory"):
        Store(tmp_path)


def test_two_engines_cannot_share_a_database(tmp_path):
    first = Store(tmp_path / "one.db")
    try:
        with pytest.raises(StoreError, match="in use by another liqdesk process"):
            Store(tmp_path / "one.db")
    finally:
        first.close_sync()
    Store(tmp_path / "one.db").close_sync()  # released on close


def test_migrations_upgrade_an_older_file_and_keep_its_rows(tmp_path, monkeypatch):
    p = tmp_path / "old.db"
    s = Store(p)
    s.record_order(make_order())
    s.flush_sync()
    s.close_sync()
    v2 = "ALTER TABLE orders ADD COLUMN venue TEXT NOT NULL DEFAULT 'bybit';"
    monkeypatch.setattr(store_mod, "MIGRATIONS", [*store_mod.MIGRATIONS, v2])
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    s = Store(p)
    assert s.previous_version == SCHEMA_VERSION
    assert s.conn.execute("SELECT id, venue FROM orders").fetchall() == [("L-1", "bybit")]
    s.close_sync()
    assert store_mod.inspect_file(p) == SCHEMA_VERSION + 1  # the header on disk shows the new version


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------
def test_rows_wait_for_the_batch_and_orders_keep_every_state_change(tmp_path):
    s = Store(tmp_path / "w.db")
    reader = sqlite3.connect(tmp_path / "w.db")
    o = make_order(status=OrderStatus.NEW, purpose=Purpose.TAKE_PROFIT)
    s.record_order(o)
    o.status, o.filled_qty, o.avg_price, o.updated_ts = OrderStatus.FILLED, 1.0, 2500.0, T0 + NS
    s.record_fill(make_fill())
    s.record_order(o)
    s.log(T0, "info", "test", "a line")
    assert reader.execute("SELECT count(*) FROM orders").fetchone()[0] == 0  # buffered, not yet written
    s.flush_sync()
    assert reader.execute("SELECT status, filled_qty FROM orders").fetchall() == [("filled", 1.0)]
    assert [r[0] for r in reader.execute("SELECT status FROM order_events ORDER BY seq")] == ["new", "filled"]
    assert reader.execute("SELECT order_id, qty, fee, liquidity, queue_ahead FROM fills").fetchall() == [
        ("L-1", 1.0, 0.5, "maker", 3.0)]
    assert reader.execute("SELECT message FROM log").fetchall() == [("a line",)]
    s.close_sync()


def test_a_durable_order_is_committed_before_record_order_returns(tmp_path):
    s = Store(tmp_path / "d.db")
    s.log(T0, "info", "", "buffered before")
    assert s.record_order(make_order(), durable=True) is True
    reader = sqlite3.connect(tmp_path / "d.db")
    assert reader.execute("SELECT id, status FROM orders").fetchall() == [("L-1", "pending")]
    assert reader.execute("SELECT count(*) FROM log").fetchone()[0] == 0  # the rest waits for its batch
    s.close_sync()


def test_an_upsert_never_goes_back_to_an_older_state(tmp_path):
    s = Store(tmp_path / "u.db")
    o = make_order(status=OrderStatus.NEW)
    s.record_order(o)
    old = s._buf.orders[-1]
    o.status = OrderStatus.CANCELLED
    s.record_order(o)
    s.flush_sync()
    s._buf.orders.append(old)  # a stale row arriving late (e.g. a retried batch)
    s.flush_sync()
    assert s.conn.execute("SELECT status FROM orders").fetchone()[0] == "cancelled"
    s.close_sync()


def test_the_log_is_trimmed_to_its_retention(tmp_path):
    s = Store(tmp_path / "l.db", log_retention_rows=1000)
    for batch in range(3):
        for i in range(900):
            s.log(T0 + i, "info", "", f"line {batch}-{i}")
            s.record_funding(T0 + i, "ETHUSDT", 0.0001, 2500.0, -0.25)  # other rows share the sequence
        s.commits = 0  # trim on this batch
        s.flush_sync()
    n = s.conn.execute("SELECT count(*) FROM log").fetchone()[0]
    last = s.conn.execute("SELECT message FROM log ORDER BY seq DESC LIMIT 1").fetchone()[0]
    assert n == 1000 and last == "line 2-899"
    s.close_sync()


def test_a_failed_write_keeps_the_rows_and_reports_once(tmp_path, monkeypatch):
    s = Store(tmp_path / "f.db")
    errors: list[str] = []
    s.on_failure = errors.append
    real_commit = s._commit

    def broken(batch):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(s, "_commit", broken)
    s.record_fill(make_fill())
    import asyncio
    assert asyncio.run(s.flush()) is False
    assert asyncio.run(s.flush()) is False
    assert errors == ["OperationalError: disk I/O error"]
    monkeypatch.setattr(s, "_commit", real_commit)
    assert asyncio.run(s.flush()) is True
    assert errors[-1] == "" and s.conn.execute("SELECT count(*) FROM fills").fetchone()[0] == 1
    s.close_sync()


# --------------------------------------------------------------------------------------------
# ordering guarantees, through the engine
# --------------------------------------------------------------------------------------------
class RecordingBroker:
    """Checks, when it sees an order, that the order is already committed in the database."""

    name = "recording"

    def __init__(self, db: Path):
        self.db = db
        self.seen: list[tuple[str, list]] = []
        self.engine: Engine | None = None

    def attach(self, engine: Engine) -> None:
        self.engine = engine

    def submit(self, order: Order) -> None:
        reader = sqlite3.connect(self.db)
        self.seen.append((order.id, reader.execute("SELECT status FROM orders WHERE id = ?", (order.id,)).fetchall()))
        reader.close()

    def cancel(self, order_id: str) -> None:
        pass

    def on_market(self, ev) -> None:
        pass


def _engine(tmp_path: Path, broker) -> tuple[Engine, Store]:
    settings = Settings(engine={"symbols": ["ETHUSDT"], "log_file": "", "strategies": []})
    engine = Engine(settings, clock=SimClock(T0), broker=broker)
    store = Store(tmp_path / "e.db")
    engine.store = store
    return engine, store


def test_an_entry_is_durable_before_the_broker_sees_it(tmp_path):
    broker = RecordingBroker(tmp_path / "e.db")
    engine, store = _engine(tmp_path, broker)
    engine.place(PlaceOrder("ETHUSDT", "buy", 1.0, 2500.0, post_only=True, purpose=Purpose.ENTRY, strategy="t"))
    engine.place(PlaceOrder("ETHUSDT", "sell", 1.0, 2600.0, reduce_only=True, purpose=Purpose.TAKE_PROFIT,
                            strategy="t"))
    assert broker.seen[0][1] == [("pending",)]  # the entry: committed first
    assert broker.seen[1][1] == []  # an exit is not held up by the disk: it goes with the next batch
    store.close_sync()


def test_an_entry_the_store_cannot_commit_never_reaches_the_broker(tmp_path, monkeypatch):
    broker = RecordingBroker(tmp_path / "e.db")
    engine, store = _engine(tmp_path, broker)

    def broken(batch):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(store, "_commit", broken)
    order = engine.place(PlaceOrder("ETHUSDT", "buy", 1.0, 2500.0, purpose=Purpose.ENTRY, strategy="t"))
    assert order is None and broker.seen == [] and not engine.open_orders
    rejected = [row for row in store._buf.orders if row[15] == "rejected"]
    assert rejected and "store unavailable" in rejected[0][19]
    monkeypatch.undo()
    store.close_sync()


def test_a_fill_is_recorded_before_views_see_the_position_change(tmp_path):
    broker = RecordingBroker(tmp_path / "e.db")
    engine, store = _engine(tmp_path, broker)
    order = engine.place(PlaceOrder("ETHUSDT", "buy", 1.0, 2500.0, purpose=Purpose.ENTRY, strategy="t"))
    view = engine.notifier.subscribe()
    fills_when_position_shown: list[int] = []
    real_publish = engine.notifier.publish

    def publish(kind, payload):
        if kind == "position":
            fills_when_position_shown.append(len(store._buf.fills))
        real_publish(kind, payload)

    engine.notifier.publish = publish
    engine.on_fill(make_fill(order.id))
    assert fills_when_position_shown == [1]
    assert ("position", engine.portfolio.positions["ETHUSDT"]) in view.drain()
    store.close_sync()


def test_the_log_buffer_is_bounded_when_the_disk_stalls(tmp_path):
    s = Store(tmp_path / "b.db", log_retention_rows=1000)
    for i in range(5000):
        s.log(T0 + i, "info", "", f"line {i}")
    assert len(s._buf.log) <= 1000 and s.log_dropped == 5000 - len(s._buf.log)
    assert s._buf.log[-1][-1] == "line 4999"  # the oldest lines go first
    s.close_sync()
