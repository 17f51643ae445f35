"""SIGKILL a headless paper run at random points, 20 times on one database: after each restart
nothing committed is lost or duplicated, positions equal the sum of their fills, `liqdesk db
check` passes, and the run continues from the restored state (clock, counters, positions,
working orders, cooldowns, halt). The harness is tests/store_crash.py; bench/store.py runs it
with 200 kills.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from store_crash import kill_loop, text_of, wait_for

from engine import cli

KILLS = 20


def has_checkpoint(db) -> bool:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM engine_state").fetchone()[0] > 0
    except sqlite3.Error:  # not created yet
        return False
    finally:
        conn.close()


@pytest.mark.skipif(sys.platform != "linux", reason="SIGKILL and fork: Linux only")
def test_sigkill_at_random_points_loses_nothing_and_the_run_continues(tmp_path):
    report = kill_loop(tmp_path, KILLS, seed=20_250_106)
    assert report.kills == KILLS
    assert report.restarts_checked >= KILLS // 2
    assert report.halt_restored
    assert report.positions_restored, "no kill landed on an open position: the test proved less than it should"
    assert report.fills > 0 and report.events > 0
    assert cli.main(["db", "check", "--db", str(tmp_path / "k.db")]) == 0


def test_a_run_killed_and_restarted_on_the_command_line_says_what_it_restored(tmp_path):
    """The real command, end to end, once: kill -9, then `liqdesk db check` and a restart."""
    db = tmp_path / "cli.db"
    cmd = [sys.executable, "-m", "engine.cli", "run", "--headless", "--seed", "5", "--speed", "max",
           "--duration", "2000000", "--db", str(db)]
    with open(tmp_path / "o1.txt", "w") as f:
        p = subprocess.Popen(cmd, cwd=tmp_path, stdout=f, stderr=subprocess.STDOUT)
        try:
            assert wait_for(lambda: "control socket" in text_of(tmp_path / "o1.txt"), timeout=30)
            assert wait_for(lambda: has_checkpoint(db), timeout=30)
            time.sleep(0.2)
        finally:
            p.send_signal(signal.SIGKILL)
            p.wait()
    chk = subprocess.run([sys.executable, "-m", "engine.cli", "db", "check", "--db", str(db)], capture_output=True,
                         text=True, timeout=60)
    assert chk.returncode == 0 and ": ok" in chk.stdout, chk.stdout + chk.stderr
    again = subprocess.run([*cmd[:-4], "--duration", "60", "--db", str(db)], cwd=tmp_path, capture_output=True,
                           text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "restored state from the checkpoint" in again.stdout
    conn = sqlite3.connect(db)
    runs = conn.execute("SELECT stop_reason FROM runs ORDER BY id").fetchall()
    assert runs == [(None,), ("clean",)]  # the killed run never said it stopped
