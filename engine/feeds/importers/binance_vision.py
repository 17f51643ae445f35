"""Binance public data files (data.binance.vision), USD-M futures, plus the T_DEPTH book files.

File names follow `{SYMBOL}-{type}-{YYYY-MM[-DD]}.csv` (usually inside a same-named .zip);
kline files are `{SYMBOL}-{interval}-{date}`. The symbol comes from the file name, since most
types carry no symbol column. Older files have no header line (a first field that is a number
means data), so columns are read by name when a header exists and by the documented position
otherwise (../shared/reference/data-formats.md §2). Times are epoch ms (µs in spot files from
2025; told apart by magnitude) or UTC datetime strings.

* aggTrades, trades -> Trade; is_buyer_maker=true means the taker sold. Ties in time are
  broken by trade id, since some monthly files interleave two id ranges.
* bookTicker -> Quote; bookDepth -> DepthBands (one event per sample time).
* metrics -> Ticker(open_interest) plus one LongShortRatio per ratio column (source
  binance:top_trader_accounts / top_trader_positions / global_accounts / taker_volume; a ratio
  r becomes long_share r/(1+r)).
* fundingRate -> Ticker(funding_rate, next_funding_ts = calc_time + interval): the engine
  settles the rate at calc_time when the next row moves the funding time on.
* liquidationSnapshot -> Liquidation: side SELL liquidated a long; price is the order price and
  qty the accumulated filled qty (rows with nothing filled are skipped). Binance writes every
  row twice; exact repeats are skipped.
* klines -> Bar (ts = close time = open_time + interval).
* T_DEPTH (`symbol,timestamp,first_update_id,last_update_id,side,update_type,price,qty,pu`):
  a run of `snap` rows -> BookSnapshot, `set` rows of one update id -> BookDelta.
"""

from __future__ import annotations

import itertools
import re
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ...events import (
    LONG,
    SHORT,
    Bar,
    BookDelta,
    BookSnapshot,
    DepthBands,
    Liquidation,
    LongShortRatio,
    Quote,
    Ticker,
    Trade,
)
from .base import (
    Importer,
    ImportReport,
    UnreadableFile,
    base_name,
    bool_field,
    csv_members,
    csv_rows,
    epoch_to_ns,
    first_line,
    is_number,
    num,
    opt_num,
    time_to_ns,
)
from .ohlcv import interval_seconds

H = 3_600_000_000_000

COLUMNS: dict[str, tuple[str, ...]] = {
    "aggTrades": (
        "agg_trade_id",
        "price",
        "quantity",
        "first_trade_id",
        "last_trade_id",
        "transact_time",
        "is_buyer_maker",
    ),
    "trades": ("id", "price", "qty", "quote_qty", "time", "is_buyer_maker"),
    "bookTicker": (
        "update_id",
        "best_bid_price",
        "best_bid_qty",
        "best_ask_price",
        "best_ask_qty",
        "transaction_time",
        "event_time",
    ),
    "bookDepth": ("timestamp", "percentage", "depth", "notional"),
    "metrics": (
        "create_time",
        "symbol",
        "sum_open_interest",
        "sum_open_interest_value",
        "count_toptrader_long_short_ratio",
        "sum_toptrader_long_short_ratio",
        "count_long_short_ratio",
        "sum_taker_long_short_vol_ratio",
    ),
    "fundingRate": ("calc_time", "funding_interval_hours", "last_funding_rate"),
    "liquidationSnapshot": (
        "time",
        "side",
        "order_type",
        "time_in_force",
        "original_quantity",
        "price",
        "average_price",
        "order_status",
        "last_fill_quantity",
        "accumulated_fill_quantity",
    ),
    "klines": (
        "open_time",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "close_time",
        "quote_volume",
        "count",
        "taker_buy_volume",
        "taker_buy_quote_volume",
        "ignore",
    ),
    "T_DEPTH": (
        "symbol",
        "timestamp",
        "first_update_id",
        "last_update_id",
        "side",
        "update_type",
        "price",
        "qty",
        "pu",
    ),
}
T_DEPTH_HEADER = "symbol,timestamp,first_update_id,last_update_id,side,update_type,price,qty,pu"
_NAME = re.compile(
    r"^(?P<symbol>[A-Za-z0-9_]+)-(?P<type>aggTrades|trades|bookTicker|bookDepth|metrics|fundingRate|"
    r"liquidationSnapshot|[0-9]+[smhdwM]|1mo)-(?P<date>\d{4}-\d{2}(?:-\d{2})?)$"
)
RATIO_SOURCES = (
    ("count_toptrader_long_short_ratio", "binance:top_trader_accounts"),
    ("sum_toptrader_long_short_ratio", "binance:top_trader_positions"),
    ("count_long_short_ratio", "binance:global_accounts"),
    ("sum_taker_long_short_vol_ratio", "binance:taker_volume"),
)


def parse_name(path: Path) -> tuple[str, str, int] | None:
    """(SYMBOL, data type, kline interval seconds or 0) from a data.binance.vision file name."""
    m = _NAME.match(base_name(path))
    if m is None:
        return None
    kind = m.group("type")
    if kind[0].isdigit():
        return m.group("symbol").upper(), "klines", interval_seconds(kind)
    return m.group("symbol").upper(), kind, 0


class BinanceVisionImporter(Importer):
    name = "binance"

    def __init__(self, data_type: str | None = None, symbol: str | None = None):
        self.data_type = data_type
        self.symbol = symbol

    def matches(self, path: Path) -> bool:
        return parse_name(path) is not None or first_line(path).strip() == T_DEPTH_HEADER

    def tiebreak(self, ev: Any) -> int | None:
        if type(ev) is Trade and ev.trade_id.isdigit():
            return int(ev.trade_id)
        return None

    def events(self, path: Path, report: ImportReport) -> Iterator[Any]:
        parsed = parse_name(path)
        symbol, kind, interval = parsed if parsed is not None else (self.symbol or "", "", 0)
        symbol = self.symbol or symbol
        if self.data_type is not None:
            kind = self.data_type
        elif not kind and first_line(path).strip() == T_DEPTH_HEADER:
            kind = "T_DEPTH"
        if kind not in COLUMNS:
            raise UnreadableFile(
                f"{path}: not a data.binance.vision file name ({{SYMBOL}}-{{type}}-{{date}})"
            )
        if kind == "klines" and not interval:
            raise UnreadableFile(f"{path}: kline interval not found in the file name")
        report.importer = f"{self.name}:{kind}"
        for label, first, reader in csv_members(path):
            rows = csv_rows(reader, report)
            if first and not is_number(first[0].strip()):
                idx = _header_index(first, kind)
                missing = [c for c in _required(kind) if c not in idx]
                if missing:
                    report.add_bad(label, 1, f"header lacks {', '.join(missing)}", ",".join(first))
                    continue
            else:  # an old file without a header: the first line is data
                idx = {name: i for i, name in enumerate(COLUMNS[kind])}
                report.rows += 1
                rows = itertools.chain([(1, first)], rows)
            yield from _HANDLERS[kind](rows, idx, symbol, interval, report, label)


def _header_index(header: list[str], kind: str) -> dict[str, int]:
    idx = {}
    for i, name in enumerate(header):
        key = name.strip().lower()
        for canon in COLUMNS[kind]:
            if canon.lower() == key:
                idx[canon] = i
    return idx


def _required(kind: str) -> tuple[str, ...]:
    optional = {
        "ignore",
        "count",
        "taker_buy_volume",
        "taker_buy_quote_volume",
        "first_trade_id",
        "last_trade_id",
        "quote_qty",
        "event_time",
        "pu",
        "first_update_id",
        "symbol",
        "time_in_force",
        "order_type",
        "original_quantity",
        "average_price",
        "last_fill_quantity",
        "sum_open_interest_value",
    }
    return tuple(c for c in COLUMNS[kind] if c not in optional)


Handler = Callable[
    [Iterator[tuple[int, list[str]]], dict[str, int], str, int, ImportReport, str], Iterator[Any]
]


def _per_row(fn: Callable[[list[str], dict[str, int], str, int], Any]) -> Handler:
    """A handler applying `fn` to each row; `fn` returns an event, a list of events or None."""

    def handler(rows, idx, symbol, interval, report, label):
        for line, row in rows:
            try:
                out = fn(row, idx, symbol, interval)
            except (ValueError, IndexError) as exc:
                report.add_bad(label, line, str(exc) or type(exc).__name__, ",".join(row))
                continue
            if out is None:
                continue
            if isinstance(out, list):
                yield from out
            else:
                yield out

    return handler


def _agg_trade(row, idx, symbol, _interval) -> Trade:
    taker_sold = bool_field(row[idx["is_buyer_maker"]])
    return Trade(
        epoch_to_ns(row[idx["transact_time"]]),
        symbol,
        "sell" if taker_sold else "buy",
        num(row[idx["price"]]),
        num(row[idx["quantity"]]),
        row[idx["agg_trade_id"]].strip(),
    )


def _trade(row, idx, symbol, _interval) -> Trade:
    taker_sold = bool_field(row[idx["is_buyer_maker"]])
    return Trade(
        epoch_to_ns(row[idx["time"]]),
        symbol,
        "sell" if taker_sold else "buy",
        num(row[idx["price"]]),
        num(row[idx["qty"]]),
        row[idx["id"]].strip(),
    )


def _book_ticker(row, idx, symbol, _interval) -> Quote:
    return Quote(
        epoch_to_ns(row[idx["transaction_time"]]),
        symbol,
        num(row[idx["best_bid_price"]]),
        num(row[idx["best_bid_qty"]]),
        num(row[idx["best_ask_price"]]),
        num(row[idx["best_ask_qty"]]),
        int(row[idx["update_id"]]),
    )


def _metrics(row, idx, symbol, _interval) -> list[Any]:
    ts = time_to_ns(row[idx["create_time"]])
    sym = row[idx["symbol"]].strip() if "symbol" in idx and row[idx["symbol"]].strip() else symbol
    out: list[Any] = []
    oi = opt_num(row[idx["sum_open_interest"]])
    if oi is not None:
        out.append(Ticker(ts, sym, open_interest=oi))
    for column, source in RATIO_SOURCES:
        ratio = opt_num(row[idx[column]]) if column in idx else None
        if ratio is not None and ratio >= 0:
            out.append(LongShortRatio(ts, sym, ratio / (1.0 + ratio), 1.0 / (1.0 + ratio), source))
    return out


def _funding(row, idx, symbol, _interval) -> Ticker:
    ts = epoch_to_ns(row[idx["calc_time"]])
    hours = num(row[idx["funding_interval_hours"]])
    return Ticker(
        ts,
        symbol,
        funding_rate=num(row[idx["last_funding_rate"]]),
        next_funding_ts=ts + int(hours * H),
        funding_interval_h=hours,
    )


def _kline(row, idx, symbol, interval) -> Bar:
    open_ts = epoch_to_ns(row[idx["open_time"]])
    # close_time is the bar's last millisecond; it also gets calendar months right.
    close_ts = (
        epoch_to_ns(row[idx["close_time"]]) + 1_000_000
        if "close_time" in idx
        else (open_ts + interval * 1_000_000_000)
    )
    turnover = opt_num(row[idx["quote_volume"]]) if "quote_volume" in idx else None
    return Bar(
        close_ts,
        symbol,
        interval,
        num(row[idx["open"]]),
        num(row[idx["high"]]),
        num(row[idx["low"]]),
        num(row[idx["close"]]),
        num(row[idx["volume"]]),
        turnover or 0.0,
    )


def _liquidations(rows, idx, symbol, _interval, report, label) -> Iterator[Any]:
    recent: deque[tuple[str, ...]] = deque(maxlen=256)
    recent_set: set[tuple[str, ...]] = set()
    for line, row in rows:
        key = tuple(row)
        if key in recent_set:
            report.skip("duplicate row (Binance writes each liquidation twice)")
            continue
        if len(recent) == recent.maxlen:
            recent_set.discard(recent[0])
        recent.append(key)
        recent_set.add(key)
        try:
            raw = row[idx["side"]].strip().upper()
            if raw not in ("BUY", "SELL"):
                raise ValueError(f"bad side {raw!r}")
            qty = num(row[idx["accumulated_fill_quantity"]])
            ev = Liquidation(
                epoch_to_ns(row[idx["time"]]),
                symbol,
                LONG if raw == "SELL" else SHORT,
                num(row[idx["price"]]),
                qty,
                raw,
            )
        except (ValueError, IndexError) as exc:
            report.add_bad(label, line, str(exc) or type(exc).__name__, ",".join(row))
            continue
        if qty <= 0:
            report.skip("liquidation order with nothing filled")
            continue
        yield ev


def _book_depth(rows, idx, symbol, _interval, report, label) -> Iterator[Any]:
    """Rows sharing a timestamp are one sample -> one DepthBands event."""
    current_ts: int | None = None
    bands: list[tuple[float, float, float]] = []
    for line, row in rows:
        try:
            ts = time_to_ns(row[idx["timestamp"]])
            band = (num(row[idx["percentage"]]), num(row[idx["depth"]]), num(row[idx["notional"]]))
        except (ValueError, IndexError) as exc:
            report.add_bad(label, line, str(exc) or type(exc).__name__, ",".join(row))
            continue
        if ts != current_ts:
            if bands and current_ts is not None:
                yield DepthBands(current_ts, symbol, sorted(bands))
            current_ts, bands = ts, []
        bands.append(band)
    if bands and current_ts is not None:
        yield DepthBands(current_ts, symbol, sorted(bands))


def _t_depth(rows, idx, symbol, _interval, report, label) -> Iterator[Any]:
    """A run of `snap` rows is one snapshot; `set` rows sharing (symbol, last_update_id) are one delta."""
    key: tuple[str, bool, int] | None = None
    bids: list[tuple[float, float]] = []
    asks: list[tuple[float, float]] = []
    ts = 0

    def flush() -> Any:
        assert key is not None
        sym, snap, uid = key
        if snap:
            return BookSnapshot(ts, sym, sorted(bids, reverse=True), sorted(asks), uid)
        return BookDelta(ts, sym, list(bids), list(asks), uid)

    for line, row in rows:
        try:
            sym = row[idx["symbol"]].strip() if "symbol" in idx else symbol
            kind = row[idx["update_type"]].strip()
            if kind not in ("snap", "set"):
                raise ValueError(f"bad update_type {kind!r}")
            side = row[idx["side"]].strip()
            if side not in ("a", "b"):
                raise ValueError(f"bad side {side!r}")
            row_ts = epoch_to_ns(row[idx["timestamp"]])
            uid = int(row[idx["last_update_id"]])
            level = (num(row[idx["price"]]), num(row[idx["qty"]]))
        except (ValueError, IndexError) as exc:
            report.add_bad(label, line, str(exc) or type(exc).__name__, ",".join(row))
            continue
        snap = kind == "snap"
        row_key = (sym, snap, uid)
        if row_key != key:
            if key is not None:
                yield flush()
            key, bids, asks = row_key, [], []
        ts = row_ts
        (bids if side == "b" else asks).append(level)
    if key is not None:
        yield flush()


_HANDLERS: dict[str, Handler] = {
    "aggTrades": _per_row(_agg_trade),
    "trades": _per_row(_trade),
    "bookTicker": _per_row(_book_ticker),
    "metrics": _per_row(_metrics),
    "fundingRate": _per_row(_funding),
    "klines": _per_row(_kline),
    "liquidationSnapshot": _liquidations,
    "bookDepth": _book_depth,
    "T_DEPTH": _t_depth,
}
