"""Calibration of the synthetic market against the cascade guide's figures.

    python -m bench.calibrate_synthetic [--seeds 1 2 3] [--days 7] [--jobs 2] [--json PATH]

Each seed runs the full synthetic market (default settings, all five symbols) through
a bare Engine (no strategies) on the simulated clock, exactly as a headless run does,
and reads cascades per day and the mean cascade duration per symbol from
`Engine.summary()`. Prints one row per seed and the median over seeds, next to the
targets (cascades/day from the guide's backtest; durations 8–14 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

from engine.config import SYMBOLS, Settings
from engine.engine import Engine
from engine.feeds.synthetic import SyntheticMarket

TARGET_PER_DAY = {"ETHUSDT": 9.4, "BTCUSDT": 7.4, "SOLUSDT": 6.9, "XRPUSDT": 5.3, "DOGEUSDT": 4.4}
TARGET_DURATION_S = {"ETHUSDT": 12.0, "BTCUSDT": 14.0, "SOLUSDT": 9.0, "XRPUSDT": 9.0, "DOGEUSDT": 8.0}


def run_seed(seed: int, days: float) -> dict:
    settings = Settings()
    engine = Engine(settings, strategies=[])
    market = SyntheticMarket(settings, seed, SYMBOLS)
    t0 = time.perf_counter()
    asyncio.run(engine.run([market], duration_s=days * 86400))
    wall = time.perf_counter() - t0
    s = engine.summary()
    out = {"seed": seed, "wall_s": round(wall, 1), "events": s["events"], "symbols": {}}
    for sym in SYMBOLS:
        v = s["per_symbol"][sym]
        out["symbols"][sym] = {
            "cascades_per_day": v["cascades"] / days,
            "mean_duration_s": v["mean_cascade_duration_s"],
            "liquidations_per_day": v["liquidations"] / days,
            "p95_usd": engine.markets[sym].liq_threshold.value,
        }
    return out


def median_table(runs: list[dict]) -> dict[str, dict[str, float]]:
    return {sym: {k: statistics.median(r["symbols"][sym][k] for r in runs) for k in runs[0]["symbols"][sym]}
            for sym in SYMBOLS}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    with ProcessPoolExecutor(max_workers=a.jobs) as pool:
        runs = list(pool.map(run_seed, a.seeds, [a.days] * len(a.seeds)))
    short = {s: s.removesuffix("USDT") for s in SYMBOLS}
    print(f"{a.days:g} simulated days per seed; cascades/day (mean duration s)")
    print(f"{'seed':>8} " + " ".join(f"{short[s]:>14}" for s in SYMBOLS) + "   wall s")
    for r in runs:
        cells = " ".join(f"{v['cascades_per_day']:6.2f} ({v['mean_duration_s']:5.1f})"
                         for v in (r["symbols"][s] for s in SYMBOLS))
        print(f"{r['seed']:>8} {cells} {r['wall_s']:8.1f}")
    med = median_table(runs)
    print(f"{'median':>8} " + " ".join(f"{med[s]['cascades_per_day']:6.2f} ({med[s]['mean_duration_s']:5.1f})"
                                       for s in SYMBOLS))
    print(f"{'target':>8} " + " ".join(f"{TARGET_PER_DAY[s]:6.2f} ({TARGET_DURATION_S[s]:5.1f})" for s in SYMBOLS))
    print(f"{'liq/day':>8} " + " ".join(f"{med[s]['liquidations_per_day']:14.0f}" for s in SYMBOLS))
    print(f"{'P95 USD':>8} " + " ".join(f"{med[s]['p95_usd']:14,.0f}" for s in SYMBOLS))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"days": a.days, "runs": runs, "median": med, "target_per_day": TARGET_PER_DAY}, f, indent=1)


if __name__ == "__main__":
    main()
