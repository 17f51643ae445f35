"""The SQLite store: schema and migrations, the batched writer, and the reads that recovery needs.

One file (`--db PATH`, WAL mode) holds runs, orders and their every state change, fills,
positions (open and closed, with the exit reason), funding payments, cascades, signals,
strategy state, risk state, the engine's other state and the log (bounded).

Writes. The engine's hooks (`record_order`, `record_fill`, ...) only append a tuple to an
in-memory buffer. The writer task wakes every `store.batch_ms`, takes the buffers together
with a *checkpoint* of the whole engine state (taken in the same event-loop step, so the
two agree), and commits them in one transaction. A committed database is therefore always
a consistent picture: the positions in the checkpoint are exactly the sum of the committed
fills. The one synchronous write is an entry order, which `record_order(durable=True)`
commits before it returns, so that no broker ever sees an order the store does not have.

Threads. A batch must be one job on the thread that owns the connection: aiosqlite runs
each statement as a separate hop through the event loop, so a batch made of several hops
would hold SQLite's write lock across loop turns, and the synchronous entry write (which
cannot await) would wait on a lock whose release needs the very loop it is blocking. So
the connection lives on one dedicated writer thread (aiosqlite's model, with whole
transactions as jobs); the writer task awaits it, the entry write blocks on it, and the
single thread keeps every commit in order.

Bad files are refused before anything is opened for writing: a file that is not SQLite,
an SQLite file of another application, or one with a newer schema raises `StoreError`
(a `ConfigError`: one line, exit 2) and is left byte-for-byte untouched.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from .config import ConfigError
from .orders import Fill, Order, Position
from .portfolio import ClosedTrade
from .stats import Cascade

SCHEMA_VERSION = 1
APPLICATION_ID = 0x4C514453  # "LQDS" in the header's application_id field marks a liqdesk store
_SQLITE_MAGIC = b"SQLite format 3\x00"
_JSON_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY

# Each script moves the schema from version i to i + 1 (index i). Never edit a released one:
# append a new script instead, so that every older file upgrades along the same path.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        version TEXT NOT NULL,
        mode TEXT NOT NULL,
        feed TEXT NOT NULL,
        seed INTEGER,
        config TEXT NOT NULL,            -- settings as JSON, secrets masked
        started_at TEXT NOT NULL,        -- wall clock, UTC ISO 8601
        stopped_at TEXT,                 -- NULL: still running, or killed
        stop_reason TEXT,
        sim_start_ns INTEGER,
        sim_stop_ns INTEGER,             -- engine clock at the last checkpoint
        restored_seq INTEGER             -- checkpoint it resumed from (NULL: fresh state)
    );
    CREATE TABLE orders (                -- the latest state of every order
        id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        run_id INTEGER,
        ts INTEGER NOT NULL,
        updated_ts INTEGER NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        qty REAL NOT NULL,
        price REAL,
        order_type TEXT NOT NULL,
        purpose TEXT NOT NULL,
        strategy TEXT NOT NULL,
        post_only INTEGER NOT NULL,
        reduce_only INTEGER NOT NULL,
        trigger_price REAL,
        status TEXT NOT NULL,
        filled_qty REAL NOT NULL,
        avg_price REAL NOT NULL,
        reason TEXT NOT NULL,
        reject_reason TEXT NOT NULL,
        leverage REAL NOT NULL,
        exchange_id TEXT NOT NULL,
        source TEXT NOT NULL DEFAULT 'engine'   -- engine | exchange (adopted by reconciliation)
    ) WITHOUT ROWID;
    CREATE TABLE order_events (          -- every state change of every order
        seq INTEGER PRIMARY KEY,
        order_id TEXT NOT NULL,
        ts INTEGER NOT NULL,
        status TEXT NOT NULL,
        filled_qty REAL NOT NULL,
        avg_price REAL NOT NULL,
        reason TEXT NOT NULL
    );
    CREATE TABLE fills (
        seq INTEGER PRIMARY KEY,
        run_id INTEGER,
        fill_id TEXT NOT NULL,
        order_id TEXT NOT NULL,
        ts INTEGER NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        price REAL NOT NULL,
        qty REAL NOT NULL,
        fee REAL NOT NULL,
        liquidity TEXT NOT NULL,
        queue_ahead REAL NOT NULL,
        placed_ts INTEGER NOT NULL,
        kind TEXT NOT NULL DEFAULT 'trade'      -- trade | reconcile (adopting the exchange's position)
    );
    CREATE INDEX fills_order ON fills(order_id);
    CREATE TABLE positions (             -- one row per position, from open to close
        symbol TEXT NOT NULL,
        opened_ts INTEGER NOT NULL,
        status TEXT NOT NULL,            -- open | closed
        side TEXT NOT NULL,              -- long | short
        qty REAL NOT NULL,               -- size (open: now; closed: when closed)
        entry_price REAL NOT NULL,
        exit_price REAL,
        closed_ts INTEGER,
        exit_reason TEXT,
        gross_pnl REAL,
        fees REAL,
        funding REAL,
        net_pnl REAL,
        max_profit REAL,
        strategy TEXT NOT NULL,
        seq INTEGER NOT NULL,
        run_id INTEGER,
        PRIMARY KEY (symbol, opened_ts)
    ) WITHOUT ROWID;
    CREATE INDEX positions_closed ON positions(status, closed_ts);
    CREATE TABLE funding (
        seq INTEGER PRIMARY KEY,
        run_id INTEGER,
        ts INTEGER NOT NULL,
        symbol TEXT NOT NULL,
        rate REAL NOT NULL,
        mark REAL NOT NULL,
        amount REAL NOT NULL             -- positive: received
    );
    CREATE TABLE cascades (
        symbol TEXT NOT NULL,
        start_ts INTEGER NOT NULL,
        fired_ts INTEGER NOT NULL,
        last_ts INTEGER NOT NULL,
        count INTEGER NOT NULL,
        long_count INTEGER NOT NULL,
        short_count INTEGER NOT NULL,
        long_notional REAL NOT NULL,
        short_notional REAL NOT NULL,
        threshold REAL NOT NULL,
        dominant TEXT NOT NULL,
        ended INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        run_id INTEGER,
        PRIMARY KEY (symbol, start_ts)
    );
    CREATE TABLE signals (               -- strategy alerts: what was seen and what was done
        seq INTEGER PRIMARY KEY,
        run_id INTEGER,
        ts INTEGER NOT NULL,
        symbol TEXT NOT NULL,
        kind TEXT NOT NULL,
        strategy TEXT NOT NULL,
        message TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE TABLE strategy_state (
        strategy TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        paused INTEGER NOT NULL,
        state TEXT NOT NULL              -- JSON from Strategy.snapshot()
    );
    CREATE TABLE risk_state (
        gate TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        halted INTEGER NOT NULL,
        halt_reason TEXT NOT NULL,
        state TEXT NOT NULL              -- JSON: cooldowns, loss-limit windows, halt, blacklist
    );
    CREATE TABLE engine_state (          -- the rest of a checkpoint, one JSON document per component
        component TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        state TEXT NOT NULL
    );
    CREATE TABLE log (
        seq INTEGER PRIMARY KEY,
        run_id INTEGER,
        ts INTEGER NOT NULL,
        level TEXT NOT NULL,
        strategy TEXT NOT NULL,
        message TEXT NOT NULL
    );
    """,
]
assert len(MIGRATIONS) == SCHEMA_VERSION

# The seq guards keep an upsert from ever going back to an older state (a batch retried after
# a failed write, say, arriving after a newer one).
_SQL_ORDER = """
INSERT INTO orders (id, seq, run_id, ts, updated_ts, symbol, side, qty, price, order_type, purpose, strategy,
                    post_only, reduce_only, trigger_price, status, filled_qty, avg_price, reason, reject_reason,
                    leverage, exchange_id, source)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(id) DO UPDATE SET
    seq = excluded.seq, updated_ts = excluded.updated_ts, qty = excluded.qty, price = excluded.price,
    trigger_price = excluded.trigger_price, status = excluded.status, filled_qty = excluded.filled_qty,
    avg_price = excluded.avg_price, reject_reason = excluded.reject_reason, exchange_id = excluded.exchange_id,
    source = excluded.source
WHERE excluded.seq > orders.seq
"""
_SQL_ORDER_EVENT = "INSERT OR IGNORE INTO order_events VALUES (?, ?, ?, ?, ?, ?, ?)"
_SQL_FILL = "INSERT OR IGNORE INTO fills VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_SQL_POSITION = """
INSERT INTO positions (symbol, opened_ts, status, side, qty, entry_price, exit_price, closed_ts, exit_reason,
                       gross_pnl, fees, funding, net_pnl, max_profit, strategy, seq, run_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(symbol, opened_ts) DO UPDATE SET
    status = excluded.status, side = excluded.side, qty = excluded.qty, entry_price = excluded.entry_price,
    exit_price = excluded.exit_price, closed_ts = excluded.closed_ts, exit_reason = excluded.exit_reason,
    gross_pnl = excluded.gross_pnl, fees = excluded.fees, funding = excluded.funding,
    net_pnl = excluded.net_pnl, max_profit = excluded.max_profit, strategy = excluded.strategy,
    seq = excluded.seq
WHERE excluded.seq > positions.seq
"""
_SQL_FUNDING = "INSERT OR IGNORE INTO funding VALUES (?, ?, ?, ?, ?, ?, ?)"
_SQL_CASCADE = """
INSERT INTO cascades VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(symbol, start_ts) DO UPDATE SET
    last_ts = excluded.last_ts, count = excluded.count, long_count = excluded.long_count,
    short_count = excluded.short_count, long_notional = excluded.long_notional,
    short_notional = excluded.short_notional, dominant = excluded.dominant, ended = excluded.ended,
    seq = excluded.seq
WHERE excluded.seq > cascades.seq
"""
_SQL_SIGNAL = "INSERT OR IGNORE INTO signals VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_SQL_LOG = "INSERT OR IGNORE INTO log VALUES (?, ?, ?, ?, ?, ?)"
_SQL_STRATEGY_STATE = """
INSERT INTO strategy_state VALUES (?, ?, ?, ?, ?)
ON CONFLICT(strategy) DO UPDATE SET seq = excluded.seq, ts = excluded.ts, paused = excluded.paused,
    state = excluded.state WHERE excluded.seq > strategy_state.seq
"""
_SQL_RISK_STATE = """
INSERT INTO risk_state VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT(gate) DO UPDATE SET seq = excluded.seq, ts = excluded.ts, halted = excluded.halted,
    halt_reason = excluded.halt_reason, state = excluded.state WHERE excluded.seq > risk_state.seq
"""
_SQL_ENGINE_STATE = """
INSERT INTO engine_state VALUES (?, ?, ?, ?)
ON CONFLICT(component) DO UPDATE SET seq = excluded.seq, ts = excluded.ts, state = excluded.state
WHERE excluded.seq > engine_state.seq
"""
_SQL_RUN_PROGRESS = "UPDATE runs SET sim_stop_ns = ?1, sim_start_ns = coalesce(sim_start_ns, ?1) WHERE id = ?2"
_SEQ_TABLES = ("order_events", "fills", "positions", "funding", "cascades", "signals", "strategy_state",
               "risk_state", "engine_state", "log")

OPEN_STATUSES = ("pending", "new", "partially_filled", "untriggered")


class StoreError(ConfigError):
    """A database file we must not or cannot use (one line for the user, exit code 2)."""


# --------------------------------------------------------------------------------------------
# opening a file safely
# --------------------------------------------------------------------------------------------
def inspect_file(path: Path) -> int:
    """The schema version of an existing liqdesk store (0: absent, empty, or an empty SQLite file).

    Reads the 100-byte header itself and looks inside only through a read-only
    connection, so a file that is refused is never modified (no journal, no WAL).
    """
    if not path.exists():
        return 0
    if path.is_dir():
        raise StoreError(f"store error: --db {path} is a directory, not a database file")
    try:
        with open(path, "rb") as f:
            header = f.read(100)
    except OSError as exc:
        raise StoreError(f"store error: cannot read {path}: {exc.strerror}") from None
    if not header:
        return 0  # an empty file is an empty database
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise StoreError(f"store error: {path} is not a SQLite database (corrupt, or another kind of file); "
                         "refusing to use it, the file was not touched")
    user_version = int.from_bytes(header[60:64], "big")
    application_id = int.from_bytes(header[68:72], "big")
    tables = _read_only_tables(path)
    if application_id != APPLICATION_ID:
        if tables:
            shown = ", ".join(tables[:4]) + (", ..." if len(tables) > 4 else "")
            raise StoreError(f"store error: {path} is another application's SQLite database (tables: {shown}); "
                             "refusing to use it, the file was not touched")
        return 0
    if user_version > SCHEMA_VERSION:
        raise StoreError(f"store error: {path} has store schema v{user_version}, newer than this liqdesk "
                         f"understands (v{SCHEMA_VERSION}); upgrade liqdesk or use another --db")
    return user_version


def _read_only_tables(path: Path) -> list[str]:
    try:
        conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"store error: cannot open {path} read-only: {exc}") from None
    try:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").fetchall()
        verdict = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        verdict = str(exc)
    finally:
        conn.close()
    if verdict != "ok":
        raise StoreError(f"store error: {path} is a damaged SQLite database ({verdict}); "
                         "refusing to use it, the file was not touched")
    return [r[0] for r in rows if not r[0].startswith("sqlite_")]


def _lock(path: Path) -> int:
    """Hold an exclusive advisory lock for the life of the store: two engines on one file
    would each write their own truth. (flock, not fcntl: SQLite's own locks are fcntl locks,
    and the two kinds do not interact on Linux.)"""
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreError(f"store error: {path} is in use by another liqdesk process") from None
    return fd


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode: every transaction in this module is explicit."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema to SCHEMA_VERSION; returns the version the file had."""
    before = conn.execute("PRAGMA user_version").fetchone()[0]
    if before == 0:
        # Written while the file is still in rollback-journal mode, so the marker is in the
        # main file's header at once, where inspect_file() reads it.
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    for version in range(before, SCHEMA_VERSION):
        conn.executescript(f"BEGIN IMMEDIATE; {MIGRATIONS[version]}; PRAGMA user_version = {version + 1}; COMMIT;")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")  # a commit survives power loss, not just a killed process
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the header on disk now shows the new version
    return before


def open_readonly(path: str | os.PathLike) -> sqlite3.Connection:
    """A read-only connection to an existing liqdesk store (for history and db check),
    which may be in use by a running engine."""
    p = Path(path)
    if not p.exists():
        raise StoreError(f"store error: no database at {p}")
    version = inspect_file(p)
    if version == 0:
        raise StoreError(f"store error: {p} is an empty database, not a liqdesk store yet")
    if version < SCHEMA_VERSION:
        raise StoreError(f"store error: {p} has store schema v{version}; run liqdesk on it once to upgrade it "
                         f"to v{SCHEMA_VERSION}")
    conn = sqlite3.connect(f"file:{quote(str(p.resolve()))}?mode=ro", uri=True)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


def dumps(obj: Any) -> str:
    return orjson.dumps(obj, option=_JSON_OPTS).decode()


# --------------------------------------------------------------------------------------------
# rows
# --------------------------------------------------------------------------------------------
@dataclass(slots=True)
class Checkpoint:
    """The engine's whole state at one instant, written in the same transaction as the rows
    that led to it (recovery.capture builds it; recovery.restore reads it back)."""

    ts: int
    components: dict[str, Any]  # engine_state rows: engine, markets, portfolio, broker, approval, feeds
    strategies: dict[str, tuple[bool, Any]]  # name -> (paused, snapshot)
    risk: tuple[bool, str, Any] | None  # (halted, halt reason, snapshot)
    open_positions: list[Position]


@dataclass(slots=True)
class Saved:
    """The last committed checkpoint, as read back at start."""

    seq: int
    ts: int
    components: dict[str, Any]
    strategies: dict[str, tuple[bool, Any]]
    risk: tuple[bool, str, Any] | None


@dataclass(slots=True)
class _Batch:
    orders: list[tuple] = field(default_factory=list)
    order_events: list[tuple] = field(default_factory=list)
    fills: list[tuple] = field(default_factory=list)
    positions: list[tuple] = field(default_factory=list)
    funding: list[tuple] = field(default_factory=list)
    cascades: list[tuple] = field(default_factory=list)
    signals: list[tuple] = field(default_factory=list)
    log: list[tuple] = field(default_factory=list)
    strategy_state: list[tuple] = field(default_factory=list)
    risk_state: list[tuple] = field(default_factory=list)
    engine_state: list[tuple] = field(default_factory=list)
    progress: list[tuple] = field(default_factory=list)
    trim_log: bool = False  # drop log rows beyond the retention

    def statements(self) -> Iterable[tuple[str, list[tuple]]]:
        return ((_SQL_ORDER, self.orders), (_SQL_ORDER_EVENT, self.order_events), (_SQL_FILL, self.fills),
                (_SQL_POSITION, self.positions), (_SQL_FUNDING, self.funding), (_SQL_CASCADE, self.cascades),
                (_SQL_SIGNAL, self.signals), (_SQL_LOG, self.log), (_SQL_STRATEGY_STATE, self.strategy_state),
                (_SQL_RISK_STATE, self.risk_state), (_SQL_ENGINE_STATE, self.engine_state),
                (_SQL_RUN_PROGRESS, self.progress))

    @property
    def rows(self) -> int:
        return sum(len(rows) for _, rows in self.statements())

    def prepend(self, older: _Batch) -> None:
        """Put the rows of a batch that failed to commit back in front (state rows are recaptured)."""
        for name in ("orders", "order_events", "fills", "positions", "funding", "cascades", "signals", "log"):
            getattr(self, name)[:0] = getattr(older, name)


def order_row(o: Order, seq: int, run_id: int, source: str = "engine") -> tuple:
    # The enums are str enums: sqlite3 binds them as their text, no `.value` lookups on the hot path.
    return (o.id, seq, run_id, o.ts, o.updated_ts or o.ts, o.symbol, o.side, o.qty, o.price, o.order_type,
            o.purpose, o.strategy, o.post_only, o.reduce_only, o.trigger_price, o.status, o.filled_qty,
            o.avg_price, o.reason, o.reject_reason, o.leverage, o.exchange_id, source)


def _position_row(p: Position, seq: int, run_id: int) -> tuple:
    return (p.symbol, p.opened_ts, "open", p.side, abs(p.qty), p.entry_price, None, None, None, p.realized_pnl,
            p.fees, p.funding, None, p.max_profit, p.strategy, seq, run_id)


def _closed_row(t: ClosedTrade, seq: int, run_id: int) -> tuple:
    return (t.symbol, t.opened_ts, "closed", t.side, t.qty, t.entry_price, t.exit_price, t.closed_ts, t.exit_reason,
            t.gross_pnl, t.fees, t.funding, t.net_pnl, t.max_profit, t.strategy, seq, run_id)


# --------------------------------------------------------------------------------------------
# the store
# --------------------------------------------------------------------------------------------
class Store:
    """One liqdesk database. Open with `Store(path)`; bad files raise StoreError untouched."""

    def __init__(self, path: str | os.PathLike, batch_ms: float = 100.0, log_retention_rows: int = 200_000):
        self.path = Path(path)
        self.batch_s = batch_ms / 1000.0
        self.log_retention_rows = int(log_retention_rows)
        inspect_file(self.path)
        self._lock_fd = _lock(self.path)
        try:
            self.conn = connect(self.path)
            self.previous_version = migrate(self.conn)
        except sqlite3.DatabaseError as exc:
            os.close(self._lock_fd)
            raise StoreError(f"store error: cannot open {self.path}: {exc}") from None
        self._seq = max(self.conn.execute(f"SELECT coalesce(max(seq), 0) FROM {t}").fetchone()[0]
                        for t in (*_SEQ_TABLES, "orders"))
        self.run_id = 0
        self._buf = _Batch()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="liqdesk-store")
        self._writer: asyncio.Task | None = None
        self._closed = False
        # Set by the service that owns the engine; called with "are rows pending?", returns None
        # when there is nothing new to save.
        self.capture: Callable[[bool], Checkpoint | None] | None = None
        self.on_failure: Callable[[str], None] | None = None
        self.failure = ""  # the last write error while writes are failing, else ""
        self.log_dropped = 0
        self.rows_dropped = 0
        self.rows_written = 0
        self.commits = 0
        self._log_cap = max(self.log_retention_rows, 1000)

    # -- runs -------------------------------------------------------------------------------------
    def begin_run(self, *, version: str, mode: str, feed: str, seed: int | None, config: dict,
                  started_at: str, sim_start_ns: int | None, restored_seq: int | None) -> int:
        """A new runs row (sim_start_ns None: a fresh run, set by its first checkpoint)."""
        cur = self.conn.execute(
            "INSERT INTO runs (version, mode, feed, seed, config, started_at, sim_start_ns, sim_stop_ns, "
            "restored_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (version, mode, feed, seed, dumps(config), started_at, sim_start_ns, sim_start_ns, restored_seq))
        self.run_id = int(cur.lastrowid)
        return self.run_id

    def end_run(self, stopped_at: str, reason: str, sim_stop_ns: int | None) -> None:
        self._executor.submit(self._execute, "UPDATE runs SET stopped_at = ?, stop_reason = ?, "
                              "sim_stop_ns = coalesce(?, sim_stop_ns) WHERE id = ?",
                              (stopped_at, reason, sim_stop_ns, self.run_id)).result()

    # -- hooks the engine calls (cheap: they only buffer, except a durable order) -------------------
    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def record_order(self, order: Order, durable: bool = False, source: str = "engine") -> bool:
        """Buffer an order's new state; with `durable`, commit it before returning.

        Returns False only when a durable write failed: the caller must not send the order.
        """
        self._seq = seq = self._seq + 1
        row = order_row(order, seq, self.run_id, source)
        event = (seq, order.id, order.updated_ts or order.ts, order.status, order.filled_qty,
                 order.avg_price, order.reject_reason or order.reason)
        if not durable:
            self._buf.orders.append(row)
            self._buf.order_events.append(event)
            return True
        if self._closed or self.failure:  # no entries while writes are failing
            return False
        try:
            self._executor.submit(self._commit, _Batch(orders=[row], order_events=[event])).result()
        except sqlite3.Error as exc:
            self._failed(exc)
            return False
        return True

    def record_fill(self, fill: Fill, kind: str = "trade") -> None:
        self._seq += 1
        self._buf.fills.append((self._seq, self.run_id, fill.fill_id, fill.order_id, fill.ts, fill.symbol,
                                fill.side, fill.price, fill.qty, fill.fee, fill.liquidity, fill.queue_ahead,
                                fill.placed_ts, kind))

    def record_closed_trade(self, closed: ClosedTrade) -> None:
        self._buf.positions.append(_closed_row(closed, self._next(), self.run_id))

    def record_funding(self, ts: int, symbol: str, rate: float, mark: float, amount: float) -> None:
        self._buf.funding.append((self._next(), self.run_id, ts, symbol, rate, mark, amount))

    def record_cascade(self, c: Cascade, ended: bool = False) -> None:
        self._buf.cascades.append((c.symbol, c.start_ts, c.fired_ts, c.last_ts, c.count, c.long_count,
                                   c.short_count, c.long_notional, c.short_notional, c.threshold, c.dominant,
                                   int(ended), self._next(), self.run_id))

    def record_signal(self, ts: int, symbol: str, kind: str, strategy: str, message: str, data: dict) -> None:
        self._buf.signals.append((self._next(), self.run_id, ts, symbol, kind, strategy, message, dumps(data)))

    def log(self, ts: int, level: str, strategy: str, message: str) -> None:
        buf = self._buf.log
        if len(buf) >= self._log_cap:  # the log is the one thing a stalled disk may cost
            n = len(buf) // 10
            del buf[:n]
            self.log_dropped += n
        self._seq += 1
        buf.append((self._seq, self.run_id, ts, level, strategy, message))

    # -- the writer --------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the writer task on the running event loop."""
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write_loop(), name="liqdesk-store")

    async def _write_loop(self) -> None:
        while True:
            await asyncio.sleep(self.batch_s)
            try:
                await self.flush()
            except Exception as exc:  # the writer must outlive any one bad batch
                self._failed(exc)

    def take_batch(self, checkpoint: bool = True) -> _Batch:
        """Swap out the buffered rows, with a checkpoint captured at this same instant.

        The checkpoint is captured and serialized first: if that fails, the rows stay buffered.
        """
        state = None
        if checkpoint and self.capture is not None:
            buf = self._buf
            cp = self.capture(bool(buf.orders or buf.order_events or buf.fills or buf.funding), buf.rows > 0)
            if cp is not None:
                state = self._checkpoint_rows(cp)
        batch, self._buf = self._buf, _Batch()
        if state is not None:
            batch.engine_state, batch.strategy_state, batch.risk_state = state.engine_state, \
                state.strategy_state, state.risk_state
            batch.positions.extend(state.positions)
            batch.progress = state.progress
        batch.trim_log = bool(batch.log) and self.commits % 50 == 0
        return batch

    def _checkpoint_rows(self, cp: Checkpoint) -> _Batch:
        seq = self._next()  # after every buffered row: the state is newer than all of them
        run = self.run_id
        rows = _Batch()
        rows.engine_state = [(name, seq, cp.ts, dumps(state)) for name, state in cp.components.items()]
        rows.strategy_state = [(name, seq, cp.ts, int(paused), dumps(state))
                               for name, (paused, state) in cp.strategies.items()]
        if cp.risk is not None:
            halted, reason, state = cp.risk
            rows.risk_state = [("risk", seq, cp.ts, int(halted), reason, dumps(state))]
        rows.positions = [_position_row(p, seq, run) for p in cp.open_positions]
        rows.progress = [(cp.ts, run)]
        return rows

    async def flush(self, checkpoint: bool = True) -> bool:
        """Commit what is buffered (and a checkpoint). False if the write failed (rows are kept)."""
        if self._closed:
            return False
        try:
            batch = self.take_batch(checkpoint)
        except Exception as exc:  # a component whose snapshot() fails: keep the rows, say so
            self._failed(exc)
            return False
        if not batch.rows:
            return True
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._commit, batch)
        except sqlite3.OperationalError as exc:  # disk full, I/O error, locked: retried with the next batch
            self._buf.prepend(batch)
            self._failed(exc)
            return False
        except sqlite3.Error as exc:  # a row SQLite will never take: retrying would block every later one
            self.rows_dropped += batch.rows
            self._failed(exc)
            return False
        if self.failure:
            self.failure = ""
            if self.on_failure is not None:
                self.on_failure("")
        return True

    def flush_sync(self) -> None:
        """Commit everything now, blocking (for callers outside the event loop, e.g. tests, benches)."""
        batch = self.take_batch(True)
        if batch.rows:
            self._executor.submit(self._commit, batch).result()

    def _commit(self, batch: _Batch) -> None:
        """One transaction on the writer thread."""
        conn = self.conn
        recorded = batch.rows
        if len(batch.orders) > 1:  # an order changed several times: only its latest state is upserted
            batch.orders = list({row[0]: row for row in batch.orders}.values())
        conn.execute("BEGIN IMMEDIATE")
        try:
            for sql, rows in batch.statements():
                if rows:
                    conn.executemany(sql, rows)
            if batch.trim_log:
                conn.execute("DELETE FROM log WHERE seq < (SELECT seq FROM log ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                             (self.log_retention_rows - 1,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self.rows_written += recorded
        self.commits += 1

    def _execute(self, sql: str, params: tuple) -> None:
        self.conn.execute(sql, params)

    def _failed(self, exc: Exception) -> None:
        first = not self.failure
        self.failure = f"{type(exc).__name__}: {exc}"
        if first and self.on_failure is not None:
            self.on_failure(self.failure)

    async def close(self, reason: str = "clean", stopped_at: str = "", sim_stop_ns: int | None = None) -> None:
        """Stop the writer, commit the rest with a final checkpoint, mark the run stopped."""
        if self._closed:
            return
        if self._writer is not None:
            self._writer.cancel()
            try:
                await self._writer
            except asyncio.CancelledError:
                pass
            self._writer = None
        await self.flush()
        if self.run_id and stopped_at:
            try:
                self.end_run(stopped_at, reason, sim_stop_ns)
            except sqlite3.Error as exc:
                self._failed(exc)
        self.close_sync()

    def close_sync(self) -> None:
        self._closed = True
        self._executor.shutdown(wait=True)
        try:
            self.conn.execute("PRAGMA optimize")
        except sqlite3.Error:
            pass
        self.conn.close()
        os.close(self._lock_fd)

    # -- reads for recovery (at start, before the writer runs) ------------------------------------
    def load_checkpoint(self) -> Saved | None:
        """The last checkpoint. Rows an earlier checkpoint left (a strategy or feed the last run
        did not have) are not part of it: what was not running then starts fresh."""
        conn = self.conn
        row = conn.execute("SELECT max(seq) FROM engine_state").fetchone()
        if row[0] is None:
            return None
        seq = row[0]
        rows = conn.execute("SELECT component, ts, state FROM engine_state WHERE seq = ?", (seq,)).fetchall()
        components = {r[0]: orjson.loads(r[2]) for r in rows}
        strategies = {r[0]: (bool(r[1]), orjson.loads(r[2]))
                      for r in conn.execute("SELECT strategy, paused, state FROM strategy_state WHERE seq = ?", (seq,))}
        risk_row = conn.execute("SELECT halted, halt_reason, state FROM risk_state WHERE gate = 'risk' AND seq = ?",
                                (seq,)).fetchone()
        risk = None if risk_row is None else (bool(risk_row[0]), risk_row[1], orjson.loads(risk_row[2]))
        return Saved(seq, rows[0][1], components, strategies, risk)

    def closed_trades(self) -> list[ClosedTrade]:
        rows = self.conn.execute(
            "SELECT symbol, side, qty, entry_price, exit_price, opened_ts, closed_ts, gross_pnl, fees, funding, "
            "exit_reason, strategy, max_profit FROM positions WHERE status = 'closed' ORDER BY closed_ts, seq")
        return [ClosedTrade(*r) for r in rows]

    def open_order_rows(self) -> list[dict]:
        """Orders whose last committed state is still working (the checkpoint decides which are real)."""
        cur = self.conn.execute(f"SELECT * FROM orders WHERE status IN ({','.join('?' * len(OPEN_STATUSES))})",
                                OPEN_STATUSES)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def max_order_number(self, prefix: str) -> int:
        """The highest N among order ids `PREFIX-N`, so that new ids never reuse one."""
        row = self.conn.execute("SELECT max(CAST(substr(id, ?) AS INTEGER)) FROM orders WHERE id LIKE ?",
                                (len(prefix) + 2, f"{prefix}-%")).fetchone()
        return int(row[0] or 0)
