"""L2 order book kept from snapshots and deltas.

Rules (Bybit v5 orderbook semantics): a snapshot replaces the book; a delta
sets a level's size, a size of 0 deletes it, and deleting an unknown level is
ignored. Sequence checks (gaps in `u`, `u == 1` restarts) belong to the feed,
which decides when to resubscribe; the book just applies what it is given.
Best prices are cached and recomputed lazily after a change.
"""

from __future__ import annotations


class OrderBook:
    __slots__ = ("symbol", "_bids", "_asks", "_raw_bids", "_raw_asks", "ts", "update_id", "_best_bid",
                 "_best_ask", "_dirty")

    def __init__(self, symbol: str):
        self.symbol = symbol
        self._bids: dict[float, float] | None = {}
        self._asks: dict[float, float] | None = {}
        self._raw_bids: list = []
        self._raw_asks: list = []
        self.ts = 0
        self.update_id = 0
        self._best_bid: float | None = None
        self._best_ask: float | None = None
        self._dirty = False

    # A snapshot is kept as the lists it came in (best-first) and turned into
    # price->qty dicts only when something asks for levels: most snapshots are
    # replaced by the next one before anyone looks past the touch.
    @property
    def bids(self) -> dict[float, float]:
        if self._bids is None:
            self._bids = {p: q for p, q in self._raw_bids if q > 0}
        return self._bids

    @property
    def asks(self) -> dict[float, float]:
        if self._asks is None:
            self._asks = {p: q for p, q in self._raw_asks if q > 0}
        return self._asks

    def apply_snapshot(self, bids, asks, ts: int = 0, update_id: int = 0) -> None:
        self._raw_bids = bids
        self._raw_asks = asks
        self._bids = self._asks = None
        self.ts = ts
        self.update_id = update_id
        if bids and asks and bids[0][1] > 0 and asks[0][1] > 0:
            self._best_bid = bids[0][0]
            self._best_ask = asks[0][0]
            self._dirty = False
        else:
            self._dirty = True

    def apply_delta(self, bids, asks, ts: int = 0, update_id: int = 0) -> None:
        # Best prices are kept incrementally; only deleting the best level forces a rescan.
        if self._dirty:
            self._refresh()
        bid_map, ask_map = self.bids, self.asks
        bb, ba, dirty = self._best_bid, self._best_ask, False
        for p, q in bids:
            if q > 0:
                bid_map[p] = q
                if bb is None or p > bb:
                    bb = p
            elif bid_map.pop(p, None) is not None and p == bb:
                dirty = True
        for p, q in asks:
            if q > 0:
                ask_map[p] = q
                if ba is None or p < ba:
                    ba = p
            elif ask_map.pop(p, None) is not None and p == ba:
                dirty = True
        self._best_bid, self._best_ask, self._dirty = bb, ba, dirty
        self.ts = ts
        self.update_id = update_id

    def _refresh(self) -> None:
        self._best_bid = max(self.bids) if self.bids else None
        self._best_ask = min(self.asks) if self.asks else None
        self._dirty = False

    @property
    def best_bid(self) -> float | None:
        if self._dirty:
            self._refresh()
        return self._best_bid

    @property
    def best_ask(self) -> float | None:
        if self._dirty:
            self._refresh()
        return self._best_ask

    @property
    def mid(self) -> float | None:
        b, a = self.best_bid, self.best_ask
        return (b + a) / 2 if b is not None and a is not None else None

    @property
    def spread(self) -> float | None:
        b, a = self.best_bid, self.best_ask
        return a - b if b is not None and a is not None else None

    def size_at(self, side: str, price: float) -> float:
        """Displayed size at `price` on the bid ('buy') or ask ('sell') side."""
        return (self.bids if side == "buy" else self.asks).get(price, 0.0)

    def levels(self, side: str, n: int | None = None) -> list[tuple[float, float]]:
        """Levels best-first: side 'bid' or 'ask'."""
        if side == "bid":
            out = sorted(self.bids.items(), reverse=True)
        else:
            out = sorted(self.asks.items())
        return out if n is None else out[:n]

    def depth_within(self, side: str, bps: float) -> float:
        """Quote notional on one side within `bps` of the mid."""
        m = self.mid
        if m is None:
            return 0.0
        if side == "bid":
            lo = m * (1 - bps / 1e4)
            return sum(p * q for p, q in self.bids.items() if p >= lo)
        hi = m * (1 + bps / 1e4)
        return sum(p * q for p, q in self.asks.items() if p <= hi)

    def __len__(self) -> int:
        return len(self.bids) + len(self.asks)
