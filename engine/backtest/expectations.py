"""A strategy's documented performance expectations next to what a backtest measured.

A strategy class may declare `expectations = {metric: (low, high)}` (LIT does, from its seed
document). The measured values use the *strategy's own capital*, not the account's: LIT
risks `collateral_usd` per position on at most `max_positions` positions (30.30 USD by
default), so the account's 10,000 USD equity would make its Sharpe and drawdown meaningless.

* win rate: closed trades with net PnL > 0, over all closed trades;
* average win / loss: mean net PnL (fees and funding included) over the trade's collateral
  (entry notional / the entry order's leverage), in percent, over winners / losers;
* Sharpe: of daily returns (UTC days, 365 a year) of capital + the account's PnL;
* max drawdown: of that curve sampled every minute, in percent.
"""

from __future__ import annotations

import bisect
import math
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.table import Table

from ..orders import Purpose
from .metrics import daily_returns, max_drawdown_of_equity, sharpe_ratio

if TYPE_CHECKING:
    from .runner import BacktestResult

LABELS = {"win_rate_pct": "win rate %", "avg_win_pct": "average win % of collateral",
          "avg_loss_pct": "average loss % of collateral", "sharpe": "Sharpe (daily, 365/yr)",
          "max_drawdown_pct": "max drawdown % of strategy capital"}


def strategy_capital(result: BacktestResult) -> float:
    section = getattr(result.settings, result.config.strategy, None)
    collateral = getattr(section, "collateral_usd", None)
    slots = getattr(section, "max_positions", None)
    if collateral and slots:
        return float(collateral) * int(slots)
    return result.settings.engine.account_equity_usd


def measured(result: BacktestResult) -> dict[str, float]:
    entries: dict[str, list[tuple[int, float]]] = {}
    for o in result.orders:
        if o.purpose is Purpose.ENTRY and o.filled_qty > 0:
            entries.setdefault(o.symbol, []).append((o.ts, o.leverage or 1.0))
    for v in entries.values():
        v.sort()
    returns = []
    for t in result.trades:
        lev = 1.0
        found = entries.get(t.symbol, [])
        i = bisect.bisect_right(found, (t.opened_ts, math.inf)) - 1
        if i >= 0:
            lev = found[i][1]
        collateral = t.qty * t.entry_price / lev
        returns.append(100.0 * t.net_pnl / collateral if collateral else 0.0)
    r = np.asarray(returns, dtype=np.float64)
    wins, losses = r[r > 0], r[r <= 0]
    capital = strategy_capital(result)
    initial = result.settings.engine.account_equity_usd
    curve = np.asarray(result.equity, dtype=np.float64) - initial + capital
    _days, daily = daily_returns(result.equity_ts, curve, capital)
    nan = math.nan
    return {
        "win_rate_pct": 100.0 * len(wins) / len(r) if len(r) else nan,
        "avg_win_pct": float(wins.mean()) if len(wins) else nan,
        "avg_loss_pct": float(-losses.mean()) if len(losses) else nan,
        "sharpe": sharpe_ratio(daily) if len(daily) > 1 else nan,
        "max_drawdown_pct": -100.0 * max_drawdown_of_equity(curve) if len(curve) else nan,
        "capital_usd": capital,
        "trades": float(len(r)),
    }


def expectations_for(result: BacktestResult) -> dict[str, Any] | None:
    """{metric: {"expected": [lo, hi], "measured": v, "inside": bool}} or None if none are declared."""
    from ..strategies import strategy_class
    expected = getattr(strategy_class(result.config.strategy), "expectations", None)
    if not expected:
        return None
    got = measured(result)
    out: dict[str, Any] = {"capital_usd": got["capital_usd"]}
    for k, (lo, hi) in expected.items():
        v = got.get(k, math.nan)
        out[k] = {"expected": [lo, hi], "measured": None if v != v else round(v, 4),
                  "inside": bool(v == v and lo <= v <= hi)}
    return out


def expectations_table(exp: dict[str, Any], strategy: str) -> Table:
    t = Table(title=f"{strategy}: the document's expectations vs measured (strategy capital "
                    f"{exp['capital_usd']:.2f} USD)", header_style="bold")
    t.add_column("metric")
    t.add_column("expected", justify="right")
    t.add_column("measured", justify="right")
    t.add_column("", justify="center")
    for k, label in LABELS.items():
        if k not in exp:
            continue
        e = exp[k]
        v = e["measured"]
        t.add_row(label, f"{e['expected'][0]:g} - {e['expected'][1]:g}", "n/a" if v is None else f"{v:.2f}",
                  "in range" if e["inside"] else "outside")
    return t


def attach(result: BacktestResult) -> dict[str, Any] | None:
    """Add the comparison to the summary (key "expectations") when the strategy declares expectations."""
    exp = expectations_for(result)
    if exp is not None:
        result.summary["expectations"] = exp
    return exp
