"""Kill a headless paper run with SIGKILL at random points, again and again on one database, and
check after each kill and restart that nothing committed was lost or duplicated, that the
database checks clean, and that each restart continued from the state the database held.

Shared by tests/test_crash_recovery.py (20 kills) and bench/store.py (200 kills). Each run is
a separate process forked from the caller with the engine already imported (a fresh
interpreter would spend ~1 s importing per kill), running exactly what `liqdesk run
--headless` runs.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import re
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from engine import cli
from engine.control import request
from engine.history import check_db
from engine.store import OPEN_STATUSES, open_readonly

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
    p = multiprocessing.get_context("fork").Process(target=_run_cli, args=(argv, str(out), str(tmp)), daemon=True)
    p.start()
    return p


def text_of(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:  # the child has not opened it yet
        return ""


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


# Wide take profit and stop loss keep positions open until their 30-minute timeout, and loss
# limits are out of the way, so that kills often land on open positions, resting orders and
# cooldowns.
CONFIG = """
[cascade]
take_profit_pct = 3.0
stop_loss_pct = 3.0
[risk]
daily_loss_limit_pct = 100
weekly_loss_limit_pct = 100
"""




@dataclass
class KillReport:
    kills: int = 0
    restarts_checked: int = 0
    halt_restored: bool = False
    positions_restored: bool = False
    fills: int = 0
    orders: int = 0
    events: int = 0
    sim_seconds: float = 0.0


def kill_loop(workdir: Path, kills: int, seed: int, max_run_s: float = 0.9) -> KillReport:
    """Start, kill at a random point, check; `kills` times. Raises AssertionError on any violation.

    Every fifth kill lands during start-up or restore. Partway through, `liqdesk ctl halt`
    is sent before a kill (the halt must survive the next restarts), later `resume`.
    """
    rng = random.Random(seed)
    (workdir / "config.toml").write_text(CONFIG)
    db = workdir / "k.db"
    sock = f"{db}.sock"
    halt_at, resume_at = int(kills * 0.4), int(kills * 0.7)
    report = KillReport()
    before: dict | None = None
    first_clock = 0
    for i in range(kills):
        out = workdir / f"out{i}.txt"
        p = start_run(workdir, db, out)
        try:
            if i % 5 == 4:
                time.sleep(rng.uniform(0.0, 0.3))
            else:
                assert wait_for(lambda out=out: "control socket" in text_of(out)), text_of(out)[-500:]
                time.sleep(rng.uniform(0.05, max_run_s))
                if i in (halt_at, resume_at):
                    halt = i == halt_at
                    request(sock, "halt" if halt else "resume", "crash test" if halt else None, timeout=10)
                    assert wait_for(lambda want=halt: read_db(db)["halt"][0] == want, timeout=10)
        finally:
            os.kill(p.pid, signal.SIGKILL)
            p.join()
        report.kills += 1
        assert p.exitcode == -signal.SIGKILL
        text = text_of(out)
        out.unlink()
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
                report.restarts_checked += 1
                report.halt_restored |= before["halt"][0]
                report.positions_restored |= bool(before["positions"])
            # the run continued from the checkpoint: time and counters never go back
            assert after["clock"] >= before["clock"] and after["events"] >= before["events"]
        first_clock = first_clock or after["clock"]
        before = after
    if before is not None:
        report.fills, report.orders, report.events = len(before["fills"]), len(before["orders"]), before["events"]
        report.sim_seconds = (before["clock"] - first_clock) / 1e9
    return report
