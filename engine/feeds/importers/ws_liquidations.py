"""Liquidation messages of many venues' WebSockets -> Liquidation events (side = liquidated position).

Each venue's raw side field means something different (data-formats.md §5); the rules below
follow the venues' docs and tardis-node's normalizing mappers, which were read for this:

* binance (USD-M / COIN-M `forceOrder`): `S` is the liquidation order's side, SELL closes a
  long. Price `p` (order price), qty `z` (filled so far); orders with nothing filled are dropped.
* bybit (`allLiquidation`, `liquidation`, older REST-polled `liquidation`): `S`/`side` Buy
  means a long position was liquidated.
* okex v5 (`liquidations`, `liquidation-orders`): `posSide` long/short when given, else `side`
  buy closes a short; price is the bankruptcy price `bkPx`, qty `sz` in contracts.
* okex v3 (`futures/liquidation`, `swap/liquidation`): `type` 3 closes a long, 4 a short.
* huobi (`liquidation_orders`): `direction` is the order side, sell closes a long; qty `volume`.
* bitmex (`liquidation` table, action insert): `side` is the order side, Buy closes a short.
  The message has no timestamp, so it needs the capture's local time.
* deribit (trades flagged `liquidation`): "T" the taker was liquidated (a taker buy closes a
  short), "M" the maker (the opposite side), "MT" both (two events).
* ftx, cryptofacilities (Kraken Futures) liquidation trades: `side` is the taker's, buy closes
  a short.
* bitfinex-derivatives (`liq:global` status): only initial triggers (`is_match == 0`); the
  position amount is signed, > 0 means a long was liquidated; price is the base price.
* bitget-futures (`liquidation` topic): `side` is the position side, buy means a long.

Quantities stay in the venue's native unit (contracts for OKX, Huobi, BitMEX, Deribit, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from ...events import LONG, SHORT, Liquidation
from .base import MS, Importer, ImportReport, data_lines, datetime_to_ns, first_line, num


class NoTimestamp(ValueError):
    pass


def _ms(v: Any) -> int:
    return int(v) * MS


def _binance(msg: Any, recv: int) -> list[Liquidation]:
    data = msg.get("data", msg)
    if data.get("e") != "forceOrder":
        return []
    o = data["o"]
    qty = num(o["z"])
    if qty <= 0:
        return []
    raw = o["S"]
    return [Liquidation(_ms(o["T"]), o["s"], LONG if raw == "SELL" else SHORT, num(o["p"]), qty, raw, recv)]


def _bybit(msg: Any, recv: int) -> list[Liquidation]:
    topic = msg.get("topic", "")
    if not (topic.startswith("liquidation.") or topic.startswith("allLiquidation.")):
        return []
    rows = msg["data"] if isinstance(msg["data"], list) else [msg["data"]]
    out = []
    for e in rows:
        raw = e.get("S", e.get("side"))
        if raw not in ("Buy", "Sell"):
            raise ValueError(f"bad side {raw!r}")
        ts = e.get("T", e.get("updatedTime", e.get("time")))
        qty = e.get("v", e.get("size", e.get("qty")))
        out.append(
            Liquidation(
                _ms(ts),
                e.get("s", e.get("symbol")),
                LONG if raw == "Buy" else SHORT,
                num(e.get("p", e.get("price"))),
                num(qty),
                raw,
                recv,
            )
        )
    return out


def _okx_row(symbol: str, d: dict, recv: int) -> Liquidation:
    raw = d["side"]
    pos = d.get("posSide", "")
    side = pos if pos in (LONG, SHORT) else (SHORT if raw == "buy" else LONG)
    return Liquidation(_ms(d["ts"]), symbol, side, num(d["bkPx"]), num(d["sz"]), raw, recv)


def _okx(msg: Any, recv: int) -> list[Liquidation]:
    arg = msg.get("arg")
    if arg is not None:  # v5
        if arg.get("channel") == "liquidations":
            return [_okx_row(arg["instId"], d, recv) for d in msg["data"]]
        if arg.get("channel") == "liquidation-orders":
            return [_okx_row(item["instId"], d, recv) for item in msg["data"] for d in item["details"]]
        return []
    if not str(msg.get("table", "")).endswith("/liquidation"):  # v3
        return []
    out = []
    for d in msg["data"]:
        kind = str(d["type"])
        if kind not in ("3", "4"):
            raise ValueError(f"bad liquidation type {kind!r}")
        out.append(
            Liquidation(
                datetime_to_ns(d["created_at"]),
                d["instrument_id"],
                LONG if kind == "3" else SHORT,
                num(d["price"]),
                num(d["size"]),
                kind,
                recv,
            )
        )
    return out


def _huobi(msg: Any, recv: int) -> list[Liquidation]:
    if not str(msg.get("topic", "")).endswith(".liquidation_orders"):
        return []
    return [
        Liquidation(
            _ms(d["created_at"]),
            d["contract_code"],
            LONG if d["direction"] == "sell" else SHORT,
            num(d["price"]),
            num(d["volume"]),
            d["direction"],
            recv,
        )
        for d in msg["data"]
    ]


def _bitmex(msg: Any, recv: int) -> list[Liquidation]:
    if msg.get("table") != "liquidation" or msg.get("action") != "insert":
        return []
    if not recv:
        raise NoTimestamp("BitMEX liquidation messages carry no time; a local receive time is needed")
    return [
        Liquidation(
            recv,
            d["symbol"],
            SHORT if d["side"] == "Buy" else LONG,
            num(d["price"]),
            num(d["leavesQty"]),
            d["side"],
            recv,
        )
        for d in msg["data"]
    ]


def _deribit(msg: Any, recv: int) -> list[Liquidation]:
    params = msg.get("params") or {}
    if not str(params.get("channel", "")).startswith("trades"):
        return []
    out = []
    for t in params["data"]:
        flag = t.get("liquidation")
        if not flag:
            continue
        taker_buy = t["direction"] == "buy"
        sides = []
        if "T" in flag:
            sides.append(SHORT if taker_buy else LONG)
        if "M" in flag:
            sides.append(LONG if taker_buy else SHORT)
        for side in sides:
            out.append(
                Liquidation(
                    _ms(t["timestamp"]),
                    t["instrument_name"],
                    side,
                    num(t["price"]),
                    num(t["amount"]),
                    f"{flag}:{t['direction']}",
                    recv,
                )
            )
    return out


def _ftx(msg: Any, recv: int) -> list[Liquidation]:
    if msg.get("channel") != "trades":
        return []
    return [
        Liquidation(
            datetime_to_ns(t["time"]),
            msg["market"],
            SHORT if t["side"] == "buy" else LONG,
            num(t["price"]),
            num(t["size"]),
            t["side"],
            recv,
        )
        for t in msg["data"]
        if t.get("liquidation")
    ]


def _cryptofacilities(msg: Any, recv: int) -> list[Liquidation]:
    if msg.get("feed") != "trade" or msg.get("type") != "liquidation":
        return []
    return [
        Liquidation(
            _ms(msg["time"]),
            msg["product_id"],
            SHORT if msg["side"] == "buy" else LONG,
            num(msg["price"]),
            num(msg["qty"]),
            msg["side"],
            recv,
        )
    ]


def _bitfinex(msg: Any, recv: int) -> list[Liquidation]:
    if not isinstance(msg, list) or len(msg) < 2 or not isinstance(msg[1], list):
        return []  # heartbeats ("hb") and subscription events
    out = []
    for p in msg[1]:
        if not isinstance(p, list) or p[0] != "pos" or p[8] != 0:
            continue  # only the initial liquidation trigger, not its later matches
        amount = float(p[5])
        symbol = p[4][1:] if p[4].startswith("t") else p[4]
        out.append(
            Liquidation(
                _ms(p[2]),
                symbol,
                LONG if amount > 0 else SHORT,
                num(p[6]),
                abs(amount),
                "long" if amount > 0 else "short",
                recv,
            )
        )
    return out


def _bitget(msg: Any, recv: int) -> list[Liquidation]:
    if (msg.get("arg") or {}).get("topic") != "liquidation":
        return []
    return [
        Liquidation(
            _ms(d["ts"]),
            d["symbol"],
            LONG if d["side"] == "buy" else SHORT,
            num(d["price"]),
            num(d["amount"]),
            d["side"],
            recv,
        )
        for d in msg["data"]
    ]


VENUES: dict[str, Callable[[Any, int], list[Liquidation]]] = {
    "binance": _binance,
    "bybit": _bybit,
    "okex": _okx,
    "okx": _okx,
    "huobi": _huobi,
    "bitmex": _bitmex,
    "deribit": _deribit,
    "ftx": _ftx,
    "cryptofacilities": _cryptofacilities,
    "kraken": _cryptofacilities,
    "bitfinex": _bitfinex,
    "bitget": _bitget,
}


def venue_parser(venue: str) -> Callable[[Any, int], list[Liquidation]]:
    """The parser for a venue name such as 'binance-futures', 'okex-v5' or 'bitfinex-derivatives'."""
    v = venue.lower()
    for prefix, fn in VENUES.items():
        if v.startswith(prefix):
            return fn
    raise ValueError(f"no liquidation parser for venue {venue!r} (known: {', '.join(sorted(VENUES))})")


def liquidations(venue: str, msg: Any, recv_ts: int = 0) -> list[Liquidation]:
    """Liquidations in one venue message ([] when it holds none); ValueError/KeyError when malformed."""
    return venue_parser(venue)(msg, recv_ts)


class LiquidationMessagesImporter(Importer):
    """JSON lines of `{"venue": ..., "message": {...}}` (optionally with `recv_ts` in ns), or bare
    messages of one venue given as `venue=`."""

    name = "ws-liquidations"

    def __init__(self, venue: str | None = None):
        self.venue = venue

    def matches(self, path: Path) -> bool:
        line = first_line(path)
        if not line.startswith("{"):
            return False
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            return False
        return isinstance(obj, dict) and "venue" in obj and "message" in obj

    def events(self, path: Path, report: ImportReport) -> Iterator[Any]:
        report.importer = self.name
        for label, line_no, line in data_lines(path, report):
            try:
                obj = orjson.loads(line)
                if self.venue is not None:
                    venue, msg, recv = self.venue, obj, 0
                else:
                    venue, msg, recv = obj["venue"], obj["message"], int(obj.get("recv_ts", 0))
                out = liquidations(venue, msg, recv)
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                report.add_bad(label, line_no, f"{type(exc).__name__}: {exc}", line[:160])
                continue
            if not out:
                report.skip("message without a liquidation")
            yield from out
