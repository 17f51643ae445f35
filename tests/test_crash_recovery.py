"""SIGKILL a headless paper run at random points, 20 times on one database, and check after each
restart that nothing committed was lost or duplicated, that the database checks clean, and that
the run continued from the restored state (clock, counters, positions, orders, cooldowns, halt).

Each run is a separate process, forked from the test process with the engine already imported
(a fresh interpreter would spend ~1 s importing per kill), running exactly what
`liqdesk run --headless` runs, and killed with SIGKILL. bench/store.py does 200 kills.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import re
import signal
import sqlite3
import sys
import time
from pathlib import Path

import orjson
import pytest

from engine import cli
from engine.control import ControlUnavailable, request
from engine.history import check_db
from engine.store import OPEN_STATUSES, open_readonly

KILLS = 20
SEED = 20_250_106
TERMINAL = {"filled", "cancelled", "rejected"}
RESTORED = re.compile(r"restored state from the checkpoint at (\S+ \S+) UTC: (\d+) open positions?.*?; "
                      r"(\d+) working orders?(?:; (\d+) orders? placed after the checkpoint marked cancelled)?; "
                      r"(\d+) cooldowns?; halt (off|on \((.*?)\));")


def _run_cli(argv: list[str], out_path: str, cwd: str) -> None:  # pragma: no cover - runs in the child
    os.chdir(cwd)
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = sys.stderr = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os._exit(cli.main(argv))


def start_run(tmp: Path, db: Path, out: Path) -> multiprocessing.Process:
    argv = ["run", "--headless", "--seed", "5", "--speed", "max", "--duration", "2000000", "--db", str(db)]
    p = multiprocessing.get_context("fork").Process(target=_run_cli, args=(argv, str(out), str(tmp)))
    p.start()
    return p


def wait_for(pred, timeout: float = 15.0, every: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(every)
    return False


def read_db(db: Path) -> dict:
    """What the last committed batch says: the checkpoint, and every order and fill."""
    conn = open_readonly(db)
    try:
        state = {r[0]: orjson.loads(r[1]) for r in conn.execute("SELECT component, state FROM engine_state")}
        risk = conn.execute("SELECT halted, halt_reason, state FROM risk_state").fetchone()
        orders = {r[0]: r[1:] for r in conn.execute(
            "SELECT id, ts, symbol, side, qty, price, purpose, status FROM orders")}
        fills = conn.execute("SELECT fill_id, order_id, ts, symbol, side, price, qty, fee, liquidity "
                             "FROM fills ORDER BY seq").fetchall()
        report = check_db(conn)
    finally:
        conn.close()
    eng = state.get("engine", {})
    clock = eng.get("clock_ns", 0)
    working = {o["id"] for o in eng.get("open_orders", [])}
    return {
        "clock": clock,
        "events": eng.get("stats", {}).get("events", 0),
        "positions": {s: p["qty"] for s, p in state.get("portfolio", {}).get("positions", {}).items() if p["qty"]},
        "working": working,
        "orphans": {oid for oid, o in orders.items() if o[-1] in OPEN_STATUSES and oid not in working},
        "cooldowns": sum(1 for t in orjson.loads(risk[2])["cooldowns"].values() if t > clock) if risk else 0,
        "halt": (bool(risk[0]), risk[1]) if risk else (False, ""),
        "orders": orders,
        "fills": fills,
        "problems": report.problems,
    }


def check_nothing_lost(before: dict, after: dict) -> None:
    """Committed rows survive unchanged; orders only move forward; nothing appears twice."""
    assert after["fills"][: len(before["fills"])] == before["fills"]
    keys = [f[:2] for f in after["fills"]]
    assert len(keys) == len(set(keys)), "a fill was recorded twice"
    contents = [f[2:] for f in after["fills"]]
    assert len(contents) == len(set(contents)), "the same execution was recorded under two ids"
    for oid, row in before["orders"].items():
        assert oid in after["orders"], f"order {oid} was lost"
        assert after["orders"][oid][:-1] == row[:-1], f"order {oid} changed its terms"
        if row[-1] in TERMINAL:
            assert after["orders"][oid][-1] == row[-1], f"finished order {oid} changed status"


def check_restored(line: str, before: dict) -> None:
    """The restart says it restored exactly what the database held."""
    m = RESTORED.search(line)
    assert m, line
    when, positions, working, orphans, cooldowns, halt, reason = m.groups()
    assert when == time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(before["clock"] // 1_000_000_000))
    assert int(positions) == len(before["positions"])
    assert int(working) == len(before["working"])
    assert int(orphans or 0) == len(before["orphans"])
    assert int(cooldowns) == before["cooldowns"]
    assert (halt != "off", reason or "") == before["halt"]


@pytest.mark.skipif(sys.platform != "linux", reason="SIGKILL and fork: Linux only")
def test_sigkill_at_random_points_loses_nothing_and_the_run_continues(tmp_path):
    rng = random.Random(SEED)
    db = tmp_path / "k.db"
    sock = f"{db}.sock"
    before: dict | None = None
    restarts_checked = 0
    seen_halt_restored = seen_positions_restored = False
    for i in range(KILLS):
        out = tmp_path / f"out{i}.txt"
        p = start_run(tmp_path, db, out)
        if i % 5 == 4:  # some kills land during start-up and restore
            time.sleep(rng.uniform(0.0, 0.3))
        else:
            assert wait_for(lambda: "control socket" in out.read_text()), out.read_text()[-500:]
            time.sleep(rng.uniform(0.05, 1.2))
            if i in (8, 14):  # halt (kept across the next restarts), later resume
                cmd = "halt" if i == 8 else "resume"
                try:
                    request(sock, cmd, "crash test" if cmd == "halt" else None, timeout=10)
                except ControlUnavailable as exc:
                    pytest.fail(f"ctl {cmd}: {exc}")
                assert wait_for(lambda: read_db(db)["halt"][0] == (cmd == "halt"), timeout=10)
        os.kill(p.pid, signal.SIGKILL)
        p.join()
        assert p.exitcode == -signal.SIGKILL
        text = out.read_text()
        assert "Traceback" not in text, text[-2000:]

        after = read_db(db) if db.exists() and db.stat().st_size else None
        if after is None:
            continue  # killed before the store was created
        assert after["problems"] == [], after["problems"]
        if before is not None:
            check_nothing_lost(before, after)
            restored = [ln for ln in text.splitlines() if "restored state" in ln]
            if restored and before["clock"]:
                check_restored(restored[0], before)
                restarts_checked += 1
                seen_halt_restored |= before["halt"][0]
                seen_positions_restored |= bool(before["positions"])
            # the run continued from the checkpoint: time and counters never go back
            assert after["clock"] >= before["clock"] and after["events"] >= before["events"]
        before = after

    assert restarts_checked >= KILLS // 2
    assert seen_halt_restored
    assert before is not None and len(before["fills"]) > 0 and before["events"] > 0
    assert cli.main(["db", "check", "--db", str(db)]) == 0
    print(f"{restarts_checked} restarts checked; {len(before['fills'])} fills, {len(before['orders'])} orders; "
          f"positions restored at least once: {seen_positions_restored}")


def test_a_run_killed_and_restarted_on_the_command_line_says_what_it_restored(tmp_path):
    """The real command, end to end, once: kill -9, then `liqdesk db check` and a restart."""
    import subprocess
    db = tmp_path / "cli.db"
    cmd = [sys.executable, "-m", "engine.cli", "run", "--headless", "--seed", "5", "--speed", "max",
           "--duration", "2000000", "--db", str(db)]
    with open(tmp_path / "o1.txt", "w") as f:
        p = subprocess.Popen(cmd, cwd=tmp_path, stdout=f, stderr=subprocess.STDOUT)
        assert wait_for(lambda: "control socket" in (tmp_path / "o1.txt").read_text(), timeout=30)
        time.sleep(0.5)
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
