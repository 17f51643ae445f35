"""Backtest throughput: events/s of `liqdesk backtest`'s tick path (every event dispatched).

Two workloads, as issue 7 asks:

* the real Binance BTCUSDT capture (sample-data/hftbacktest_raw_ws), tiled `--tile` times
  end to end (each copy shifted by the capture's span), run with maker-probe (orders resting
  all the time: the tick path's worst case) and with cascade;
* the synthetic market, `--days` days x the config's symbols, with cascade.

The import into the columnar cache happens before the clock starts (a re-run reads the cache).
Every workload runs the tick path and the fast-forward path (`--fast-forward`, docs/backtest.md: on
the capture it holds market data while nothing works; on the synthetic market with cascade it also
reduces quiet 10-minute chunks to their liquidations). `--long-days 282` adds the fast-forward-only
282-day run of issue 7's goal. Rows are JSON lines; `cpu_seconds` is this process's CPU time (the
machine is shared, so wall time depends on the load).

    python -m bench.backtest [--tile 55] [--days 30] [--tick-days N] [--long-days 282] [--skip-real]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from engine.backtest.runner import BacktestConfig, run_backtest
from engine.config import Settings

SAMPLE = (
    Path(__file__).resolve().parents[2] / "shared/sample-data/hftbacktest_raw_ws/usdm/btcusdt_20240808.gz"
)


class TiledFeed:
    """A historical feed replayed `times` times back to back, each copy shifted past the previous one."""

    live = False

    def __init__(self, feed, times: int):
        self.feed, self.times = feed, times
        self.name = f"{feed.name} x{times}"
        events = list(feed.events())
        self.first, self.last = events[0].ts, max(e.ts for e in events)
        self.events_per_copy = len(events)
        self._events = events

    def events(self):
        """Copy k is the capture's events with their times moved by k spans. The events are shifted in
        place (dataclasses.replace per event cost as much as the engine): each copy's event is yielded
        before the next copy moves it, and nothing in a backtest keeps an event longer than one copy."""
        span = self.last - self.first + 1_000_000_000
        events = self._events
        ts0 = [ev.ts for ev in events]
        recv0 = [getattr(ev, "recv_ts", 0) for ev in events]
        try:
            for k in range(self.times):
                shift = k * span
                for ev, t, r in zip(events, ts0, recv0, strict=True):
                    ev.ts = t + shift
                    if r:
                        ev.recv_ts = r + shift
                    yield ev
        finally:
            for ev, t, r in zip(events, ts0, recv0, strict=True):
                ev.ts = t
                if r:
                    ev.recv_ts = r


def measure(strategy: str, cfg: BacktestConfig, feed=None, label: str | None = None) -> dict:
    t0, c0 = time.perf_counter(), time.process_time()
    result = run_backtest(Settings(), cfg, progress=False, feed=feed)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "strategy": strategy,
        "feed": label or (feed.name if feed is not None else cfg.feed),
        "path": "fast-forward" if cfg.fast_forward else "tick",
        "events": result.events,  # read by the engine loop (fast-forward's jump mode never generates the rest)
        "fills": result.summary["fills"],
        "net_pnl": round(result.summary["net_pnl"], 2),
        "seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "events_per_s": round(result.events / wall),
        "simulated_days": round((result.end_ns - result.start_ns) / 86_400e9, 3),
        "fast_forward": result.summary["fast_forward"],
    }


def synthetic(days: float, fast_forward: bool) -> dict:
    cfg = BacktestConfig(
        "cascade", feed="synthetic", seed=1, start="2025-03-01", duration_s=days * 86_400, fast_forward=fast_forward
    )
    return measure("cascade", cfg, label=f"synthetic {days:g} d x 5 symbols")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tile", type=int, default=55, help="copies of the 94k-event capture (55 = 5.2M events)")
    ap.add_argument("--days", type=float, default=30.0, help="synthetic days (5 symbols), tick and fast-forward")
    ap.add_argument("--tick-days", type=float, default=None, help="synthetic days for the tick path (default --days)")
    ap.add_argument("--long-days", type=float, default=0.0, help="also a fast-forward-only run this long (282)")
    ap.add_argument("--skip-real", action="store_true", help="leave out the real-capture rows")
    a = ap.parse_args()
    rows = []
    if SAMPLE.exists() and not a.skip_real:
        from engine.feeds.importers.feed import ImportedFeed

        base = ImportedFeed(SAMPLE, family="raw", symbols=["BTCUSDT"])
        base.prepare()
        tiled = TiledFeed(base, a.tile)
        for strategy in ("maker-probe", "cascade"):
            for fast_forward in (False, True):
                cfg = BacktestConfig(
                    strategy, feed=f"binance:{SAMPLE}", symbols=["BTCUSDT"], fast_forward=fast_forward
                )
                rows.append(measure(strategy, cfg, tiled))
                print(json.dumps(rows[-1]), flush=True)
    elif not a.skip_real:
        print(f"no capture at {SAMPLE}: real-data rows skipped", file=sys.stderr)
    tick = synthetic(a.tick_days or a.days, False)
    rows.append(tick)
    print(json.dumps(tick), flush=True)
    ff = synthetic(a.days, True)
    if tick["simulated_days"] == ff["simulated_days"]:  # the events the tick path went through, per fast-forward second
        ff["tick_equivalent_events_per_s"] = round(tick["events"] / ff["seconds"])
    rows.append(ff)
    print(json.dumps(ff), flush=True)
    if a.long_days:
        rows.append(synthetic(a.long_days, True))
        print(json.dumps(rows[-1]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
