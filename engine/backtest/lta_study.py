"""`liqdesk study lta`: how much do LDPM and LDPS forecast returns? (docs/strategies/lta.md)

For each bar series and each metric (LDPM, LDPS, and the AMS's fast LDPS) at the assessment
style's windows, the information coefficient is the **Spearman** rank correlation between the
metric at bar close t and the log return from close t to close t+h, for h = 1 (next bar) and
h = N (`--horizon`). Ranks, not values: bar returns are fat-tailed and one outlier must not make
an IC. The t-statistic is IC * sqrt((n - 2) / (1 - IC^2)) on **non-overlapping** pairs (every
h-th bar), because overlapping h-bar returns share h - 1 bars and would inflate t by ~sqrt(h).
|t| >= 1.96 is flagged as significant at 5% (two-sided, one test; we run many, so expect about
one false flag in twenty).

Series: the synthetic market (every configured symbol, `--interval` bars for `--duration`
seconds, from its own seeded processes) and every real series buildable from the sample data
(`--data DIR`, default ../shared/sample-data): each file is imported, its klines are used as
they are and its trades are built into bars at each of `--real-intervals`; a series with fewer
than MIN_BARS bars is listed as skipped, not silently dropped.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..bars import bars_from_trades
from ..config import ConfigError, Settings
from ..events import Bar, Trade
from ..lta_metrics import forward_returns, ldpm, ldps
from ..strategies.lta import AMS_SHORT, STYLES

MIN_BARS = 20
METRICS = ("LDPM", "LDPS", "LDPS_fast")


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho (average ranks for ties) of the finite pairs; NaN with < 3 pairs or no variance."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 3:
        return math.nan
    rx, ry = _ranks(x), _ranks(y)
    sx, sy = rx.std(), ry.std()
    if sx == 0 or sy == 0:
        return math.nan
    return float(np.mean((rx - rx.mean()) * (ry - ry.mean())) / (sx * sy))


def _ranks(a: np.ndarray) -> np.ndarray:
    order = np.argsort(a, kind="mergesort")
    r = np.empty(len(a))
    r[order] = np.arange(1, len(a) + 1)
    vals, inv, counts = np.unique(a, return_inverse=True, return_counts=True)
    if len(vals) < len(a):  # ties: the average rank of the group
        sums = np.bincount(inv, weights=r)
        r = (sums / counts)[inv]
    return r


def t_stat(ic: float, n: int) -> float:
    if not math.isfinite(ic) or n < 3 or abs(ic) >= 1:
        return math.nan
    return ic * math.sqrt((n - 2) / (1 - ic * ic))


def ic_rows(bars: list[Bar], style: str, horizon: int) -> list[dict[str, Any]]:
    s = STYLES[style]
    h = np.array([b.high for b in bars])
    lo = np.array([b.low for b in bars])
    c = np.array([b.close for b in bars])
    v = np.array([b.volume for b in bars])
    q = np.array([b.turnover for b in bars])
    values = {"LDPM": ldpm(c, v, q, s.short, s.long), "LDPS": ldps(h, lo, c, v, q, s.short, s.long),
              "LDPS_fast": ldps(h, lo, c, v, q, AMS_SHORT, s.long)}
    rows = []
    for name in METRICS:
        x = values[name]
        for hz in sorted({1, horizon}):
            fwd = forward_returns(c, hz)
            idx = np.arange(0, len(c), hz)  # non-overlapping pairs
            xs, ys = x[idx], fwd[idx]
            n = int(np.count_nonzero(np.isfinite(xs) & np.isfinite(ys)))
            ic = spearman(xs, ys)
            t = t_stat(ic, n)
            rows.append({"metric": name, "horizon": hz, "n": n, "ic": ic, "t": t,
                         "significant": bool(math.isfinite(t) and abs(t) >= 1.96)})
    return rows


def real_series(data_dir: Path, intervals: list[int]) -> tuple[dict[str, list[Bar]], list[dict]]:
    """name -> bars for every series buildable from the files under `data_dir`; plus what was skipped."""
    from ..feeds.importers import UnreadableFile
    from ..feeds.importers.feed import ImportedFeed

    series: dict[str, list[Bar]] = {}
    skipped: list[dict] = []
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file() and p.suffix not in (".md", ".txt")):
        try:
            feed = ImportedFeed(path, use_cache=False)
            if not feed.files:
                continue
            events = list(feed.events())
        except (UnreadableFile, ValueError, OSError) as exc:
            skipped.append({"series": path.name, "reason": f"not importable: {str(exc)[:80]}"})
            continue
        trades = [e for e in events if type(e) is Trade]
        klines = [e for e in events if type(e) is Bar]
        if klines:
            for sym in sorted({b.symbol for b in klines}):
                series[f"{path.name}:{sym}:klines"] = [b for b in klines if b.symbol == sym]
        if not trades:
            if not klines:
                skipped.append({"series": path.name, "reason": "no trades or klines"})
            continue
        for iv in intervals:
            bars = list(bars_from_trades(sorted(trades, key=lambda e: e.ts), iv))
            for sym in sorted({b.symbol for b in bars}):
                sb = [b for b in bars if b.symbol == sym]
                name = f"{path.name}:{sym}:{iv}s"
                if len(sb) < MIN_BARS:
                    skipped.append({"series": name, "reason": f"{len(sb)} bars < {MIN_BARS}"})
                else:
                    series[name] = sb
    return series, skipped


def run_lta_study(settings: Settings, seed: int | None, duration_s: float, interval: str, horizon: int,
                  data_dir: str | None, real_intervals: list[int], synthetic: bool = True) -> dict[str, Any]:
    from ..feeds.synthetic_bars import synthetic_bar_series
    from .bar_runner import parse_interval

    iv = parse_interval(interval, lo_s=1)
    if not 1 <= horizon <= 1000:
        raise ConfigError(f"config error: --horizon = {horizon}: must be 1 .. 1000 bars")
    if duration_s <= 0:
        raise ConfigError(f"config error: --duration = {duration_s:g}: must be > 0 simulated seconds")
    style = settings.lta.style
    seed = settings.engine.seed if seed is None else seed
    series: dict[str, list[Bar]] = {}
    if synthetic:
        syn = synthetic_bar_series(settings, seed, list(settings.engine.symbols), iv, duration_s=duration_s)
        series.update({f"synthetic:{sym}:{iv}s": bars for sym, bars in syn.items()})
    skipped: list[dict] = []
    if data_dir:
        d = Path(data_dir)
        if not d.is_dir():
            raise ConfigError(f"config error: --data = {data_dir!r}: not a directory")
        real, skipped = real_series(d, real_intervals)
        series.update(real)
    results = []
    for name, bars in series.items():
        if len(bars) < MIN_BARS:
            skipped.append({"series": name, "reason": f"{len(bars)} bars < {MIN_BARS}"})
            continue
        for row in ic_rows(bars, style, horizon):
            results.append({"series": name, "bars": len(bars), **row})
    return {"style": style, "seed": seed, "interval_s": iv, "horizon": horizon, "method": "spearman",
            "t_stat": "non-overlapping pairs", "results": results, "skipped": skipped}


def study_table(summary: dict) -> Any:
    from rich.table import Table

    t = Table(title=f"LTA metrics: Spearman IC with the next 1 and {summary['horizon']} bars' log return "
                    f"(style {summary['style']}; t on non-overlapping pairs)", header_style="bold")
    for col in ("series", "bars", "metric", "h", "n", "IC", "t", "sig"):
        t.add_column(col, justify="left" if col in ("series", "metric") else "right")
    for r in summary["results"]:
        t.add_row(r["series"], str(r["bars"]), r["metric"], str(r["horizon"]), str(r["n"]), _f(r["ic"], "+.3f"),
                  _f(r["t"], "+.2f"), "*" if r["significant"] else "")
    return t


def _f(x: float, spec: str) -> str:
    return "n/a" if x is None or not math.isfinite(x) else format(x, spec)


def lta_study_main(settings: Settings, seed: int | None, duration_s: float, interval: str, horizon: int,
                   data_dir: str | None, real_intervals: str, json_path: str | None, echo=print) -> int:
    from rich.console import Console

    try:
        ivs = [int(x) for x in real_intervals.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"config error: --real-intervals = {real_intervals!r}: seconds, e.g. 1,5") from None
    if any(not 1 <= x <= 86_400 for x in ivs):
        raise ConfigError(f"config error: --real-intervals = {real_intervals!r}: each 1 .. 86400 s")
    summary = run_lta_study(settings, seed, duration_s, interval, horizon, data_dir, ivs)
    con = Console()
    con.print(study_table(summary))
    for s in summary["skipped"]:
        con.print(f"skipped {s['series']}: {s['reason']}", markup=False, highlight=False)
    sig = sum(r["significant"] for r in summary["results"])
    con.print(f"{sig} of {len(summary['results'])} ICs have |t| >= 1.96", markup=False)
    if json_path:
        clean = json.loads(json.dumps(summary, default=str).replace("NaN", "null"))
        Path(json_path).write_text(json.dumps(clean, indent=1) + "\n", encoding="utf-8")
        echo(f"wrote {json_path}")
    return 0
