"""`liqdesk backtest`: the runner, its report files, determinism and option errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from engine.backtest.runner import BacktestConfig, parse_fees, parse_queue, run_backtest, write_report
from engine.cli import main
from engine.config import ConfigError, Settings

SAMPLE = (
    Path(__file__).resolve().parents[2] / "shared/sample-data/hftbacktest_raw_ws/usdm/btcusdt_20240808.gz"
)


def probe(**kw) -> BacktestConfig:
    base = {
        "strategy": "maker-probe",
        "feed": "synthetic",
        "symbols": ["BTCUSDT"],
        "seed": 3,
        "start": "2025-03-01",
        "duration_s": 120.0,
    }
    return BacktestConfig(**(base | kw))


def test_same_inputs_give_a_byte_identical_summary_and_the_report_files(tmp_path):
    dirs = []
    for i in (1, 2):
        result = run_backtest(Settings(), probe(), progress=False)
        dirs.append(tmp_path / f"rep{i}")
        write_report(result, dirs[-1])
    a, b = ((d / "summary.json").read_bytes() for d in dirs)
    assert a == b
    summary = json.loads(a)
    assert summary["fills"] > 0 and summary["orders"] >= summary["fills"] // 2
    assert summary["fill_model"]["queue_model"] == "riskaverse"
    assert summary["start"].startswith("2025-03-01T00:00:00")
    assert summary["metrics"]["execution"]["maker_fills"] == summary["fills"]  # PostOnly quotes only
    with open(dirs[0] / "fills.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == summary["fills"]
    with open(dirs[0] / "equity.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= 2 and float(rows[-1]["equity"]) == pytest.approx(summary["metrics"]["final_equity"])
    assert (dirs[0] / "equity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (dirs[0] / "trades.csv").read_text().startswith("symbol,side,qty")


def test_the_command_line_overrides_reach_the_paper_exchange(tmp_path):
    out = tmp_path / "b.json"
    rc = main(
        [
            "backtest",
            "--strategy",
            "maker-probe",
            "--symbols",
            "BTCUSDT",
            "--seed",
            "3",
            "--from",
            "2025-03-01",
            "--duration",
            "60",
            "--latency",
            "5",
            "--queue",
            "power3:3",
            "--fees",
            "-1,4",
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    summary = json.loads(out.read_text())
    assert summary["fast_forward"] == {"enabled": False, "events_skipped": 0}
    fm = summary["fill_model"]
    assert fm == {
        "latency_ms": 5.0,
        "queue_model": "power3",
        "queue_power": 3.0,
        "maker_fee_bps": -1.0,
        "taker_fee_bps": 4.0,
    }


@pytest.mark.parametrize(
    "args, message",
    [
        (["--queue", "fifo"], "--queue"),
        (["--queue", "power:0"], "power"),
        (["--fees", "2"], "--fees"),
        (["--latency", "-3"], "--latency"),
        (["--feed", "csv:x"], "--feed"),
        (["--feed", "tardis:/nonexistent/dir"], "no file or directory"),
        (["--from", "yesterday"], "--from"),
        (["--from", "2025-03-02", "--to", "2025-03-01"], "--to"),
    ],
)
def test_bad_options_are_one_line_config_errors(args, message, capsys):
    assert main(["backtest", "--strategy", "maker-probe", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("config error") and message in err and "\n" not in err


def test_unknown_strategy_is_a_config_error(capsys):
    assert main(["backtest", "--strategy", "nope", "--duration", "1"]) == 2
    assert "unknown strategy 'nope'" in capsys.readouterr().err


def test_option_parsers():
    assert parse_queue("riskaverse") == ("riskaverse", None)
    assert parse_queue("power2:1.5") == ("power2", 1.5)
    assert parse_queue("log2") == ("log2", None)
    with pytest.raises(ConfigError):
        parse_queue("log:2")
    assert parse_fees("-0.5, 5.5") == (-0.5, 5.5)


@pytest.mark.skipif(not SAMPLE.exists(), reason="../shared/sample-data is absent")
def test_maker_probe_fills_on_the_real_binance_capture(tmp_path, monkeypatch):
    monkeypatch.setenv("LIQDESK_CACHE_DIR", str(tmp_path / "cache"))
    cfg = BacktestConfig(
        "maker-probe", feed=f"binance:{SAMPLE}", symbols=["BTCUSDT"], queue="riskaverse", duration_s=60.0
    )
    s = run_backtest(Settings(), cfg, progress=False).summary
    assert s["fills"] > 0 and s["metrics"]["execution"]["taker_fills"] == 0
    assert 0 < s["fill_rate"] < 1


def test_fast_forward_flag_reaches_the_runner(tmp_path):
    out = tmp_path / "ff.json"
    args = ["backtest", "--strategy", "cascade", "--symbols", "BTCUSDT", "--seed", "3", "--duration", "600"]
    assert main([*args, "--fast-forward", "--json", str(out)]) == 0
    ff = json.loads(out.read_text())["fast_forward"]
    assert ff["enabled"] is True and ff["events_skipped"] > 0
