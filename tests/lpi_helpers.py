"""Hand-built markets for the LPI tests: every price, size and time is chosen here, no randomness.

`CraftedMarket` writes events on the 250 ms alpha grid of one symbol (ETHUSDT-like, tick 0.01):

* `calm(seconds)`: a 1-tick spread around a mid that wiggles by a tick, depth that cycles
  through a few sizes, one small trade per tick at the touch, and open interest updated
  every second with a small wiggle;
* `episode(seconds, kind)`: sell pressure: the mid drops 10 bps per tick, sells print at the
  new bid (beyond θ from the bid before the window), one long liquidation per tick, the
  spread widens to 10 ticks and depth thins; a "forced" episode flushes open interest
  (1% per second), an "informed" one does not (OI rises as new positions open);
* `recovery(seconds)`: the price stalls at the low, no impact trades, the spread stays wide
  while depth rebuilds a little every tick: LPI rolls over, liquidity reforms;
* `drift(seconds, per_tick)`: the mid moves a fixed amount per tick (a rebound, for markouts).
"""

from __future__ import annotations

from typing import Any

from engine.events import NS, BookSnapshot, Liquidation, Ticker, Trade

T0 = 1_736_121_600 * NS  # 2025-01-06 00:00 UTC, on the 250 ms grid
TICK_NS = 250_000_000
PRICE_TICK = 0.01


class CraftedMarket:
    def __init__(self, symbol: str = "ETHUSDT", mid: float = 2500.0, start_ns: int = T0):
        self.symbol = symbol
        self.mid = mid
        self.ts = start_ns
        self.k = 0  # ticks written
        self.oi = 1_000_000.0
        self.spread_ticks = 1
        self.depth = 10.0
        self.events: list[Any] = []

    # -- building blocks ------------------------------------------------------------------------
    def _book(self, ts: int) -> BookSnapshot:
        half = self.spread_ticks * PRICE_TICK / 2
        bid = round(self.mid - half, 2)
        ask = round(bid + self.spread_ticks * PRICE_TICK, 2)
        sizes = [self.depth * (1.0 + 0.1 * ((self.k + i) % 3)) for i in range(10)]
        bids = [(round(bid - i * PRICE_TICK, 2), sizes[i]) for i in range(10)]
        asks = [(round(ask + i * PRICE_TICK, 2), sizes[i]) for i in range(10)]
        return BookSnapshot(ts, self.symbol, bids, asks)

    def _tick(self, trades: list[tuple[str, float, float]], liq_usd: float = 0.0) -> None:
        """One alpha tick: trades and liquidations inside the window, then the book at its end."""
        start = self.ts
        for i, (side, price, qty) in enumerate(trades):
            self.events.append(Trade(start + (i + 1) * 10_000_000, self.symbol, side, price, qty))
        if liq_usd:
            qty = liq_usd / self.mid
            self.events.append(Liquidation(start + 50_000_000, self.symbol, "long", self.mid, qty))
        self.ts = start + TICK_NS
        self.events.append(self._book(self.ts - 1_000_000))
        if self.k % 4 == 3:
            self.events.append(Ticker(self.ts - 500_000, self.symbol, mark=self.mid, open_interest=self.oi,
                                      funding_rate=0.0001))
        self.k += 1

    def bid(self) -> float:
        return round(self.mid - self.spread_ticks * PRICE_TICK / 2, 2)

    # -- phases -----------------------------------------------------------------------------------
    def calm(self, seconds: float) -> CraftedMarket:
        for _ in range(int(seconds * 4)):
            self.mid = round(self.mid + (PRICE_TICK if self.k % 2 else -PRICE_TICK), 2)
            self.spread_ticks = 1
            self.oi += (-30.0, 10.0, 40.0, -20.0, 0.0)[self.k % 5]
            side = "buy" if self.k % 2 else "sell"
            self._tick([(side, self.bid() if side == "sell" else self.bid() + PRICE_TICK, 0.2)])
        return self

    def episode(self, seconds: float, kind: str = "forced") -> CraftedMarket:
        for _ in range(int(seconds * 4)):
            self.mid = round(self.mid * (1 - 0.001), 2)
            self.spread_ticks = 10
            self.depth = 3.0
            self.oi += -2_500.0 if kind == "forced" else 1_500.0
            bid = self.bid()
            self._tick([("sell", bid, 4.0), ("sell", bid, 4.0)], liq_usd=20_000.0)
        return self

    def recovery(self, seconds: float) -> CraftedMarket:
        for _ in range(int(seconds * 4)):
            self.depth *= 1.02
            self._tick([])
        return self

    def drift(self, seconds: float, per_tick: float) -> CraftedMarket:
        """The book as it is, the mid moving `per_tick` USD a tick (a rebound when positive)."""
        for _ in range(int(seconds * 4)):
            self.mid = round(self.mid + per_tick, 2)
            self._tick([])
        return self

    def take(self) -> list[Any]:
        out, self.events = self.events, []
        return out
