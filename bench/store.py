"""The SQLite store: sustained write rate, engine throughput with the store on and off, and kills.

    python -m bench.store [--rows 600000] [--batch 5000] [--seconds 7200] [--repeat 3] [--kills 0]
                          [--kill-after 2.0] [--json PATH]

* Rows/s: orders (with their state changes), fills and log lines are recorded through the
  store's hooks (what the engine calls) and committed in batches of `--batch` rows, each a
  transaction with synchronous=FULL (fsync per commit), as the writer task does. Reported per
  second of wall time, hook calls included; the goal is >= 50,000 rows/s.
* Engine throughput: the synthetic market's events for `--seconds` simulated seconds are
  generated first, then run through `Engine.run` (cascade strategy, risk, approval, paper
  exchange) with the store off, then on (writer task, checkpoints, durable entries);
  alternating, median of `--repeat` runs each. Rates are events per second of process CPU
  time (the writer thread's CPU counts against the store); the goal is < 10% slowdown.
* `--kills N`: the crash harness of the test suite (tests/store_crash.py) with N SIGKILLs, each
  up to `--kill-after` seconds after the run is up (the test suite uses 0.9 s and 20 kills).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from engine.config import Settings
from engine.events import NS
from engine.feeds.synthetic import SyntheticMarket
from engine.orders import Fill, Order, OrderStatus, OrderType, Purpose
from engine.recovery import StoreService
from engine.runtime import RunOptions, build_engine
from engine.store import Store

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_736_121_600 * NS


def write_rate(rows: int, batch: int, workdir: Path) -> dict:
    """Orders (new, then filled), fills and log lines, committed every `batch` rows."""
    return asyncio.run(_write_rate(rows, batch, workdir))


async def _write_rate(rows: int, batch: int, workdir: Path) -> dict:
    """As in a run: the next batch is recorded while the writer thread commits the previous one."""
    store = Store(workdir / "rate.db")
    per_kind = {"orders": 0, "fills": 0, "log": 0}
    t0 = time.perf_counter()
    c0 = time.process_time()
    n = 0
    i = 0
    committing: asyncio.Task | None = None
    while n < rows:
        for _ in range(batch // 6):
            i += 1
            ts = T0 + i * 1_000_000
            o = Order(f"L-{i}", ts, "ETHUSDT", "buy", 0.88, 3400.0 + i % 100, OrderType.LIMIT, Purpose.ENTRY,
                      "cascade", post_only=True, status=OrderStatus.NEW, updated_ts=ts)
            store.record_order(o)
            o.status, o.filled_qty, o.avg_price, o.updated_ts = OrderStatus.FILLED, 0.88, o.price, ts + 1
            store.record_order(o)
            store.record_fill(Fill(ts + 1, o.id, "ETHUSDT", "buy", o.price, 0.88, 0.6, "maker", 12.5, ts, f"P{i}"))
            store.log(ts, "info", "cascade", f"FILL ETHUSDT buy 0.88 @ {o.price:g} (maker, fee 0.60)")
            per_kind["orders"] += 4  # orders and order_events rows, twice
            per_kind["fills"] += 1
            per_kind["log"] += 1
            n += 6
        if committing is not None:
            await committing
        committing = asyncio.ensure_future(store.flush(checkpoint=False))
        await asyncio.sleep(0)  # the flush takes its batch now
    if committing is not None:
        await committing
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    commits = store.commits
    store.close_sync()
    return {"rows": n, "commits": commits, "rows_per_commit": n // max(commits, 1), "wall_s": round(wall, 3),
            "rows_per_s": round(n / wall), "rows_per_cpu_s": round(n / cpu), "by_kind": per_kind,
            "db_bytes": (workdir / "rate.db").stat().st_size}


class ListFeed:
    """Pre-generated events, so that the engine (not the generator) is what is timed."""

    name = "list"
    live = False

    def __init__(self, events: list):
        self._events = events

    def events(self):
        return iter(self._events)


async def _engine_run(settings: Settings, events: list, store_db: Path | None) -> tuple[float, float, int, float]:
    """(wall s, CPU s, events) of the run itself, and the wall time of the store's clean stop."""
    opts = RunOptions(seed=1, speed=None, db=str(store_db or "unused.db"))
    engine, _ = build_engine(settings, opts, output=None)
    feeds: list = [ListFeed(events)]
    svc = await StoreService.open(engine, feeds, settings, opts) if store_db is not None else None
    t0, c0 = time.perf_counter(), time.process_time()
    await engine.run(feeds)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    t1 = time.perf_counter()
    if svc is not None:
        await svc.stop()  # the last batch, the final checkpoint, closing the file
    return wall, cpu, engine.stats.events, time.perf_counter() - t1


def engine_throughput(seconds: float, repeat: int, workdir: Path) -> dict:
    settings = Settings(engine={"log_file": ""})
    market = SyntheticMarket(settings, 1, settings.engine.symbols)
    events, end = [], None
    for ev in market.events():
        end = end or ev.ts + int(seconds * NS)
        if ev.ts > end:
            break
        events.append(ev)
    runs: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
    stops: list[float] = []
    for k in range(repeat):
        for mode in ("off", "on"):
            db = workdir / f"engine{k}.db" if mode == "on" else None
            wall, cpu, n, stop = asyncio.run(_engine_run(settings, events, db))
            runs[mode].append((n / wall, n / cpu))
            if db is not None:
                stops.append(stop)
    off_cpu = statistics.median(r[1] for r in runs["off"])
    on_cpu = statistics.median(r[1] for r in runs["on"])
    off_wall = statistics.median(r[0] for r in runs["off"])
    on_wall = statistics.median(r[0] for r in runs["on"])
    return {"events": len(events), "sim_seconds": seconds, "repeat": repeat,
            "events_per_cpu_s_off": round(off_cpu), "events_per_cpu_s_on": round(on_cpu),
            "slowdown_cpu_pct": round(100.0 * (1.0 - on_cpu / off_cpu), 2),
            "events_per_wall_s_off": round(off_wall), "events_per_wall_s_on": round(on_wall),
            "slowdown_wall_pct": round(100.0 * (1.0 - on_wall / off_wall), 2),
            "store_stop_ms": round(1000 * statistics.median(stops), 1)}


def kills(n: int, workdir: Path, max_run_s: float) -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    from store_crash import kill_loop  # the test suite's harness, shared on purpose

    t0 = time.perf_counter()
    report = kill_loop(workdir, n, seed=20_260_000 + n, max_run_s=max_run_s)
    return {"kills": report.kills, "restarts_checked": report.restarts_checked, "fills": report.fills,
            "orders": report.orders, "events": report.events, "sim_seconds": round(report.sim_seconds),
            "halt_restored": report.halt_restored, "positions_restored": report.positions_restored,
            "violations": 0, "wall_s": round(time.perf_counter() - t0, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=600_000)
    ap.add_argument("--batch", type=int, default=5_000, help="rows per commit (writer batch)")
    ap.add_argument("--seconds", type=float, default=7200.0, help="simulated seconds for the engine runs")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--kills", type=int, default=0, help="SIGKILL the headless run this many times (e.g. 200)")
    ap.add_argument("--kill-after", type=float, default=2.0,
                    help="each run is killed up to this many seconds after it is up")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    result: dict = {"machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
                    "python": platform.python_version()}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        result["write_rate"] = write_rate(args.rows, args.batch, work)
        print(f"write rate: {result['write_rate']['rows_per_s']:,} rows/s "
              f"({result['write_rate']['rows']:,} rows in {result['write_rate']['commits']} commits)", flush=True)
        result["engine"] = engine_throughput(args.seconds, args.repeat, work)
        e = result["engine"]
        print(f"engine: {e['events_per_cpu_s_off']:,} events/CPU-s store off, {e['events_per_cpu_s_on']:,} on "
              f"({e['slowdown_cpu_pct']:+.1f}% slowdown; wall {e['slowdown_wall_pct']:+.1f}%)", flush=True)
        if args.kills:
            kill_dir = work / "kills"
            kill_dir.mkdir()
            result["kills"] = kills(args.kills, kill_dir, args.kill_after)
            k = result["kills"]
            print(f"kills: {k['kills']} SIGKILLs, {k['restarts_checked']} restarts checked, 0 violations, "
                  f"{k['fills']} fills over {k['sim_seconds']} simulated s", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
