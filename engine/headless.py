"""Headless runs: the engine with no UI, one `HH:MM:SS >> message` line per
decision to stdout and the log file, clean stop on SIGINT/SIGTERM/SIGHUP, and an
optional JSON summary that is byte-identical for identical inputs."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import TextIO

from .config import Settings
from .runtime import RunOptions, build_engine


class LineSink:
    """Writes output lines to stdout and a log file (line-buffered, so a kill loses little)."""

    def __init__(self, log_path: Path | None, stream: TextIO | None = None):
        self.stream = stream if stream is not None else sys.stdout
        self.file = open(log_path, "a", encoding="utf-8", buffering=1) if log_path else None  # noqa: SIM115

    def __call__(self, line: str) -> None:
        self.stream.write(line + "\n")
        if self.file is not None:
            self.file.write(line + "\n")

    def close(self) -> None:
        self.stream.flush()
        if self.file is not None:
            self.file.close()


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
    services = await _start_services(engine, settings, opts, feeds)
    try:
        if any(getattr(f, "live", False) for f in feeds):
            await engine.run_live(feeds, duration_s=opts.duration_s)
        else:
            await engine.run(feeds, duration_s=opts.duration_s, speed=opts.speed)
    finally:
        await _stop_services(engine, services)
    summary = engine.summary()
    if opts.summary_json:
        write_summary(opts.summary_json, summary)
    s = summary
    engine.log(f"run ended: {s['events']} events, {s['liquidations']} liquidations, {s['cascades']} cascades, "
               f"{s['orders']} orders, {s['fills']} fills, {s['closed_trades']} closed trades, "
               f"net {s['net_pnl_usd']:+.2f} USD")
    return summary


async def _start_services(engine, settings: Settings, opts: RunOptions, feeds: list | None = None) -> list:
    """Optional services around the engine (store, control socket, APIs).

    The store comes first: it restores the engine's (and the feeds') state before anything
    else looks at it, and it stops last, writing the final checkpoint."""
    services: list = []
    from .recovery import StoreService
    store = await StoreService.open(engine, feeds if feeds is not None else [], settings, opts)
    services.append(store)
    try:
        from .control import ControlServer, socket_path
        control = ControlServer(engine, socket_path(settings, opts.db))
        await control.start()
        services.append(control)
        broker_start = getattr(engine.broker, "start", None)  # Bybit: instruments, positions, private stream
        if broker_start is not None:
            await broker_start()
            services.append(engine.broker)
        await store.reconcile()  # demo/testnet/live: the broker is connected, adopt the exchange's truth
    except BaseException:
        await _stop_services(engine, services)
        raise
    return services


async def _stop_services(engine, services: list) -> None:
    for svc in reversed(services):
        await svc.stop()


def headless_main(settings: Settings, opts: RunOptions) -> int:
    sink = LineSink(Path(settings.engine.log_file) if settings.engine.log_file else None)
    try:
        asyncio.run(run_headless(settings, opts, sink))
    finally:
        sink.close()
    return 0
