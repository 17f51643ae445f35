"""LTA (issue 9): metrics, bars, every setting as a scenario, the bar backtest, headless and the study."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.backtest.bar_runner import intrabar_marks, run_bar_backtest, series_metrics
from engine.backtest.lta_study import real_series, run_lta_study, spearman, t_stat
from engine.backtest.runner import BacktestConfig
from engine.bars import BarBuilder, bars_from_trades, resample
from engine.cli import main
from engine.config import ConfigError, LtaConfig, Settings, load_config
from engine.events import NS, Bar, Trade
from engine.feeds.synthetic import SyntheticMarket, parse_utc
from engine.feeds.synthetic_bars import synthetic_bars
from engine.lta_metrics import ldpm, ldps
from engine.strategies.lta import STYLES, LtaCore, position_size, round_size

T0 = parse_utc("2025-01-01")
H = 3600 * NS
BULL, FLAT, BEAR = 1.0, 0.0, -1.0  # LDPM values: clear evidence up / none / down (aggressive: enter 0.25)


def core(**kw) -> LtaCore:
    start = kw.pop("start_ns", 0)
    capital = kw.pop("capital", 10_000.0)
    return LtaCore(LtaConfig(**{"style": "aggressive", **kw}), "BTCUSDT", capital, 0.0, start_ns=start)


def bar(i: int, c: float = 100.0, o: float | None = None, h: float | None = None, lo: float | None = None,
        v: float = 10.0) -> Bar:
    o = c if o is None else o
    return Bar(T0 + (i + 1) * H, "BTCUSDT", 3600, o, max(o, c) if h is None else h, min(o, c) if lo is None else lo,
               c, v, v * c)


def step(k: LtaCore, i: int, m: float, c: float = 100.0, f: float = 0.0, q: float = 0.0, **kw):
    return k.on_bar(bar(i, c, **kw), (m, q, f))


def kinds(orders) -> list[tuple[str, str, str]]:
    return [(o.kind, o.side, o.reason) for o in orders]


@pytest.fixture(scope="module")
def syn_bars() -> list[Bar]:
    """Four days of BTCUSDT 15-minute bars from the synthetic market's processes (seed 8)."""
    return list(synthetic_bars(Settings(), 8, "BTCUSDT", 900, T0, T0 + 4 * 86_400 * NS))


# -- metrics ---------------------------------------------------------------------------------------

def test_ldpm_sign_follows_the_move_per_dollar_and_ldps_drops_when_range_comes_cheap():
    n = 60
    rng = np.random.default_rng(1)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    v = np.full(n, 50.0)
    up = c.copy()
    up[-4:] = c[-5] * np.exp(np.cumsum([0.01] * 4))  # a rise on thin volume
    vu = v.copy()
    vu[-4:] = 5.0
    assert ldpm(up, vu, None, 3, 40)[-1] > 1.0
    assert ldpm(up[0] ** 2 / up, vu, None, 3, 40)[-1] < -1.0  # the mirror image falls
    h, lo = c * 1.001, c * 0.999
    h2, lo2 = h.copy(), lo.copy()
    h2[-3:], lo2[-3:] = c[-3:] * 1.02, c[-3:] * 0.98  # wide bars on the same volume: fragile
    assert ldps(h, lo, c, v, None, 3, 40)[-1] == pytest.approx(0.0, abs=0.01)  # steady: around its median
    assert ldps(h2, lo2, c, v, None, 3, 40)[-1] < -2.0


def test_metrics_have_no_look_ahead_and_the_core_computes_the_vectorized_values(syn_bars):
    bars = syn_bars[:200]
    k = LtaCore(LtaConfig(style="balanced"), "BTCUSDT", 10_000.0)
    vec = series_metrics(k, bars)
    for i, b in enumerate(bars):
        k.on_bar(b)
        got = (k.last["ldpm"], k.last["ldps"], k.last["ams_ldps"])
        assert np.allclose(got, vec[i], equal_nan=True, rtol=1e-9, atol=1e-12), i
    changed = bars[:150] + [Bar(b.ts, b.symbol, b.interval_s, b.open, b.high * 1.05, b.low, b.close * 1.04,
                                b.volume * 9, b.turnover * 9) for b in bars[150:]]
    vec2 = series_metrics(k, changed)
    assert np.allclose(vec[:150], vec2[:150], equal_nan=True)


# -- bars ---------------------------------------------------------------------------------------------

def test_bar_builder_grid_flush_gaps_and_resample():
    b = BarBuilder("X", 60)
    out = []
    for ts, px, q in [(5, 10, 1), (30, 12, 2), (59, 11, 1), (61, 9, 1), (185, 10, 3)]:
        out += b.add(ts * NS, px, q)
    assert [(x.ts // NS, x.open, x.high, x.low, x.close, x.volume, x.turnover) for x in out] == [
        (60, 10, 12, 10, 11, 4, 10 + 24 + 11), (120, 9, 9, 9, 9, 1, 9)]  # no trade in 120..180: no bar
    assert b.flush(239 * NS) == [] and b.flush(240 * NS)[0].close == 10
    g = BarBuilder("X", 60, fill_gaps=True)
    g.add(5 * NS, 10, 1)
    assert [(x.ts // NS, x.volume) for x in g.flush(200 * NS)] == [(60, 1), (120, 0), (180, 0)]
    with pytest.raises(ValueError):
        BarBuilder("X", 0)
    rng = np.random.default_rng(2)
    trades = [Trade(int(t * NS), "X", "buy", float(p), 1.0) for t, p in
              zip(np.sort(rng.uniform(0, 3000, 400)), 100 + rng.normal(0, 1, 400), strict=True)]
    direct = list(bars_from_trades(trades, 300))
    coarse = list(resample(bars_from_trades(trades, 60), 300))
    assert [(x.ts, x.open, x.high, x.low, x.close) for x in direct] == [(x.ts, x.open, x.high, x.low, x.close)
                                                                       for x in coarse]
    assert np.allclose([x.turnover for x in direct], [x.turnover for x in coarse])


def test_synthetic_bars_are_the_tick_markets_bars():
    s = Settings()
    end = T0 + 1800 * NS
    m = SyntheticMarket(s, 8, ["BTCUSDT"], start_ns=T0, kinds={Trade})
    ticks = []
    for ev in m.events():
        if ev.ts >= end:
            break
        ticks.append(ev)
    tb = list(bars_from_trades(ticks, 300))
    sb = list(synthetic_bars(s, 8, "BTCUSDT", 300, T0, end))
    assert [b.ts for b in tb] == [b.ts for b in sb] and len(sb) == 6
    for a, b in zip(tb, sb, strict=True):
        for x, y in ((a.open, b.open), (a.high, b.high), (a.low, b.low), (a.close, b.close)):
            assert abs(x / y - 1) < 5e-4  # mid vs trade prices: within a few ticks
        assert abs(a.turnover / b.turnover - 1) < 0.03  # same draws; qty rounding only


# -- assessment styles --------------------------------------------------------------------------------

def test_aggressive_changes_on_one_bar_diamond_needs_four_and_holds_its_view():
    a = core()
    assert kinds(step(a, 0, BULL)) == [("enter", "long", "signal")]
    assert kinds(step(a, 1, FLAT)) == [("exit", "long", "signal")]  # evidence gone: the view goes
    d = core(style="diamond")
    for i in range(3):
        assert step(d, i, BULL) == []
    assert kinds(step(d, 3, BULL)) == [("enter", "long", "signal")]
    for i in range(4, 14):
        assert step(d, i, FLAT) == []  # no evidence against it: held
    for i in range(14, 17):
        assert step(d, i, BEAR) == []
    assert kinds(step(d, 17, BEAR)) == [("exit", "long", "signal")]
    assert kinds(step(d, 18, BEAR)) == [("enter", "short", "signal")]


def test_styles_order_by_number_of_trades_on_the_same_data(syn_bars):
    counts = {}
    for style in STYLES:
        s = Settings(lta=LtaConfig(style=style))
        res = run_bar_backtest(s, BacktestConfig("lta", interval="15m"), {"BTCUSDT": syn_bars})
        counts[style] = res["closed_trades"]
    seq = [counts[s] for s in ("aggressive", "balanced", "conservative", "diamond")]
    assert seq == sorted(seq, reverse=True) and len(set(seq)) == 4, counts


# -- AMS ------------------------------------------------------------------------------------------------

def test_ams_early_exit_prevented_entry_and_deactivation():
    k = core(ams=True, ams_activate=0.4, ams_deactivate=0.1)
    assert kinds(step(k, 0, BULL)) == [("enter", "long", "signal")]
    assert kinds(step(k, 1, BULL, f=-0.5)) == [("exit", "long", "ams")]
    assert any(ln.endswith(">> AM Protocol activated ... exiting position ...") for ln in k.lines)
    assert step(k, 2, BULL, f=-0.2) == []  # still active: -0.2 is not above -0.1
    assert k.lines[-1].endswith(">> AM protocol prevented entry ... waiting ...")
    assert kinds(step(k, 3, BULL, f=0.0)) == [("enter", "long", "signal")]
    assert any("AM Protocol deactivated" in ln for ln in k.lines)
    assert any(re.search(r">> Early Exit \(AMS\): Exit Order Created for qty: [\d.]+, profit:", ln) for ln in k.lines)


def test_ams_is_off_by_default():
    assert LtaConfig().ams is False
    k = core()
    step(k, 0, BULL)
    assert step(k, 1, BULL, f=-9.0) == [] and k.pos.side == "long"


# -- Impose Wait ---------------------------------------------------------------------------------------

def test_wait_mode_delays_entries_and_exits():
    k = core(impose_wait_bars=2, wait_mode="wait")
    assert step(k, 0, BULL) == [] and step(k, 1, BULL) == []
    assert kinds(step(k, 2, BULL)) == [("enter", "long", "signal")]
    assert step(k, 3, FLAT) == [] and step(k, 4, FLAT) == []
    assert kinds(step(k, 5, FLAT)) == [("exit", "long", "signal")]


def test_exit_wait_mode_delays_only_entries():
    k = core(impose_wait_bars=2, wait_mode="exit-wait")
    assert step(k, 0, BULL) == [] and step(k, 1, BULL) == []
    assert kinds(step(k, 2, BULL)) == [("enter", "long", "signal")]
    assert kinds(step(k, 3, FLAT)) == [("exit", "long", "signal")]


def test_wait_resets_when_conditions_change():
    k = core(impose_wait_bars=2)
    assert step(k, 0, BULL) == []
    assert step(k, 1, FLAT) == []  # the order-in-waiting is removed
    assert k.pending is None and "order-in-waiting removed" in k.lines[-1]
    assert step(k, 2, BULL) == [] and step(k, 3, BULL) == []  # counting again from bar 2
    assert kinds(step(k, 4, BULL)) == [("enter", "long", "signal")]
    k2 = core(impose_wait_bars=2)
    step(k2, 0, BULL)
    assert step(k2, 1, BEAR) == [] and "count reset" in k2.lines[-2]
    assert step(k2, 2, BEAR) == []
    assert kinds(step(k2, 3, BEAR)) == [("enter", "short", "signal")]


def test_direct_long_to_short_switch_has_a_built_in_one_bar_wait():
    k = core()
    step(k, 0, BULL)
    assert kinds(step(k, 1, BEAR)) == [("exit", "long", "signal")]  # no short at the same close
    assert kinds(step(k, 2, BEAR)) == [("enter", "short", "signal")]
    w = core(impose_wait_bars=1, wait_mode="exit-wait")
    step(w, 0, BULL)
    assert kinds(step(w, 1, BULL)) == [("enter", "long", "signal")]
    assert kinds(step(w, 2, BEAR)) == [("exit", "long", "signal")]
    assert step(w, 3, BEAR) == []  # imposed 1 bar on top of the built-in one: two closes after the exit
    assert kinds(step(w, 4, BEAR)) == [("enter", "short", "signal")]


# -- direction, sizing -----------------------------------------------------------------------------------

def test_trade_direction_allowance():
    lo = core(direction="long")
    assert step(lo, 0, BEAR) == []
    assert kinds(step(lo, 1, BULL)) == [("enter", "long", "signal")]
    assert kinds(step(lo, 2, BEAR)) == [("exit", "long", "signal")]
    assert step(lo, 3, BEAR) == [] and lo.pos.side == "flat"
    sh = core(direction="short")
    assert step(sh, 0, BULL) == []
    assert kinds(step(sh, 1, BEAR)) == [("enter", "short", "signal")]


def test_fixed_share_ignores_the_balance_and_fixed_percentage_uses_the_allotment_and_cap():
    fs = core(sizing="fixed-share", max_size=3, capital=10.0)  # 3 x 100 > 10: not checked
    assert [o.qty for o in step(fs, 0, BULL)] == [3.0]
    fp = LtaConfig(portfolio_allotment_pct=50)
    assert position_size(fp, 10_000.0, 100.0) == 50.0
    assert position_size(LtaConfig(portfolio_allotment_pct=50, max_size=20), 10_000.0, 100.0) == 20.0
    assert LtaConfig().portfolio_allotment_pct == 100.0
    k = core(capital=10_000.0)
    assert [o.qty for o in step(k, 0, BULL, c=100.0)] == [100.0]
    with pytest.raises(ValueError, match="max_size"):
        LtaConfig(sizing="fixed-share")


def test_fractional_rounding_at_the_0_00005_edge():
    assert round_size(0.00005, True) == 0.0001
    assert round_size(0.0000499, True) == 0.0
    assert round_size(1.23456, True) == 1.2346
    assert round_size(2.7, False) == 2.0
    k = core(capital=0.00499)  # 100% of 0.00499 at 100 = 0.0000499 units
    assert step(k, 0, BULL) == [] and "size rounds to 0" in k.lines[-1]
    k2 = core(capital=0.005)  # 0.00005 units -> 0.0001
    assert [o.qty for o in step(k2, 0, BULL)] == [0.0001]


def test_internal_maximum_of_100000_units():
    assert position_size(LtaConfig(), 1e12, 1.0) == 100_000.0
    assert position_size(LtaConfig(sizing="fixed-share", max_size=100_000), 0.0, 1.0) == 100_000.0
    with pytest.raises(ValueError):
        LtaConfig(max_size=100_001)


# -- stops ----------------------------------------------------------------------------------------------

def test_trailing_stop_arms_at_the_activation_and_follows_the_best_price():
    k = core(trailing_stop_pct=2, trailing_activation_pct=5)
    step(k, 0, BULL, c=100.0)
    assert step(k, 1, BULL, c=101.9, o=100, h=104, lo=99) == []  # +4% at best: not armed (104 x 0.98 > 101.9)
    out = step(k, 2, BULL, c=107.0, o=102, h=110, lo=101)  # armed at 110: trail 107.8, the close is below
    assert kinds(out) == [("exit", "long", "trail")] and out[0].price == pytest.approx(107.8)
    s = core(trailing_stop_pct=2, trailing_activation_pct=5)
    step(s, 0, BEAR, c=100.0)
    out = step(s, 1, BEAR, c=93.0, o=99, h=99.5, lo=90)  # short: best 90, trail 91.8
    assert kinds(out) == [("exit", "short", "trail")] and out[0].price == pytest.approx(91.8)


def test_stops_take_the_adverse_extreme_first_and_fill_gaps_at_the_open():
    k = core(take_profit_pct=5, stop_loss_pct=2)
    step(k, 0, BULL)
    out = step(k, 1, BULL, c=101, o=100, h=106, lo=97)  # TP and SL both inside the bar: SL first
    assert kinds(out) == [("exit", "long", "sl")] and out[0].price == pytest.approx(98.0)
    g = core(take_profit_pct=5, stop_loss_pct=2)
    step(g, 0, BULL)
    out = step(g, 1, BULL, c=96, o=95, h=97, lo=94)
    assert out[0].reason == "sl" and out[0].price == 95.0
    t = core(take_profit_pct=5, stop_loss_pct=2)
    step(t, 0, BULL)
    out = step(t, 1, BULL, c=104, o=100, h=106, lo=99)
    assert kinds(out) == [("exit", "long", "tp")] and out[0].price == pytest.approx(105.0)
    assert step(t, 2, BULL) == []  # no re-entry into the side a stop closed until the outlook changes
    step(t, 3, FLAT)
    assert kinds(step(t, 4, BULL)) == [("enter", "long", "signal")]


def test_stops_override_wait_and_ams():
    k = core(impose_wait_bars=3, stop_loss_pct=2)
    for i in range(3):
        step(k, i, BULL)
    assert kinds(step(k, 3, BULL)) == [("enter", "long", "signal")]
    assert step(k, 4, FLAT) == [] and k.pending is not None  # an exit is waiting ...
    out = step(k, 5, FLAT, c=99, o=100, lo=97)  # ... the stop is not
    assert kinds(out) == [("exit", "long", "sl")] and k.pending is None
    a = core(ams=True, stop_loss_pct=2)
    step(a, 0, BULL)
    out = step(a, 1, BULL, f=-1.0, c=99, o=100, lo=97)  # AMS activates at this close; the stop came first
    assert kinds(out) == [("exit", "long", "sl")]
    assert a.ams_active and any("Stop Loss: Exit Order Created" in ln for ln in a.lines)


# -- start date, text output ------------------------------------------------------------------------------

def test_backtest_start_date_only_warms_up_before_it(syn_bars):
    k = core(start_ns=bar(100).ts)
    for i in range(100):
        assert step(k, i, BULL) == []
    assert kinds(step(k, 100, BULL)) == [("enter", "long", "signal")]
    s = Settings(lta=LtaConfig(style="aggressive", start_date="2025-01-03"))
    res = run_bar_backtest(s, BacktestConfig("lta", interval="15m"), {"BTCUSDT": syn_bars})
    after = sum(b.ts >= parse_utc("2025-01-03") for b in syn_bars)
    checks = [ln for ln in res["lines"]["BTCUSDT"] if "Checking conditions" in ln]
    assert len(checks) == after < len(syn_bars)  # nothing is assessed before the start date
    full = run_bar_backtest(Settings(lta=LtaConfig(style="aggressive")), BacktestConfig("lta", interval="15m"),
                            {"BTCUSDT": syn_bars})
    assert 0 < res["closed_trades"] < full["closed_trades"]


def test_text_output_in_the_manuals_style_and_the_banner_setting():
    k = core(sizing="fixed-share", max_size=2)
    assert k.lines[0].startswith("LTA on BTCUSDT: style Aggressive")
    step(k, 0, BULL, c=100.0)
    step(k, 1, FLAT, c=110.0)
    assert re.fullmatch(r"\d\d:00:00 >> Checking conditions \.\.\. outlook neutral \(LDPM \+0\.00, LDPS \+0\.00\)",
                        k.lines[-2])
    assert k.lines[-1].endswith(">> Exit Order Created for qty: 2, profit: 20.00 (10.00%)")
    assert core(blank_banner=True).lines == []


def test_config_errors_exit_2_with_one_line(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[lta]\ninterval = "30s"\n')
    with pytest.raises(ConfigError, match=r"^config error: lta.*1m \.\. 1d"):
        load_config(cfg)
    assert main(["backtest", "--strategy", "lta", "--interval", "2d"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("config error: --interval")


# -- backtest CLI ---------------------------------------------------------------------------------------

PERF_LABELS = ("Initial equity", "Net profit", "Trades L/S", "Closed trades", "Win rate", "Avg win", "Avg loss",
               "Max run-up", "Max drawdown", "Ret / max DD")


def _run_cli(args: list[str], capsys) -> str:
    assert main(args) == 0
    return capsys.readouterr().out


def test_backtest_synthetic_prints_the_shared_performance_table_and_writes_json(tmp_path, capsys):
    out = _run_cli(["backtest", "--strategy", "lta", "--feed", "synthetic", "--seed", "8", "--interval", "1h",
                    "--from", "2025-01-01", "--to", "2025-01-04", "--symbols", "BTCUSDT",
                    "--json", str(tmp_path / "b.json")], capsys)
    for label in PERF_LABELS:
        assert label in out
    d = json.loads((tmp_path / "b.json").read_text())
    assert d["bars"] == 72 and d["trades"] == d["closed_trades"] == d["performance"]["closed_trades"]
    p = d["performance"]
    assert p["long_trades"] + p["short_trades"] == d["closed_trades"]
    assert p["initial_equity"] == 10_000.0 and p["net_profit"] == pytest.approx(p["equity"] - 10_000.0)


def _write_ohlcv(path: Path, bars: list[Bar]) -> None:
    rows = ["timestamp,open,high,low,close,volume"]
    rows += [f"{(b.ts - b.interval_s * NS) // 1_000_000},{b.open},{b.high},{b.low},{b.close},{b.volume}" for b in bars]
    path.write_text("\n".join(rows) + "\n")


def test_backtest_on_a_generic_ohlcv_csv_and_binance_klines(tmp_path, capsys, syn_bars):
    csv = tmp_path / "ACME.csv"  # any market: an equity's daily-style file works the same way
    _write_ohlcv(csv, syn_bars)
    out = _run_cli(["backtest", "--strategy", "lta", "--feed", str(csv), "--interval", "15m",
                    "--json", str(tmp_path / "a.json")], capsys)
    assert "Max drawdown" in out
    a = json.loads((tmp_path / "a.json").read_text())
    assert a["symbols"] == ["ACME"] and a["bars"] == len(syn_bars) and a["trades"] > 0
    _run_cli(["backtest", "--strategy", "lta", "--feed", f"ohlcv:{csv}", "--interval", "1h",
              "--json", str(tmp_path / "h.json")], capsys)
    assert json.loads((tmp_path / "h.json").read_text())["bars"] == len(syn_bars) // 4  # resampled
    kd = tmp_path / "klines"
    kd.mkdir()
    header = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
              "taker_buy_quote_volume,ignore")
    rows = [header] + [f"{(b.ts - 900 * NS) // 10**6},{b.open},{b.high},{b.low},{b.close},{b.volume},"
                       f"{b.ts // 10**6 - 1},{b.turnover},10,0,0,0" for b in syn_bars]
    (kd / "BTCUSDT-15m-2025-01-01.csv").write_text("\n".join(rows) + "\n")
    _run_cli(["backtest", "--strategy", "lta", "--feed", f"binance:{kd}", "--interval", "15m", "--symbols",
              "BTCUSDT", "--json", str(tmp_path / "k.json")], capsys)
    k = json.loads((tmp_path / "k.json").read_text())
    assert k["bars"] == len(syn_bars) and k["trades"] > 0


def test_performance_pane_and_backtest_share_one_table():
    from engine.backtest.bar_runner import performance_table
    from engine.portfolio import Portfolio
    from tui.widgets.performance import performance_lines

    perf = Portfolio(1000.0).performance()
    t = performance_table(perf, "x")
    assert [c for c in t.columns[0].cells] == [label for label, _v, _p in performance_lines(perf)]


# -- live bars, headless --------------------------------------------------------------------------------

def test_headless_lta_trades_on_bars_built_live_from_the_synthetic_feed(tmp_path):
    (tmp_path / "c.toml").write_text('[engine]\nsymbols = ["BTCUSDT"]\nstrategies = ["lta"]\n'
                                     '[lta]\ninterval = "1m"\nstyle = "aggressive"\n'
                                     'portfolio_allotment_pct = 40.0\n')  # under the risk gate's 5K order cap
    p = subprocess.run([sys.executable, "-m", "engine.cli", "run", "--headless", "--config", "c.toml",
                        "--strategies", "lta", "--speed", "max", "--duration", "1800", "--seed", "3",
                        "--summary-json", "s.json", "--db", "run.db"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "LTA on BTCUSDT: style Aggressive" in p.stdout
    assert "Checking conditions ... outlook" in p.stdout and "Entry Order Created" in p.stdout
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["fills"] >= 2 and s["closed_trades"] >= 1
    import sqlite3

    con = sqlite3.connect(tmp_path / "run.db")
    tables = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
    logs = [t for t in tables if "log" in t]
    assert logs and any(con.execute(f"select count(*) from {t} where message like '%Entry Order Created%'")
                        .fetchone()[0] for t in logs)


# -- study -----------------------------------------------------------------------------------------------

def test_spearman_and_t_match_scipy():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(4)
    x = np.round(rng.normal(size=200), 1)  # ties
    y = x * 0.3 + rng.normal(size=200)
    assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
    assert t_stat(0.5, 27) == pytest.approx(0.5 * np.sqrt(25 / 0.75))


def test_study_reports_ic_and_t_on_synthetic_and_real_series(tmp_path, syn_bars, capsys):
    _write_ohlcv(tmp_path / "ACME.csv", syn_bars)
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    real, skipped = real_series(tmp_path, [1])
    assert list(real) == ["ACME.csv:ACME:klines"]
    assert any(s["series"] == "notes.csv" for s in skipped)
    s = Settings(engine={"symbols": ["BTCUSDT"]})
    res = run_lta_study(s, 8, 2 * 86_400.0, "15m", 4, str(tmp_path), [1])
    names = {r["series"] for r in res["results"]}
    assert names == {"synthetic:BTCUSDT:900s", "ACME.csv:ACME:klines"}
    r = next(r for r in res["results"] if r["series"].startswith("ACME") and r["metric"] == "LDPM"
             and r["horizon"] == 4)
    assert len(syn_bars) // 4 - 3 <= r["n"] < len(syn_bars) // 4 and np.isfinite(r["ic"]) and np.isfinite(r["t"])
    cfg = tmp_path / "c.toml"
    cfg.write_text('[engine]\nsymbols = ["BTCUSDT"]\n')
    out = _run_cli(["study", "lta", "--config", str(cfg), "--duration", "86400", "--interval", "15m",
                    "--data", str(tmp_path), "--json", str(tmp_path / "s.json")], capsys)
    assert "Spearman IC" in out and "LDPS_fast" in out
    assert json.loads((tmp_path / "s.json").read_text())["method"] == "spearman"


def test_strategy_state_survives_a_restart():
    from engine.strategies.lta import LtaStrategy

    s = Settings(engine={"symbols": ["BTCUSDT"]}, lta=LtaConfig(style="aggressive", interval="1m"))
    a = LtaStrategy(s, ["BTCUSDT"])
    k = a.cores["BTCUSDT"]
    for i in range(6):
        k.on_bar(bar(i, 100.0 + i), (BULL, 0.0, 0.0))
    a.builders["BTCUSDT"].add(T0 + 5 * NS, 101.0, 2.0)
    state = json.loads(json.dumps(a.snapshot()))
    b = LtaStrategy(s, ["BTCUSDT"])
    b.restore(state)
    kb = b.cores["BTCUSDT"]
    assert (kb.outlook, kb.pos, kb.cash, kb.bar_index) == (k.outlook, k.pos, k.cash, k.bar_index)
    assert b.builders["BTCUSDT"].snapshot() == a.builders["BTCUSDT"].snapshot()
    assert kinds(kb.on_bar(bar(6, 90.0), (BEAR, 0.0, 0.0))) == kinds(k.on_bar(bar(6, 90.0), (BEAR, 0.0, 0.0)))


async def test_console_shows_lta_gauges_positions_and_the_performance_pane():
    from engine.engine import Engine
    from engine.runtime import RunOptions, _execution, build_strategies
    from tui.app import LiqdeskApp
    from tui.screenshots import settle

    s = Settings(engine={"symbols": ["BTCUSDT"], "strategies": ["lta"]},
                 lta=LtaConfig(interval="1m", style="aggressive", portfolio_allotment_pct=40))
    eng = Engine(s, strategies=build_strategies(s, ["lta"]), mode="paper", **_execution(s, RunOptions()))
    eng.start()
    m = SyntheticMarket(s, 3, ["BTCUSDT"])
    for ev in m.events():
        if ev.ts > m.start_ns + 1200 * NS:
            break
        eng.dispatch(ev)
    assert eng.portfolio.closed
    app = LiqdeskApp(eng, None, settings=s)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        text = "\n".join(strip.text for strip in app.screen._compositor.render_strips())
    assert "LDPM" in text and "LDPS" in text
    for label in ("Initial equity", "Max run-up", "Max drawdown", "Ret / max DD"):
        assert label in text


def test_position_table_shows_the_max_profit_reached_and_the_part_given_back():
    """The core's open position through the console pane's cells (`position_cells`), and the bar
    backtest's printout of them: the high of 112 made +$24 (12%); at 103 only +$6 (3%) is left."""
    from rich.console import Console

    from engine.backtest.bar_runner import positions_table
    from tui.widgets.positions import POSITION_COLUMNS, position_cells

    k = core(sizing="fixed-share", max_size=2)
    assert k.position_view(100.0, T0) is None
    step(k, 0, BULL, c=100.0)
    step(k, 1, BULL, c=105.0, o=100, h=112, lo=99)
    step(k, 2, BULL, c=103.0, o=105, h=106, lo=102.5)
    v = k.position_view(103.0, bar(3).ts)
    assert (v.side, v.qty, v.entry, v.duration_s) == ("long", 2.0, 100.0, 3 * 3600.0)
    assert (v.max_profit, v.upnl) == pytest.approx((24.0, 6.0))
    cells = dict(zip([key for key, _ in POSITION_COLUMNS], position_cells(v, 1), strict=True))
    assert cells == {"symbol": ("BTCUSDT", None), "side": ("LONG", True), "age": ("3h00m", None),
                     "qty": ("2", None), "entry": ("100.0", None), "mark": ("103.0", None),
                     "chg": ("+3.00%", None), "max": ("$24.00", None), "max_pct": ("12.00%", None),
                     "upnl": ("+$6.00", True), "upnl_pct": ("+3.00%", True)}
    con = Console(width=80, record=True)
    con.print(positions_table([v], "open positions"))
    text = con.export_text()
    for label, value in (("Age", "3h00m"), ("Chg %", "+3.00%"), ("Max $", "$24.00"), ("Max %", "12.00%"),
                         ("uPnL $", "+$6.00"), ("uPnL %", "+3.00%")):
        assert re.search(rf"{re.escape(label)}\s+│\s+{re.escape(value)} │", text), (label, text)


def test_intrabar_marks_follow_the_path_the_position_lived_through():
    bar = Bar(ts=3600 * NS, symbol="BTCUSDT", interval_s=3600, open=100.0, high=110.0, low=95.0, close=104.0,
              volume=1.0)
    assert intrabar_marks(bar, 1, None) == [95.0, 110.0]  # long held through: adverse low, then the high
    assert intrabar_marks(bar, -1, None) == [110.0, 95.0]  # short held through: adverse high first
    assert intrabar_marks(bar, 1, 97.0) == [97.0]  # long stopped at 97 on the way down: never saw 95 or 110
    assert intrabar_marks(bar, 1, 108.0) == [95.0, 108.0]  # long took profit at 108 after the low
    assert intrabar_marks(bar, -1, 106.0) == [106.0]  # short stopped at 106 on the way up
