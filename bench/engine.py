"""Engine throughput and event-to-intent latency on the synthetic market.

    python -m bench.engine [--seconds 3600] [--seed 1] [--repeat 3] [--json PATH]

Events are generated first (the feed's own speed is reported separately), then
dispatched through an Engine with the risk and approval gates and the paper
exchange, on the simulated clock, in one process (one core). The headline numbers
use the default strategy set (the config's `engine.strategies`); the same run also
measures every available strategy at once under `all_strategies`, because the LPI
strategy's 250 ms feature ticks (about one tick per event on the synthetic market)
cost far more than the engine itself. Reported: events/s through the engine (median of --repeat runs),
end-to-end events/s including generation, and latency percentiles in µs:
per event dispatch, and event-to-intent (from the start of dispatching an event
to each intent it produced reaching the risk gate).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np

from engine.config import Settings
from engine.feeds.synthetic import SyntheticMarket
from engine.runtime import RunOptions, build_engine
from engine.strategies import available


def generate(settings: Settings, seed: int, seconds: float) -> tuple[list, float]:
    market = SyntheticMarket(settings, seed, settings.engine.symbols)
    t0 = time.perf_counter()
    out = []
    end = None
    for ev in market.events():
        if end is None:
            end = ev.ts + int(seconds * 1e9)
        if ev.ts > end:
            break
        out.append(ev)
    return out, time.perf_counter() - t0


def run_once(settings: Settings, events: list, strategies: list[str]) -> dict:
    engine, _feeds = build_engine(settings, RunOptions(strategies=strategies), output=None)
    engine.start()
    intent_lat: list[int] = []
    t_event = [0]
    risk_check = engine.risk.check

    def timed_check(intent, eng):
        intent_lat.append(time.perf_counter_ns() - t_event[0])
        return risk_check(intent, eng)

    engine.risk.check = timed_check  # instrument the single gate every intent passes
    dispatch = engine.dispatch
    per_event = np.empty(len(events), dtype=np.int64)
    pc = time.perf_counter_ns
    t0 = pc()
    for i, ev in enumerate(events):
        t_event[0] = s = pc()
        dispatch(ev)
        per_event[i] = pc() - s
    elapsed = (pc() - t0) / 1e9
    return {"elapsed_s": elapsed, "events": len(events), "events_per_s": len(events) / elapsed,
            "intent_lat": intent_lat, "per_event": per_event, "orders": engine.summary()["orders"]}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3 * 3600.0, help="simulated seconds of market")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", dest="json_path")
    args = ap.parse_args(argv)
    settings = Settings()
    settings.engine.log_file = ""
    default = list(settings.engine.strategies)
    every = [s for s in available() if s in ("cascade", "lpi", "lit", "lta", "funding_arb")]
    events, gen_s = generate(settings, args.seed, args.seconds)

    def pct(a: np.ndarray, q: float) -> float:
        return round(float(np.percentile(a, q)) / 1e3, 2) if len(a) else 0.0

    def measure(strategies: list[str]) -> dict:
        runs = [run_once(settings, events, strategies) for _ in range(args.repeat)]
        eps = statistics.median(r["events_per_s"] for r in runs)
        intents = np.array([x for r in runs for x in r["intent_lat"]], dtype=np.int64)
        per_event = np.concatenate([r["per_event"] for r in runs])
        return {
            "events_per_s": round(eps),
            "event_to_intent_us": {"p50": pct(intents, 50), "p99": pct(intents, 99), "n": int(len(intents))},
            "dispatch_us": {"p50": pct(per_event, 50), "p99": pct(per_event, 99), "max": pct(per_event, 100)},
            "strategies": strategies,
            "orders_per_run": runs[0]["orders"],
        }

    head = measure(default)
    eps = head["events_per_s"]
    result = {
        **head,
        "end_to_end_events_per_s": round(len(events) / (gen_s + len(events) / eps)),
        "generation_events_per_s": round(len(events) / gen_s),
        "events": len(events),
        "simulated_seconds": args.seconds,
        "repeat": args.repeat,
        "all_strategies": measure(every) if every != default else head,
        "machine": f"{platform.machine()} {platform.python_implementation()} {platform.python_version()}",
    }
    print(json.dumps(result, indent=2))
    if args.json_path:
        with open(args.json_path, "w") as fh:
            json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()
