"""`liqdesk lit`: the Liquidity Imbalance Tracker on its own, as the seed document's runner.

* `liqdesk lit` runs the engine headless with LIT only, evaluating every `lit.interval_s`
  (the INTERVAL environment variable, in seconds, overrides it) until stopped or `--duration`.
* `liqdesk lit --once` evaluates once, acts (entries and exits go through risk, approval and
  the broker as always), prints what it did and exits. The evaluation comes `lit.once_warmup_s`
  after the first long/short ratio, so that ratios and funding are known (on the synthetic
  feed that is simulated time, run as fast as possible); the run then lasts `once_settle_s`
  more for the orders' fills, and stops. Positions, orders and the blacklist are kept in
  `--db`, so the next run continues from them.

Both honour --feed, --mode, --config and --db like `liqdesk run`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from .config import Settings
from .events import NS
from .headless import run_headless
from .runtime import LineSink, RunOptions, build_engine, start_services, stop_services
from .strategies import lit_rules

ONCE_RATIO_WAIT_S = 3600.0  # --once gives up waiting for a first ratio after this much feed time


async def run_once(settings: Settings, opts: RunOptions, sink: LineSink) -> dict:
    engine, feeds = build_engine(settings, opts, output=sink)
    lit = engine.strategy("lit")
    assert lit is not None
    lit.once = True
    lit.on_done = engine.stop
    cfg = settings.lit
    live = any(getattr(f, "live", False) for f in feeds)
    services = await start_services(engine, settings, opts, feeds)
    before = len(engine.orders)
    try:
        cap = cfg.once_warmup_s + cfg.once_settle_s + ONCE_RATIO_WAIT_S
        if live:
            await engine.run_live(feeds, duration_s=cap)
        else:
            await engine.run(feeds, duration_s=cap, speed=None)
    finally:
        await stop_services(engine, services)
    orders = list(engine.orders.values())[before:]
    report = once_report(lit, orders, engine)
    for line in report["lines"]:
        sink(line)
    return report


def once_report(lit, orders: list, engine) -> dict:
    """What one evaluation did: its decisions, the orders it sent and where they stand."""
    lines = [f"LIT --once ({lit.evaluations and 'evaluated' or 'no evaluation: no long/short ratio arrived'}; "
             f"ratio sources: {', '.join(sorted({st.source for st in lit.state.values() if st.source})) or 'none'})"]
    lines += [f"  {d}" for d in lit.decisions]
    for o in orders:
        lines.append(f"  order {o.id} {o.symbol} {o.purpose.value} {o.side} {o.qty:g}: {o.status.value}"
                     + (f" @ {o.avg_price:g}" if o.filled_qty else "") + (f" ({o.reject_reason})" if o.reject_reason
                                                                           else ""))
    pos = [p for p in engine.portfolio.open_positions() if p.strategy == lit.name]
    lines.append(f"  LIT positions open: {len(pos)}" + "".join(
        f"; {p.symbol} {p.side} {abs(p.qty):g} @ {p.entry_price:g}" for p in pos))
    bl = lit.blacklisted(engine.clock.now())
    if bl:
        lines.append("  blacklisted: " + ", ".join(f"{s} ({r})" for s, (_, r) in sorted(bl.items())))
    return {"evaluated": bool(lit.evaluations), "decisions": list(lit.decisions), "orders": len(orders),
            "open_positions": len(pos), "lines": lines}


def lit_main(settings: Settings, opts: RunOptions, once: bool) -> int:
    interval = lit_rules.interval_s(settings.lit)  # a bad INTERVAL is a config error before anything starts
    sink = LineSink(Path(settings.engine.log_file) if settings.engine.log_file else None)
    try:
        if once:
            asyncio.run(run_once(settings, opts, sink))
        else:
            origin = "INTERVAL" if interval != settings.lit.interval_s else "lit.interval_s"
            sink(f"LIT: evaluating every {interval:g} s ({origin}), first {settings.lit.first_eval_s:g} s after "
                 "the first long/short ratio")
            asyncio.run(run_headless(settings, opts, sink))
    finally:
        sink.close()
    return 0


__all__ = ["lit_main", "run_once", "once_report", "NS"]
