"""Backtest throughput: events/s of `liqdesk backtest`'s tick path (every event dispatched).

Two workloads, as issue 7 asks:

* the real Binance BTCUSDT capture (sample-data/hftbacktest_raw_ws), tiled `--tile` times
  end to end (each copy shifted by the capture's span), run with maker-probe (orders resting
  all the time: the tick path's worst case) and with cascade;
* the synthetic market, `--days` days x the config's symbols, with cascade.

The import into the columnar cache happens before the clock starts (a re-run reads the cache).
The synthetic rows run the tick path and the fast-forward path (`--fast-forward`: market data no
strategy listens to is held while nothing works; see docs/backtest.md).

    python -m bench.backtest [--tile 55] [--days 1]
"""

from __future__ import annotations

import argparse
import dataclasses
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
        span = self.last - self.first + 1_000_000_000
        for k in range(self.times):
            shift = k * span
            if shift == 0:
                yield from self._events
                continue
            for ev in self._events:
                fields = {"ts": ev.ts + shift}
                if getattr(ev, "recv_ts", 0):
                    fields["recv_ts"] = ev.recv_ts + shift
                yield dataclasses.replace(ev, **fields)


def measure(strategy: str, cfg: BacktestConfig, feed=None) -> dict:
    t0 = time.perf_counter()
    result = run_backtest(Settings(), cfg, progress=False, feed=feed)
    wall = time.perf_counter() - t0
    return {
        "strategy": strategy,
        "feed": feed.name if feed is not None else cfg.feed,
        "events": result.events,
        "fills": result.summary["fills"],
        "seconds": round(wall, 2),
        "events_per_s": round(result.events / wall),
        "events_skipped": result.skipped,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tile", type=int, default=55, help="copies of the 94k-event capture (55 = 5.2M events)")
    ap.add_argument("--days", type=float, default=1.0, help="synthetic days (all config symbols)")
    a = ap.parse_args()
    rows = []
    if SAMPLE.exists():
        from engine.feeds.importers.feed import ImportedFeed

        base = ImportedFeed(SAMPLE, family="raw", symbols=["BTCUSDT"])
        base.prepare()
        tiled = TiledFeed(base, a.tile)
        for strategy in ("maker-probe", "cascade"):
            cfg = BacktestConfig(strategy, feed=f"binance:{SAMPLE}", symbols=["BTCUSDT"])
            rows.append(measure(strategy, cfg, tiled))
    else:
        print(f"no capture at {SAMPLE}: real-data rows skipped", file=sys.stderr)
    for fast_forward in (False, True):
        cfg = BacktestConfig(
            "cascade",
            feed="synthetic",
            seed=1,
            start="2025-03-01",
            duration_s=a.days * 86_400,
            fast_forward=fast_forward,
        )
        row = measure("cascade", cfg) | {"feed": f"synthetic {a.days:g} d x 5 symbols"}
        rows.append(row | {"path": "fast-forward" if fast_forward else "tick"})
    for r in rows:
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
