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
    # jump mode: the quiet 10-minute chunk is reduced to its liquidations
    assert ff["enabled"] is True and ff["mode"] == "jump" and ff["chunks_thinned"] >= 1


def test_markouts_are_the_mid_after_each_fill_and_are_plotted(tmp_path):
    """markouts.csv: for every fill and horizon, 1e4 * s * (mid - price) / price with the mid of the last
    book snapshot at or before fill time + horizon (checked against the feed's own snapshots)."""
    import numpy as np

    from engine.events import BookSnapshot
    from engine.feeds.synthetic import SyntheticMarket, parse_utc

    result = run_backtest(Settings(), probe(), progress=False)
    write_report(result, tmp_path)
    with open(tmp_path / "markouts.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(result.fills) > 0
    s = Settings(engine={"symbols": ["BTCUSDT"]})
    books = [(ev.ts, (ev.bids[0][0] + ev.asks[0][0]) / 2)
             for ev in _until(SyntheticMarket(s, 3, ["BTCUSDT"], parse_utc("2025-03-01"), kinds={BookSnapshot}),
                              result.end_ns)]
    times = np.array([t for t, _ in books])
    checked = 0
    for fill, row in zip(result.fills, rows, strict=True):
        for h in (1, 5, 15, 60):
            due = fill.ts + h * 1_000_000_000
            if due >= times[-1]:  # after the last event: not observed
                assert row[f"{h}s"] == ""
                continue
            mid = books[int(np.searchsorted(times, due, "right")) - 1][1]
            sign = 1 if fill.side == "buy" else -1
            assert float(row[f"{h}s"]) == pytest.approx(sign * (mid - fill.price) / fill.price * 1e4, abs=1e-3)
            checked += 1
    assert checked > 10
    assert (tmp_path / "markouts.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _until(market, end_ns):
    for ev in market.events():
        if ev.ts > end_ns:
            return
        yield ev
