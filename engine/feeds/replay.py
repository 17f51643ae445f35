"""Replaying captures: `--feed replay:PATH` and `liqdesk inspect PATH`.

A capture is what `liqdesk record` writes: one `<recv_ns> <json>` line per raw
public message, gzip-compressed (plain text, .zip members and bare JSON lines,
such as Bybit's ob500 history files, are read too). PATH is a file or a
directory, whose files play in name order (the recorder's names sort by time).

Lines go through the live feed's parser and book sequencing, so a replay gives
the events the live feed gave: a book is used from a snapshot on, and after a
gap in `u` its deltas are dropped until the next snapshot (the live feed had
resubscribed at that point, so the capture holds a fresh snapshot).
Events come in capture order, which is the order the live engine saw them;
pacing (`--speed 1|N|max`) is the engine's job.

A bad line is counted, reported with its file and line number, and skipped.
"""

from __future__ import annotations

import gzip
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO, Any

import orjson

from ..events import EVENT_TYPE_NAMES, BookDelta, BookSnapshot
from .bybit_parse import BookSequencer, BybitParser, MalformedMessage, UnsupportedTopic

CAPTURE_SUFFIXES = (".gz", ".txt", ".jsonl", ".json", ".data", ".zip", ".log")


@dataclass(slots=True)
class LineError:
    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


def capture_files(path: str | Path) -> list[Path]:
    p = Path(path)
    if p.is_file():
        return [p]
    if p.is_dir():
        return sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith(".")
                      and f.suffix.lower() in CAPTURE_SUFFIXES)
    raise FileNotFoundError(str(p))


def _text_streams(path: Path) -> Iterator[tuple[Path, IO[bytes]]]:
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as zf:
            for name in sorted(zf.namelist()):
                if not name.endswith("/"):
                    with zf.open(name) as f:
                        yield path / name, f
    elif path.suffix.lower() == ".gz":
        with gzip.open(path, "rb") as f:
            yield path, f
    else:
        with open(path, "rb") as f:
            yield path, f


def capture_lines(path: str | Path) -> Iterator[tuple[Path, int, bytes] | LineError]:
    """(file, line number, line) for every non-empty line; a LineError where a file is cut short."""
    for file in capture_files(path):
        n = 0
        try:
            for name, stream in _text_streams(file):
                n = 0
                for n, line in enumerate(stream, 1):
                    line = line.strip()
                    if line:
                        yield name, n, line
        except (EOFError, OSError, zlib.error, zipfile.BadZipFile) as exc:  # e.g. a recorder killed mid-write
            yield LineError(file, n + 1, f"unreadable from here on: {type(exc).__name__}: {exc}")


def split_line(line: bytes) -> tuple[int, bytes]:
    """`<recv_ns> <json>` -> (recv_ns, json); a bare JSON line has recv_ns 0."""
    if line[:1] in (b"{", b"["):
        return 0, line
    head, sep, rest = line.partition(b" ")
    if not sep or not head.isdigit():
        raise MalformedMessage("expected '<recv_ns> <json>'")
    return int(head), rest


class CaptureReader:
    """Events of a capture, in capture order, with per-line error reporting."""

    def __init__(self, path: str | Path, *, sequence: bool = True,
                 on_error: Callable[[LineError], None] | None = None):
        self.path = Path(path)
        self.sequence = sequence
        self.on_error = on_error
        self.counters: dict[str, int] = dict.fromkeys(
            ("lines", "events", "malformed", "unsupported", "gaps", "dropped_deltas"), 0)

    def _error(self, err: LineError) -> None:
        self.counters["malformed"] += 1
        if self.on_error is not None:
            self.on_error(err)

    def events(self) -> Iterator[Any]:
        parser = BybitParser()
        seq = BookSequencer() if self.sequence else None
        c = self.counters
        for item in capture_lines(self.path):
            if isinstance(item, LineError):
                self._error(item)
                continue
            name, n, line = item
            c["lines"] += 1
            try:
                recv_ns, raw = split_line(line)
                evs = parser.parse_raw(raw, recv_ns)
            except MalformedMessage as exc:
                self._error(LineError(name, n, f"malformed: {exc}"))
                continue
            except UnsupportedTopic:
                c["unsupported"] += 1
                continue
            for ev in evs:
                t = type(ev)
                if seq is not None and (t is BookDelta or t is BookSnapshot):
                    verdict = seq.check(ev)
                    if verdict != BookSequencer.APPLY:
                        c["gaps"] += verdict == BookSequencer.GAP
                        c["dropped_deltas"] += verdict != BookSequencer.DUPLICATE
                        continue
                c["events"] += 1
                yield ev


class ReplayFeed:
    """Historical feed over a capture (engine Feed, `live = False`)."""

    name = "replay"
    live = False

    def __init__(self, path: str | Path, log: Callable[[str, str], None] | None = None,
                 max_reports: int = 20):
        files = capture_files(path)  # FileNotFoundError early, before the run starts
        if not files:
            raise FileNotFoundError(f"{path}: no capture files")
        self.path = Path(path)
        self._log = log
        self._reported = 0
        self.max_reports = max_reports
        self.reader = CaptureReader(path, on_error=self._report)
        self.emitted = 0
        self._skip = 0

    @property
    def counters(self) -> dict[str, int]:
        return self.reader.counters

    def attach(self, engine: Any) -> None:
        if self._log is None:
            self._log = lambda message, level: engine.log(message, level)

    def _report(self, err: LineError) -> None:
        self._reported += 1
        if self._log is not None and self._reported <= self.max_reports:
            last = self._reported == self.max_reports
            more = " (further bad lines are counted, not logged)" if last else ""
            self._log(f"replay: skipped {err}{more}", "warn")

    def events(self) -> Iterator[Any]:
        # A restored replay re-reads the capture from the start (parser and book state are
        # rebuilt on the way) and yields only the events after the checkpoint.
        self.emitted = 0
        for ev in self.reader.events():
            self.emitted += 1
            if self.emitted > self._skip:
                yield ev

    def snapshot(self) -> dict:
        """Where the replay is (for the store's checkpoints): the capture and the events yielded."""
        return {"version": 1, "path": str(self.path.resolve()), "emitted": self.emitted}

    def restore(self, state: dict) -> None:
        if state.get("version") != 1 or state.get("path") != str(self.path.resolve()):
            raise ValueError(f"the checkpoint is from another capture ({state.get('path')})")
        self._skip = int(state["emitted"])


def event_record(ev: Any) -> dict:
    """An event as a flat JSON-ready dict: type, ts, symbol, then the event's own fields."""
    d: dict[str, Any] = {"type": EVENT_TYPE_NAMES.get(type(ev), type(ev).__name__.lower()), "ts": ev.ts,
                         "symbol": ev.symbol}
    for f in fields(ev):
        if f.name not in d:
            d[f.name] = getattr(ev, f.name)
    return d


def inspect_capture(path: str | Path, out: IO[str], err: IO[str]) -> tuple[int, int]:
    """Print every event of a capture as one JSON object per line; bad lines go to `err`.

    Every line is shown as parsed (no book sequencing), so a gap is visible too.
    Returns (events printed, bad lines)."""
    reader = CaptureReader(path, sequence=False, on_error=lambda e: err.write(f"{e}\n"))
    n = 0
    for ev in reader.events():
        out.write(orjson.dumps(event_record(ev)).decode())
        out.write("\n")
        n += 1
    return n, reader.counters["malformed"]


def inspect_main(path: str) -> int:
    """`liqdesk inspect PATH`: events to stdout as JSON lines; bad lines and a summary to stderr."""
    import sys

    from ..config import ConfigError
    try:
        capture_files(path)
    except FileNotFoundError:
        raise ConfigError(f"config error: inspect: no capture file or directory at {path}") from None
    try:
        n, bad = inspect_capture(path, sys.stdout, sys.stderr)
    except BrokenPipeError:  # e.g. `liqdesk inspect f.gz | head`
        return 0
    sys.stderr.write(f"{n} events, {bad} bad lines skipped\n")
    return 0
