"""Typed market events. Every timestamp is int nanoseconds since the epoch.

`ts` is the exchange (or simulated) time; `recv_ts` the local receive time
(0 when unknown, e.g. synthetic data, where it equals `ts`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

NS = 1_000_000_000

LONG = "long"
SHORT = "short"
BUY = "buy"
SELL = "sell"


@dataclass(slots=True)
class Liquidation:
    """A forced close. `side` is the liquidated position's side (long/short).

    `raw_side` keeps the venue's own field (Bybit allLiquidation `S`: "Buy"
    means a long position was liquidated).
    """

    ts: int
    symbol: str
    side: str
    price: float
    qty: float
    raw_side: str = ""
    recv_ts: int = 0

    @property
    def notional(self) -> float:
        return self.price * self.qty


@dataclass(slots=True)
class Trade:
    """A public trade; `side` is the taker (aggressor) side, buy or sell."""

    ts: int
    symbol: str
    side: str
    price: float
    qty: float
    trade_id: str = ""
    recv_ts: int = 0

    @property
    def notional(self) -> float:
        return self.price * self.qty


@dataclass(slots=True)
class BookSnapshot:
    """Full L2 book: bids best-first (descending), asks best-first (ascending)."""

    ts: int
    symbol: str
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]
    update_id: int = 0
    recv_ts: int = 0


@dataclass(slots=True)
class BookDelta:
    """Changed levels; a qty of 0 deletes the level."""

    ts: int
    symbol: str
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]
    update_id: int = 0
    recv_ts: int = 0


@dataclass(slots=True)
class Ticker:
    """Mark/index/OI/funding. A field left as None means "unchanged"
    (Bybit ticker deltas carry only the fields that changed)."""

    ts: int
    symbol: str
    mark: float | None = None
    index: float | None = None
    open_interest: float | None = None  # in contracts (base units)
    funding_rate: float | None = None  # per funding interval, as a fraction
    next_funding_ts: int | None = None
    funding_interval_h: float | None = None
    last: float | None = None
    recv_ts: int = 0


@dataclass(slots=True)
class LongShortRatio:
    """Share of accounts long vs short (Bybit account-ratio buyRatio/sellRatio)."""

    ts: int
    symbol: str
    long_share: float
    short_share: float
    source: str = ""
    recv_ts: int = 0

    @property
    def ratio(self) -> float:
        return self.long_share / self.short_share if self.short_share > 0 else float("inf")


@dataclass(slots=True)
class Bar:
    """OHLCV bar; `ts` is the bar's close time, `interval_s` its length."""

    ts: int
    symbol: str
    interval_s: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    turnover: float = 0.0
    recv_ts: int = 0


@dataclass(slots=True)
class FundingRate:
    """A funding rate observed on another venue (funding-arbitrage service)."""

    ts: int
    symbol: str
    venue: str
    rate: float
    interval_h: float
    next_funding_ts: int = 0
    mark: float = 0.0
    open_interest_usd: float = 0.0
    recv_ts: int = 0


@dataclass(slots=True)
class Quote:
    """Best bid/offer from a top-of-book channel (Binance bookTicker, Tardis quotes).

    Kept apart from BookSnapshot so a quote never wipes a depth book built from diffs;
    a price of 0 with qty 0 means that side was empty.
    """

    ts: int
    symbol: str
    bid: float
    bid_qty: float
    ask: float
    ask_qty: float
    update_id: int = 0
    recv_ts: int = 0


@dataclass(slots=True)
class DepthBands:
    """Cumulative depth by distance from the mid (Binance bookDepth files).

    `bands` holds (percent from mid, cumulative qty, cumulative notional); negative
    percents are the bid side, positive the ask side.
    """

    ts: int
    symbol: str
    bands: list[tuple[float, float, float]]
    recv_ts: int = 0


MarketEvent = (Liquidation | Trade | BookSnapshot | BookDelta | Ticker | LongShortRatio | Bar | FundingRate
               | Quote | DepthBands)

EVENT_TYPES: tuple[type, ...] = (
    Liquidation,
    Trade,
    BookSnapshot,
    BookDelta,
    Ticker,
    LongShortRatio,
    Bar,
    FundingRate,
    Quote,
    DepthBands,
)

EVENT_TYPE_NAMES: dict[type, str] = {
    Liquidation: "liquidation",
    Trade: "trade",
    BookSnapshot: "book_snapshot",
    BookDelta: "book_delta",
    Ticker: "ticker",
    LongShortRatio: "long_short_ratio",
    Bar: "bar",
    FundingRate: "funding_rate",
    Quote: "quote",
    DepthBands: "depth_bands",
}


@dataclass(slots=True)
class FeedStatus:
    """Feed health for views: LIVE, STALE or RECONNECTING, per symbol/topic."""

    ts: int
    feed: str
    state: str
    symbol: str = ""
    topic: str = ""
    detail: str = ""
    counters: dict[str, int] = field(default_factory=dict)
