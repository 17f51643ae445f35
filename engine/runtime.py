"""Builds a runnable engine from settings and run options: the one place where
feeds, strategies, gates, broker and store are wired together, shared by the
headless runner, the console and the backtester."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    raise ConfigError(f"config error: --feed = {opts.feed!r}: available feeds: synthetic")


def build_engine(settings: Settings, opts: RunOptions, output=None) -> tuple[Engine, list]:
    if opts.mode not in MODES:
        raise ConfigError(f"config error: --mode = {opts.mode!r}: allowed: {', '.join(MODES)}")
    if opts.mode == "live" and not opts.live_confirmed:
        raise ConfigError("config error: --mode = 'live' needs --i-understand-live-trading")
    names = opts.strategies if opts.strategies is not None else list(settings.engine.strategies)
    strategies = build_strategies(settings, names)
    feeds = build_feeds(settings, opts)
    engine = Engine(settings, strategies=strategies, output=output, mode=opts.mode,
                    **_execution(settings, opts))
    return engine, feeds


def _execution(settings: Settings, opts: RunOptions) -> dict:
    """Risk gate, approval gate and broker for the mode."""
    from .execution.approval import Approval
    from .execution.paper import PaperExchange
    from .execution.risk import Risk
    return {"risk": Risk(settings), "approval": Approval(settings), "broker": PaperExchange(settings)}


def default_log_path(settings: Settings, db: str) -> Path:
    return Path(settings.engine.log_file)
