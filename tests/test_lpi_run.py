"""`liqdesk run --headless --strategies lpi` trades on the synthetic market, and its summary counts
the orders, fills and closed trades (3 symbols, liquidations 4x as frequent, one simulated hour)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CONFIG = """
[engine]
symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
log_file = ""
[synthetic]
activity = 4.0
"""


def test_headless_lpi_run_trades_and_counts(tmp_path: Path):
    (tmp_path / "c.toml").write_text(CONFIG)
    cmd = [sys.executable, "-m", "engine.cli", "run", "--headless", "--config", "c.toml",
           "--strategies", "lpi", "--seed", "4", "--speed", "max", "--duration", "3600",
           "--db", "run.db", "--summary-json", "s.json"]
    p = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stderr[-2000:]
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["orders"] >= 1 and s["fills"] >= 1 and s["closed_trades"] >= 1
    assert s["orders"] == sum(v["orders"] for v in s["per_symbol"].values())
    assert "pressure exhausted (FORCED)" in p.stdout
    assert "Traceback" not in p.stderr
