"""Bybit v5 messages -> engine events. Pure: no I/O, no clocks.

One parser serves the live feed, replay, `liqdesk inspect` and the importers,
so a recorded capture yields exactly the events the live feed produced.

Conventions (../shared/reference/bybit-v5.md §1):
* `allLiquidation` `S` is the side of the *position*: "Buy" means a long was
  liquidated. `p` is the bankruptcy price. `data` is a list (several per push).
* `publicTrade` `S` is the taker side.
* Orderbook: a `snapshot`, or any message with `u == 1` (service restart),
  replaces the book; deltas set sizes, size 0 deletes. Continuity of `u` is
  checked by `BookSequencer`, which the feeds use to decide on a resync.
* Ticker deltas carry only changed fields; a missing or "" field is "unchanged".
* Timestamps are ms in the messages and int ns in events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson

from ..events import BUY, LONG, SELL, SHORT, BookDelta, BookSnapshot, Liquidation, Ticker, Trade

MS = 1_000_000  # ns per ms

LIQUIDATED_SIDE = {"Buy": LONG, "Sell": SHORT}  # position side of the liquidated account
TAKER_SIDE = {"Buy": BUY, "Sell": SELL}

# Topic prefixes of the public stream we subscribe to, by the name feeds use for them.
TOPIC_KINDS = ("orderbook", "publicTrade", "tickers", "allLiquidation")


class MalformedMessage(ValueError):
    """A message that cannot be turned into events (bad JSON, missing or bad fields)."""


class UnsupportedTopic(ValueError):
    """A well-formed data message on a topic we do not parse (e.g. kline)."""


def decode(raw: bytes | str) -> dict:
    try:
        msg = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedMessage(f"not JSON: {exc}") from None
    if type(msg) is not dict:
        raise MalformedMessage(f"not a JSON object: {type(msg).__name__}")
    return msg


def opt_float(v: Any) -> float | None:
    """Bybit sends "" (or omits the field) for 'no value'."""
    if v is None or v == "":
        return None
    return float(v)


def opt_int(v: Any) -> int | None:
    if v is None or v == "":
        return None
    return int(v)


def symbol_of(topic: str) -> str:
    return topic.rpartition(".")[2]


def is_control(msg: dict) -> bool:
    """Acks, pongs and auth replies: they carry `op` and no `topic`."""
    return "topic" not in msg and "op" in msg


def is_pong(msg: dict) -> bool:
    op = msg.get("op")
    return op == "pong" or (op == "ping" and msg.get("ret_msg") == "pong")


class _BookData(msgspec.Struct):
    s: str
    b: list[tuple[float, float]]
    a: list[tuple[float, float]]
    u: int


class _BookMessage(msgspec.Struct):
    topic: str
    type: str
    ts: int
    data: _BookData


# Order-book frames are most of the stream: decode them straight into typed levels
# (strict=False turns Bybit's numeric strings into floats in C). Anything that does not
# fit this shape falls back to the general path, which decides what is wrong with it.
_BOOK_DECODER = msgspec.json.Decoder(_BookMessage, strict=False)
_BOOK_ERRORS = (msgspec.ValidationError, msgspec.DecodeError)


def _book_events(kind: str, ts: int, symbol: str, bids: list, asks: list, u: int, recv_ts: int) -> list:
    if kind == "snapshot":
        return [BookSnapshot(ts, symbol, bids, asks, u, recv_ts)]
    if kind != "delta":
        raise MalformedMessage(f"orderbook type {kind!r}")
    if u == 1:  # a restart snapshot: overwrite the book, best-first like any snapshot
        bids = sorted((lv for lv in bids if lv[1] > 0), reverse=True)
        asks = sorted(lv for lv in asks if lv[1] > 0)
        return [BookSnapshot(ts, symbol, bids, asks, u, recv_ts)]
    return [BookDelta(ts, symbol, bids, asks, u, recv_ts)]


class BybitParser:
    """Parses public-stream data messages; keeps the merged ticker of each symbol."""

    def __init__(self) -> None:
        self.tickers: dict[str, dict[str, Any]] = {}  # symbol -> merged ticker fields (raw strings)
        self._handlers = {
            "orderbook": self._book,
            "publicTrade": self._trades,
            "allLiquidation": self._all_liquidation,
            "liquidation": self._legacy_liquidation,
            "tickers": self._ticker,
        }

    def parse_raw(self, raw: bytes | str, recv_ts: int = 0) -> list:
        """Events of one raw frame (the fast path for book frames, else decode + parse)."""
        fast = self.parse_book_frame(raw, recv_ts)
        return fast[1] if fast is not None else self.parse(decode(raw), recv_ts)

    def parse_book_frame(self, raw: bytes | str, recv_ts: int = 0) -> tuple[str, list] | None:
        """(topic, events) if `raw` is a well-formed orderbook frame, else None (use `parse`)."""
        if '"orderbook.' not in raw[:64] if isinstance(raw, str) else b'"orderbook.' not in raw[:64]:
            return None
        try:
            m = _BOOK_DECODER.decode(raw)
        except _BOOK_ERRORS:
            return None
        d = m.data
        return m.topic, _book_events(m.type, m.ts * MS, d.s, d.b, d.a, d.u, recv_ts)

    def parse(self, msg: dict, recv_ts: int = 0) -> list:
        """Events of one message: [] for control messages, MalformedMessage / UnsupportedTopic otherwise."""
        topic = msg.get("topic")
        if topic is None:
            if "op" in msg:
                return []
            raise MalformedMessage("no topic and no op")
        if type(topic) is not str:
            raise MalformedMessage(f"topic is not a string: {topic!r}")
        handler = self._handlers.get(topic.partition(".")[0])
        if handler is None:
            raise UnsupportedTopic(topic)
        try:
            return handler(msg, recv_ts)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            if isinstance(exc, MalformedMessage):
                raise
            raise MalformedMessage(f"{topic}: {type(exc).__name__}: {exc}") from None

    # -- public topics ------------------------------------------------------------------------
    def _book(self, msg: dict, recv_ts: int) -> list:
        data = msg["data"]
        bids = [(float(p), float(q)) for p, q in data["b"]]
        asks = [(float(p), float(q)) for p, q in data["a"]]
        return _book_events(msg["type"], int(msg["ts"]) * MS, data["s"], bids, asks, int(data["u"]), recv_ts)

    def _trades(self, msg: dict, recv_ts: int) -> list:
        return [Trade(int(t["T"]) * MS, t["s"], TAKER_SIDE[t["S"]], float(t["p"]), float(t["v"]),
                      str(t.get("i", "")), recv_ts) for t in msg["data"]]

    def _all_liquidation(self, msg: dict, recv_ts: int) -> list:
        return [Liquidation(int(e["T"]) * MS, e["s"], LIQUIDATED_SIDE[e["S"]], float(e["p"]), float(e["v"]),
                            e["S"], recv_ts) for e in msg["data"]]

    def _legacy_liquidation(self, msg: dict, recv_ts: int) -> list:
        """The retired `liquidation.{symbol}` topic (one object per push), for old captures only."""
        data = msg["data"]
        rows = data if isinstance(data, list) else [data]
        return [Liquidation(int(e["updatedTime"]) * MS, e["symbol"], LIQUIDATED_SIDE[e["side"]],
                            float(e["price"]), float(e["size"]), e["side"], recv_ts) for e in rows]

    def _ticker(self, msg: dict, recv_ts: int) -> list:
        data = msg["data"]
        symbol = data.get("symbol") or symbol_of(msg["topic"])
        kind = msg.get("type", "snapshot")
        if kind == "snapshot" or symbol not in self.tickers:
            self.tickers[symbol] = {k: v for k, v in data.items() if v != ""}
        else:
            merged = self.tickers[symbol]
            for k, v in data.items():
                if v != "":
                    merged[k] = v
        ev = ticker_event(symbol, data, int(msg["ts"]) * MS, recv_ts)
        return [] if ev is None else [ev]


def ticker_event(symbol: str, data: dict, ts: int, recv_ts: int = 0) -> Ticker | None:
    """A Ticker from Bybit ticker fields (WS snapshot/delta or REST row); None if nothing we keep is set."""
    nft = opt_int(data.get("nextFundingTime"))
    ev = Ticker(
        ts=ts, symbol=symbol,
        mark=opt_float(data.get("markPrice")), index=opt_float(data.get("indexPrice")),
        open_interest=opt_float(data.get("openInterest")),
        funding_rate=opt_float(data.get("fundingRate")),
        next_funding_ts=None if not nft else nft * MS,
        funding_interval_h=opt_float(data.get("fundingIntervalHour")),
        last=opt_float(data.get("lastPrice")), recv_ts=recv_ts)
    if (ev.mark is None and ev.index is None and ev.open_interest is None and ev.funding_rate is None
            and ev.next_funding_ts is None and ev.funding_interval_h is None and ev.last is None):
        return None  # e.g. a delta that only moved bid1/ask1: nothing the engine keeps changed
    return ev


# ----------------------------------------------------------------------------------------------
# order book continuity
# ----------------------------------------------------------------------------------------------
class BookSequencer:
    """Per-symbol `u` continuity. A snapshot starts a run; each delta must carry the next `u`.

    `check` answers what to do with a book event: apply it, drop it as a duplicate
    (u not newer), or drop it because there is no valid base (before the first
    snapshot, or after a gap, until the next snapshot arrives).
    """

    APPLY = "apply"
    DUPLICATE = "duplicate"
    GAP = "gap"
    NO_BASE = "no_base"

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last: dict[str, int] = {}

    def check(self, ev: BookSnapshot | BookDelta) -> str:
        sym = ev.symbol
        if type(ev) is BookSnapshot:
            self.last[sym] = ev.update_id
            return self.APPLY
        last = self.last.get(sym)
        if last is None:
            return self.NO_BASE
        u = ev.update_id
        if u == last + 1:
            self.last[sym] = u
            return self.APPLY
        if u <= last:
            return self.DUPLICATE
        del self.last[sym]
        return self.GAP

    def reset(self, symbol: str | None = None) -> None:
        if symbol is None:
            self.last.clear()
        else:
            self.last.pop(symbol, None)


# ----------------------------------------------------------------------------------------------
# private stream (also the shape of the REST order/position lists)
# ----------------------------------------------------------------------------------------------
@dataclass(slots=True)
class ExchangeOrder:
    """One `order` entry: the full state of an order at Bybit."""

    order_id: str
    link_id: str
    symbol: str
    side: str  # buy | sell
    status: str  # Bybit orderStatus: New, PartiallyFilled, Untriggered, Filled, Cancelled, Rejected, ...
    reject_reason: str
    qty: float
    price: float | None
    cum_qty: float
    avg_price: float
    order_type: str
    time_in_force: str
    reduce_only: bool
    stop_order_type: str
    trigger_price: float | None
    ts: int


@dataclass(slots=True)
class Execution:
    """One `execution` entry: a fill (or a funding/ADL/bust/delivery event)."""

    exec_id: str
    order_id: str
    link_id: str
    symbol: str
    side: str
    price: float
    qty: float
    fee: float  # paid in quote; negative = rebate (Bybit's own sign)
    is_maker: bool
    exec_type: str
    stop_order_type: str
    ts: int


@dataclass(slots=True)
class ExchangePosition:
    symbol: str
    qty: float  # signed: > 0 long, < 0 short
    entry_price: float
    leverage: float
    mark: float | None
    liq_price: float | None
    unrealized: float
    take_profit: float | None
    stop_loss: float | None
    position_idx: int
    ts: int


@dataclass(slots=True)
class WalletState:
    ts: int
    equity: float
    wallet_balance: float
    available: float
    unrealized: float
    coins: dict[str, float] = field(default_factory=dict)  # coin -> equity


def _nonzero(v: Any) -> float | None:
    f = opt_float(v)
    return f if f else None


def parse_order(d: dict) -> ExchangeOrder:
    return ExchangeOrder(
        order_id=str(d["orderId"]), link_id=str(d.get("orderLinkId") or ""), symbol=d["symbol"],
        side=TAKER_SIDE[d["side"]], status=d["orderStatus"], reject_reason=str(d.get("rejectReason") or ""),
        qty=float(d["qty"]), price=_nonzero(d.get("price")), cum_qty=opt_float(d.get("cumExecQty")) or 0.0,
        avg_price=opt_float(d.get("avgPrice")) or 0.0, order_type=str(d.get("orderType") or ""),
        time_in_force=str(d.get("timeInForce") or ""), reduce_only=bool(d.get("reduceOnly")),
        stop_order_type=str(d.get("stopOrderType") or ""), trigger_price=_nonzero(d.get("triggerPrice")),
        ts=(opt_int(d.get("updatedTime")) or 0) * MS)


def parse_execution(d: dict) -> Execution:
    return Execution(
        exec_id=str(d["execId"]), order_id=str(d["orderId"]), link_id=str(d.get("orderLinkId") or ""),
        symbol=d["symbol"], side=TAKER_SIDE[d["side"]], price=float(d["execPrice"]), qty=float(d["execQty"]),
        fee=opt_float(d.get("execFee")) or 0.0, is_maker=bool(d.get("isMaker")),
        exec_type=str(d.get("execType") or "Trade"), stop_order_type=str(d.get("stopOrderType") or ""),
        ts=int(d["execTime"]) * MS)


def parse_position(d: dict) -> ExchangePosition:
    size = float(d["size"])
    side = d.get("side") or ""
    return ExchangePosition(
        symbol=d["symbol"], qty=-size if side == "Sell" else size if side == "Buy" else 0.0,
        entry_price=opt_float(d.get("entryPrice", d.get("avgPrice"))) or 0.0,
        leverage=opt_float(d.get("leverage")) or 0.0, mark=opt_float(d.get("markPrice")),
        liq_price=_nonzero(d.get("liqPrice")), unrealized=opt_float(d.get("unrealisedPnl")) or 0.0,
        take_profit=_nonzero(d.get("takeProfit")), stop_loss=_nonzero(d.get("stopLoss")),
        position_idx=int(d.get("positionIdx") or 0), ts=(opt_int(d.get("updatedTime")) or 0) * MS)


def parse_wallet(d: dict, ts: int) -> WalletState:
    return WalletState(
        ts=ts, equity=opt_float(d.get("totalEquity")) or 0.0,
        wallet_balance=opt_float(d.get("totalWalletBalance")) or 0.0,
        available=opt_float(d.get("totalAvailableBalance")) or 0.0,
        unrealized=opt_float(d.get("totalPerpUPL")) or 0.0,
        coins={c["coin"]: opt_float(c.get("equity")) or 0.0 for c in d.get("coin") or []})


PRIVATE_PARSERS = {"order": parse_order, "execution": parse_execution, "position": parse_position}


def parse_private(msg: dict) -> tuple[str, list]:
    """(kind, records) of a private-stream data message; kind is order/execution/position/wallet."""
    topic = msg.get("topic")
    if type(topic) is not str:
        raise MalformedMessage("private message without a topic")
    kind = topic.partition(".")[0]
    try:
        rows = msg["data"]
        if kind == "wallet":
            ts = int(msg.get("creationTime") or 0) * MS
            return kind, [parse_wallet(d, ts) for d in rows]
        fn = PRIVATE_PARSERS.get(kind)
        if fn is None:
            raise UnsupportedTopic(topic)
        return kind, [fn(d) for d in rows]
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        if isinstance(exc, (MalformedMessage, UnsupportedTopic)):
            raise
        raise MalformedMessage(f"{topic}: {type(exc).__name__}: {exc}") from None
