"""A dropped SSH session: the console runs on a pseudo-terminal whose master side is then
closed (the kernel hangs up the terminal and sends SIGHUP). The app must stop as cleanly as
`q`: the engine stopped, the clean-stop line in the log, the store's file consistent, exit
code 0, and no traceback."""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("liqdesk") is None or sys.platform != "linux",
                                reason="needs the installed liqdesk command on Linux")

STARTED = b"Liquidation tape"


def read_until(fd: int, marker: bytes, timeout_s: float) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout_s
    while marker not in out and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                out += os.read(fd, 65536)
            except OSError:
                break
    return out


def test_sighup_stops_like_quit(tmp_path: Path):
    config = tmp_path / "config.toml"
    config.write_text(f'[engine]\nlog_file = "{tmp_path / "liqdesk.log"}"\n', encoding="utf-8")
    pid, fd = pty.fork()
    if pid == 0:  # the child: the console on the pseudo-terminal, as over SSH
        os.chdir(tmp_path)
        os.environ.update(TERM="xterm-256color", COLUMNS="120", LINES="40")
        os.execvp("liqdesk", ["liqdesk", "--config", str(config), "--db", str(tmp_path / "t.db")])
    try:
        shown = read_until(fd, STARTED, 60.0)
        assert STARTED in shown, shown[-500:]
        time.sleep(1.0)
    finally:
        os.close(fd)  # the SSH connection drops: the terminal is hung up, the child gets SIGHUP
    deadline = time.monotonic() + 30.0
    status = None
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, 9)
        pytest.fail("the console did not stop within 30 s of SIGHUP")
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    log = (tmp_path / "liqdesk.log").read_text(encoding="utf-8")
    assert "console stopping (SIGHUP)" in log
    assert "Traceback" not in log
    # the state was saved: the store's own integrity check passes on the file it left
    check = subprocess.run(["liqdesk", "db", "check", "--db", str(tmp_path / "t.db")], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
