"""Tardis.dev downloadable CSV files (../shared/reference/data-formats.md §1).

Data types: trades, liquidations, incremental_book_L2, book_snapshot_25 / _5 (any N),
quotes (and book_ticker, same columns) and derivative_ticker. The type is told by the header;
trades and liquidations share a header, so a file whose name contains "liquidations" holds
liquidations. Timestamps are µs since the epoch: `timestamp` is the exchange time (ts),
`local_timestamp` the arrival time at Tardis's collector (recv_ts). Columns are read by name.

* trades: `side` is the taker side (buy/sell/unknown; unknown becomes "").
* liquidations: `side` buy means a short position was liquidated, sell a long one.
* incremental_book_L2: `amount` is the new absolute size (0 deletes). Rows of one message
  share `local_timestamp` and become one BookDelta; a run of is_snapshot=true rows becomes one
  BookSnapshot (a new run after deltas means the book was reset). Rows before a symbol's first
  snapshot are skipped.
* book_snapshot_N: each row is the top N levels -> BookSnapshot (missing levels are empty).
* quotes: ask fields come before bid fields in the header -> Quote.
* derivative_ticker: carried-forward funding/OI/mark/index/last -> Ticker (empty -> None).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ...events import LONG, SHORT, BookDelta, BookSnapshot, Liquidation, Quote, Ticker, Trade
from .base import US, Importer, ImportReport, bool_field, csv_members, csv_rows, first_line, num, opt_num

COMMON = ("exchange", "symbol", "timestamp", "local_timestamp")


class TardisImporter(Importer):
    name = "tardis"
    has_local_time = True

    def matches(self, path: Path) -> bool:
        header = first_line(path)
        return header.startswith("exchange,symbol,timestamp,local_timestamp")

    def events(self, path: Path, report: ImportReport) -> Iterator[Any]:
        for label, header, reader in csv_members(path):
            if tuple(header[:4]) != COMMON:
                report.add_bad(label, 1, "not a Tardis CSV header", ",".join(header))
                continue
            col = {name: i for i, name in enumerate(header)}
            kind = _kind(header, path)
            if kind is None:
                report.add_bad(label, 1, "unknown Tardis data type", ",".join(header))
                continue
            report.importer = f"{self.name}:{kind}"
            if kind == "incremental_book_L2":
                yield from _book_l2(reader, col, label, report)
            else:
                row_fn = _ROW_PARSERS[kind]
                for line, row in csv_rows(reader, report):
                    try:
                        ev = row_fn(row, col)
                    except (ValueError, IndexError, KeyError) as exc:
                        report.add_bad(label, line, str(exc) or type(exc).__name__, ",".join(row))
                        continue
                    if ev is not None:
                        yield ev


def _kind(header: list[str], path: Path) -> str | None:
    cols = set(header)
    if "is_snapshot" in cols:
        return "incremental_book_L2"
    if "asks[0].price" in cols:
        return "book_snapshot"
    if {"ask_amount", "ask_price", "bid_price", "bid_amount"} <= cols:
        return "quotes"
    if "funding_rate" in cols or "mark_price" in cols:
        return "derivative_ticker"
    if {"id", "side", "price", "amount"} <= cols:
        return "liquidations" if "liquidation" in str(path).lower() else "trades"
    return None


def _times(row: list[str], col: dict[str, int]) -> tuple[int, int]:
    return int(row[col["timestamp"]]) * US, int(row[col["local_timestamp"]]) * US


def _trade(row: list[str], col: dict[str, int]) -> Trade:
    ts, recv = _times(row, col)
    side = row[col["side"]]
    if side not in ("buy", "sell", "unknown"):
        raise ValueError(f"bad side {side!r}")
    return Trade(
        ts,
        row[col["symbol"]],
        side if side != "unknown" else "",
        num(row[col["price"]]),
        num(row[col["amount"]]),
        row[col["id"]],
        recv,
    )


def _liquidation(row: list[str], col: dict[str, int]) -> Liquidation:
    ts, recv = _times(row, col)
    raw = row[col["side"]]
    if raw not in ("buy", "sell"):
        raise ValueError(f"bad side {raw!r}")
    return Liquidation(
        ts,
        row[col["symbol"]],
        SHORT if raw == "buy" else LONG,
        num(row[col["price"]]),
        num(row[col["amount"]]),
        raw,
        recv,
    )


def _book_snapshot(row: list[str], col: dict[str, int]) -> BookSnapshot:
    ts, recv = _times(row, col)
    return BookSnapshot(
        ts, row[col["symbol"]], _snapshot_side(row, col, "bids"), _snapshot_side(row, col, "asks"), 0, recv
    )


def _snapshot_side(row: list[str], col: dict[str, int], side: str) -> list[tuple[float, float]]:
    out = []
    i = 0
    while f"{side}[{i}].price" in col:
        p, q = row[col[f"{side}[{i}].price"]], row[col[f"{side}[{i}].amount"]]
        if p != "" and q != "":
            out.append((num(p), num(q)))
        i += 1
    return out


def _quote(row: list[str], col: dict[str, int]) -> Quote:
    ts, recv = _times(row, col)

    def field(name: str) -> float:
        v = opt_num(row[col[name]])
        return 0.0 if v is None else v

    return Quote(
        ts,
        row[col["symbol"]],
        field("bid_price"),
        field("bid_amount"),
        field("ask_price"),
        field("ask_amount"),
        0,
        recv,
    )


def _derivative_ticker(row: list[str], col: dict[str, int]) -> Ticker:
    ts, recv = _times(row, col)

    def get(name: str) -> float | None:
        i = col.get(name)
        return None if i is None else opt_num(row[i])

    funding_ts = get("funding_timestamp")
    return Ticker(
        ts,
        row[col["symbol"]],
        mark=get("mark_price"),
        index=get("index_price"),
        open_interest=get("open_interest"),
        funding_rate=get("funding_rate"),
        next_funding_ts=None if funding_ts is None else int(funding_ts) * US,
        last=get("last_price"),
        recv_ts=recv,
    )


_ROW_PARSERS = {
    "trades": _trade,
    "liquidations": _liquidation,
    "book_snapshot": _book_snapshot,
    "quotes": _quote,
    "derivative_ticker": _derivative_ticker,
}


def _book_l2(reader, col: dict[str, int], label: str, report: ImportReport) -> Iterator[Any]:
    """Group incremental_book_L2 rows into BookSnapshot / BookDelta messages."""
    i_sym, i_ts, i_loc = col["symbol"], col["timestamp"], col["local_timestamp"]
    i_snap, i_side, i_px, i_amt = col["is_snapshot"], col["side"], col["price"], col["amount"]
    seen_snapshot: set[str] = set()
    group_key: tuple[str, int, bool] | None = None
    bids: list[tuple[float, float]] = []
    asks: list[tuple[float, float]] = []
    ts = recv = 0

    def flush() -> Any:
        assert group_key is not None
        sym, _loc, snap = group_key
        if snap:
            return BookSnapshot(ts, sym, sorted(bids, reverse=True), sorted(asks), 0, recv)
        return BookDelta(ts, sym, list(bids), list(asks), 0, recv)

    for line, row in csv_rows(reader, report):
        try:
            sym = row[i_sym]
            snap = bool_field(row[i_snap])
            row_ts, row_loc = int(row[i_ts]) * US, int(row[i_loc]) * US
            side = row[i_side]
            if side not in ("bid", "ask"):
                raise ValueError(f"bad side {side!r}")
            level = (num(row[i_px]), num(row[i_amt]))
        except (ValueError, IndexError) as exc:
            report.add_bad(label, line, str(exc) or type(exc).__name__, ",".join(row))
            continue
        if not snap and sym not in seen_snapshot:
            report.skip("book update before the first snapshot")
            continue
        # A snapshot run continues across local timestamps; a delta message is one local timestamp.
        key = (sym, 0 if snap else row_loc, snap)
        if key != group_key:
            if group_key is not None and (bids or asks or group_key[2]):
                yield flush()
            group_key, bids, asks = key, [], []
        if snap:
            seen_snapshot.add(sym)
        ts, recv = row_ts, row_loc
        (bids if side == "bid" else asks).append(level)
    if group_key is not None and (bids or asks or group_key[2]):
        yield flush()
