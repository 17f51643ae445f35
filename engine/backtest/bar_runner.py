"""Bar backtests for bar strategies (LTA): `liqdesk backtest --strategy lta --interval 1h --feed ...`.

A bar strategy decides only at bar close (and its stops on the documented intrabar path), so it
runs here on bars instead of through the tick engine: orders fill at the bar close (or at a
stop's level, or at the open when a level was gapped through) with the paper taker fee, and are
booked in the engine's own `Portfolio`, whose `performance()` dict is the table the console's
performance pane shows (`tui.widgets.performance.performance_lines`): one implementation for
both. The equity is marked at each bar's low, high and close, so max run-up and drawdown see
intrabar extremes.

Feeds:
* `synthetic`: bars from the synthetic market's own seeded processes (feeds/synthetic_bars.py),
  from --from (the market start) for --duration seconds or to --to (default 30 days);
* a generic OHLCV CSV (`PATH.csv`, or `ohlcv:PATH`): any market (importers/ohlcv.py), resampled
  when --interval is a multiple of the file's bar length;
* `binance:DIR` (klines; aggTrades/trades are built into bars), and any other importable feed
  (`replay:`, `tardis:`, `bybit:`) whose trades are built into bars (engine/bars.py).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..bars import bars_from_trades, resample
from ..config import ConfigError, Settings
from ..events import NS, Bar
from ..feeds.importers.ohlcv import interval_seconds
from ..instruments import instrument_for
from ..lta_metrics import ldpm, ldps
from ..orders import Fill
from ..portfolio import Portfolio, PositionView
from ..strategies.lta import AMS_SHORT, LtaCore
from .metrics import backtest_metrics
from .runner import BacktestConfig, _iso, backtest_window, parse_time

BAR_STRATEGIES = ("lta",)
DEFAULT_SYNTHETIC_BAR_S = 30 * 86_400.0
DEFAULT_INTERVAL = "1h"


def parse_interval(text: str, lo_s: int = 60, option: str = "--interval") -> int:
    """A bar length ('1m', '4h', '1d' or seconds) within [lo_s, 1 day]; else a one-line ConfigError."""
    try:
        sec = interval_seconds(text)
    except ValueError as exc:
        raise ConfigError(f"config error: {option} = {text!r}: {exc}") from None
    if not lo_s <= sec <= 86_400:
        raise ConfigError(f"config error: {option} = {text!r}: must be {lo_s} s .. 1 d")
    return sec


def bar_interval(settings: Settings, cfg: BacktestConfig) -> int:
    return parse_interval(cfg.interval or settings.lta.interval or DEFAULT_INTERVAL)


def load_bars(settings: Settings, cfg: BacktestConfig, interval_s: int) -> dict[str, list[Bar]]:
    """symbol -> bars in time order, at `interval_s`."""
    start_ns, end_ns = backtest_window(settings, cfg)
    symbols = list(cfg.symbols or settings.engine.symbols)
    kind, _, arg = cfg.feed.partition(":")
    if cfg.feed == "synthetic":
        from ..feeds.synthetic_bars import synthetic_bar_series

        seed = settings.engine.seed if cfg.seed is None else cfg.seed
        dur = cfg.duration_s if cfg.duration_s is not None or end_ns is not None else DEFAULT_SYNTHETIC_BAR_S
        return synthetic_bar_series(settings, seed, symbols, interval_s, start_ns, end_ns, dur)
    path = arg if kind == "ohlcv" else cfg.feed
    imported = kind in ("replay", "tardis", "binance", "bybit")
    if kind == "ohlcv" or (not imported and (Path(path).is_file() or path.lower().endswith((".csv", ".csv.gz")))):
        if not Path(path).exists():
            raise ConfigError(f"config error: --feed = {cfg.feed!r}: no file at {path}")
        from ..feeds.importers import UnreadableFile
        from ..feeds.importers.feed import ImportedFeed

        try:
            feed = ImportedFeed(path, importer="ohlcv", name=cfg.feed, use_cache=False, start_ns=start_ns,
                                end_ns=end_ns)
            events: Iterable[Any] = list(feed.events())
        except UnreadableFile as exc:
            raise ConfigError(f"config error: --feed = {cfg.feed!r}: {exc}") from None
        symbols = []  # a CSV names its own symbol(s)
    else:
        from .runner import build_feed

        feed = build_feed(settings, cfg, start_ns, end_ns)
        events = feed.events()
    bars: list[Bar] = []
    trades: list[Any] = []
    for ev in events:
        if type(ev) is Bar:
            bars.append(ev)
        elif type(ev).__name__ == "Trade":
            trades.append(ev)
    if cfg.symbols:
        bars = [b for b in bars if b.symbol in cfg.symbols]
    if bars:
        native = min(b.interval_s for b in bars)
        bars = [b for b in bars if b.interval_s == native]
        if native != interval_s:
            try:
                bars = list(resample(bars, interval_s))
            except ValueError as exc:
                raise ConfigError(f"config error: --interval = {interval_s} s: the feed has {native} s bars; "
                                  f"{exc}") from None
    elif trades:
        want = cfg.symbols or None
        bars = list(bars_from_trades(trades, interval_s, want))
    out: dict[str, list[Bar]] = {}
    for b in sorted(bars, key=lambda b: b.ts):
        out.setdefault(b.symbol, []).append(b)
    if not out:
        which = f" for {','.join(symbols)}" if symbols else ""
        raise ConfigError(f"config error: --feed = {cfg.feed!r}: no bars or trades{which}")
    return out


def series_metrics(core: LtaCore, bars: list[Bar]) -> np.ndarray:
    """(LDPM, LDPS, AMS LDPS) of every bar, vectorized: the same values the core computes bar by bar."""
    s = core.style
    h = np.array([b.high for b in bars])
    lo = np.array([b.low for b in bars])
    c = np.array([b.close for b in bars])
    v = np.array([b.volume for b in bars])
    q = np.array([b.turnover for b in bars])
    return np.column_stack([ldpm(c, v, q, s.short, s.long), ldps(h, lo, c, v, q, s.short, s.long),
                            ldps(h, lo, c, v, q, AMS_SHORT, s.long)])


def intrabar_marks(bar: Bar, sign: int, exit_px: float | None) -> list[float]:
    """Prices a position held into `bar` saw, on the core's documented path open -> adverse extreme ->
    favourable extreme -> close, cut at the exit when it left inside the bar. Marking these (and not
    the extremes of a bar the position only entered at its close) keeps max run-up, drawdown and max
    profit to prices the position really lived through."""
    adverse, favourable = (bar.low, bar.high) if sign > 0 else (bar.high, bar.low)
    if exit_px is None:
        return [adverse, favourable]
    if min(bar.open, adverse) <= exit_px <= max(bar.open, adverse):
        return [exit_px]  # left on the way to the adverse extreme (a stop, or a gap at the open)
    return [adverse, exit_px]


def run_bar_backtest(settings: Settings, cfg: BacktestConfig, series: dict[str, list[Bar]] | None = None
                     ) -> dict[str, Any]:
    interval_s = bar_interval(settings, cfg)
    if series is None:
        series = load_bars(settings, cfg, interval_s)
    lta = settings.lta
    start_ns = parse_time(lta.start_date, "lta.start_date") if lta.start_date else 0
    fee_bps = settings.paper.taker_fee_bps
    share = lta.initial_capital / len(series)
    cores = {s: LtaCore(lta, s, share, fee_bps, start_ns=start_ns) for s in series}
    mets = {s: series_metrics(cores[s], bars) for s, bars in series.items()}
    portfolio = Portfolio(lta.initial_capital)
    order_ids = 0
    fills: list[Fill] = []
    marks: dict[str, float] = {}
    equity_ts: list[int] = []
    equity: list[float] = []
    merged = sorted((b.ts, i, s, k) for i, (s, bars) in enumerate(series.items()) for k, b in enumerate(bars))
    for ts, _i, sym, k in merged:
        bar = series[sym][k]
        core = cores[sym]
        sign_before = core.pos.sign
        orders = core.on_bar(bar, tuple(mets[sym][k]))
        if sign_before:  # a position held into the bar: mark its intrabar path before this bar's fills
            exit_px = next((o.price for o in orders if o.kind == "exit"), None)
            for px in intrabar_marks(bar, sign_before, exit_px):
                marks[sym] = px
                portfolio.mark_to_market(marks)
        for o in orders:
            order_ids += 1
            buy = (o.kind == "enter") == (o.side == "long")
            f = Fill(o.ts, f"lta-{order_ids}", sym, "buy" if buy else "sell", o.price, o.qty,
                     o.qty * o.price * fee_bps / 1e4, "taker", placed_ts=o.ts)
            fills.append(f)
            portfolio.apply_fill(f, exit_reason=o.reason if o.kind == "exit" else "", strategy="lta")
        marks[sym] = bar.close
        equity_ts.append(ts)
        equity.append(portfolio.mark_to_market(marks))
    perf = portfolio.performance(equity[-1] if equity else None)
    first = min(b[0].ts - b[0].interval_s * NS for b in series.values())
    last = max(b[-1].ts for b in series.values())
    m = backtest_metrics(equity_ts, equity, lta.initial_capital, portfolio.closed, (), fills)
    views = (c.position_view(series[s][-1].close, last) for s, c in cores.items())
    open_positions = {v.symbol: asdict(v) for v in views if v is not None}
    return {
        "strategy": cfg.strategy,
        "feed": cfg.feed,
        "interval_s": interval_s,
        "symbols": list(series),
        "seed": (settings.engine.seed if cfg.seed is None else cfg.seed) if cfg.feed == "synthetic" else None,
        "start": _iso(first),
        "end": _iso(last),
        "bars": sum(len(b) for b in series.values()),
        "settings": settings.lta.model_dump(mode="json"),
        "closed_trades": len(portfolio.closed),
        "trades": len(portfolio.closed),
        "performance": perf,
        "per_symbol": {s: {"trades": c.trades, "long_entries": c.long_entries, "short_entries": c.short_entries,
                           "outlook": c.outlook, "position": c.pos.side} for s, c in cores.items()},
        "open_positions": open_positions,
        "sharpe": m["returns"]["sharpe"],
        "metrics": m,
        "lines": {s: c.lines for s, c in cores.items()},
    }


def performance_table(perf: dict, title: str) -> Table:
    """The console performance pane's rows (`performance_lines`) as a rich table."""
    from tui.widgets.performance import performance_lines

    t = Table(title=title, header_style="bold")
    t.add_column("Performance")
    t.add_column("value", justify="right")
    for label, value, _pos in performance_lines(perf):
        t.add_row(label, value)
    return t


def positions_table(views: list[PositionView], title: str) -> Table:
    """The console positions pane's columns and cells (`position_cells`) as a rich table, turned on its
    side (one column per symbol) so that it fits an 80-column terminal."""
    from tui.widgets.fmt import price_decimals
    from tui.widgets.positions import POSITION_COLUMNS, position_cells

    t = Table(title=title, header_style="bold")
    cells = [position_cells(v, price_decimals(instrument_for(v.symbol).tick_size)) for v in views]
    t.add_column(POSITION_COLUMNS[0][1])
    for c in cells:
        t.add_column(c[0][0], justify="right")
    for i, (_key, label) in enumerate(POSITION_COLUMNS[1:], start=1):
        t.add_row(label, *(Text(c[i][0], style="" if c[i][1] is None else "green" if c[i][1] else "red")
                           for c in cells))
    return t


def _clean(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    return x


def bar_backtest_main(settings: Settings, cfg: BacktestConfig, json_path: str | None, report_dir: str | None,
                      console: Console | None = None, lines_shown: int = 8) -> int:
    res = run_bar_backtest(settings, cfg)
    con = console or Console()
    lines = res.pop("lines")
    title = (f"LTA backtest on {res['feed']} ({', '.join(res['symbols'])}), {res['interval_s'] // 60} min bars, "
             f"{res['start'][:16]} .. {res['end'][:16]}")
    con.print(performance_table(res["performance"], title))
    if res["open_positions"]:
        con.print(positions_table([PositionView(**v) for v in res["open_positions"].values()],
                                  f"open positions at {res['end'][:16]}"))
    con.print(f"bars {res['bars']}, closed trades {res['closed_trades']}, style {settings.lta.style}, "
              f"AMS {'on' if settings.lta.ams else 'off'}")
    for sym, ls in lines.items():
        for line in ls[-lines_shown:]:
            con.print(f"{sym} {line}", markup=False, highlight=False)
    text = json.dumps(_clean(res), indent=2, sort_keys=True) + "\n"
    if json_path:
        Path(json_path).write_text(text, encoding="utf-8")
    if report_dir:
        out = Path(report_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(text, encoding="utf-8")
        with open(out / "lta_output.txt", "w", encoding="utf-8") as f:
            for sym, ls in lines.items():
                f.writelines(f"{sym} {line}\n" for line in ls)
    return 0
