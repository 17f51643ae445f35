"""Headless runs: byte-identical output for identical inputs, and a clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

KEYS = "events liquidations cascades orders fills closed_trades wins losses timeouts net_pnl_usd fees_usd".split()


def run_headless(cwd: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "engine.cli", "run", "--headless", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_same_seed_gives_byte_identical_summary_and_log(tmp_path):
    outs = []
    for i in (1, 2):
        d = tmp_path / f"r{i}"
        d.mkdir()
        p = run_headless(d, "--seed", "11", "--speed", "max", "--duration", "3600",
                         "--summary-json", "s.json", "--db", "run.db")
        assert p.returncode == 0, p.stderr
        outs.append(((d / "s.json").read_bytes(), p.stdout, (d / "liqdesk.log").read_text()))
    assert outs[0] == outs[1]
    summary = json.loads(outs[0][0])
    for k in KEYS:
        assert k in summary
        assert isinstance(summary[k], float if k.endswith("_usd") else int)
    assert set(summary["per_symbol"]) == {"BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT"}
    for v in summary["per_symbol"].values():
        assert set(KEYS) <= set(v)
    assert summary["liquidations"] > 0 and summary["events"] > summary["liquidations"]
    assert sum(v["events"] for v in summary["per_symbol"].values()) == summary["events"]
    # every output line is HH:MM:SS >> message in feed time
    lines = outs[0][1].splitlines()
    assert lines and all(len(ln) > 12 and ln[2] == ":" and ln[8:12] == " >> " for ln in lines)


def test_different_seed_gives_a_different_run(tmp_path):
    sums = []
    for seed in ("11", "12"):
        d = tmp_path / seed
        d.mkdir()
        p = run_headless(d, "--seed", seed, "--speed", "max", "--duration", "1800", "--summary-json", "s.json",
                         "--db", "run.db")
        assert p.returncode == 0, p.stderr
        sums.append(json.loads((d / "s.json").read_text()))
    assert sums[0]["events"] != sums[1]["events"] or sums[0]["liquidations"] != sums[1]["liquidations"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_and_writes_the_summary(tmp_path, sig):
    cmd = [sys.executable, "-m", "engine.cli", "run", "--headless", "--seed", "3", "--speed", "50",
           "--duration", "1000000", "--summary-json", "s.json", "--db", "run.db"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (tmp_path / "liqdesk.log").exists():
            time.sleep(0.1)
        time.sleep(1.0)
        assert proc.poll() is None, proc.stderr.read()
        os.kill(proc.pid, sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "run ended" in out
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["events"] > 0
