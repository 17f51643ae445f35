"""The shared importer interface: streaming file access, bad-row reports, parsing helpers.

An importer turns one historical file into typed market events (engine/events.py),
reading it line by line (plain, .gz or every member of a .zip) so that memory does not
grow with the file. A row that cannot be parsed is recorded in the ImportReport with its
file and line number and skipped; the import carries on. Rows that are valid but carry
nothing to replay (a heartbeat, a book delta before the first snapshot) are counted as
skipped with a reason, not as bad.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import math
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

MAX_BAD_ROWS_KEPT = 200  # the report keeps the first N bad rows verbatim and counts the rest
MS = 1_000_000
US = 1_000


class UnreadableFile(Exception):
    """A file that cannot be imported at all (unknown format, unreadable container)."""


@dataclass(slots=True)
class BadRow:
    path: str
    line: int
    reason: str
    text: str = ""

    def __str__(self) -> str:
        snippet = f": {self.text}" if self.text else ""
        return f"{self.path}:{self.line}: {self.reason}{snippet}"


@dataclass
class ImportReport:
    """What one import read: rows, events, bad rows (with file and line) and skips by reason."""

    path: str
    importer: str = ""
    rows: int = 0
    events: int = 0
    bad: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def add_bad(self, path: str, line: int, reason: str, text: str = "") -> None:
        self.bad += 1
        if len(self.bad_rows) < MAX_BAD_ROWS_KEPT:
            self.bad_rows.append(BadRow(path, line, reason, text[:160]))

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n

    def summary(self) -> str:
        skipped = sum(self.skipped.values())
        return (
            f"{self.path}: {self.events} events from {self.rows} rows, {self.bad} bad, "
            f"{skipped} skipped ({self.importer})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "importer": self.importer,
            "rows": self.rows,
            "events": self.events,
            "bad": self.bad,
            "bad_rows": [[b.path, b.line, b.reason, b.text] for b in self.bad_rows],
            "skipped": dict(sorted(self.skipped.items())),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImportReport:
        r = cls(d["path"], d.get("importer", ""), d.get("rows", 0), d.get("events", 0), d.get("bad", 0))
        r.bad_rows = [BadRow(*b) for b in d.get("bad_rows", [])]
        r.skipped = dict(d.get("skipped", {}))
        return r


class Importer:
    """Base class: one source format. Subclasses set `name` and implement `matches` and `events`."""

    name = "base"
    #: True when the source records a local receive time (replay order is arrival order).
    has_local_time = False

    def matches(self, path: Path) -> bool:
        """Whether this importer recognizes the file (by its name, or by peeking at its first line)."""
        raise NotImplementedError

    def events(self, path: Path, report: ImportReport) -> Iterator[Any]:
        """Stream the file's events in file order, recording bad rows in `report`."""
        raise NotImplementedError

    def tiebreak(self, ev: Any) -> int | None:
        """Secondary sort key for events with equal time (e.g. Binance trade ids), or None."""
        return None


# -- streaming file access ------------------------------------------------------------------------


def base_name(path: Path) -> str:
    """The file name without .gz/.zip/.csv/.data/.jsonl suffixes."""
    name = path.name
    for suffix in (".gz", ".zip", ".csv", ".data", ".jsonl", ".json", ".txt"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    for suffix in (".csv", ".data", ".jsonl", ".json", ".txt"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


@contextmanager
def _open_plain_or_gz(path: Path) -> Iterator[TextIO]:
    with open(path, "rb") as raw:
        magic = raw.read(2)
    if magic == b"\x1f\x8b":
        with gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="") as f:
            yield f
    else:
        with open(path, encoding="utf-8", errors="replace", newline="") as f:
            yield f


def open_members(path: Path) -> Iterator[tuple[str, TextIO]]:
    """Yield (label, text stream) for a plain/gzip file, or for each data member of a zip.

    Zip members named *.CHECKSUM and directories are skipped. Streams are read lazily.
    """
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if info.is_dir() or info.filename.upper().endswith(".CHECKSUM"):
                    continue
                with zf.open(info) as member:
                    yield (
                        f"{path}!{info.filename}",
                        io.TextIOWrapper(member, encoding="utf-8", errors="replace", newline=""),
                    )
        return
    with _open_plain_or_gz(path) as f:
        yield str(path), f


def iter_lines(path: Path, report: ImportReport) -> Iterator[tuple[str, int, str]]:
    """(label, 1-based line number, line without newline) for every line of every member.

    A truncated or corrupt compressed stream ends that member with one bad row instead of raising.
    """
    try:
        for label, stream in open_members(path):
            n = 0
            try:
                for n, line in enumerate(stream, 1):
                    yield label, n, line.rstrip("\r\n")
            except (EOFError, OSError, zlib.error, zipfile.BadZipFile) as exc:
                report.add_bad(label, n + 1, f"unreadable compressed data ({type(exc).__name__}: {exc})")
    except (OSError, zipfile.BadZipFile) as exc:
        raise UnreadableFile(f"{path}: cannot open ({exc})") from None


def data_lines(path: Path, report: ImportReport) -> Iterator[tuple[str, int, str]]:
    """Non-blank lines (label, line number, text), each counted in `report.rows`."""
    for label, line_no, line in iter_lines(path, report):
        if line.strip():
            report.rows += 1
            yield label, line_no, line


def csv_members(path: Path) -> Iterator[tuple[str, list[str], Any]]:
    """(label, first row, csv reader positioned after it) for each non-empty member of the file."""
    for label, stream in open_members(path):
        reader = csv.reader(stream)
        first = next(reader, None)
        if first is not None:
            yield label, first, reader


def csv_rows(reader: Any, report: ImportReport) -> Iterator[tuple[int, list[str]]]:
    """(line number, row) for the non-empty rows of a csv reader, each counted in `report.rows`."""
    for row in reader:
        if row:
            report.rows += 1
            yield reader.line_num, row


def first_line(path: Path) -> str:
    """The first line of the file (of its first zip member), or '' when unreadable."""
    try:
        for _label, stream in open_members(path):
            return stream.readline(65536).rstrip("\r\n")
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error):
        return ""
    return ""


# -- value parsing ----------------------------------------------------------------------------------


def num(text: str) -> float:
    """A finite float; raises ValueError for empty, NaN or infinite values."""
    v = float(text)
    if v != v or v in (float("inf"), float("-inf")):
        raise ValueError(f"not a finite number: {text!r}")
    return v


def opt_num(text: str | None) -> float | None:
    """A finite float, or None for an empty/null field."""
    if text is None or text == "" or text == "null":
        return None
    return num(text)


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def decimal_seconds_to_ns(text: str) -> int:
    """'1585267197.3539' -> ns without float rounding (Bybit trade files)."""
    whole, _, frac = text.strip().partition(".")
    if not whole.lstrip("-").isdigit() or (frac and not frac.isdigit()):
        raise ValueError(f"not a decimal timestamp: {text!r}")
    return int(whole) * 1_000_000_000 + int((frac + "000000000")[:9])


def epoch_to_ns(value: float | int | str) -> int:
    """Epoch seconds, ms, µs or ns (told apart by magnitude, valid for 1973..2286) -> ns."""
    if isinstance(value, str):
        text = value.strip()
        if "." in text:
            v = float(text)
            if abs(v) < 1e11:  # fractional seconds
                return decimal_seconds_to_ns(text)
            return int(v * (1e6 if abs(v) < 1e14 else 1e3 if abs(v) < 1e17 else 1))
        v = int(text)
    else:
        v = int(value)
    a = abs(v)
    if a < 10**11:
        return v * 1_000_000_000
    if a < 10**14:
        return v * MS
    if a < 10**17:
        return v * US
    return v


def datetime_to_ns(text: str) -> int:
    """ISO date or datetime ('2024-01-02', '2024-01-02 11:07:31', '...T..Z', with offset) -> ns, UTC.

    Naive datetimes are taken as UTC (Binance and Bybit files are in UTC).
    """
    t = text.strip()
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    dt = datetime.fromisoformat(t)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def time_to_ns(text: str) -> int:
    """A timestamp field that may be an epoch number or an ISO date/datetime."""
    t = text.strip()
    if is_number(t):
        return epoch_to_ns(t)
    return datetime_to_ns(t)


def bool_field(text: str) -> bool:
    t = text.strip().lower()
    if t in ("true", "1", "t", "yes"):
        return True
    if t in ("false", "0", "f", "no"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def levels(pairs: Any) -> list[tuple[float, float]]:
    """[[price, qty], ...] with string or number entries -> [(price, qty)]; ValueError if not finite."""
    out = [(float(x[0]), float(x[1])) for x in pairs]
    # One C-level sum instead of a check per value: any NaN or infinity makes it non-finite.
    if not math.isfinite(sum(itertools.chain.from_iterable(out))):
        raise ValueError("non-finite price or qty in levels")
    return out
