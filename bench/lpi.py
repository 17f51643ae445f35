"""Per-tick cost of the LPI signal (features, robust z-scores, state, exhaustion) for 5 symbols.

    python -m bench.lpi [--warm-hours 2] [--hours 1] [--tick-ms 250] [--seed 1] [--json PATH] [--no-freeze]

Synthetic events (one book snapshot per alpha tick, as `liqdesk study` runs them) are generated
first, then fed to one `LpiSignal` per symbol in time order, in one process. The first
`--warm-hours` fill the rolling median/MAD windows (2 h at 250 ms = 28,800 samples each);
the next `--hours` are measured: process CPU time per symbol-tick, all event handling
included (the goal: under 50 µs). The stored events are moved out of the cyclic GC's
view first (`gc.freeze()`; `--no-freeze` keeps them in it), as the engine holds no such
backlog. The rolling median/MAD is also timed alone at the document's largest window
(24 h at 250 ms: 345,600 samples) on the measured ticks' values.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import time

from engine.config import Settings
from engine.events import NS
from engine.feeds.synthetic import SyntheticMarket
from engine.stats import RollingMedianMad
from engine.strategies.lpi import LpiSignal


def generate(settings: Settings, seed: int, seconds: float) -> list:
    market = SyntheticMarket(settings, seed, settings.engine.symbols)
    out, end = [], None
    for ev in market.events():
        if end is None:
            end = ev.ts + int(seconds * NS)
        if ev.ts > end:
            break
        out.append(ev)
    return out


def run(args: argparse.Namespace) -> dict:
    settings = Settings()
    settings.lpi.tick_ms = args.tick_ms
    settings.synthetic.book_interval_s = args.tick_ms / 1000.0
    t0 = time.perf_counter()
    events = generate(settings, args.seed, (args.warm_hours + args.hours) * 3600)
    gen_s = time.perf_counter() - t0
    if not args.no_freeze:
        # The engine streams its feed; this bench holds ~3 h of it (millions of objects), which every
        # full collection of the cyclic GC would walk. Move them out of the collector's view.
        gc.collect()
        gc.freeze()
    signals = {s: LpiSignal(s, settings.lpi.for_symbol(s)) for s in settings.engine.symbols}
    split = events[0].ts + int(args.warm_hours * 3600 * NS)
    k = next(i for i, ev in enumerate(events) if ev.ts > split)
    ldr_values: list[float] = []  # realistic input for the big window, from the warm-up
    for ev in events[:k]:
        ldr_values.extend(t.sell.ldr for t, _, _ in signals[ev.symbol].on_event(ev, None, 1e12))
    ticks = 0
    c0, w0 = time.process_time(), time.perf_counter()
    for ev in events[k:]:
        ticks += len(signals[ev.symbol].on_event(ev, None, 1e12))
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    # the order-statistics window alone, full at the document's largest window
    big = RollingMedianMad(345_600)
    fill = ldr_values * (big.window // max(len(ldr_values), 1) + 1)
    for x in fill[: big.window]:
        big.add(x)
    c1 = time.process_time()
    for x in ldr_values:
        big.update(x)
    mad_us = (time.process_time() - c1) / max(len(ldr_values), 1) * 1e6
    return {
        "python": platform.python_version(), "machine": platform.machine(),
        "symbols": len(signals), "tick_ms": args.tick_ms, "gc_frozen": not args.no_freeze,
        "warm_hours": args.warm_hours, "hours": args.hours,
        "events": len(events) - k, "symbol_ticks": ticks, "generate_s": round(gen_s, 2),
        "cpu_us_per_symbol_tick": round(cpu / ticks * 1e6, 2),
        "wall_us_per_symbol_tick": round(wall / ticks * 1e6, 2),
        "median_mad_update_us_window_345600": round(mad_us, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warm-hours", type=float, default=2.0)
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--tick-ms", type=int, default=250)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", default=None)
    ap.add_argument("--no-freeze", action="store_true", help="leave the stored events to the cyclic GC")
    args = ap.parse_args()
    res = run(args)
    for k, v in res.items():
        print(f"{k:34s} {v}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
