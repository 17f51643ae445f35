"""Raw WebSocket captures: one `<local_timestamp> <json message>` per line (gzip or plain).

This is the format of hftbacktest's example captures and of our own recorder. The local
timestamp is the receive time (ns; µs and ms are accepted too, told apart by magnitude); it
becomes `recv_ts`, and the exchange time inside the message becomes `ts`. The venue is told
per line from the message shape, so one file may mix streams:

* Binance USD-M (combined `{"stream", "data"}` or bare events), following hftbacktest's
  converter for the exchange time (`T`, the transaction time):
  depthUpdate -> BookDelta (update id `u`); trade -> Trade (`m` true means the taker sold;
  trades with `X` other than MARKET, e.g. insurance-fund or ADL fills, are skipped);
  aggTrade -> Trade; bookTicker -> Quote; forceOrder -> Liquidation; markPriceUpdate -> Ticker;
  a REST depth snapshot (`lastUpdateId`, `bids`, `asks`) -> BookSnapshot, for the symbol of the
  surrounding streams (or the file name, e.g. btcusdt_20240808.gz).
* Hyperliquid: `l2Book` (full book each message) -> BookSnapshot; `trades` -> Trade (side B is
  a buying taker). Other channels (subscription acks) are skipped.
* Bybit v5 (`topic` messages from our recorder): parsed by engine/feeds/bybit_parse.py, the
  same parser as the live feed, so a capture replays exactly the events the live feed produced.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from ...events import BookDelta, BookSnapshot, Quote, Ticker, Trade
from .base import MS, Importer, ImportReport, base_name, data_lines, epoch_to_ns, first_line, levels, num
from .ws_liquidations import liquidations


class _Skip(Exception):
    """A well-formed message that carries nothing to replay."""


class RawCaptureImporter(Importer):
    name = "raw"
    has_local_time = True

    def matches(self, path: Path) -> bool:
        head, _, rest = first_line(path).partition(" ")
        return head.isdigit() and len(head) >= 13 and rest.lstrip().startswith(("{", "["))

    def events(self, path: Path, report: ImportReport) -> Iterator[Any]:
        report.importer = self.name
        state = _CaptureState(base_name(path).split("_")[0].upper())
        for label, line_no, line in data_lines(path, report):
            head, _, body = line.partition(" ")
            try:
                recv = epoch_to_ns(head)
                msg = orjson.loads(body)
                out = state.parse(msg, recv)
            except _Skip as exc:
                report.skip(str(exc))
                continue
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                report.add_bad(label, line_no, f"{type(exc).__name__}: {exc}", line[:160])
                continue
            yield from out


class _CaptureState:
    """Per-file parsing state: the current Binance symbol and the Bybit parser (merged tickers)."""

    def __init__(self, default_symbol: str):
        self.symbol = default_symbol
        self._bybit: Any = None

    def parse(self, msg: Any, recv: int) -> list[Any]:
        if isinstance(msg, dict):
            if "topic" in msg or "op" in msg:
                return self._bybit_parse(msg, recv)
            if "channel" in msg and "stream" not in msg:
                return self._hyperliquid(msg, recv)
            if "stream" in msg or "e" in msg or "lastUpdateId" in msg or "code" in msg:
                return self._binance(msg, recv)
        raise ValueError("unrecognized message (not Binance, Hyperliquid or Bybit)")

    # -- Binance USD-M ------------------------------------------------------------------------
    def _binance(self, msg: dict, recv: int) -> list[Any]:
        if "lastUpdateId" in msg:
            return [
                BookSnapshot(
                    int(msg["T"]) * MS,
                    self.symbol,
                    levels(msg["bids"]),
                    levels(msg["asks"]),
                    int(msg["lastUpdateId"]),
                    recv,
                )
            ]
        if "code" in msg and "data" not in msg and "e" not in msg:
            raise _Skip("REST error reply")
        d = msg.get("data", msg)
        e = d.get("e")
        if "s" in d:
            self.symbol = d["s"]
        if e == "depthUpdate":
            return [BookDelta(int(d["T"]) * MS, d["s"], levels(d["b"]), levels(d["a"]), int(d["u"]), recv)]
        if e == "trade" or e == "aggTrade":
            if d.get("X", "MARKET") != "MARKET":
                raise _Skip(f"non-market trade ({d.get('X')})")
            trade_id = d["t"] if e == "trade" else d["a"]
            taker = "sell" if d["m"] else "buy"  # m: the buyer was the maker
            return [Trade(int(d["T"]) * MS, d["s"], taker, num(d["p"]), num(d["q"]), str(trade_id), recv)]
        if e == "bookTicker":
            return [
                Quote(
                    int(d["T"]) * MS,
                    d["s"],
                    num(d["b"]),
                    num(d["B"]),
                    num(d["a"]),
                    num(d["A"]),
                    int(d["u"]),
                    recv,
                )
            ]
        if e == "forceOrder":
            out = liquidations("binance", d, recv)
            if not out:
                raise _Skip("liquidation order with nothing filled")
            return out
        if e == "markPriceUpdate":
            return [
                Ticker(
                    int(d["E"]) * MS,
                    d["s"],
                    mark=num(d["p"]),
                    index=num(d["i"]) if d.get("i") else None,
                    funding_rate=num(d["r"]) if d.get("r") not in (None, "") else None,
                    next_funding_ts=int(d["T"]) * MS if d.get("T") else None,
                    recv_ts=recv,
                )
            ]
        raise _Skip(f"unsupported Binance event {e!r}")

    # -- Hyperliquid ---------------------------------------------------------------------------
    def _hyperliquid(self, msg: dict, recv: int) -> list[Any]:
        channel = msg["channel"]
        if channel == "l2Book":
            d = msg["data"]
            bids, asks = d["levels"]
            return [
                BookSnapshot(
                    int(d["time"]) * MS,
                    d["coin"],
                    [(num(x["px"]), num(x["sz"])) for x in bids],
                    [(num(x["px"]), num(x["sz"])) for x in asks],
                    0,
                    recv,
                )
            ]
        if channel == "trades":
            out = []
            for t in msg["data"]:
                if t["side"] not in ("A", "B"):
                    raise ValueError(f"bad side {t['side']!r}")
                out.append(
                    Trade(
                        int(t["time"]) * MS,
                        t["coin"],
                        "buy" if t["side"] == "B" else "sell",
                        num(t["px"]),
                        num(t["sz"]),
                        str(t.get("tid", "")),
                        recv,
                    )
                )
            return out
        raise _Skip(f"Hyperliquid channel {channel!r}")

    # -- Bybit ---------------------------------------------------------------------------------
    def _bybit_parse(self, msg: dict, recv: int) -> list[Any]:
        if self._bybit is None:
            from ..bybit_parse import BybitParser

            self._bybit = BybitParser()
        from ..bybit_parse import UnsupportedTopic

        try:
            out = self._bybit.parse(msg, recv)
        except UnsupportedTopic as exc:
            raise _Skip(f"Bybit topic {str(exc).partition('.')[0]!r}") from None
        if not out:
            raise _Skip("Bybit control message")
        return out
