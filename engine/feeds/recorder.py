"""`liqdesk record`: every raw public Bybit message as a `<recv_ns> <json>` line.

Files are gzip-compressed and rotated each UTC hour: DIR/bybit-public-YYYYMMDD-HH.gz.
The writer flushes a gzip sync point every `flush_s`, so a killed recorder
loses at most that much and its file stays readable up to the last flush; a
restart within the hour appends a new gzip member to the same file.

The recorder runs the live feed itself (same endpoints from `[bybit]`, same
heartbeat, reconnects, gap resubscribes), so a capture holds the fresh
snapshots a replay needs after every resync.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import signal
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from ..config import Settings
from ..events import NS
from .bybit import BybitPublicFeed, endpoints

HOUR_NS = 3600 * NS


@dataclass
class RecordStats:
    messages: int = 0
    bytes: int = 0
    files: list[Path] = field(default_factory=list)


class HourlyGzipWriter:
    """Appends `<recv_ns> <raw>` lines to one gzip file per UTC hour."""

    def __init__(self, out_dir: str | Path, prefix: str = "bybit-public", flush_s: float = 1.0):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.flush_ns = int(flush_s * NS)
        self.stats = RecordStats()
        self._file: IO[bytes] | None = None
        self._hour = -1
        self._last_flush = 0

    def path_for(self, recv_ns: int) -> Path:
        t = datetime.fromtimestamp(recv_ns // NS, UTC)
        return self.out_dir / f"{self.prefix}-{t:%Y%m%d-%H}.gz"

    def write(self, recv_ns: int, raw: str | bytes) -> None:
        hour = recv_ns // HOUR_NS
        if hour != self._hour:
            self._open(recv_ns, hour)
        data = raw.encode() if isinstance(raw, str) else raw
        line = b"%d %s\n" % (recv_ns, data.replace(b"\n", b" "))
        assert self._file is not None
        self._file.write(line)
        self.stats.messages += 1
        self.stats.bytes += len(line)
        if recv_ns - self._last_flush >= self.flush_ns:
            self.flush(recv_ns)

    def _open(self, recv_ns: int, hour: int) -> None:
        self.close()
        path = self.path_for(recv_ns)
        self._file = gzip.open(path, "ab")  # noqa: SIM115 - kept open across writes, closed in close()
        self._hour = hour
        if path not in self.stats.files:
            self.stats.files.append(path)

    def flush(self, recv_ns: int = 0) -> None:
        if self._file is not None:
            self._file.flush(zlib.Z_SYNC_FLUSH)  # type: ignore[call-arg]  # GzipFile.flush takes a mode
            self._last_flush = recv_ns

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            self._hour = -1


async def record(settings: Settings, symbols: list[str], out_dir: str | Path, *, mode: str = "paper",
                 duration_s: float | None = None, log=None, stop: asyncio.Event | None = None) -> RecordStats:
    """Record until `stop` is set, `duration_s` passes, or SIGINT/SIGTERM."""
    writer = HourlyGzipWriter(out_dir)
    url = endpoints(settings.bybit, mode).public_ws
    feed = BybitPublicFeed(settings, symbols, url, on_raw=writer.write, log_sink=log)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(feed.run(lambda ev: None))
    try:
        await asyncio.wait_for(stop.wait(), timeout=duration_s)
    except TimeoutError:
        pass
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        writer.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)
    return writer.stats


def record_main(settings: Settings, symbols_text: str | None, out_dir: str, mode: str,
                duration_s: float | None) -> int:
    """`liqdesk record`: returns the exit code; config problems raise ConfigError."""
    import sys

    from ..config import ConfigError
    from ..runtime import MODES
    text = symbols_text or ",".join(settings.engine.symbols)
    symbols = [s.strip().upper() for s in text.split(",") if s.strip()]
    if not symbols or any(not s.isalnum() for s in symbols):
        raise ConfigError(f"config error: --symbols = {symbols_text!r}: comma-separated symbols, "
                          "e.g. BTCUSDT,ETHUSDT")
    if mode not in MODES:
        raise ConfigError(f"config error: --mode = {mode!r}: allowed: {', '.join(MODES)}")
    if duration_s is not None and duration_s <= 0:
        raise ConfigError(f"config error: --duration = {duration_s}: must be > 0 seconds")

    def log(message: str, level: str) -> None:
        print(f"{datetime.now(UTC):%H:%M:%S} >> {message}", file=sys.stderr, flush=True)

    url = endpoints(settings.bybit, mode).public_ws
    log(f"recording {','.join(symbols)} from {url} into {out_dir}", "info")
    stats = asyncio.run(record(settings, symbols, out_dir, mode=mode, duration_s=duration_s, log=log))
    log(f"recorded {stats.messages} messages ({stats.bytes} bytes) into "
        f"{', '.join(str(p) for p in stats.files) or 'no file'}", "info")
    return 0
