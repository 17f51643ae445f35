"""Builds a runnable engine from settings and run options: the one place where
feeds, strategies, gates, broker and store are wired together, shared by the
headless runner, the console and the backtester. `start_services` adds what runs
around a live engine (store, control socket, broker connection); `LineSink` is
where its output lines go."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .clock import SimClock, WallClock
from .config import ConfigError, Settings
from .engine import Engine
from .strategies import UnknownStrategy, create

MODES = ("paper", "demo", "testnet", "live")


@dataclass
class RunOptions:
    feed: str = "synthetic"
    mode: str = "paper"
    strategies: list[str] | None = None  # None: those enabled in the config
    seed: int | None = None
    speed: float | None = None  # None: as fast as possible (simulated clock)
    duration_s: float | None = None  # simulated seconds
    db: str = "liqdesk.db"
    summary_json: str | None = None
    live_confirmed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def parse_speed(text: str) -> float | None:
    t = text.strip().lower()
    if t == "max":
        return None
    try:
        v = float(t.rstrip("x"))
    except ValueError:
        raise ConfigError(f"config error: --speed = {text!r}: use a positive number or 'max'") from None
    if v <= 0:
        raise ConfigError(f"config error: --speed = {text!r}: use a positive number or 'max'")
    return v


def parse_strategies(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [s.strip() for s in text.split(",") if s.strip()]


def build_strategies(settings: Settings, names: list[str]) -> list:
    out = []
    for name in names:
        try:
            out.append(create(name, settings, settings.engine.symbols))
        except UnknownStrategy as exc:
            raise ConfigError(f"config error: --strategies = {name!r}: {exc}") from None
    return out


def build_feeds(settings: Settings, opts: RunOptions) -> list:
    seed = settings.engine.seed if opts.seed is None else opts.seed
    kind, _, arg = opts.feed.partition(":")
    if kind == "synthetic":
        from .feeds.synthetic import SyntheticMarket
        return [SyntheticMarket(settings, seed, settings.engine.symbols)]
    if kind == "bybit" and not arg:
        return [_bybit_feed(settings, opts, seed)]
    if kind == "replay":
        return [_replay_feed(opts.feed, arg)]
    if kind in IMPORT_FEEDS or (kind == "bybit" and arg):
        return [_imported_feed(opts.feed, kind, arg)]
    raise ConfigError(f"config error: --feed = {opts.feed!r}: available feeds: synthetic, bybit, "
                      "replay:PATH, tardis:DIR, binance:DIR, bybit:DIR, import:PATH")


IMPORT_FEEDS = ("tardis", "binance", "import")  # historical files through engine/feeds/importers


def _imported_feed(feed: str, kind: str, path: str):
    """Tardis / Binance / Bybit history files (or any importable file with import:PATH), cached columnar."""
    from .feeds.importers import UnreadableFile
    from .feeds.importers.feed import ImportedFeed
    if not path:
        raise ConfigError(f"config error: --feed = {feed!r}: give a file or directory, e.g. {kind}:data/")
    try:
        return ImportedFeed(path, family=None if kind == "import" else kind, name=feed)
    except UnreadableFile as exc:
        raise ConfigError(f"config error: --feed = {feed!r}: {exc}") from None


def _bybit_feed(settings: Settings, opts: RunOptions, seed: int):
    """Live Bybit public data; endpoints from [bybit] or the mode (demo and paper use mainnet data)."""
    from .bybit_rest import BybitRest
    from .feeds.bybit import BybitPublicFeed, endpoints
    ep = endpoints(settings.bybit, opts.mode)
    return BybitPublicFeed(settings, settings.engine.symbols, ep.public_ws, rest=BybitRest(settings.bybit, ep.rest),
                           seed=seed)


def _replay_feed(feed: str, path: str):
    from .feeds.replay import ReplayFeed
    if not path:
        raise ConfigError(f"config error: --feed = {feed!r}: give a capture file or directory, e.g. replay:captures/")
    try:
        return ReplayFeed(path)
    except FileNotFoundError:
        raise ConfigError(f"config error: --feed = {feed!r}: no capture file or directory at {path}") from None


def build_engine(settings: Settings, opts: RunOptions, output=None) -> tuple[Engine, list]:
    if opts.mode not in MODES:
        raise ConfigError(f"config error: --mode = {opts.mode!r}: allowed: {', '.join(MODES)}")
    if opts.mode == "live" and not opts.live_confirmed:
        raise ConfigError("config error: --mode = 'live' needs --i-understand-live-trading")
    names = opts.strategies if opts.strategies is not None else list(settings.engine.strategies)
    strategies = build_strategies(settings, names)
    feed_settings = settings
    if "lpi" in names:  # LPI samples the book every alpha tick: a synthetic book at least as often
        from .strategies.lpi import synthetic_settings
        feed_settings = synthetic_settings(settings)[0]
    feeds = build_feeds(feed_settings, opts)
    clock = WallClock() if any(getattr(f, "live", False) for f in feeds) else SimClock()
    engine = Engine(settings, clock=clock, strategies=strategies, output=output, mode=opts.mode,
                    **_execution(settings, opts))
    engine.seed = settings.engine.seed if opts.seed is None else opts.seed
    for feed in feeds:  # live feeds publish their health in engine.feed_states and log through it
        attach = getattr(feed, "attach", None)
        if attach is not None:
            attach(engine)
    return engine, feeds


def _execution(settings: Settings, opts: RunOptions) -> dict:
    """Risk gate, approval gate and broker for the mode."""
    from .execution.approval import Approval
    from .execution.paper import PaperExchange
    from .execution.risk import Risk
    if opts.mode in ("demo", "testnet", "live"):
        from .execution.bybit import BybitBroker
        broker = BybitBroker(settings, opts.mode)
    else:
        broker = PaperExchange(settings)
    return {"risk": Risk(settings), "approval": Approval(settings), "broker": broker}


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


async def start_services(engine, settings: Settings, opts: RunOptions, feeds: list | None = None) -> list:
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
        if opts.extra.get("api"):  # the funding service's HTTP API (engine/funding/api.py)
            from .funding.api import ApiService
            services.append(await ApiService.start(engine, settings, opts.extra["api"]))
        broker_start = getattr(engine.broker, "start", None)  # Bybit: instruments, positions, private stream
        if broker_start is not None:
            await broker_start()
            services.append(engine.broker)
        await store.reconcile()  # demo/testnet/live: the broker is connected, adopt the exchange's truth
    except BaseException:
        await stop_services(engine, services)
        raise
    return services


async def stop_services(engine, services: list) -> None:
    for svc in reversed(services):
        await svc.stop()
