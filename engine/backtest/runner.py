"""`liqdesk backtest`: one strategy on recorded or synthetic data, on the simulated clock.

The backtest runs the same objects as a paper session: the strategy from the registry, the
risk gate (`execution.risk.Risk`) and the paper exchange (`execution.paper.PaperExchange`,
hftbacktest's fill rules, queue model and latency each way), wired into `engine.Engine`. Two
things differ from `liqdesk run`: approvals are automatic (a backtest has no operator) and
there is no store (nothing to recover). Events are dispatched straight from the feed, so the
run is as fast as the engine, and its result depends only on the inputs: the same command
gives a byte-identical summary.json (sorted keys, no wall-clock values, no output paths).

The equity curve is the engine's mark-to-market equity sampled every `EQUITY_STEP_S`
simulated seconds (and at the end); the return metrics use its UTC-day closes
(`metrics.daily_returns`), so Sharpe and friends follow docs/backtest.md.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from ..config import ConfigError, Settings
from ..events import NS, BookSnapshot, LongShortRatio, Quote, Ticker, Trade
from ..orders import Fill, Order
from ..portfolio import ClosedTrade
from . import fastforward, markouts
from .markouts import MarkoutTracker
from .metrics import DEFAULT_PERIODS, backtest_metrics, daily_returns
from .returns_report import _jsonable, _num, _pct, summarize

EQUITY_STEP_S = 60
PROGRESS_EVERY = 4096  # events between progress bar updates
NOTE_BUFFER = 1 << 20  # notifications held between drains; overflow would lose fills, so it is checked
QUEUE_MODELS = ("riskaverse", "power", "power2", "power3", "log", "log2")
IMPORT_KINDS = ("replay", "tardis", "binance", "bybit")
DEFAULT_SYNTHETIC_S = 86_400.0
# Market data whose only effect while nothing works is the latest state it leaves (book, last trade).
# BookDelta is not here: deltas accumulate. Tickers carry funding times and are always dispatched.
FAST_FORWARD_TYPES = frozenset({Trade, BookSnapshot, Quote})
# Dispatched while idle without first applying the held events: what they update (mark, funding, OI,
# long/short ratio) never reads the book or the last trade when there is no position to settle.
INDEPENDENT_TYPES = frozenset({Ticker, LongShortRatio})


@dataclass
class BacktestConfig:
    strategy: str
    feed: str = "synthetic"
    symbols: list[str] | None = None
    start: str | None = None  # UTC date or time, bounds the replay key
    end: str | None = None
    seed: int | None = None
    duration_s: float | None = None  # simulated seconds from the first event (or from --from)
    latency_ms: float | None = None  # each way; None = [paper] latency_ms
    queue: str | None = None  # riskaverse | power:N | ...; None = [paper] queue_model
    fees: str | None = None  # "MAKER,TAKER" in bps; None = [paper] fees
    periods: int = DEFAULT_PERIODS
    fast_forward: bool = False  # skip dispatching trades, book snapshots and quotes while nothing works
    interval: str | None = None  # bar strategies (lta): bar length, e.g. 1h; None = the strategy's config


@dataclass
class BacktestResult:
    config: BacktestConfig
    settings: Settings
    events: int
    start_ns: int
    end_ns: int
    equity_ts: list[int]
    equity: list[float]
    orders: list[Order]
    fills: list[Fill]
    trades: list[ClosedTrade]
    engine_summary: dict[str, Any]
    summary: dict[str, Any] = field(default_factory=dict)
    skipped: int = 0  # events held by fast-forward, never dispatched
    thinned_chunks: tuple[int, int] | None = None  # fast-forward jump mode: (thinned, full) synthetic chunks
    markouts: MarkoutTracker | None = None  # mids after each fill (report: markouts.csv, markouts.png)


# -- options ------------------------------------------------------------------------------------


def parse_queue(text: str) -> tuple[str, float | None]:
    """`riskaverse`, `log`, `log2`, or `power:N` / `power2:N` / `power3:N` (0 < N <= 10)."""
    model, _, arg = text.strip().lower().partition(":")
    bad = ConfigError(
        f"config error: --queue = {text!r}: use riskaverse, power:N, power2:N, power3:N, log or log2"
    )
    if model not in QUEUE_MODELS:
        raise bad
    if model.startswith("power"):
        try:
            n = float(arg) if arg else 2.0
        except ValueError:
            raise bad from None
        if not (0 < n <= 10):
            raise ConfigError(f"config error: --queue = {text!r}: the power must be in (0, 10]")
        return model, n
    if arg:
        raise bad
    return model, None


def parse_fees(text: str) -> tuple[float, float]:
    """`MAKER,TAKER` in basis points of notional; a negative maker fee is a rebate."""
    parts = [p.strip() for p in text.split(",")]
    try:
        maker, taker = (float(p) for p in parts)
    except ValueError:
        raise ConfigError(f"config error: --fees = {text!r}: use MAKER,TAKER in bps, e.g. 2,5.5") from None
    if not all(math.isfinite(v) and -10 <= v <= 100 for v in (maker, taker)):
        raise ConfigError(f"config error: --fees = {text!r}: each fee must be within [-10, 100] bps")
    return maker, taker


def parse_time(text: str, option: str) -> int:
    from ..feeds.synthetic import parse_utc

    try:
        return parse_utc(text)
    except ValueError:
        raise ConfigError(
            f"config error: {option} = {text!r}: use a UTC date or time, e.g. 2025-03-01"
        ) from None


def backtest_settings(settings: Settings, cfg: BacktestConfig) -> Settings:
    """The settings with the command line's overrides: symbols, paper fill model, auto approval."""
    paper: dict[str, Any] = {}
    if cfg.latency_ms is not None:
        if not (math.isfinite(cfg.latency_ms) and 0 <= cfg.latency_ms <= 60_000):
            raise ConfigError(f"config error: --latency = {cfg.latency_ms}: must be within [0, 60000] ms")
        paper["latency_ms"] = float(cfg.latency_ms)
    if cfg.queue is not None:
        model, power = parse_queue(cfg.queue)
        paper["queue_model"] = model
        if power is not None:
            paper["queue_power"] = power
    if cfg.fees is not None:
        paper["maker_fee_bps"], paper["taker_fee_bps"] = parse_fees(cfg.fees)
    update: dict[str, Any] = {
        "paper": settings.paper.model_copy(update=paper),
        "approval": settings.approval.model_copy(update={"mode": "auto"}),
    }
    if cfg.symbols:
        update["engine"] = settings.engine.model_copy(update={"symbols": list(cfg.symbols)})
    return settings.model_copy(update=update)


def backtest_window(settings: Settings, cfg: BacktestConfig) -> tuple[int | None, int | None]:
    start = parse_time(cfg.start, "--from") if cfg.start else None
    end = parse_time(cfg.end, "--to") if cfg.end else None
    if cfg.duration_s is not None and not (math.isfinite(cfg.duration_s) and cfg.duration_s > 0):
        raise ConfigError(f"config error: --duration = {cfg.duration_s}: must be > 0 simulated seconds")
    if start is not None and end is not None and end <= start:
        raise ConfigError(f"config error: --to = {cfg.end!r} is not after --from = {cfg.start!r}")
    return start, end


def build_feed(settings: Settings, cfg: BacktestConfig, start_ns: int | None, end_ns: int | None):
    kind, _, arg = cfg.feed.partition(":")
    symbols = settings.engine.symbols
    if kind == "synthetic" and not arg:
        from ..feeds.synthetic import SyntheticMarket

        seed = settings.engine.seed if cfg.seed is None else cfg.seed
        return SyntheticMarket(settings, seed, symbols, start_ns=start_ns)
    if kind not in IMPORT_KINDS:
        raise ConfigError(
            f"config error: --feed = {cfg.feed!r}: available feeds: synthetic, replay:PATH, "
            "tardis:DIR, binance:DIR, bybit:DIR"
        )
    if not arg:
        raise ConfigError(f"config error: --feed = {cfg.feed!r}: give a file or directory, e.g. {kind}:data/")
    if not Path(arg).exists():
        raise ConfigError(f"config error: --feed = {cfg.feed!r}: no file or directory at {arg}")
    from ..feeds.importers import UnreadableFile
    from ..feeds.importers.feed import ImportedFeed

    # replay: any importable file (raw captures included); a Binance raw websocket capture is a Binance source
    families = {"replay": (None,), "binance": ("binance", "raw"), "bybit": ("bybit", "raw")}.get(
        kind, (kind,)
    )
    error: Exception | None = None
    for family in families:
        try:
            return ImportedFeed(
                arg, family=family, name=cfg.feed, symbols=symbols, start_ns=start_ns, end_ns=end_ns
            )
        except UnreadableFile as exc:
            error = exc
    raise ConfigError(f"config error: --feed = {cfg.feed!r}: {error}")


# -- the run ------------------------------------------------------------------------------------


def run_backtest(
    settings: Settings, cfg: BacktestConfig, progress: bool | None = None, feed: Any = None
) -> BacktestResult:
    """Run the backtest to the end of the data, `--to` or `--duration`; progress bar on a TTY stderr.

    `feed` replaces the one `cfg.feed` names (benchmarks replay a tiled capture this way)."""
    from ..engine import Engine
    from ..runtime import RunOptions, _execution, build_strategies

    settings = backtest_settings(settings, cfg)
    start_ns, end_ns = backtest_window(settings, cfg)
    if feed is None:
        feed = build_feed(settings, cfg, start_ns, end_ns)
    synthetic = cfg.feed == "synthetic"
    if end_ns is None and synthetic and cfg.duration_s is None:
        cfg_duration = DEFAULT_SYNTHETIC_S
    else:
        cfg_duration = cfg.duration_s
    strategies = build_strategies(settings, [cfg.strategy])
    engine = Engine(settings, strategies=strategies, mode="paper", **_execution(settings, RunOptions()))
    notes = engine.notifier.subscribe(NOTE_BUFFER)
    fills: list[Fill] = []
    trades: list[ClosedTrade] = []
    tracker = MarkoutTracker(engine, int(settings.risk.stale_book_s * NS))
    pending = tracker.heap
    note_items = notes.items

    def drain() -> None:
        if notes.dropped:
            raise RuntimeError(f"backtest lost {notes.dropped} notifications: raise NOTE_BUFFER")
        for kind, payload in notes.drain():
            if kind == "fill":
                fills.append(payload)
                tracker.add(payload)
            elif kind == "closed_trade":
                trades.append(payload)

    equity_ts: list[int] = []
    equity: list[float] = []
    step = EQUITY_STEP_S * NS
    first_ts: int | None = start_ns
    stop_ns = end_ns
    next_sample = 0
    n = skipped = 0
    # fast-forward: while nothing works, market data no strategy listens to is held, not dispatched;
    # only the latest of each kind per symbol is applied before the next event that can matter
    subscribed = {t for st in strategies for t in st.subscriptions}
    skippable = FAST_FORWARD_TYPES - subscribed if cfg.fast_forward else set()
    passthrough = INDEPENDENT_TYPES - subscribed if cfg.fast_forward else set()
    held: dict[tuple[str, type], Any] = {}
    jump = None
    if cfg.fast_forward and synthetic and fastforward.supported(settings, strategies, feed):
        feed = jump = fastforward.JumpingSynthetic(feed, engine, strategies)  # quiet chunks: liquidations only
        first_ts = feed.start_ns if first_ts is None else first_ts
        next_sample = (first_ts // step + 1) * step  # as if the first event were at the market's start
    bar = _Progress(progress)
    engine.start()
    try:
        dispatch = engine.dispatch
        limit = 1 << 62  # stop_ns, once known
        hold = False
        for ev in feed.events():
            ts = ev.ts
            if not n:  # the first event: the window's end is known from here
                if first_ts is None:
                    first_ts = ts
                if stop_ns is None and cfg_duration is not None:
                    stop_ns = first_ts + int(cfg_duration * NS)
                    if end_ns is not None:
                        stop_ns = min(stop_ns, end_ns)
                if stop_ns is not None:
                    limit = stop_ns
                bar.start(first_ts, stop_ns)
            if ts > limit:
                if jump is not None and jump.thinned:  # the grid up to the end, as the tick path samples it
                    _fill_grid(engine, equity_ts, equity, next_sample, limit, step)
                break
            n += 1
            if note_items:  # fills are collected as they come, for their markouts
                drain()
            if not n % PROGRESS_EVERY:
                bar.update(ts, n)
            if pending and ts > pending[0][0]:
                tracker.sample(ts)
            if skippable:
                hold = passes = False
                t = type(ev)
                if t in skippable or t in passthrough:
                    idle = not pending and _idle(engine, ts)  # (markouts read the book)
                    hold, passes = idle and t in skippable, idle and t in passthrough
                if held and not (hold or passes):  # the held state goes in before anything can look at it
                    for prior in held.values():
                        dispatch(prior)
                    held.clear()
            if ts >= next_sample:
                if jump is not None and jump.thinned:  # flat and no timer: one value, stamped on the grid
                    engine.clock.advance_to(ts)
                    _fill_grid(engine, equity_ts, equity, next_sample, ts, step)
                elif next_sample:
                    engine.clock.advance_to(ts)
                    equity_ts.append(ts)
                    equity.append(engine.mark_to_market())
                next_sample = (ts // step + 1) * step
            if hold:
                key = (ev.symbol, type(ev))
                held.pop(key, None)  # keep the dict in arrival order of the latest event of each kind
                held[key] = ev
                skipped += 1
                continue
            dispatch(ev)
        for prior in held.values():
            engine.dispatch(prior)
        last = stop_ns if stop_ns is not None else engine.clock.now()
        engine.clock.advance_to(max(last, engine.clock.now()))  # deliver what is still in flight
        engine.stopped()
        drain()
        tracker.flush()
        equity_ts.append(engine.clock.now())
        equity.append(engine.mark_to_market())
    finally:
        bar.stop()
    start = first_ts if first_ts is not None else engine.clock.now()
    result = BacktestResult(
        cfg,
        settings,
        n,
        start,
        engine.clock.now(),
        equity_ts,
        equity,
        list(engine.orders.values()),
        fills,
        trades,
        engine.summary(),
        skipped=skipped,
        thinned_chunks=(jump.chunks_thinned, jump.chunks_full) if jump is not None else None,
        markouts=tracker,
    )
    result.summary = summary_of(result)
    return result


def _fill_grid(engine, equity_ts: list[int], equity: list[float], first: int, last: int, step: int) -> None:
    """Equity samples stamped at the grid times first, first + step, ... <= last (fast-forward's thinned
    stretches: the account is flat, so one value holds for all of them)."""
    grid = range(first, last + 1, step)
    equity_ts += grid
    equity += [engine.mark_to_market()] * len(grid)


def _idle(engine, ts: int) -> bool:
    """Nothing can react to market data up to `ts`: no open order, no position, and no timer due by then
    (a strategy's timer, or a message of the paper exchange in flight)."""
    if engine.open_orders or engine.portfolio.open_positions():
        return False
    due = engine.clock.next_timer_due()
    return due is None or ts < due


class _Progress:
    """A rich progress bar over simulated time on stderr; nothing when stderr is not a terminal."""

    def __init__(self, enabled: bool | None):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.started = False
        self._bar: Any = None
        self._task: Any = None
        self._t0 = 0

    def start(self, first_ns: int, stop_ns: int | None) -> None:
        self.started = True
        if not self.enabled:
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self._t0 = first_ns
        total = (stop_ns - first_ns) / NS if stop_ns is not None else None
        self._bar = Progress(
            TextColumn("backtest"),
            BarColumn(),
            TextColumn("{task.fields[events]} events"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._task = self._bar.add_task("backtest", total=total, events=0)
        self._bar.start()

    def update(self, ts: int, events: int) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=(ts - self._t0) / NS, events=events)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()


# -- results ------------------------------------------------------------------------------------


def summary_of(result: BacktestResult) -> dict[str, Any]:
    """The run summary (JSON-ready, deterministic): inputs, counts, metrics, PSR and engine counters."""
    cfg, s = result.config, result.settings
    initial = s.engine.account_equity_usd
    m = backtest_metrics(
        result.equity_ts,
        result.equity,
        initial,
        result.trades,
        result.orders,
        result.fills,
        funding=result.engine_summary["funding_usd"],
        periods=cfg.periods,
    )
    _days, daily = daily_returns(result.equity_ts, result.equity, initial)
    stats = summarize(np.asarray(daily, dtype=np.float64), cfg.periods)
    psr = stats["psr"].get("value", math.nan)
    return _jsonable(
        {
            "strategy": cfg.strategy,
            "feed": cfg.feed,
            "symbols": list(s.engine.symbols),
            "seed": (s.engine.seed if cfg.seed is None else cfg.seed) if cfg.feed == "synthetic" else None,
            "start": _iso(result.start_ns),
            "end": _iso(result.end_ns),
            "fill_model": {
                "latency_ms": s.paper.latency_ms,
                "queue_model": s.paper.queue_model,
                "queue_power": s.paper.queue_power,
                "maker_fee_bps": s.paper.maker_fee_bps,
                "taker_fee_bps": s.paper.taker_fee_bps,
            },
            "events": result.events,
            "fast_forward": _fast_forward_summary(result),
            "orders": len(result.orders),
            "fills": len(result.fills),
            "closed_trades": len(result.trades),
            "fill_rate": m["execution"]["fill_rate"],
            "net_pnl": m["net_pnl"],
            "sharpe": m["returns"]["sharpe"],
            "psr": psr,
            "days": len(daily),
            "metrics": m,
            "engine": result.engine_summary,
        }
    )


def _fast_forward_summary(result: BacktestResult) -> dict[str, Any]:
    out: dict[str, Any] = {"enabled": result.config.fast_forward, "events_skipped": result.skipped}
    if result.thinned_chunks is not None:
        out["mode"] = "jump"
        out["chunks_thinned"], out["chunks_full"] = result.thinned_chunks
    return out


def _iso(ts_ns: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts_ns / NS, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def summary_json(summary: dict[str, Any]) -> str:
    return json.dumps(summary, indent=2, sort_keys=True) + "\n"


def summary_table(summary: dict[str, Any]) -> Table:
    m = summary["metrics"]
    r, tr, ex, costs = m["returns"], m["trades"], m["execution"], m["costs"]
    nan = math.nan

    def g(d: dict, k: str) -> float:
        v = d.get(k)
        return nan if v is None else v

    t = Table(
        title=f"backtest {summary['strategy']} on {summary['feed']}  {summary['start'][:19]} .. "
        f"{summary['end'][:19]}",
        header_style="bold",
    )
    t.add_column("metric")
    t.add_column("value", justify="right")
    fm = summary["fill_model"]
    rows = [
        ("events / orders / fills", f"{summary['events']} / {summary['orders']} / {summary['fills']}"),
        (
            "fill model",
            f"{fm['queue_model']}, latency {fm['latency_ms']:g} ms each way, fees "
            f"{fm['maker_fee_bps']:g}/{fm['taker_fee_bps']:g} bps",
        ),
        ("net PnL (USD)", _num(g(m, "net_pnl"), "+.2f")),
        ("return", _pct(g(m, "return"))),
        ("days", str(summary["days"])),
        ("Sharpe (daily, 365/yr)", _num(g(r, "sharpe"))),
        ("Sortino", _num(g(r, "sortino"))),
        ("PSR (SR > 0)", _num(g(summary, "psr"), ".4f")),
        (
            "max drawdown (daily / intraday)",
            f"{_pct(g(r, 'max_drawdown'))} / {_pct(g(m, 'intraday_max_drawdown'))}",
        ),
        ("Calmar", _num(g(r, "calmar"))),
        ("closed trades / win rate", f"{summary['closed_trades']} / {_pct(g(tr, 'win_rate'), signed=False)}"),
        (
            "profit factor / expectancy",
            f"{_num(g(tr, 'profit_factor'))} / {_num(g(tr, 'expectancy'), '+.2f')}",
        ),
        ("fill rate (limit orders)", _pct(g(ex, "fill_rate"), signed=False)),
        ("maker / taker fills", f"{ex['maker_fills']} / {ex['taker_fills']}"),
        ("fees / funding (USD)", f"{_num(g(costs, 'fees'), '.2f')} / {_num(g(costs, 'funding'), '+.2f')}"),
        ("turnover", _num(g(costs, "turnover"), ".2f")),
    ]
    exits = m.get("exits") or {}
    if exits:
        rows.append(("exits", ", ".join(f"{k} {v['trades']}" for k, v in sorted(exits.items()))))
    for k, v in rows:
        t.add_row(k, v)
    return t


def write_report(result: BacktestResult, directory: str | Path) -> list[Path]:
    """summary.json, trades.csv, fills.csv, equity.csv, equity.png (equity over drawdown), markouts.csv
    and markouts.png (the mid after each fill, engine/backtest/markouts.py)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = [
        out / "summary.json",
        out / "trades.csv",
        out / "fills.csv",
        out / "equity.csv",
        out / "equity.png",
        out / "markouts.csv",
        out / "markouts.png",
    ]
    paths[0].write_text(summary_json(result.summary), encoding="utf-8")
    _write_csv(paths[1], ["symbol", "side", "qty", "entry_price", "exit_price", "opened", "closed", "gross_pnl",
                          "fees", "funding", "net_pnl", "exit_reason", "strategy"],
               ([t.symbol, t.side, t.qty, t.entry_price, t.exit_price, _iso(t.opened_ts), _iso(t.closed_ts),
                 t.gross_pnl, t.fees, t.funding, t.net_pnl, t.exit_reason, t.strategy] for t in result.trades))
    _write_csv(paths[2], ["time", "order_id", "symbol", "side", "price", "qty", "fee", "liquidity", "queue_ahead",
                          "time_to_fill_s"],
               ([_iso(fl.ts), fl.order_id, fl.symbol, fl.side, fl.price, fl.qty, fl.fee, fl.liquidity,
                 fl.queue_ahead, fl.time_to_fill_ns / NS] for fl in result.fills))
    eq = np.asarray(result.equity, dtype=np.float64)
    initial = result.settings.engine.account_equity_usd
    peak = np.maximum.accumulate(np.concatenate(([initial], eq)))[1:]
    dd = eq / peak - 1.0 if len(eq) else eq
    _write_csv(paths[3], ["time", "equity", "drawdown"],
               ([_iso(ts), f"{e:.6f}", f"{d:.8f}"] for ts, e, d in zip(result.equity_ts, eq, dd, strict=True)))
    _plot_equity(result, eq, dd, paths[4])
    tracker = result.markouts or MarkoutTracker(None, 0)
    orders = {o.id: o for o in result.orders}
    markouts.write_csv(tracker, paths[5], _iso)
    markouts.plot(tracker, orders, f"{result.config.strategy} on {result.config.feed}", paths[6])
    return paths


def _write_csv(path: Path, header: list[str], rows: Iterable[list[Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def _plot_equity(result: BacktestResult, eq: np.ndarray, dd: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hours = (np.asarray(result.equity_ts, dtype=np.int64) - result.start_ns) / (3600 * NS)
    fig, (ax1, ax2) = plt.subplots(2, 1, sharex=True, figsize=(9, 5.5), height_ratios=(3, 1))
    ax1.plot(hours, eq, lw=1.0, color="tab:blue")
    ax1.set_ylabel("equity (USD)")
    ax1.set_title(f"{result.config.strategy} on {result.config.feed}: equity")
    ax1.grid(alpha=0.3)
    ax2.fill_between(hours, dd * 100.0, 0.0, color="tab:red", alpha=0.5, lw=0)
    ax2.set_ylabel("drawdown (%)")
    ax2.set_xlabel(f"hours since {_iso(result.start_ns)[:19]} UTC")
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def backtest_main(
    settings: Settings,
    cfg: BacktestConfig,
    json_path: str | None,
    report_dir: str | None,
    console: Console | None = None,
) -> int:
    from .bar_runner import BAR_STRATEGIES, bar_backtest_main

    if cfg.strategy in BAR_STRATEGIES:  # decides at bar close: runs on bars (bar_runner.py)
        return bar_backtest_main(settings, cfg, json_path, report_dir, console)
    if cfg.interval is not None:
        raise ConfigError(f"config error: --interval applies to bar strategies ({', '.join(BAR_STRATEGIES)})")
    result = run_backtest(settings, cfg)
    from .expectations import attach, expectations_table

    expected = attach(result)  # a strategy's documented expectations (LIT), measured on its own capital
    if json_path:
        Path(json_path).write_text(summary_json(result.summary), encoding="utf-8")
    if report_dir:
        write_report(result, report_dir)
    (console or Console()).print(summary_table(result.summary))
    if expected is not None:
        (console or Console()).print(expectations_table(expected, cfg.strategy))
    return 0
