"""Performance metrics with stated conventions (docs/backtest.md).

Return metrics work on a series of per-period simple returns (daily by default) and follow
empyrical's definitions, so they equal empyrical-reloaded on the same returns (tested):

* Sharpe = mean(r - rf) / std(r - rf, ddof=1) * sqrt(P), with P periods per year (365 for
  crypto by default; 252 for exchange-traded markets).
* Sortino = mean(r - mar) * P / (sqrt(mean(min(r - mar, 0)^2)) * sqrt(P)): the downside
  deviation averages over all n periods (ddof 0), non-negative periods counting as zero.
* Cumulative return = prod(1 + r) - 1; CAGR = (1 + cumulative)^(P / n) - 1.
* Max drawdown = min over t of W_t / max_{s<=t} W_s - 1 with wealth starting at 1 (a loss on the
  first day counts); a negative fraction. Max run-up = max over t of W_t / min_{s<=t} W_s - 1.
* Calmar = CAGR / |max drawdown| (NaN when there is no drawdown); return over max drawdown
  (RoMaD) = cumulative return / |max drawdown|.
* Annual volatility = std(r, ddof=1) * sqrt(P).

A statistic that is undefined (fewer than two periods, zero deviation, no drawdown) is NaN,
never a made-up number. Trade and execution metrics use the engine's ClosedTrade, Order and
Fill records; see `trade_metrics` and `execution_metrics`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..events import NS
from ..orders import Fill, Order, OrderStatus, OrderType

DEFAULT_PERIODS = 365  # crypto trades every day
DAY_NS = 86_400 * NS
NAN = float("nan")


def _arr(returns: Iterable[float] | np.ndarray) -> np.ndarray:
    r = np.asarray(returns if isinstance(returns, np.ndarray) else list(returns), dtype=np.float64)
    if r.ndim != 1:
        raise ValueError("returns must be one-dimensional")
    if not np.all(np.isfinite(r)):
        raise ValueError("returns must be finite")
    return r


def wealth(returns: Iterable[float] | np.ndarray) -> np.ndarray:
    """Wealth after each period, starting from 1 (the starting 1 is not included)."""
    return np.cumprod(1.0 + _arr(returns))


def cumulative_return(returns: Iterable[float] | np.ndarray) -> float:
    r = _arr(returns)
    return float(np.prod(1.0 + r) - 1.0) if len(r) else NAN


def annual_return(returns: Iterable[float] | np.ndarray, periods: int = DEFAULT_PERIODS) -> float:
    """CAGR: (1 + cumulative)^(periods / n) - 1."""
    r = _arr(returns)
    if len(r) == 0:
        return NAN
    ending = float(np.prod(1.0 + r))
    return ending ** (periods / len(r)) - 1.0


def annual_volatility(returns: Iterable[float] | np.ndarray, periods: int = DEFAULT_PERIODS) -> float:
    r = _arr(returns)
    if len(r) < 2:
        return NAN
    return float(np.std(r, ddof=1) * math.sqrt(periods))


def sharpe_ratio(
    returns: Iterable[float] | np.ndarray, periods: int = DEFAULT_PERIODS, risk_free: float = 0.0
) -> float:
    """Annualized Sharpe; risk_free is per period."""
    r = _arr(returns) - risk_free
    if len(r) < 2:
        return NAN
    sd = float(np.std(r, ddof=1))
    if sd == 0.0:
        return NAN
    return float(np.mean(r)) / sd * math.sqrt(periods)


def downside_deviation(
    returns: Iterable[float] | np.ndarray, periods: int = DEFAULT_PERIODS, mar: float = 0.0
) -> float:
    r = _arr(returns)
    if len(r) == 0:
        return NAN
    down = np.minimum(r - mar, 0.0)
    return float(np.sqrt(np.mean(down * down)) * math.sqrt(periods))


def sortino_ratio(
    returns: Iterable[float] | np.ndarray, periods: int = DEFAULT_PERIODS, mar: float = 0.0
) -> float:
    """Annualized Sortino against a per-period minimum acceptable return `mar`."""
    r = _arr(returns)
    if len(r) < 2:
        return NAN
    dd = downside_deviation(r, periods, mar)
    if dd == 0.0:
        return NAN
    return float(np.mean(r - mar)) * periods / dd


def drawdown_series(returns: Iterable[float] | np.ndarray) -> np.ndarray:
    """Drawdown after each period (<= 0), measured from the running peak with wealth starting at 1."""
    w = wealth(returns)
    peak = np.maximum.accumulate(np.concatenate(([1.0], w)))[1:]
    return w / peak - 1.0


def max_drawdown(returns: Iterable[float] | np.ndarray) -> float:
    r = _arr(returns)
    if len(r) == 0:
        return NAN
    return float(min(drawdown_series(r).min(), 0.0))


def max_runup(returns: Iterable[float] | np.ndarray) -> float:
    """Largest rise from a running trough (>= 0), wealth starting at 1."""
    r = _arr(returns)
    if len(r) == 0:
        return NAN
    w = wealth(r)
    trough = np.minimum.accumulate(np.concatenate(([1.0], w)))[1:]
    return float(max((w / trough - 1.0).max(), 0.0))


def calmar_ratio(returns: Iterable[float] | np.ndarray, periods: int = DEFAULT_PERIODS) -> float:
    mdd = max_drawdown(returns)
    if not mdd < 0.0:
        return NAN
    return annual_return(returns, periods) / abs(mdd)


def return_over_max_drawdown(returns: Iterable[float] | np.ndarray) -> float:
    mdd = max_drawdown(returns)
    if not mdd < 0.0:
        return NAN
    return cumulative_return(returns) / abs(mdd)


def max_drawdown_of_equity(equity: Sequence[float] | np.ndarray) -> float:
    """Max drawdown of an equity curve sampled at any frequency (intraday included), as a fraction."""
    e = np.asarray(equity, dtype=np.float64)
    if len(e) == 0:
        return NAN
    peak = np.maximum.accumulate(e)
    return float(min((e / peak - 1.0).min(), 0.0))


def return_metrics(
    returns: Iterable[float] | np.ndarray, periods: int = DEFAULT_PERIODS, risk_free: float = 0.0
) -> dict[str, Any]:
    """All return-based metrics of one series, keyed by name."""
    r = _arr(returns)
    nonzero = r[r != 0.0]
    return {
        "periods": len(r),
        "periods_per_year": periods,
        "cumulative_return": cumulative_return(r),
        "annual_return": annual_return(r, periods),
        "annual_volatility": annual_volatility(r, periods),
        "sharpe": sharpe_ratio(r, periods, risk_free),
        "sortino": sortino_ratio(r, periods),
        "max_drawdown": max_drawdown(r),
        "calmar": calmar_ratio(r, periods),
        "max_runup": max_runup(r),
        "return_over_max_drawdown": return_over_max_drawdown(r),
        "best_period": float(r.max()) if len(r) else NAN,
        "worst_period": float(r.min()) if len(r) else NAN,
        # quantstats' convention: zero-return periods are neither wins nor losses
        "positive_periods": float(np.mean(nonzero > 0)) if len(nonzero) else NAN,
    }


def daily_returns(
    ts: Sequence[int] | np.ndarray,
    equity: Sequence[float] | np.ndarray,
    initial_equity: float | None = None,
    day_ns: int = DAY_NS,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-UTC-day simple returns of an equity curve sampled at times `ts` (int ns).

    Each day's closing equity is the last sample of that day; days without a sample carry the
    previous close (a zero return). The first day's return is measured from `initial_equity`
    (default: the first sample). Returns (day start times in ns, returns).
    """
    t = np.asarray(ts, dtype=np.int64)
    e = np.asarray(equity, dtype=np.float64)
    if len(t) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    if np.any(np.diff(t) < 0):
        raise ValueError("equity samples must be in time order")
    day = t // day_ns
    last_of_day = np.flatnonzero(np.diff(day, append=day[-1] + 1))
    days = np.arange(day[0], day[-1] + 1)
    closes = np.full(len(days), np.nan)
    closes[day[last_of_day] - day[0]] = e[last_of_day]
    have = np.where(np.isnan(closes), 0, np.arange(len(closes)))
    closes = closes[np.maximum.accumulate(have)]  # carry the close over days with no sample
    start = e[0] if initial_equity is None else float(initial_equity)
    prev = np.concatenate(([start], closes[:-1]))
    return days * day_ns, closes / prev - 1.0


# -- trades -----------------------------------------------------------------------------------------


def trade_metrics(pnls: Iterable[float]) -> dict[str, Any]:
    """Win rate, profit factor, expectancy and average win/loss of per-trade net PnL.

    Win rate counts trades with PnL > 0 over trades with PnL != 0 (breakeven trades are neither),
    profit factor = gross profit / |gross loss| (NaN with no losing trade), expectancy = mean PnL.
    """
    p = np.asarray(list(pnls), dtype=np.float64)
    wins, losses = p[p > 0], p[p < 0]
    decided = len(wins) + len(losses)
    gross_profit, gross_loss = float(wins.sum()), float(losses.sum())
    return {
        "trades": len(p),
        "wins": len(wins),
        "losses": len(losses),
        "win_rate": len(wins) / decided if decided else NAN,
        "profit_factor": gross_profit / abs(gross_loss) if gross_loss < 0 else NAN,
        "expectancy": float(p.mean()) if len(p) else NAN,
        "avg_win": float(wins.mean()) if len(wins) else NAN,
        "avg_loss": float(losses.mean()) if len(losses) else NAN,
        "largest_win": float(wins.max()) if len(wins) else NAN,
        "largest_loss": float(losses.min()) if len(losses) else NAN,
        "gross_profit": gross_profit,
        "gross_loss": gross_loss,
    }


def exit_breakdown(trades: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """Per exit reason (tp, sl, timeout, ...): trade count, net PnL and win rate of ClosedTrades."""
    by: dict[str, list[float]] = {}
    for t in trades:
        by.setdefault(t.exit_reason or "exit", []).append(float(t.net_pnl))
    out = {}
    for reason in sorted(by):
        p = np.asarray(by[reason])
        decided = int(np.count_nonzero(p))
        out[reason] = {
            "trades": len(p),
            "net_pnl": float(p.sum()),
            "win_rate": float(np.count_nonzero(p > 0)) / decided if decided else NAN,
        }
    return out


# -- execution -------------------------------------------------------------------------------------


def _quantiles(x: np.ndarray) -> dict[str, float]:
    if len(x) == 0:
        return {"mean": NAN, "median": NAN, "p90": NAN}
    return {"mean": float(x.mean()), "median": float(np.median(x)), "p90": float(np.quantile(x, 0.9))}


def execution_metrics(orders: Iterable[Order], fills: Iterable[Fill]) -> dict[str, Any]:
    """Fill rate and queue statistics of limit orders, maker/taker shares and fees.

    Fill rate = limit orders with any fill / limit orders the exchange accepted (rejected orders,
    e.g. a PostOnly that would cross, are counted apart). Qty fill ratio = filled qty / ordered
    qty over those orders. Queue ahead is the displayed qty ahead of us when the order joined
    the book, in contracts; time to fill is from placement to the fill, for maker fills.
    """
    orders = list(orders)
    fills = list(fills)
    limits = [o for o in orders if o.order_type == OrderType.LIMIT]
    rejected = [o for o in limits if o.status == OrderStatus.REJECTED]
    accepted = [o for o in limits if o.status != OrderStatus.REJECTED]
    filled = [o for o in accepted if o.filled_qty > 0]
    qty = sum(o.qty for o in accepted)
    maker = [f for f in fills if f.liquidity == "maker"]
    taker = [f for f in fills if f.liquidity != "maker"]
    queue = np.asarray([f.queue_ahead for f in maker], dtype=np.float64)
    ttf = np.asarray([f.time_to_fill_ns / NS for f in maker if f.placed_ts], dtype=np.float64)
    notional = sum(f.price * f.qty for f in fills)
    return {
        "orders": len(orders),
        "limit_orders": len(limits),
        "rejected": len(rejected),
        "fill_rate": len(filled) / len(accepted) if accepted else NAN,
        "qty_fill_ratio": sum(o.filled_qty for o in accepted) / qty if qty > 0 else NAN,
        "fills": len(fills),
        "maker_fills": len(maker),
        "taker_fills": len(taker),
        "maker_share": sum(f.price * f.qty for f in maker) / notional if notional > 0 else NAN,
        "queue_ahead": _quantiles(queue),
        "time_to_fill_s": _quantiles(ttf),
        "traded_notional": notional,
        "fees": sum(f.fee for f in fills),
        "maker_fees": sum(f.fee for f in maker),
        "taker_fees": sum(f.fee for f in taker),
    }


# -- the whole backtest ------------------------------------------------------------------------------


def backtest_metrics(
    equity_ts: Sequence[int],
    equity: Sequence[float],
    initial_equity: float,
    trades: Iterable[Any] = (),
    orders: Iterable[Order] = (),
    fills: Iterable[Fill] = (),
    funding: float = 0.0,
    periods: int = DEFAULT_PERIODS,
) -> dict[str, Any]:
    """Everything the report shows: PnL, daily-return metrics, trades, exits, execution, costs.

    `equity` is sampled at `equity_ts` (int ns) and is resampled to UTC-day closes for the return
    metrics; the intraday drawdown of the raw curve is reported too. Turnover is traded notional
    over initial equity.
    """
    trades = list(trades)
    final = float(equity[-1]) if len(equity) else float(initial_equity)
    _days, daily = daily_returns(equity_ts, equity, initial_equity)
    ex = execution_metrics(orders, fills)
    return {
        "initial_equity": float(initial_equity),
        "final_equity": final,
        "net_pnl": final - float(initial_equity),
        "return": final / float(initial_equity) - 1.0 if initial_equity else NAN,
        "returns": return_metrics(daily, periods),
        "intraday_max_drawdown": max_drawdown_of_equity(np.concatenate(([initial_equity], equity))),
        "trades": trade_metrics(t.net_pnl for t in trades),
        "exits": exit_breakdown(trades),
        "execution": ex,
        "costs": {
            "fees": ex["fees"],
            "funding": float(funding),
            "turnover": ex["traded_notional"] / initial_equity if initial_equity else NAN,
        },
    }
