"""Restoring a checkpoint: restart equivalence, halt and cooldowns, orphans, exchange reconciliation,
and the `liqdesk history` / `liqdesk db check` commands."""

from __future__ import annotations

import asyncio
import csv
import sqlite3
from pathlib import Path

import pytest

from engine import cli
from engine.config import Settings
from engine.events import NS
from engine.orders import Fill, Order, OrderStatus, OrderType, PlaceOrder, Position, Purpose
from engine.recovery import StoreService, encode_event, reconcile
from engine.runtime import RunOptions, build_engine
from engine.store import Store

SETTINGS = Settings(engine={"log_file": ""})


def opts(db: Path, duration: float | None = None, mode: str = "paper") -> RunOptions:
    return RunOptions(seed=5, speed=None, duration_s=duration, db=str(db), mode=mode)


async def _segment(db: Path, duration: float, stop_when=None, lines: list | None = None):
    """One headless-like run on `db`: open the store (restoring), run, stop cleanly."""
    out = lines if lines is not None else []
    engine, feeds = build_engine(SETTINGS, opts(db, duration), output=out.append)
    svc = await StoreService.open(engine, feeds, SETTINGS, opts(db, duration))
    if stop_when is not None:
        real_on_fill = engine.on_fill

        def on_fill(fill):
            closed = real_on_fill(fill)
            if stop_when(engine):
                engine.stop()
            return closed
        engine.on_fill = on_fill
    await engine.run(feeds, duration_s=duration)
    at_stop = {"positions": [(p.symbol, p.qty) for p in engine.portfolio.open_positions()],
               "orders": sorted(engine.open_orders), "clock": engine.clock.now()}
    await svc.stop()
    return engine, at_stop


def fills_of(db: Path) -> list[tuple]:
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT fill_id, order_id, ts, symbol, side, price, qty, fee, liquidity, queue_ahead "
                        "FROM fills ORDER BY ts, seq").fetchall()
    conn.close()
    return rows


def test_a_run_stopped_half_way_and_restarted_ends_like_an_uninterrupted_one(tmp_path):
    """Paper exchange on the synthetic feed. Stopped while a position is open (take profit
    resting, stop loss in flight), restarted on the same seed and database. The horizon
    outlasts the position timeout, so the position opened before the stop closes after it."""
    horizon = 2400.0
    whole, _ = asyncio.run(_segment(tmp_path / "a.db", horizon))
    end = whole.clock.now()

    lines: list[str] = []
    first, at_stop = asyncio.run(_segment(tmp_path / "b.db", horizon,
                                          stop_when=lambda e: bool(e.portfolio.open_positions()), lines=lines))
    assert at_stop["positions"] and at_stop["orders"], "the stop should catch a position with working orders"
    assert at_stop["clock"] < end
    second, _ = asyncio.run(_segment(tmp_path / "b.db", (end - at_stop["clock"]) / NS, lines=lines))

    restored = [ln for ln in lines if "restored state" in ln]
    assert len(restored) == 1 and "1 open position" in restored[0] and "feed synthetic" in restored[0]
    assert second.clock.now() == end
    a, b = whole.summary(), second.summary()
    assert a == b  # every count, PnL, fee, exit split and performance figure, per symbol too
    assert sum(1 for f in fills_of(tmp_path / "b.db") if f[2] > at_stop["clock"]) >= 1
    assert [(p.symbol, p.qty, p.entry_price) for p in whole.portfolio.open_positions()] == \
        [(p.symbol, p.qty, p.entry_price) for p in second.portfolio.open_positions()]
    assert fills_of(tmp_path / "a.db") == fills_of(tmp_path / "b.db")  # same ids, times, prices, queue positions
    assert cli.main(["db", "check", "--db", str(tmp_path / "b.db")]) == 0


async def _open(db: Path, mode: str = "paper", lines: list | None = None):
    out = lines if lines is not None else []
    engine, feeds = build_engine(SETTINGS, opts(db, mode=mode), output=out.append)
    return engine, await StoreService.open(engine, feeds, SETTINGS, opts(db, mode=mode))


def test_halt_cooldowns_and_loss_counters_survive_a_restart(tmp_path):
    db = tmp_path / "h.db"

    async def first():
        engine, svc = await _open(db)
        engine.clock.advance_to(1_736_150_000 * NS)
        engine.halt("operator")
        rs = engine.risk.state
        rs.cooldowns["ETHUSDT"] = engine.clock.now() + 240 * NS
        rs.daily.start_ts, rs.daily.start_equity, rs.daily.pnl = 1_736_121_600 * NS, 10_000.0, -85.0
        engine.pause_strategy("cascade")
        await svc.stop()

    async def second():
        lines: list[str] = []
        engine, svc = await _open(db, lines=lines)
        rs = engine.risk.state
        try:
            assert engine.halted and engine.halt_reason == "operator" and rs.halted
            assert rs.cooldowns == {"ETHUSDT": 1_736_150_000 * NS + 240 * NS}
            assert (rs.daily.pnl, rs.daily.start_equity) == (-85.0, 10_000.0)
            assert engine.strategy("cascade").paused
            assert any("restored state" in ln and "1 cooldown" in ln and "halt on (operator)" in ln for ln in lines)
            order = engine.place(PlaceOrder("ETHUSDT", "buy", 1.0, 2500.0, purpose=Purpose.ENTRY, strategy="cascade"))
            assert order is None and "halted (operator)" in lines[-1]
        finally:
            await svc.stop()

    asyncio.run(first())
    asyncio.run(second())


def test_an_order_committed_after_the_last_checkpoint_is_cancelled_and_its_id_never_reused(tmp_path):
    db = tmp_path / "o.db"

    async def crash_after_an_entry():
        engine, svc = await _open(db)
        await svc.store.flush()  # a checkpoint without the order
        orphan = Order("L-41", engine.clock.now(), "ETHUSDT", "buy", 1.0, 2500.0, OrderType.LIMIT, Purpose.ENTRY,
                       "cascade")
        assert svc.store.record_order(orphan, durable=True)
        svc.store.close_sync()  # killed: no final batch

    async def restart():
        lines: list[str] = []
        engine, svc = await _open(db, lines=lines)
        assert any("1 order placed after the checkpoint marked cancelled" in ln for ln in lines)
        assert engine._next_order_id() == "L-42"
        await svc.stop()

    asyncio.run(crash_after_an_entry())
    asyncio.run(restart())
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT status FROM orders WHERE id = 'L-41'").fetchone()[0] == "cancelled"


def test_the_event_read_but_not_dispatched_at_a_stop_is_kept_through_any_number_of_restarts(tmp_path):
    db = tmp_path / "p.db"
    first, _ = asyncio.run(_segment(db, 120.0))
    pending = encode_event(first.unconsumed)
    assert pending is not None and pending["event"].ts > first.clock.now()

    async def restore_and_crash_before_dispatching():
        engine, feeds = build_engine(SETTINGS, opts(db, 60.0))
        svc = await StoreService.open(engine, feeds, SETTINGS, opts(db, 60.0))
        assert [encode_event(e) for e in feeds[0].pending] == [pending]
        await svc.store.flush()  # a checkpoint before the run has taken anything from the feed
        svc.store.close_sync()

    asyncio.run(restore_and_crash_before_dispatching())
    asyncio.run(restore_and_crash_before_dispatching())  # ... and again, from that checkpoint


def test_a_database_of_another_seed_is_refused(tmp_path, capsys):
    db = tmp_path / "s.db"
    asyncio.run(_segment(db, 60.0))
    other = RunOptions(seed=6, speed=None, duration_s=60.0, db=str(db))

    async def reopen():
        engine, feeds = build_engine(SETTINGS, other)
        await StoreService.open(engine, feeds, SETTINGS, other)

    with pytest.raises(Exception, match="continues another synthetic feed") as err:
        asyncio.run(reopen())
    assert type(err.value).__name__ == "StoreError"


# --------------------------------------------------------------------------------------------
# reconciliation (demo, testnet, live)
# --------------------------------------------------------------------------------------------
class FakeExchange:
    """A broker that reports positions and open orders the way an exchange would after a restart."""

    name = "fake"

    def __init__(self, positions: list[Position], orders: list[Order]):
        self._positions = positions
        self._orders = orders
        self.submitted: list[str] = []

    def attach(self, engine) -> None:
        pass

    def submit(self, order: Order) -> None:
        self.submitted.append(order.id)

    def cancel(self, order_id: str) -> None:
        pass

    def on_market(self, ev) -> None:
        pass

    async def positions(self) -> list[Position]:
        return self._positions

    async def open_orders(self) -> list[Order]:
        return self._orders


def _order(oid: str, symbol: str, side: str, qty: float, price: float, purpose=Purpose.TAKE_PROFIT,
           strategy: str = "cascade") -> Order:
    return Order(oid, 1, symbol, side, qty, price, OrderType.LIMIT, purpose, strategy, reduce_only=True,
                 status=OrderStatus.NEW)


def test_reconcile_adopts_the_exchanges_positions_and_orders_and_logs_every_difference(tmp_path):
    db = tmp_path / "r.db"
    store = Store(db)
    engine, _ = build_engine(SETTINGS, opts(db))
    engine.store = store
    engine.clock.advance_to(1_736_150_000 * NS)
    pf = engine.portfolio
    for oid, side, qty in (("L-1", "buy", 1.0), ("L-2", "buy", 2.0)):
        o = Order(oid, 1, "ETHUSDT" if oid == "L-1" else "XRPUSDT", side, qty, 2500.0, OrderType.LIMIT,
                  Purpose.ENTRY, "cascade", status=OrderStatus.FILLED, filled_qty=qty, avg_price=2500.0)
        store.record_order(o)
        fill = Fill(engine.clock.now(), oid, o.symbol, side, 2500.0 if oid == "L-1" else 2.0, qty, 0.1, "maker",
                    fill_id=f"F{oid}")
        store.record_fill(fill)
        pf.apply_fill(fill, strategy="cascade")
    tp = _order("L-3", "ETHUSDT", "sell", 1.0, 2510.0)
    engine.orders[tp.id] = engine.open_orders[tp.id] = tp
    store.record_order(tp)
    orphan = _order("L-4", "ETHUSDT", "sell", 0.5, 2490.0, purpose=Purpose.STOP_LOSS)
    orphan.status = OrderStatus.PENDING
    store.record_order(orphan, durable=True)  # committed, then we crashed before our state knew it
    engine.market("SOLUSDT").mark = 181.0

    exchange_positions = [Position("ETHUSDT", 0.5, 2505.0), Position("SOLUSDT", -2.0, 180.0)]
    exchange_orders = [_order("L-4", "ETHUSDT", "sell", 0.5, 2490.0), _order("X-9", "SOLUSDT", "buy", 2.0, 175.0)]
    diffs = reconcile(engine, exchange_positions, exchange_orders, store)

    assert diffs == [
        "ETHUSDT position: ours +1, exchange +0.5; adopted the exchange's",
        "SOLUSDT position: ours +0, exchange -2; adopted the exchange's",
        "XRPUSDT position: ours +2, exchange +0; adopted the exchange's (closing PnL estimated at the mark)",
        "order L-3 ETHUSDT sell 1: not at the exchange; marked cancelled",
        "order L-4 ETHUSDT sell 0.5 @ 2490.0: open at the exchange only; adopted",
        "order X-9 SOLUSDT buy 2 @ 175.0: open at the exchange only; adopted",
    ]
    positions = {p.symbol: (p.qty, p.entry_price) for p in pf.open_positions()}
    assert positions == {"ETHUSDT": (0.5, 2505.0), "SOLUSDT": (-2.0, 180.0)}
    assert sorted(engine.open_orders) == ["L-4", "X-9"]
    assert engine.open_orders["L-4"].strategy == "cascade" and engine.open_orders["X-9"].strategy == "external"
    assert engine.orders["L-3"].status is OrderStatus.CANCELLED

    svc = StoreService(engine, [], store)
    store.capture = svc._capture
    store.flush_sync()
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM fills WHERE kind = 'reconcile'").fetchone()[0] == 3
    assert conn.execute("SELECT source FROM orders WHERE id = 'X-9'").fetchone()[0] == "exchange"
    store.close_sync()
    assert cli.main(["db", "check", "--db", str(db)]) == 0  # positions are still the sum of their fills


def test_a_demo_start_reconciles_through_the_broker_and_logs_it(tmp_path, monkeypatch):
    db = tmp_path / "d.db"
    exchange = FakeExchange([Position("BTCUSDT", 0.01, 97_000.0)], [])
    monkeypatch.setattr("engine.runtime._execution",
                        lambda settings, o: {"broker": exchange})
    lines: list[str] = []

    async def start():
        engine, svc = await _open(db, mode="demo", lines=lines)
        await svc.reconcile()
        assert engine.portfolio.positions["BTCUSDT"].qty == 0.01
        await svc.stop()

    asyncio.run(start())
    assert any("RECONCILE BTCUSDT position: ours +0, exchange +0.01" in ln for ln in lines)


# --------------------------------------------------------------------------------------------
# history and db check
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def traded_db(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("hist") / "t.db"
    asyncio.run(_segment(db, 2400.0))
    return db


def test_history_lists_closed_trades_and_fills_and_writes_a_csv(traded_db, tmp_path, capsys):
    out_csv = tmp_path / "h.csv"
    assert cli.main(["history", "--db", str(traded_db), "--csv", str(out_csv)]) == 0
    text = capsys.readouterr().out
    conn = sqlite3.connect(traded_db)
    n_trades = conn.execute("SELECT count(*) FROM positions WHERE status = 'closed'").fetchone()[0]
    n_fills = conn.execute("SELECT count(*) FROM fills").fetchone()[0]
    assert n_trades > 0 and f"closed trades: {n_trades}" in text and f"fills: {n_fills}" in text
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == n_trades + n_fills
    assert {r["record"] for r in rows} == {"trade", "fill"}
    assert all(r["time_utc"].startswith("2025-01-06") for r in rows)


def test_history_since_filters_by_simulated_time(traded_db, capsys):
    assert cli.main(["history", "--db", str(traded_db), "--since", "2025-01-07"]) == 0
    assert "closed trades: 0 since 2025-01-07 00:00:00 UTC" in capsys.readouterr().out
    assert cli.main(["history", "--db", str(traded_db), "--since", "yesterday"]) == 2
    assert "--since = 'yesterday'" in capsys.readouterr().err


def test_db_check_prints_counts_and_fails_on_a_position_that_is_not_its_fills(traded_db, tmp_path, capsys):
    assert cli.main(["db", "check", "--db", str(traded_db)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"db check {traded_db}: ok") and "fills" in out and "runs 1" in out
    broken = tmp_path / "broken.db"
    broken.write_bytes(traded_db.read_bytes())
    conn = sqlite3.connect(broken)
    conn.execute("INSERT INTO fills VALUES (999999, 1, 'P999', 'L-1', 1, 'ETHUSDT', 'buy', 2500, 0.5, 0, 'maker', "
                  "0, 0, 'trade')")
    conn.commit()
    conn.close()
    assert cli.main(["db", "check", "--db", str(broken)]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "ETHUSDT: position" in out and "fills sum to" in out


def test_db_check_on_a_bad_file_exits_2_with_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"\x00garbage" * 1000)
    assert cli.main(["db", "check", "--db", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "not a SQLite database" in err
    assert cli.main(["history", "--db", str(tmp_path / "missing.db")]) == 2


def test_an_unreachable_exchange_leaves_the_restored_state_alone(tmp_path, monkeypatch):
    class Down(FakeExchange):
        async def positions(self) -> list[Position]:
            raise ConnectionError("connection refused")

    monkeypatch.setattr("engine.runtime._execution", lambda settings, o: {"broker": Down([], [])})
    lines: list[str] = []

    async def start():
        engine, svc = await _open(tmp_path / "u.db", mode="demo", lines=lines)
        fill = Fill(1, "L-1", "ETHUSDT", "buy", 2500.0, 1.0, 0.0, "maker")
        engine.portfolio.apply_fill(fill)
        assert await svc.reconcile() == [
            "could not read the exchange (ConnectionError: connection refused); kept the restored state"]
        assert engine.portfolio.positions["ETHUSDT"].qty == 1.0
        await svc.stop()

    asyncio.run(start())
    assert any("RECONCILE could not read the exchange" in ln for ln in lines)


def test_a_saved_state_that_no_longer_fits_is_a_one_line_error(tmp_path):
    db = tmp_path / "x.db"
    asyncio.run(_segment(db, 60.0))
    conn = sqlite3.connect(db)
    conn.execute("""UPDATE engine_state SET state = '{"clock_ns": 5, "open_orders": [{"id": "L-1"}]}'
                    WHERE component = 'engine'""")
    conn.commit()
    conn.close()
    with pytest.raises(Exception, match=r"cannot restore the engine state saved in the database \(KeyError") as err:
        asyncio.run(_open(db))
    assert type(err.value).__name__ == "StoreError" and "\n" not in str(err.value)
