"""`liqdesk ctl`: the control socket in process, and against a running headless engine."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cascade_helpers import World

from engine.config import ConfigError
from engine.control import ControlServer, check_command, request, run_ctl, socket_path

ETH = "ETHUSDT"


async def ctl(path: str, cmd: str, arg: str | None = None) -> dict:
    return await asyncio.to_thread(request, path, cmd, arg)


@contextlib.asynccontextmanager
async def serving(engine, path: str):
    server = ControlServer(engine, path)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def sock(tmp_path: Path) -> str:
    return str(tmp_path / "e.db.sock")


async def test_status_halt_resume_over_the_socket(sock):
    w = World(approval={"mode": "manual"})
    w.around(ETH, 2500.0)
    w.cascade(ETH, "long")
    async with serving(w.engine, sock):
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
        st = await ctl(sock, "status")
        assert st["ok"] and "RUNNING" in st["text"] and "pending approvals (1):" in st["text"]
        assert "#1 ETHUSDT buy 1.2 @ 2496.25" in st["text"]
        r = await ctl(sock, "halt", "maintenance")
        assert r["ok"] and r["text"] == "HALTED: no new entries (maintenance)" and w.engine.halted
        st = await ctl(sock, "status")
        assert "HALTED (maintenance)" in st["text"] and st["status"]["halted"]
        assert "pending approvals: none" in st["text"]  # halting rejected the queue
        r = await ctl(sock, "resume")
        assert r["ok"] and not w.engine.halted and "RUNNING" in (await ctl(sock, "status"))["text"]
    assert not os.path.exists(sock)


async def test_approvals_cancel_all_pause_and_flatten_over_the_socket(sock):
    w = World(symbols=[ETH, "SOLUSDT"], approval={"mode": "manual"})
    w.around(ETH, 2500.0)
    w.around("SOLUSDT", 180.0)
    w.cascade(ETH, "long")
    w.cascade("SOLUSDT", "long")
    async with serving(w.engine, sock):
        r = await ctl(sock, "approve", "1")
        assert r["ok"] and r["text"].startswith("approved #1: order ")
        assert not (await ctl(sock, "approve", "1"))["ok"]  # already taken
        r = await ctl(sock, "reject", "2")
        assert r["ok"] and r["text"] == "rejected #2" and w.approval.pending() == []
        w.around("SOLUSDT", 180.0, dt=61)  # a new cascade window
        w.cascade("SOLUSDT", "long")
        assert (await ctl(sock, "approve_all"))["text"] == "approved and sent 1 entries"
        st = await ctl(sock, "status")
        assert "orders (2):" in st["text"]
        assert (await ctl(sock, "cancel_all"))["text"] == "cancel sent for 2 working orders"
        r = await ctl(sock, "pause", "cascade")
        assert r["text"] == "strategy cascade paused" and w.strategy.paused
        assert not (await ctl(sock, "pause", "nosuch"))["ok"]
        w.wait(0.3)  # the cancels are confirmed
        r = await ctl(sock, "flatten")
        assert r["text"].startswith("flat: the broker confirms") and w.engine.flat_confirmed
        assert "HALTED (flatten: flat, confirmed by the broker)" in (await ctl(sock, "status"))["text"]


async def test_bad_clients_never_hurt_the_engine(sock):
    w = World()
    async with serving(w.engine, sock):
        def raw(data: bytes) -> bytes:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(5)
                s.connect(sock)
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
                return s.recv(65536)
        assert b"bad request" in await asyncio.to_thread(raw, b"not json\n")
        assert b"bad request" in await asyncio.to_thread(raw, b'{"cmd": "rm -rf"}\n')
        assert b"bad request" in await asyncio.to_thread(raw, b'["status"]\n')
        await asyncio.to_thread(raw, b"x" * 100_000)  # too long: dropped
        assert (await ctl(sock, "status"))["ok"]


async def test_a_second_engine_on_the_same_db_is_refused_and_stale_sockets_are_replaced(sock):
    w = World()
    first = ControlServer(w.engine, sock)
    await first.start()
    try:
        with pytest.raises(ConfigError, match="another engine is running"):
            await ControlServer(World().engine, sock).start()
    finally:
        await first.stop()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(sock)  # a socket file nobody listens on, as a killed run leaves behind
    stale.close()
    again = ControlServer(w.engine, sock)
    await again.start()
    assert (await ctl(sock, "status"))["ok"]
    await again.stop()


def test_usage_errors_are_one_line_config_errors():
    with pytest.raises(ConfigError, match="allowed: status, halt"):
        check_command("explode", None)
    with pytest.raises(ConfigError, match="approve needs ID"):
        check_command("approve", None)
    with pytest.raises(ConfigError, match="takes no argument"):
        check_command("resume", "now")


def test_client_without_an_engine_says_so(tmp_path):
    out: list[str] = []
    w = World()
    rc = run_ctl(w.settings, str(tmp_path / "none.db"), "status", None, echo=out.append)
    assert rc == 1 and out[0].startswith("ctl: no running engine: control socket")
    assert "none.db.sock" in out[0]
    assert socket_path(w.settings, "x.db") == "x.db.sock"


SYNTHETIC = importlib.util.find_spec("engine.feeds.synthetic") is not None


def liqdesk(*args: str, cwd: Path, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.skipif(not SYNTHETIC, reason="needs the synthetic market (engine/feeds/synthetic.py)")
def test_ctl_against_a_running_headless_engine(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "run", "--headless", "--seed", "3", "--speed", "20",
         "--duration", "100000", "--db", "run.db"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sock = tmp_path / "run.db.sock"
    try:
        deadline = time.monotonic() + 60
        while not sock.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert sock.exists(), f"no control socket; engine said: {proc.stderr.read() if proc.poll() else ''}"
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
        st = liqdesk("ctl", "status", "--db", "run.db", cwd=tmp_path)
        assert st.returncode == 0, st.stdout + st.stderr
        assert "RUNNING" in st.stdout and "positions" in st.stdout and "pending approvals" in st.stdout
        h = liqdesk("ctl", "--db", "run.db", "halt", cwd=tmp_path)  # options before or after the command
        assert h.returncode == 0 and "HALTED" in h.stdout
        st2 = liqdesk("ctl", "status", "--db", "run.db", "--json", cwd=tmp_path)
        assert json.loads(st2.stdout)["halted"] is True
        r = liqdesk("ctl", "resume", "--db", "run.db", cwd=tmp_path)
        assert r.returncode == 0 and "RESUMED" in r.stdout
        f = liqdesk("ctl", "flatten", "--db", "run.db", cwd=tmp_path)
        assert f.returncode == 0 and ("flat:" in f.stdout or "flattening:" in f.stdout)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    for line in ("HALT: no new entries (ctl)", "RESUME: entries allowed", "FLATTEN requested"):
        assert line in out
    assert not sock.exists()  # removed on a clean stop
