"""Parameter sweeps: grid parsing and validation, cells on a process pool, heatmap, DSR of the best cell."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.backtest.runner import BacktestConfig
from engine.backtest.sweep import _best, cells, parse_grid, plot_heatmap, run_sweep
from engine.backtest.validation import deflated_sharpe_ratio
from engine.cli import main
from engine.config import ConfigError, Settings

SAMPLE = (
    Path(__file__).resolve().parents[2] / "shared/sample-data/hftbacktest_raw_ws/usdm/btcusdt_20240808.gz"
)


def test_grid_cells_are_the_product_in_the_order_given():
    grid = parse_grid(["paper.latency_ms=10,100", "paper.queue_model=riskaverse,log2"], Settings())
    assert grid == [("paper", "latency_ms", [10, 100]), ("paper", "queue_model", ["riskaverse", "log2"])]
    assert [[v for _, _, v in c] for c in cells(grid)] == [
        [10, "riskaverse"],
        [10, "log2"],
        [100, "riskaverse"],
        [100, "log2"],
    ]


@pytest.mark.parametrize(
    "spec, message",
    [
        ("paper.latency_ms", "section.field=v1"),
        ("paper.nope=1,2", "no setting paper.nope"),
        ("nosection.x=1", "no setting"),
        ("paper.latency_ms=10,-5", "paper.latency_ms = -5"),
        ("paper.queue_model=fifo", "paper.queue_model = 'fifo'"),
    ],
)
def test_bad_grids_are_one_line_config_errors(spec, message):
    with pytest.raises(ConfigError) as err:
        parse_grid([spec], Settings())
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_best_cell_is_deflated_by_the_number_and_spread_of_the_cells():
    def cell(sr: float, latency: int) -> dict:
        return {
            "params": {"paper.latency_ms": latency},
            "sharpe": sr * 365**0.5,
            "sharpe_per_period": sr,
            "skew": -0.2,
            "kurtosis": 4.0,
            "n": 250,
        }

    results = [
        cell(0.02, 1),
        cell(0.11, 2),
        cell(0.05, 3),
        cell(-0.01, 4),
        {"params": {}, "sharpe": None, "sharpe_per_period": None},
    ]
    best = _best(results)
    assert best["params"] == {"paper.latency_ms": 2} and best["trials"] == 4
    var = float(np.var([0.02, 0.11, 0.05, -0.01], ddof=1))
    dsr, sr0 = deflated_sharpe_ratio(0.11, 250, -0.2, 4.0, 4, var)
    assert best["dsr"] == pytest.approx(dsr) and best["sr0_per_period"] == pytest.approx(sr0)
    assert 0 < best["dsr"] < 1 and sr0 > 0  # more cells tried: the best must clear SR0 > 0, not 0


@pytest.mark.skipif(not SAMPLE.exists(), reason="../shared/sample-data is absent")
def test_sweep_runs_every_cell_on_a_pool_and_draws_the_heatmap(tmp_path, monkeypatch):
    monkeypatch.setenv("LIQDESK_CACHE_DIR", str(tmp_path / "cache"))
    cfg = BacktestConfig("maker-probe", feed=f"binance:{SAMPLE}", symbols=["BTCUSDT"], duration_s=90.0)
    grid = parse_grid(["paper.latency_ms=10,500"], Settings())
    out = run_sweep(Settings(), cfg, grid, jobs=2, progress=False)
    fast, slow = out["cells"]
    assert fast["params"] == {"paper.latency_ms": 10} and slow["params"] == {"paper.latency_ms": 500}
    assert fast["fills"] > 0 and slow["fills"] > 0 and fast["fills"] != slow["fills"]
    assert out["best"] is None  # a 90 s capture has fewer than three daily returns: no Sharpe to pick by
    plot_heatmap(out, tmp_path / "h.png")
    assert (tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG"


def test_sweep_command_reports_a_bad_grid_in_one_line(capsys):
    assert main(["sweep", "--strategy", "maker-probe", "--grid", "paper.latency_ms=abc"]) == 2
    assert capsys.readouterr().err.startswith("config error: --grid")


def test_backtest_grid_report_holds_the_heatmap_and_the_best_cells_report(tmp_path, capsys):
    """`backtest --grid ... --report DIR`: sweep.json, heatmap.png and the best cell's own report, whose
    summary is that cell's run (same net PnL and fills as the sweep found)."""
    import json

    out = tmp_path / "report"
    config = tmp_path / "sparse.toml"  # a thinner market keeps three simulated days cheap
    config.write_text("[synthetic]\nbook_interval_s = 10\nticker_interval_s = 10\nbook_levels = 5\n")
    argv = ["backtest", "--strategy", "cascade", "--symbols", "BTCUSDT", "--seed", "3", "--duration", "259200",
            "--fast-forward", "--grid", "paper.latency_ms=10,500", "--jobs", "1", "--report", str(out),
            "--config", str(config)]
    assert main(argv) == 0
    sweep = json.loads((out / "sweep.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    best = sweep["best"]
    assert best is not None and best["trials"] == 2 and 0.0 <= best["dsr"] <= 1.0
    cell = next(c for c in sweep["cells"] if c["params"] == best["params"])
    assert summary["fill_model"]["latency_ms"] == best["params"]["paper.latency_ms"]
    assert (summary["net_pnl"], summary["fills"]) == (cell["net_pnl"], cell["fills"])
    assert summary["fills"] > 0
    for png in ("heatmap.png", "equity.png", "markouts.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert (out / "trades.csv").read_text().count("\n") == summary["closed_trades"] + 1
    assert "best cell {'paper.latency_ms'" in capsys.readouterr().out


def test_bar_strategies_are_not_swept(capsys):
    assert main(["backtest", "--strategy", "lta", "--grid", "paper.latency_ms=10,100"]) == 2
    assert "runs on bars" in capsys.readouterr().err
