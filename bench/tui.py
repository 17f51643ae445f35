"""The console under load: key-to-screen latency, CPU use and the event rate the engine keeps up with.

    python -m bench.tui [--rates 5000,10000,20000] [--seconds 30] [--presses 100] [--no-store] [--json PATH]

For each rate, the real console (`LiqdeskApp`: every pane, the cascade strategy, risk,
approval, paper exchange and the SQLite store) runs in a child process on a pseudo-terminal
at 120x40, as over SSH. Its feed is a paced synthetic load of exactly RATE events/s
(trades, book deltas, tickers and 5 % liquidations over five symbols) at speed 1. The
parent reads every byte the console writes (as a terminal would) and presses `h`
(halt/resume) every `--seconds / --presses` seconds. Key-to-screen latency is the time
from writing the key to the PTY until the status bar's new text (HALTED / TRADING) has
arrived on the terminal side. CPU is the child's user+system time over the measured
window, in % of one core. The child reports how far its simulated clock fell behind
the wall clock (0 = keeping up) and the events it dispatched.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import pty
import random
import re
import select
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from engine.events import NS, BookDelta, BookSnapshot, Liquidation, Ticker, Trade

SYMBOLS = {"BTCUSDT": 97_250.0, "ETHUSDT": 3_420.5, "SOLUSDT": 201.35, "XRPUSDT": 2.4512,
           "DOGEUSDT": 0.38215}
START_NS = 1_736_121_600 * NS  # 2025-01-06 00:00 UTC
ANSI = re.compile(rb"\x1b\[[0-9;?<>=]*[A-Za-z]|\x1b[()][0-9A-Za-z]|\x1b[=>]")
MARKERS = {True: b"HALTED", False: b"TRADING"}


class LoadFeed:
    """Exactly `rate` events/s of simulated time, deterministic (seeded), endless."""

    name = "load"
    live = False

    def __init__(self, rate: float, seed: int = 1):
        self.rate = rate
        self.rng = random.Random(seed)

    def events(self) -> Iterator:
        rng = self.rng
        mids = dict(SYMBOLS)
        step_ns = NS / self.rate
        for sym, mid in mids.items():
            spread = mid * 0.0001
            yield BookSnapshot(START_NS, sym, [(mid - spread * (i + 1), 1.0 + i) for i in range(20)],
                               [(mid + spread * (i + 1), 1.0 + i) for i in range(20)])
        syms = list(mids)
        i = 0
        while True:
            i += 1
            ts = START_NS + int(i * step_ns)
            sym = syms[i % len(syms)]
            mid = mids[sym] = mids[sym] * (1.0 + rng.gauss(0.0, 0.00002))
            kind = i % 20
            if kind == 0:  # 5 %: the tape's load; notionals mostly under the P95 seeds
                side = "long" if rng.random() < 0.5 else "short"
                yield Liquidation(ts, sym, side, mid, rng.lognormvariate(0.0, 1.0) * 2_000.0 / mid)
            elif kind < 5:
                spread = mid * 0.0001
                yield BookDelta(ts, sym, [(mid - spread, rng.uniform(0.5, 5.0))],
                                [(mid + spread, rng.uniform(0.5, 5.0))])
            elif kind == 5:
                yield Ticker(ts, sym, mark=mid)
            else:
                side = "buy" if rng.random() < 0.5 else "sell"
                yield Trade(ts, sym, side, mid, rng.uniform(0.001, 2.0) * 1_000 / mid)


# -- the child: the console under load --------------------------------------------------------
def child(rate: float, result_path: str, db: str, services: bool) -> None:
    import tui.app
    from engine.config import Settings
    from engine.runtime import RunOptions, build_engine
    from tui.app import LiqdeskApp

    if not services:  # attribution only: the console without the store and the control socket
        async def no_services(*_args, **_kwargs) -> list:
            return []
        tui.app.start_services = no_services

    class LoadedConsole(LiqdeskApp):
        lag_s: list[float] = []
        window: list[tuple[float, int]] = []  # (wall, events) at the first and the latest sample

        def on_ready(self) -> None:
            self.origin: tuple[float, int] | None = None
            self.set_interval(0.25, self.sample_lag)

        def sample_lag(self) -> None:
            eng = self.engine
            if eng.stats.events < 100 or self.stopping:
                return
            now = time.monotonic()
            if self.origin is None:
                self.origin = (now, eng.clock.now())
                self.window[:] = [(now, eng.stats.events)] * 2
                return
            self.lag_s.append(now - self.origin[0] - (eng.clock.now() - self.origin[1]) / NS)
            self.window[1] = (now, eng.stats.events)

    settings = Settings()
    settings.engine.log_file = ""
    opts = RunOptions(speed=1.0, db=db)
    engine, _ = build_engine(settings, opts)
    app = LoadedConsole(engine, [LoadFeed(rate)], settings=settings, opts=opts, freeze_gc=True)
    app.run()
    (w0, e0), (w1, e1) = LoadedConsole.window or [(0.0, 0), (1.0, 0)]
    Path(result_path).write_text(json.dumps({
        "events": e1 - e0, "wall_s": w1 - w0, "lag_s": LoadedConsole.lag_s,
        "liquidations": engine.stats.liquidations, "orders": len(engine.orders)}))


# -- the parent: a terminal that presses keys ---------------------------------------------------
def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Terminal:
    def __init__(self, fd: int):
        self.fd = fd
        self.bytes = 0
        self.tail = b""

    def read(self, timeout: float) -> bytes:
        """New text (escape sequences removed) written by the console within `timeout`."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return b""
        try:
            data = os.read(self.fd, 1 << 16)
        except OSError:
            return b""
        self.bytes += len(data)
        return ANSI.sub(b"", data)

    def wait_for(self, marker: bytes, timeout: float) -> float | None:
        """Seconds until `marker` shows up in the output, or None."""
        t0 = time.perf_counter()
        seen = b""
        while time.perf_counter() - t0 < timeout:
            seen = (seen + self.read(0.005))[-4096:]
            if marker in seen:
                return time.perf_counter() - t0
        return None

    def drain(self, seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            self.read(0.01)


def measure(rate: float, seconds: float, presses: int, services: bool = True) -> dict:
    work = tempfile.mkdtemp(prefix="liqdesk-bench-tui-")
    result = os.path.join(work, "result.json")
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(TERM="xterm-256color", COLORTERM="truecolor")
        os.execv(sys.executable, [sys.executable, "-m", "bench.tui", "--child", str(rate), result,
                                  os.path.join(work, "bench.db"), "store" if services else "none"])
    import fcntl
    import struct
    import termios
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    term = Terminal(fd)
    if term.wait_for(b"Liquidation tape", 60.0) is None:
        os.kill(pid, signal.SIGKILL)
        raise RuntimeError("the console did not start")
    term.drain(3.0)  # warm-up: the load is flowing
    latencies: list[float] = []
    missed = 0
    halted = False
    interval = seconds / presses
    bytes0, cpu0, t0 = term.bytes, cpu_seconds(pid), time.perf_counter()
    for _ in range(presses):
        tick = time.perf_counter()
        halted = not halted
        os.write(fd, b"h")
        lat = term.wait_for(MARKERS[halted], 2.0)
        if lat is None:
            missed += 1
        else:
            latencies.append(lat)
        term.drain(max(0.0, interval - (time.perf_counter() - tick)))
    wall = time.perf_counter() - t0
    cpu = cpu_seconds(pid) - cpu0
    out_bytes = term.bytes - bytes0
    os.kill(pid, signal.SIGTERM)  # the console's clean stop
    while not os.waitpid(pid, os.WNOHANG)[0]:
        term.read(0.05)
    os.close(fd)
    child_result = json.loads(Path(result).read_text())
    lags = child_result["lag_s"]
    ms = sorted(x * 1000 for x in latencies)
    return {
        "rate_target": rate,
        "store": services,
        "events_per_s": round(child_result["events"] / child_result["wall_s"], 0),
        "lag_end_s": round(lags[-1], 3) if lags else None,
        "lag_max_s": round(max(lags), 3) if lags else None,
        "key_to_screen_ms": {"p50": round(statistics.median(ms), 1) if ms else None,
                             "p99": round(ms[math.ceil(0.99 * len(ms)) - 1], 1) if ms else None,  # nearest rank
                             "max": round(ms[-1], 1) if ms else None, "n": len(ms), "missed": missed},
        "cpu_pct_of_one_core": round(100.0 * cpu / wall, 1),
        "terminal_kb_per_s": round(out_bytes / wall / 1024, 1),
        "liquidations": child_result["liquidations"],
        "orders": child_result["orders"],
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5] == "store")
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rates", default="5000,10000,20000")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--presses", type=int, default=100)
    ap.add_argument("--no-store", action="store_true", help="attribution: run without the store")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    runs = [measure(float(r), args.seconds, args.presses, not args.no_store) for r in args.rates.split(",")]
    report = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                         f"Python {platform.python_version()}", "load_average_1m": os.getloadavg()[0],
              "runs": runs}
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
