"""Headless runs: the engine with no UI, one `HH:MM:SS >> message` line per
decision to stdout and the log file, clean stop on SIGINT/SIGTERM/SIGHUP, and an
optional JSON summary that is byte-identical for identical inputs."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

from .config import Settings
from .runtime import LineSink, RunOptions, build_engine, start_services, stop_services


def write_summary(path: str, summary: dict) -> None:
    Path(path).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")


async def run_headless(settings: Settings, opts: RunOptions, sink: LineSink) -> dict:
    engine, feeds = build_engine(settings, opts, output=sink)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        try:
            loop.add_signal_handler(sig, engine.stop)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-Unix
            pass
    services = await start_services(engine, settings, opts, feeds)
    try:
        if any(getattr(f, "live", False) for f in feeds):
            await engine.run_live(feeds, duration_s=opts.duration_s)
        else:
            await engine.run(feeds, duration_s=opts.duration_s, speed=opts.speed)
    finally:
        await stop_services(engine, services)
    summary = engine.summary()
    if opts.summary_json:
        write_summary(opts.summary_json, summary)
    s = summary
    engine.log(f"run ended: {s['events']} events, {s['liquidations']} liquidations, {s['cascades']} cascades, "
               f"{s['orders']} orders, {s['fills']} fills, {s['closed_trades']} closed trades, "
               f"net {s['net_pnl_usd']:+.2f} USD")
    for st in engine.strategies:  # strategies with their own counts (funding_arb: pairs and reasons)
        line = getattr(st, "summary_line", None)
        if line is not None:
            engine.log(line())
    return summary


def headless_main(settings: Settings, opts: RunOptions) -> int:
    sink = LineSink(Path(settings.engine.log_file) if settings.engine.log_file else None)
    try:
        asyncio.run(run_headless(settings, opts, sink))
    finally:
        sink.close()
    return 0
