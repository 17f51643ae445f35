"""Calibration of the synthetic market against the cascade guide's figures.

    python -m bench.calibrate_synthetic [--seeds 1 2 3] [--days 7] [--jobs 2] [--liquidations-only]
                                        [--json PATH]

Each seed runs the synthetic market (default settings, all five symbols) through a
bare Engine (no strategies) on the simulated clock, exactly as a headless run does,
and reads cascades per day and the mean cascade duration per symbol from
`Engine.summary()`. Prints one row per seed and the median over seeds, next to the
targets (cascades/day and durations from the cascade guide's backtest table).
--liquidations-only builds only the Liquidation events, which are the same events as
in the full stream (tests/test_synthetic.py checks this), about 20x faster.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from engine.config import SYMBOLS, Settings
from engine.engine import Engine
from engine.events import Liquidation
from engine.feeds.synthetic import SyntheticMarket

TARGET_PER_DAY = {"ETHUSDT": 9.4, "BTCUSDT": 7.4, "SOLUSDT": 6.9, "XRPUSDT": 5.3, "DOGEUSDT": 4.4}
TARGET_DURATION_S = {"ETHUSDT": 12.0, "BTCUSDT": 14.0, "SOLUSDT": 9.0, "XRPUSDT": 9.0, "DOGEUSDT": 8.0}


class _Tap:
    """Passes a feed through, keeping every liquidation's notional per symbol."""

    name = "synthetic"
    live = False

    def __init__(self, feed: SyntheticMarket):
        self.feed = feed
        self.notional: dict[str, list[float]] = {s: [] for s in feed.symbols}

    def events(self):
        for ev in self.feed.events():
            if type(ev) is Liquidation:
                self.notional[ev.symbol].append(ev.notional)
            yield ev


def run_seed(seed: int, days: float, liquidations_only: bool = False) -> dict:
    settings = Settings()
    engine = Engine(settings, strategies=[])
    tap = _Tap(SyntheticMarket(settings, seed, SYMBOLS, kinds={Liquidation} if liquidations_only else None))
    t0 = time.perf_counter()
    asyncio.run(engine.run([tap], duration_s=days * 86400))
    wall = time.perf_counter() - t0
    s = engine.summary()
    out = {"seed": seed, "wall_s": round(wall, 1), "events": s["events"], "symbols": {}}
    for sym in SYMBOLS:
        v = s["per_symbol"][sym]
        out["symbols"][sym] = {
            "cascades_per_day": v["cascades"] / days,
            "mean_duration_s": v["mean_cascade_duration_s"],
            "liquidations_per_day": v["liquidations"] / days,
            "p95_usd": float(np.quantile(tap.notional[sym], 0.95)),  # over the whole run
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
    ap.add_argument("--liquidations-only", action="store_true")
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    n = len(a.seeds)
    with ProcessPoolExecutor(max_workers=a.jobs) as pool:
        runs = list(pool.map(run_seed, a.seeds, [a.days] * n, [a.liquidations_only] * n))
    short = {s: s.removesuffix("USDT") for s in SYMBOLS}
    kind = "liquidations only" if a.liquidations_only else "full market"
    print(f"{a.days:g} simulated days per seed, {kind}; cascades/day (mean duration s)")
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
            json.dump({"days": a.days, "liquidations_only": a.liquidations_only, "runs": runs, "median": med,
                       "target_per_day": TARGET_PER_DAY}, f, indent=1)


if __name__ == "__main__":
    main()
