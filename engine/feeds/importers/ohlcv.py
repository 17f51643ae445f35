"""Generic OHLCV CSV -> Bar events, for any market (crypto, equities, forex).

The file needs a header. Columns are found by name, case-insensitively:

* time: one of timestamp, time, datetime, date_time, open_time, ts, date; or separate
  `date` and `time` columns (MetaTrader style). Epoch s/ms/µs/ns or ISO dates/datetimes (UTC
  when no offset is given).
* open, high, low, close (or o, h, l, c) are required; volume (vol, v, tick_volume) and
  turnover (quote_volume, quote_asset_volume, turnover) are optional; symbol/ticker optional.

The time column is the bar's open time unless `stamp="close"`; Bar.ts is always the close time.
The bar length comes from `interval` (e.g. "1m", "1h", "1d" or seconds) or, when not given, from
the smallest gap between the first 64 timestamps. Rows whose high/low do not bracket open and
close, or with non-positive prices, are bad rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ...events import Bar
from .base import (
    Importer,
    ImportReport,
    UnreadableFile,
    base_name,
    csv_members,
    csv_rows,
    first_line,
    num,
    opt_num,
    time_to_ns,
)

NS = 1_000_000_000
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800, "M": 2_592_000}
TIME_NAMES = ("timestamp", "time", "datetime", "date_time", "open_time", "ts", "date")
NAMES = {
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c"),
    "volume": ("volume", "vol", "v", "tick_volume"),
    "turnover": ("quote_volume", "quote_asset_volume", "turnover"),
    "symbol": ("symbol", "ticker"),
}
INFER_ROWS = 64


def interval_seconds(text: str | int | float) -> int:
    """'1m' / '4h' / '1d' / '1w' / '1M' or '1mo' (30 days) or a number of seconds -> seconds."""
    if isinstance(text, int | float):
        return int(text)
    t = text.strip()
    if t.isdigit():
        return int(t)
    if t.endswith("mo") and t[:-2].isdigit():
        return int(t[:-2]) * UNIT_SECONDS["M"]
    if len(t) >= 2 and t[:-1].isdigit() and t[-1] in UNIT_SECONDS:
        return int(t[:-1]) * UNIT_SECONDS[t[-1]]
    raise ValueError(f"not a bar interval: {text!r} (use e.g. 1m, 1h, 1d or seconds)")


class OhlcvImporter(Importer):
    name = "ohlcv"

    def __init__(self, symbol: str | None = None, interval: str | int | None = None, stamp: str = "open"):
        if stamp not in ("open", "close"):
            raise ValueError("stamp must be 'open' or 'close'")
        self.symbol = symbol
        self.interval_s = interval_seconds(interval) if interval is not None else None
        self.stamp = stamp

    def matches(self, path: Path) -> bool:
        header = [h.strip().lower() for h in first_line(path).split(",")]
        return all(any(n in header for n in NAMES[k]) for k in ("open", "high", "low", "close")) and (
            any(n in header for n in TIME_NAMES)
        )

    def events(self, path: Path, report: ImportReport) -> Iterator[Any]:
        report.importer = self.name
        for label, header, reader in csv_members(path):
            cols = _columns(header)
            if cols is None:
                raise UnreadableFile(
                    f"{label}: an OHLCV file needs a header with a time column and open, high, "
                    f"low, close (got {','.join(header)[:120]})"
                )
            symbol = self.symbol or base_name(path).split("_")[0].split("-")[0].upper()
            parsed = self._parse_rows(reader, cols, symbol, label, report)
            interval = self.interval_s
            buffered: list[tuple[int, str, tuple[float, ...]]] = []
            if interval is None:
                for item in parsed:
                    buffered.append(item)
                    if len(buffered) >= INFER_ROWS:
                        break
                interval = _infer_interval([t for t, _s, _v in buffered])
                if interval is None:
                    if buffered:
                        report.add_bad(label, 2, "cannot infer the bar interval from one row; pass interval=")
                    continue
            for item in itertools.chain(buffered, parsed):
                yield self._bar(item, interval)

    def _parse_rows(
        self, reader, cols: dict[str, Any], symbol: str, label: str, report: ImportReport
    ) -> Iterator[tuple[int, str, tuple[float, ...]]]:
        for line, row in csv_rows(reader, report):
            try:
                if isinstance(cols["time"], tuple):
                    d, t = cols["time"]
                    ts = time_to_ns(f"{row[d].strip()} {row[t].strip()}")
                else:
                    ts = time_to_ns(row[cols["time"]])
                o, h, l, c = (num(row[cols[k]]) for k in ("open", "high", "low", "close"))
                v = opt_num(row[cols["volume"]].strip()) if "volume" in cols else None
                turnover = opt_num(row[cols["turnover"]].strip()) if "turnover" in cols else None
                if min(o, h, l, c) <= 0:
                    raise ValueError("non-positive price")
                if h < max(o, c, l) or l > min(o, c, h):
                    raise ValueError("high/low do not bracket open and close")
                sym = (
                    row[cols["symbol"]].strip()
                    if "symbol" in cols and row[cols["symbol"]].strip()
                    else symbol
                )
            except (ValueError, IndexError) as exc:
                report.add_bad(label, line, str(exc) or type(exc).__name__, ",".join(row))
                continue
            yield ts, sym, (o, h, l, c, v or 0.0, turnover or 0.0)

    def _bar(self, item: tuple[int, str, tuple[float, ...]], interval: int) -> Bar:
        ts, sym, (o, h, l, c, v, turnover) = item
        close_ts = ts if self.stamp == "close" else ts + interval * NS
        return Bar(close_ts, sym, interval, o, h, l, c, v, turnover)


def _columns(header: list[str]) -> dict[str, Any] | None:
    lower = [h.strip().lower() for h in header]
    cols: dict[str, Any] = {}
    for key, names in NAMES.items():
        for n in names:
            if n in lower:
                cols[key] = lower.index(n)
                break
    if "date" in lower and "time" in lower:
        cols["time"] = (lower.index("date"), lower.index("time"))
    else:
        for n in TIME_NAMES:
            if n in lower:
                cols["time"] = lower.index(n)
                break
    if not all(k in cols for k in ("time", "open", "high", "low", "close")):
        return None
    return cols


def _infer_interval(times: list[int]) -> int | None:
    gaps = [b - a for a, b in zip(times, times[1:]) if b > a]
    if not gaps:
        return None
    return max(1, round(min(gaps) / NS))
