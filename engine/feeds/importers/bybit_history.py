"""Bybit public history files (../shared/reference/data-formats.md §3).

* Trades, `public.bybit.com/trading/{SYMBOL}/{SYMBOL}{YYYY-MM-DD}.csv.gz`: header
  `timestamp,symbol,side,size,price,tickDirection,trdMatchID,...` (newer files add `RPI`; columns
  are read by name). `timestamp` is Unix seconds with a decimal fraction, parsed exactly to ns.
  `side` Buy/Sell is the taker side. Older files run newest-first: the columnar cache reverses
  them exactly, and a plain (uncached) read of such a file is reported as out of order.
* Order book, `quote-saver.bycsi.com/.../{date}_{SYMBOL}_ob500.data.zip` (or ob200): JSON lines,
  each a v5 `orderbook.{N}.{SYMBOL}` message: `snapshot` -> BookSnapshot, `delta` -> BookDelta
  (qty "0" deletes), parsed by engine/feeds/bybit_parse.py like the live stream. `ts` is Bybit's
  system time; there is no local receive time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ...events import Trade
from .base import (
    Importer,
    ImportReport,
    base_name,
    csv_members,
    csv_rows,
    data_lines,
    decimal_seconds_to_ns,
    first_line,
    num,
)

TRADE_HEADER_START = "timestamp,symbol,side,size,price"
_OB_NAME = re.compile(r"_ob\d+$")


class BybitTradesImporter(Importer):
    name = "bybit-trades"

    def matches(self, path: Path) -> bool:
        return first_line(path).startswith(TRADE_HEADER_START)

    def events(self, path: Path, report: ImportReport) -> Iterator[Any]:
        report.importer = self.name
        for label, header, reader in csv_members(path):
            col = {h.strip(): i for i, h in enumerate(header)}
            missing = [c for c in ("timestamp", "symbol", "side", "size", "price") if c not in col]
            if missing:
                report.add_bad(label, 1, f"header lacks {', '.join(missing)}", ",".join(header))
                continue
            i_ts, i_sym, i_side, i_size, i_px = (
                col[c] for c in ("timestamp", "symbol", "side", "size", "price")
            )
            i_id = col.get("trdMatchID")
            for line, row in csv_rows(reader, report):
                try:
                    side = row[i_side].strip()
                    if side not in ("Buy", "Sell"):
                        raise ValueError(f"bad side {side!r}")
                    ev = Trade(
                        decimal_seconds_to_ns(row[i_ts]),
                        row[i_sym].strip(),
                        side.lower(),
                        num(row[i_px]),
                        num(row[i_size]),
                        row[i_id].strip() if i_id is not None else "",
                    )
                except (ValueError, IndexError) as exc:
                    report.add_bad(label, line, str(exc) or type(exc).__name__, ",".join(row))
                    continue
                yield ev


class BybitOrderbookImporter(Importer):
    name = "bybit-ob"

    def matches(self, path: Path) -> bool:
        if _OB_NAME.search(base_name(path)):
            return True
        return first_line(path).startswith('{"topic":"orderbook.')

    def events(self, path: Path, report: ImportReport) -> Iterator[Any]:
        # The live feed's parser, so the archive replays the same events as the live stream.
        from ..bybit_parse import BybitParser, UnsupportedTopic

        parser = BybitParser()
        report.importer = self.name
        for label, line_no, line in data_lines(path, report):
            try:
                out = parser.parse_raw(line)
            except UnsupportedTopic as exc:
                report.skip(f"topic {exc}")
                continue
            except ValueError as exc:
                report.add_bad(label, line_no, str(exc) or type(exc).__name__, line[:160])
                continue
            yield from out
