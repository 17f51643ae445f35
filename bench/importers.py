"""Importer speed: converting a file into the columnar cache, replaying it, loading its columns.

    python -m bench.importers [PATH ...] [--repeat 3] [--json PATH]

Default input: the real Binance USD-M capture ../shared/sample-data/hftbacktest_raw_ws/usdm/
btcusdt_20240808.gz (93,954 lines, 6 minutes of depth, trades and bookTicker). Reported per file:
conversion events/s (parse + columnar write, run once into a fresh cache), replay events/s (typed
events rebuilt from the cache, median of --repeat), and the time to load the Trade and BookDelta
columns as numpy arrays (median). One process, one core.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

from engine.feeds.importers import cached, detect
from engine.feeds.importers.columnar import iter_cache, load_columns, read_meta

SAMPLES = Path(__file__).resolve().parents[1] / ".." / "shared" / "sample-data"
DEFAULT = SAMPLES / "hftbacktest_raw_ws" / "usdm"


def bench_file(path: Path, repeat: int) -> dict:
    importer = detect(path)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        cache = cached(path, importer, Path(tmp))
        convert_s = time.perf_counter() - t0
        n = read_meta(cache)["events"]
        replay = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            count = sum(1 for _ in iter_cache(cache))
            replay.append(time.perf_counter() - t0)
        assert count == n
        columns = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            load_columns(cache, "Trade")
            load_columns(cache, "BookDelta")
            columns.append(time.perf_counter() - t0)
    return {
        "file": path.name,
        "importer": importer.name,
        "bytes": path.stat().st_size,
        "events": n,
        "convert_s": round(convert_s, 3),
        "convert_events_per_s": round(n / convert_s),
        "replay_events_per_s": round(n / statistics.median(replay)),
        "load_columns_s": round(statistics.median(columns), 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    paths = args.paths or [DEFAULT.resolve() / "btcusdt_20240808.gz"]
    results = [bench_file(p, args.repeat) for p in paths]
    for r in results:
        print(f"{r['file']}: {r['events']} events; convert {r['convert_s']} s "
              f"({r['convert_events_per_s']:,} ev/s), replay {r['replay_events_per_s']:,} ev/s, "
              f"Trade+BookDelta columns {r['load_columns_s']} s")
    if args.json:
        args.json.write_text(json.dumps({"machine": platform.platform(), "python": platform.python_version(),
                                         "results": results}, indent=2))


if __name__ == "__main__":
    main()
