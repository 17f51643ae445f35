"""Rolling statistics and the liquidation-cascade detector shared by strategies and views."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from .events import NS, Liquidation


class RollingQuantile:
    """The q-quantile of the last `size` values, refreshed on a schedule.

    Until `size` values have arrived the value is `seed` (a configured starting
    threshold). The first full window computes at once; after that the value is
    recomputed when `refresh_ns` has passed since the last computation, so the
    threshold is stable between refreshes (as the trading guide asks: P95 of the
    last 1,000 liquidations, recomputed hourly). numpy's default linear
    interpolation is used for the quantile.
    """

    __slots__ = ("q", "size", "refresh_ns", "seed", "_values", "_value", "_computed_ts", "_count")

    def __init__(self, q: float = 0.95, size: int = 1000, refresh_ns: int = 3600 * NS, seed: float = 0.0):
        if not 0.0 < q < 1.0:
            raise ValueError("q must be in (0, 1)")
        if size < 1:
            raise ValueError("size must be >= 1")
        self.q = q
        self.size = size
        self.refresh_ns = refresh_ns
        self.seed = seed
        self._values: deque[float] = deque(maxlen=size)
        self._value = seed
        self._computed_ts: int | None = None
        self._count = 0

    def add(self, value: float, ts: int) -> None:
        self._values.append(value)
        self._count += 1
        self.maybe_refresh(ts)

    def maybe_refresh(self, ts: int) -> bool:
        if len(self._values) < self.size:
            return False
        if self._computed_ts is not None and ts - self._computed_ts < self.refresh_ns:
            return False
        self._value = float(np.quantile(np.fromiter(self._values, float, len(self._values)), self.q))
        self._computed_ts = ts
        return True

    @property
    def value(self) -> float:
        return self._value

    @property
    def warm(self) -> bool:
        return self._computed_ts is not None

    @property
    def count(self) -> int:
        return self._count

    def snapshot(self) -> dict:
        return {"values": list(self._values), "value": self._value, "computed_ts": self._computed_ts,
                "count": self._count}

    def restore(self, state: dict) -> None:
        self._values = deque((float(v) for v in state.get("values", [])), maxlen=self.size)
        self._value = float(state.get("value", self.seed))
        self._computed_ts = state.get("computed_ts")
        self._count = int(state.get("count", len(self._values)))


@dataclass(slots=True)
class Cascade:
    """A run of large liquidations in one symbol."""

    symbol: str
    start_ts: int
    last_ts: int
    threshold: float
    count: int = 0
    long_count: int = 0
    short_count: int = 0
    long_notional: float = 0.0
    short_notional: float = 0.0
    fired_ts: int = 0  # when the count first reached the minimum (0: not a cascade)

    def add(self, liq: Liquidation) -> None:
        n = liq.notional
        if liq.side == "long":
            self.long_count += 1
            self.long_notional += n
        else:
            self.short_count += 1
            self.short_notional += n
        self.count += 1
        self.last_ts = liq.ts

    @property
    def notional(self) -> float:
        return self.long_notional + self.short_notional

    @property
    def duration_s(self) -> float:
        return (self.last_ts - self.start_ts) / NS

    @property
    def dominant(self) -> str:
        """long: longs were liquidated (price fell); short: shorts were (price spiked)."""
        return "long" if self.long_notional >= self.short_notional else "short"

    @property
    def is_cascade(self) -> bool:
        return self.fired_ts > 0


class CascadeDetector:
    """2+ liquidations at or above the threshold within `window_ns` of the first make a cascade.

    A qualifying liquidation with no open window opens one at its own time. The
    window is fixed (it does not slide): a member at exactly `window_ns` after the
    opener still belongs (inclusive edge); one later starts a new window.
    `on_liquidation` returns the Cascade once, at the moment it fires; later
    members keep updating that same object. Finished cascades are counted.
    """

    def __init__(self, symbol: str, window_ns: int = 60 * NS, min_count: int = 2):
        self.symbol = symbol
        self.window_ns = window_ns
        self.min_count = min_count
        self.current: Cascade | None = None
        self.fired = 0
        self.completed = 0
        self.total_duration_s = 0.0
        self.last_completed: Cascade | None = None

    def expire(self, now: int) -> Cascade | None:
        """Close the window if it is over; return the finished cascade, if it was one."""
        cur = self.current
        if cur is None or now - cur.start_ts <= self.window_ns:
            return None
        self.current = None
        if cur.is_cascade:
            self.completed += 1
            self.total_duration_s += cur.duration_s
            self.last_completed = cur
            return cur
        return None

    def on_liquidation(self, liq: Liquidation, threshold: float) -> Cascade | None:
        self.expire(liq.ts)
        if liq.notional < threshold:
            return None
        if self.current is None:
            self.current = Cascade(self.symbol, liq.ts, liq.ts, threshold)
        cur = self.current
        cur.add(liq)
        if not cur.is_cascade and cur.count >= self.min_count:
            cur.fired_ts = liq.ts
            self.fired += 1
            return cur
        return None

    @property
    def live_count(self) -> int:
        """Qualifying liquidations in the open window (for gauges)."""
        return self.current.count if self.current else 0

    @property
    def mean_duration_s(self) -> float:
        return self.total_duration_s / self.completed if self.completed else 0.0

    def snapshot(self) -> dict:
        c = self.current
        return {
            "fired": self.fired, "completed": self.completed, "total_duration_s": self.total_duration_s,
            "current": None if c is None else {
                "start_ts": c.start_ts, "last_ts": c.last_ts, "threshold": c.threshold, "count": c.count,
                "long_count": c.long_count, "short_count": c.short_count, "long_notional": c.long_notional,
                "short_notional": c.short_notional, "fired_ts": c.fired_ts},
        }

    def restore(self, state: dict) -> None:
        self.fired = int(state.get("fired", 0))
        self.completed = int(state.get("completed", 0))
        self.total_duration_s = float(state.get("total_duration_s", 0.0))
        c = state.get("current")
        self.current = None if c is None else Cascade(self.symbol, **c)


class Ewma:
    """Exponentially weighted mean with half-life in samples."""

    __slots__ = ("alpha", "value", "n")

    def __init__(self, halflife: float):
        self.alpha = 1.0 - 0.5 ** (1.0 / halflife)
        self.value = 0.0
        self.n = 0

    def update(self, x: float) -> float:
        self.value = x if self.n == 0 else self.value + self.alpha * (x - self.value)
        self.n += 1
        return self.value
