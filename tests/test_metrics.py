"""Backtest metrics: equal to empyrical-reloaded on the same daily returns, plus trade/execution stats."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from engine.backtest import metrics as m
from engine.backtest.returns_report import read_returns_csv, run, summarize
from engine.cli import main
from engine.events import NS
from engine.orders import Fill, Order, OrderStatus, OrderType, Purpose
from engine.portfolio import ClosedTrade

ep = pytest.importorskip("empyrical", reason="empyrical-reloaded (test extra) is not installed")

# Includes a zero day and a multi-day drawdown that starts on day one (a first-day loss must count).
VECTOR = np.array(
    [
        -0.012,
        0.004,
        0.0,
        -0.021,
        -0.008,
        0.015,
        0.031,
        -0.004,
        0.0,
        0.012,
        -0.017,
        0.006,
        0.022,
        -0.009,
        0.003,
        -0.026,
        0.011,
        0.0,
        0.008,
        0.014,
    ]
)


def _rng_returns(seed: int, n: int = 500) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0008, 0.025, n)


@pytest.mark.parametrize(
    "returns", [VECTOR, _rng_returns(1), _rng_returns(2, 60)], ids=["vector", "rng500", "rng60"]
)
@pytest.mark.parametrize("periods", [365, 252])
def test_return_metrics_equal_empyrical(returns, periods):
    got = m.return_metrics(returns, periods)
    want = {
        "sharpe": ep.sharpe_ratio(returns, annualization=periods),
        "sortino": ep.sortino_ratio(returns, annualization=periods),
        "max_drawdown": ep.max_drawdown(returns),
        "calmar": ep.calmar_ratio(returns, annualization=periods),
        "cumulative_return": ep.cum_returns_final(returns),
        "annual_return": ep.annual_return(returns, annualization=periods),
        "annual_volatility": ep.annual_volatility(returns, annualization=periods),
    }
    for name, value in want.items():
        assert got[name] == pytest.approx(float(value), rel=1e-12, abs=1e-15), name


def test_drawdown_counts_a_loss_on_the_first_day_and_runup_mirrors_it():
    r = [-0.10, 0.05, 0.10, -0.20, 0.50]
    # wealth 0.9, 0.945, 1.0395, 0.8316, 1.2474: peak 1.0395 -> trough 0.8316 is -20%
    assert m.max_drawdown(r) == pytest.approx(-0.2)
    assert m.max_drawdown([-0.10]) == pytest.approx(-0.10)
    # trough 0.8316 -> 1.2474 is +50%
    assert m.max_runup(r) == pytest.approx(0.5)
    assert m.return_over_max_drawdown(r) == pytest.approx(0.2474 / 0.2)
    assert math.isnan(m.calmar_ratio([0.01, 0.02]))  # no drawdown: undefined, not infinite


def test_undefined_statistics_are_nan():
    assert math.isnan(m.sharpe_ratio([0.01]))
    assert math.isnan(m.sharpe_ratio([0.01, 0.01, 0.01]))  # zero deviation
    assert math.isnan(m.sortino_ratio([0.01, 0.02, 0.03]))  # no downside
    with pytest.raises(ValueError):
        m.sharpe_ratio([0.01, float("nan")])


def test_daily_returns_resample_an_intraday_equity_curve():
    day = 86_400 * NS
    ts = [0, 3_600 * NS, day + 10, day + 20, 3 * day + 5]  # day 2 has no sample
    eq = [1000.0, 1010.0, 990.0, 1020.0, 1071.0]
    days, r = m.daily_returns(ts, eq, initial_equity=1000.0)
    assert list(days) == [0, day, 2 * day, 3 * day]
    assert r == pytest.approx([0.01, 1020 / 1010 - 1, 0.0, 1071 / 1020 - 1])


def test_trade_metrics_exclude_breakeven_trades_from_the_win_rate():
    t = m.trade_metrics([10.0, -5.0, 0.0, 20.0, -15.0])
    assert (t["trades"], t["wins"], t["losses"]) == (5, 2, 2)
    assert t["win_rate"] == pytest.approx(0.5)
    assert t["profit_factor"] == pytest.approx(30 / 20)
    assert t["expectancy"] == pytest.approx(2.0)
    assert (t["avg_win"], t["avg_loss"]) == (pytest.approx(15.0), pytest.approx(-10.0))
    assert math.isnan(m.trade_metrics([1.0, 2.0])["profit_factor"])


def _order(oid, status, filled, qty=1.0, otype=OrderType.LIMIT):
    return Order(
        oid, 0, "BTCUSDT", "buy", qty, 100.0, otype, Purpose.ENTRY, "t", status=status, filled_qty=filled
    )


def test_execution_metrics_fill_rate_queue_and_fees():
    orders = [
        _order("a", OrderStatus.FILLED, 1.0),
        _order("b", OrderStatus.CANCELLED, 0.0),
        _order("c", OrderStatus.REJECTED, 0.0),
        _order("d", OrderStatus.PARTIALLY_FILLED, 0.5),
        _order("e", OrderStatus.FILLED, 1.0, otype=OrderType.MARKET),
    ]
    fills = [
        Fill(5 * NS, "a", "BTCUSDT", "buy", 100.0, 1.0, -0.01, "maker", queue_ahead=12.0, placed_ts=1 * NS),
        Fill(9 * NS, "d", "BTCUSDT", "buy", 100.0, 0.5, -0.005, "maker", queue_ahead=4.0, placed_ts=3 * NS),
        Fill(9 * NS, "e", "BTCUSDT", "sell", 101.0, 1.0, 0.0556, "taker"),
    ]
    x = m.execution_metrics(orders, fills)
    assert x["limit_orders"] == 4 and x["rejected"] == 1
    assert x["fill_rate"] == pytest.approx(2 / 3)  # a and d of the three accepted limit orders
    assert x["qty_fill_ratio"] == pytest.approx(1.5 / 3.0)
    assert x["queue_ahead"]["mean"] == pytest.approx(8.0)
    assert x["time_to_fill_s"]["median"] == pytest.approx(5.0)
    assert x["maker_fees"] == pytest.approx(-0.015) and x["taker_fees"] == pytest.approx(0.0556)
    assert x["traded_notional"] == pytest.approx(100 + 50 + 101)


def test_backtest_metrics_net_pnl_exits_and_turnover():
    trades = [
        ClosedTrade("BTCUSDT", "long", 1, 100, 102, 0, 1, 2.0, 0.1, 0.0, "tp", "t"),
        ClosedTrade("BTCUSDT", "short", 1, 100, 101, 2, 3, -1.0, 0.1, -0.05, "sl", "t"),
        ClosedTrade("BTCUSDT", "long", 1, 100, 100.5, 4, 5, 0.5, 0.1, 0.0, "tp", "t"),
    ]
    day = 86_400 * NS
    out = m.backtest_metrics(
        [0, day, 2 * day], [1000.0, 1002.0, 1001.25], 1000.0, trades=trades, funding=-0.05
    )
    assert out["net_pnl"] == pytest.approx(1.25)
    assert out["return"] == pytest.approx(0.00125)
    assert out["exits"]["tp"]["trades"] == 2 and out["exits"]["tp"]["net_pnl"] == pytest.approx(2.3)
    assert out["exits"]["sl"]["win_rate"] == 0.0
    assert out["trades"]["trades"] == 3
    assert out["costs"]["funding"] == -0.05
    assert out["returns"]["cumulative_return"] == pytest.approx(0.00125)


# -- the `liqdesk metrics` command ---------------------------------------------------------------


def _write(tmp_path, text):
    p = tmp_path / "returns.csv"
    p.write_text(text)
    return p


def test_returns_csv_reports_bad_rows_with_line_numbers(tmp_path):
    p = _write(
        tmp_path,
        "date,return\n2024-01-01,0.01\n2024-01-02,abc\n2024-01-03,nan\n2024-01-01,0.02\n"
        "2024-01-04,-1.5\nnot-a-date,0.01\n2024-01-05,-0.02\n",
    )
    data = read_returns_csv(p)
    assert data.returns.tolist() == [0.01, -0.02]
    assert [line for line, _ in data.bad] == [3, 4, 5, 6, 7]
    assert "not a number" in data.bad[0][1] and "not after" in data.bad[2][1]


def test_metrics_command_json_matches_the_library(tmp_path, capsys):
    p = _write(tmp_path, "return\n" + "\n".join(f"{x:.10f}" for x in VECTOR) + "\nbad\n")
    assert main(["metrics", str(p), "--json", "--periods", "252", "--trials", "10"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["metrics"]["sharpe"] == pytest.approx(ep.sharpe_ratio(VECTOR, annualization=252), rel=1e-9)
    assert out["metrics"]["periods"] == len(VECTOR)
    assert out["bad_rows"] == 1
    assert 0.0 < out["psr"]["value"] < 1.0 and 0.0 <= out["dsr"]["value"] <= out["psr"]["value"]
    assert f"{p}:{len(VECTOR) + 2}: bad row" in captured.err


def test_metrics_command_table_and_usage_errors(tmp_path, capsys):
    p = _write(
        tmp_path, "date,return\n" + "\n".join(f"2024-02-{i + 1:02d},{x}" for i, x in enumerate(VECTOR))
    )
    assert run(str(p), trials=5) == 0
    out = capsys.readouterr().out
    for label in ("Sharpe", "Sortino", "max drawdown", "Calmar", "PSR (SR > 0)", "DSR (best of 5 trials)"):
        assert label in out
    assert main(["metrics", str(tmp_path / "missing.csv")]) == 2
    assert main(["metrics", str(_write(tmp_path, "date,value\n2024-01-01,0.1\n"))]) == 2
    assert main(["metrics", str(p), "--trials", "1"]) == 2
    assert "config error" in capsys.readouterr().err


def test_summary_dsr_uses_given_trial_variance():
    s = summarize(VECTOR, 252, trials=100, trials_sr_variance=0.5)
    assert s["dsr"]["trials_sr_variance_per_period"] == pytest.approx(0.5 / 252)
    assert "given" in s["dsr"]["variance_source"]
