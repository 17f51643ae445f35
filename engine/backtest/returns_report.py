"""`liqdesk metrics RETURNS.csv`: the metrics table, PSR and DSR for any CSV of period returns.

The CSV needs a header with a `return` column (simple returns as fractions, 0.01 = +1%) and may
have a `date` column. Bad rows (not a number, not finite, below -100%, unparsable or
non-increasing dates, missing fields) are reported with their line numbers and left out; the
rest is used.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from ..config import ConfigError
from .metrics import DEFAULT_PERIODS, return_metrics
from .validation import (
    deflated_sharpe_ratio,
    null_trials_variance,
    probabilistic_sharpe_ratio,
    sharpe_moments,
)

MAX_BAD_SHOWN = 20


@dataclass
class ReturnsFile:
    returns: np.ndarray
    dates: list[str] = field(default_factory=list)
    bad: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)


def read_returns_csv(path: str | Path) -> ReturnsFile:
    p = Path(path)
    try:
        with open(p, newline="", encoding="utf-8", errors="replace") as f:
            return _parse_returns(csv.reader(f), p)
    except OSError as exc:
        raise ConfigError(f"config error: {p}: cannot read ({exc.strerror or exc})") from None


def _parse_returns(reader, p: Path) -> ReturnsFile:
    header = next(reader, None)
    cols = [h.strip().lower() for h in header] if header else []
    if "return" not in cols:
        raise ConfigError(f"config error: {p}: needs a header line with a 'return' column")
    i_ret = cols.index("return")
    i_date = cols.index("date") if "date" in cols else None
    values: list[float] = []
    dates: list[str] = []
    bad: list[tuple[int, str]] = []
    last_date: str | None = None
    for row in reader:
        if not row or all(not c.strip() for c in row):
            continue
        line = reader.line_num
        if len(row) <= max(i_ret, i_date or 0):
            bad.append((line, "missing fields"))
            continue
        text = row[i_ret].strip()
        try:
            r = float(text)
        except ValueError:
            bad.append((line, f"return {text!r} is not a number"))
            continue
        if not math.isfinite(r):
            bad.append((line, f"return {text!r} is not finite"))
            continue
        if r < -1.0:
            bad.append((line, f"return {text!r} is below -100%"))
            continue
        if i_date is not None:
            d = row[i_date].strip()
            try:
                key = _date_key(d)
            except ValueError:
                bad.append((line, f"date {d!r} is not a date"))
                continue
            if last_date is not None and key <= last_date:
                bad.append((line, f"date {d!r} is not after the previous row's"))
                continue
            last_date = key
            dates.append(d)
        values.append(r)
    return ReturnsFile(np.asarray(values, dtype=np.float64), dates, bad)


def _date_key(text: str) -> str:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).isoformat()


def summarize(
    returns: np.ndarray,
    periods: int = DEFAULT_PERIODS,
    trials: int | None = None,
    trials_sr_variance: float | None = None,
) -> dict[str, Any]:
    """Return metrics plus PSR against 0 and, with `trials`, the DSR of this series as the best of them.

    trials_sr_variance is the variance of the trials' *annualized* Sharpe ratios (the paper's
    convention); without it the null variance 1/(T-1) per period is assumed.
    """
    out: dict[str, Any] = {"metrics": return_metrics(returns, periods)}
    try:
        m = sharpe_moments(returns)
    except ValueError as exc:
        out["psr"] = {"error": str(exc)}
        return out
    out["sharpe_per_period"] = m.sharpe
    out["skew"] = m.skew
    out["kurtosis"] = m.kurtosis
    try:
        out["psr"] = {
            "benchmark": 0.0,
            "value": probabilistic_sharpe_ratio(m.sharpe, m.n, m.skew, m.kurtosis),
        }
    except ValueError as exc:
        out["psr"] = {"error": str(exc)}
        return out
    if trials is not None:
        if trials_sr_variance is None:
            var, source = null_trials_variance(m.n), "1/(T-1) per period (null; not given)"
        else:
            var, source = trials_sr_variance / periods, f"given: {trials_sr_variance:g} annualized"
        dsr, sr0 = deflated_sharpe_ratio(m.sharpe, m.n, m.skew, m.kurtosis, trials, var)
        out["dsr"] = {
            "trials": trials,
            "trials_sr_variance_per_period": var,
            "variance_source": source,
            "sr0_per_period": sr0,
            "sr0_annualized": sr0 * math.sqrt(periods),
            "value": dsr,
        }
    return out


def _pct(v: float, signed: bool = True) -> str:
    return "n/a" if v != v else f"{v * 100:+.2f}%" if signed else f"{v * 100:.2f}%"


def _num(v: float, fmt: str = ".3f") -> str:
    return "n/a" if v != v else format(v, fmt)


def metrics_table(summary: dict[str, Any], title: str) -> Table:
    m = summary["metrics"]
    t = Table(title=title, show_header=True, header_style="bold")
    t.add_column("metric")
    t.add_column("value", justify="right")
    rows = [
        ("periods", f"{m['periods']} (annualized with {m['periods_per_year']} per year)"),
        ("cumulative return", _pct(m["cumulative_return"])),
        ("annual return (CAGR)", _pct(m["annual_return"])),
        ("annual volatility", _pct(m["annual_volatility"], signed=False)),
        ("Sharpe", _num(m["sharpe"])),
        ("Sortino", _num(m["sortino"])),
        ("max drawdown", _pct(m["max_drawdown"])),
        ("Calmar", _num(m["calmar"])),
        ("max run-up", _pct(m["max_runup"])),
        ("return / max drawdown", _num(m["return_over_max_drawdown"])),
        ("best period", _pct(m["best_period"])),
        ("worst period", _pct(m["worst_period"])),
        ("positive periods", _pct(m["positive_periods"], signed=False)),
    ]
    if "sharpe_per_period" in summary:
        rows.append(
            (
                "Sharpe per period / skew / kurtosis",
                f"{summary['sharpe_per_period']:.4f} / {summary['skew']:.3f} / {summary['kurtosis']:.3f}",
            )
        )
    psr = summary["psr"]
    rows.append(("PSR (SR > 0)", _num(psr["value"], ".4f") if "value" in psr else f"n/a ({psr['error']})"))
    if "dsr" in summary:
        d = summary["dsr"]
        rows.append((f"DSR (best of {d['trials']} trials)", _num(d["value"], ".4f")))
        rows.append(("expected max Sharpe under the null", f"{d['sr0_annualized']:.3f} annualized"))
        rows.append(("trial Sharpe variance", d["variance_source"]))
    for k, v in rows:
        t.add_row(k, v)
    return t


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, np.floating | np.integer):
        return _jsonable(x.item())
    return x


def run(
    path: str,
    periods: int = DEFAULT_PERIODS,
    trials: int | None = None,
    trials_sr_variance: float | None = None,
    as_json: bool = False,
    console: Console | None = None,
    err_console: Console | None = None,
) -> int:
    if periods <= 0:
        raise ConfigError(f"config error: --periods = {periods}: must be > 0")
    if trials is not None and trials < 2:
        raise ConfigError(f"config error: --trials = {trials}: must be >= 2")
    if trials_sr_variance is not None and trials_sr_variance < 0:
        raise ConfigError(f"config error: --trials-sr-var = {trials_sr_variance}: must be >= 0")
    console = console or Console()
    data = read_returns_csv(path)
    for line, reason in data.bad[:MAX_BAD_SHOWN]:
        print(f"{path}:{line}: bad row: {reason}", file=sys.stderr)
    if len(data.bad) > MAX_BAD_SHOWN:
        print(f"{path}: {len(data.bad) - MAX_BAD_SHOWN} more bad rows", file=sys.stderr)
    if len(data.returns) == 0:
        raise ConfigError(f"config error: {path}: no valid returns")
    summary = summarize(data.returns, periods, trials, trials_sr_variance)
    summary["file"] = str(path)
    summary["bad_rows"] = len(data.bad)
    if data.dates:
        summary["first_date"], summary["last_date"] = data.dates[0], data.dates[-1]
    if as_json:
        console.file.write(json.dumps(_jsonable(summary), indent=2, sort_keys=True) + "\n")
    else:
        span = f" {data.dates[0]} .. {data.dates[-1]}" if data.dates else ""
        console.print(metrics_table(summary, f"{Path(path).name}{span}"))
    return 0
