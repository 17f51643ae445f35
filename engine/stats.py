"""Rolling statistics and the liquidation-cascade detector shared by strategies and views."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from .events import NS, Liquidation

_floor, _asinh = math.floor, math.asinh


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


class RollingMedianMad:
    """Rolling median and MAD of the last `window` values in O(1) amortized time per update.

    A streaming approximation on a fixed grid: each value is rounded to the nearest
    grid point floor * sinh(k * step), k an integer (relative spacing `step` for
    |x| >> floor, absolute ~ floor * step near zero, and 0 maps to exactly 0);
    `bins` grid points cover |x| up to floor * sinh(step * bins / 2), beyond which
    values clamp to the outermost points.
    Rounding is monotone, so the median and MAD reported are *exactly* numpy's
    median and MAD of the rounded values (even counts average the two middle
    values, as numpy does). Each value moves by at most
    delta(x) = step/2 * exp(step/2) * (floor + |x|), so with M and D the true
    median and MAD of the window (both middle values of an even count lie within
    D of M, and a deviation above D moves by at most its own share of delta):

        |median - M| <= delta(|M| + D)
        |MAD - D|    <= 2 delta(|M| + D)

    With the default step of 0.01 that is 0.5% and 1% of |M| + D (plus 1e-14).
    tests/test_lpi_stats.py checks both the exactness and the bound against numpy.

    The window is a ring of bin indices (2 bytes per sample: 345,600 samples = 691 KB).
    Per update: one asinh, two counter changes and short pointer walks: the median
    bin and the MAD band [lo, hi] move only as far as the distribution moved,
    jumping over empty bins with bit masks (one per 64 bins, one over the blocks).
    """

    _grids: dict[tuple[float, float, int], list[float]] = {}

    __slots__ = ("window", "step", "floor", "bins", "_half", "_rep", "_counts", "_bits", "_ring", "_pos",
                 "_inv_floor", "_inv_step", "n", "_mb", "_below", "_sum", "_sum_below", "_lo", "_hi", "_inc",
                 "_since_resum", "_resum_at",
                 "_med", "_mad", "_scale", "_fresh", "_bmask", "_d1", "_d2", "_swap_in", "_swap_out", "_band_ok")

    def __init__(self, window: int, step: float = 0.01, floor: float = 1e-12, bins: int = 16384):
        if window < 1:
            raise ValueError("window must be >= 1")
        if not 0 < step <= 0.5 or floor <= 0:
            raise ValueError("step must be in (0, 0.5] and floor > 0")
        if bins < 128 or bins > 65536 or bins % 64:
            raise ValueError("bins must be a multiple of 64 in [128, 65536]")
        from array import array
        self.window = int(window)
        self.step = float(step)
        self.floor = float(floor)
        self.bins = int(bins)
        self._half = bins // 2
        self._inv_floor, self._inv_step = 1.0 / self.floor, 1.0 / self.step
        key = (self.step, self.floor, self.bins)
        rep = self._grids.get(key)
        if rep is None:
            rep = [floor * math.sinh((i - self._half) * step) for i in range(bins)]
            self._grids[key] = rep
        self._rep = rep
        self._counts = [0] * bins
        self._bits = [0] * (bins >> 6)  # per block of 64 bins: bit j set = bin 64 b + j has values
        self._bmask = 0  # bit b set: block b has values
        self._ring = array("H", bytes(2 * self.window))
        self._pos = 0
        self.n = 0
        self._mb = self._half  # bin holding the lower median (rank (n-1)//2)
        self._below = 0  # values in bins below _mb
        self._sum = 0.0  # sum of rounded values
        self._sum_below = 0.0  # sum of rounded values below _mb
        self._lo = self._hi = self._half  # the MAD band: every bin whose deviation is <= its edges'
        self._inc = 0  # values inside [lo, hi]
        self._since_resum = 0
        self._resum_at = max(self.window, 4096)  # adds between exact re-sums of the running sums
        self._med = 0.0
        self._mad = 0.0
        self._scale = 0.0
        self._d1 = self._d2 = 0.0  # the need-th and next deviation behind the MAD
        # (new bin, evicted bin) of the one add since a refresh; evicted -1: none, or more than one add
        self._swap_in = self._swap_out = -1
        self._band_ok = False  # the band holds every value within its radius (see _refresh)
        self._fresh = True

    # -- grid ---------------------------------------------------------------------------------------
    def bin_of(self, x: float) -> int:
        """Index of the grid point nearest to `x` (clamped to the outermost ones)."""
        i = math.floor(math.asinh(x * self._inv_floor) * self._inv_step + 0.5) + self._half
        return 0 if i < 0 else self.bins - 1 if i >= self.bins else i

    def rounded(self, x: float) -> float:
        """The grid value that stands for `x` in the window."""
        return self._rep[self.bin_of(x)]

    def _next_above(self, i: int) -> int:
        """Smallest non-empty bin > i, or -1."""
        b = i >> 6
        m = self._bits[b] >> ((i & 63) + 1)
        if m:
            return i + (m & -m).bit_length()
        m = self._bmask >> (b + 1)
        if not m:
            return -1
        b += (m & -m).bit_length()
        m = self._bits[b]
        return (b << 6) + (m & -m).bit_length() - 1

    def _next_below(self, i: int) -> int:
        """Largest non-empty bin < i, or -1."""
        b = i >> 6
        m = self._bits[b] & ((1 << (i & 63)) - 1)
        if m:
            return (b << 6) + m.bit_length() - 1
        m = self._bmask & ((1 << b) - 1)
        if not m:
            return -1
        b = m.bit_length() - 1
        return (b << 6) + self._bits[b].bit_length() - 1

    # -- updates ------------------------------------------------------------------------------------
    def add(self, x: float) -> None:
        """Append `x` (dropping the oldest value once the window is full). NaN/inf are ignored."""
        if x - x != 0.0:  # NaN or ±inf
            return
        # bin_of, inlined (this is the per-tick hot path); 0 is the middle bin (asinh(0) = 0)
        if x == 0.0:
            i = self._half
        else:
            i = _floor(_asinh(x * self._inv_floor) * self._inv_step + 0.5) + self._half
            if i < 0:
                i = 0
            elif i >= self.bins:
                i = self.bins - 1
        ring, pos = self._ring, self._pos
        nxt = pos + 1
        window = self.window
        if nxt == window:
            nxt = 0
        counts = self._counts
        n = self.n
        if n == window:
            out = ring[pos]
            if out == i:  # the value leaving shares the new one's bin: nothing else changes
                self._pos = nxt
                return
            c_out, c_in = counts[out] - 1, counts[i] + 1
            if c_out and c_in > 1:  # the usual case, _change(out, -1) and _change(i, 1) inlined:
                counts[out], counts[i] = c_out, c_in  # no bin turns empty or non-empty, so no masks move
                rep, mb, lo, hi = self._rep, self._mb, self._lo, self._hi
                r_out, r_in = rep[out], rep[i]
                self._sum += r_in - r_out
                if out < mb:
                    self._below -= 1
                    self._sum_below -= r_out
                if i < mb:
                    self._below += 1
                    self._sum_below += r_in
                self._inc += (lo <= i <= hi) - (lo <= out <= hi)
            else:
                self._change(out, -1)
                self._change(i, 1)
        else:
            out = -1
            n = self.n = n + 1
            self._change(i, 1)
        if self._fresh:
            self._swap_in, self._swap_out = i, out
            self._fresh = False
        else:
            self._swap_out = -1
        ring[pos] = i
        self._pos = nxt
        # the lower median's bin moves only when the rank (n-1)//2 left it
        below = self._below
        k = (n - 1) >> 1
        if below > k or below + counts[self._mb] <= k:
            self._fix_median()
        since = self._since_resum = self._since_resum + 1
        if since >= self._resum_at:
            self._resum()

    def _change(self, i: int, d: int) -> None:
        counts = self._counts
        c = counts[i] + d
        counts[i] = c
        if c == (1 if d > 0 else 0):  # the bin turned non-empty / empty
            b = i >> 6
            bits = self._bits
            bit = 1 << (i & 63)
            m = bits[b] ^ bit
            bits[b] = m
            if m == 0 or m == bit:  # so did its block
                self._bmask ^= 1 << b
        r = self._rep[i]
        if d > 0:
            self._sum += r
            if i < self._mb:
                self._below += 1
                self._sum_below += r
        else:
            self._sum -= r
            if i < self._mb:
                self._below -= 1
                self._sum_below -= r
        if self._lo <= i <= self._hi:
            self._inc += d

    def _fix_median(self) -> None:
        counts, rep = self._counts, self._rep
        k = (self.n - 1) // 2
        mb, below, sb = self._mb, self._below, self._sum_below
        while below > k:
            mb = self._next_below(mb)
            below -= counts[mb]
            sb -= counts[mb] * rep[mb]
        while below + counts[mb] <= k:
            below += counts[mb]
            sb += counts[mb] * rep[mb]
            mb = self._next_above(mb)
        self._mb, self._below, self._sum_below = mb, below, sb

    def _resum(self) -> None:
        """Recompute the running sums exactly (they drift by float rounding otherwise)."""
        rep, counts = self._rep, self._counts
        self._sum = math.fsum(c * rep[i] for i, c in enumerate(counts) if c)
        self._sum_below = math.fsum(counts[i] * rep[i] for i in range(self._mb) if counts[i])
        self._since_resum = 0

    # -- queries ------------------------------------------------------------------------------------
    def _refresh(self) -> None:
        self._fresh = True
        n = self.n
        if n == 0:
            self._med = self._mad = self._scale = 0.0
            return
        counts, rep = self._counts, self._rep
        mb = self._mb
        upper = mb if (n % 2 or self._below + counts[mb] > n // 2) else self._next_above(mb)
        med = rep[mb] if upper == mb else 0.5 * (rep[mb] + rep[upper])
        s_out = self._swap_out
        if s_out >= 0 and med == self._med:
            # One value replaced another and the median stayed: if both deviations sit on the same
            # side of the MAD's (need-th, next) pair, the MAD stays too (the band repairs itself later).
            s_in = self._swap_in
            dx, dy = abs(rep[s_in] - med), abs(rep[s_out] - med)
            d1, d2 = self._d1, self._d2
            # The band [lo, hi] holds every value whose deviation is within its radius d (as `_band`
            # leaves it) unless a new value fell in a bin outside it but within d; `_change` keeps its
            # count current.
            lo, hi, inc = self._lo, self._hi, self._inc
            dl, dh = med - rep[lo], rep[hi] - med
            d = dl if dl > dh else dh
            whole = self._band_ok = self._band_ok and (lo <= s_in <= hi or dx > d)
            if (dx < d1 and dy < d1) or (dx > d2 and dy > d2):
                if self._mad <= 0.0:  # else the scale is still 1.4826 MAD, as the last refresh left it
                    self._scale = 1.2533 * self.mean_abs_dev()
                return
            # One side of the pair each: while the band is whole, the MAD is d if the need-th (for an
            # even count also the next) smallest deviation sits in the edge bins at d, as `_band` finds.
            if whole:
                at_d = (counts[lo] if dl == d else 0) + (counts[hi] if dh == d and hi != lo else 0)
                need = (n - 1) // 2 + 1
                if inc - at_d < need and need + (1 - n % 2) <= inc:
                    self._mad = self._d1 = self._d2 = d
                    self._scale = 1.4826 * d if d > 0.0 else 1.2533 * self.mean_abs_dev()
                    return
        self._med = med
        self._mad = self._band(med, (n - 1) // 2 + 1, n % 2 == 0)
        self._scale = 1.4826 * self._mad if self._mad > 0.0 else 1.2533 * self.mean_abs_dev()

    def _band(self, med: float, need: int, even: bool) -> float:
        """The need-th smallest |x - med| (averaged with the next one if `even`), moving the band."""
        counts, rep = self._counts, self._rep
        lo, hi, inc = self._lo, self._hi, self._inc
        if inc <= 0:  # band emptied: restart it at the median bin
            lo = hi = self._mb
            inc = counts[lo]
        # Edges sit on non-empty bins.
        if not counts[lo]:
            lo = self._next_above(lo)
        if not counts[hi]:
            hi = self._next_below(hi)
        while True:
            dl, dh = med - rep[lo], rep[hi] - med
            d = dl if dl > dh else dh
            # repair: take in outside bins whose deviation is within the band's
            a = self._next_above(hi)
            if a >= 0 and rep[a] - med <= d:
                hi = a
                inc += counts[a]
                continue
            b = self._next_below(lo)
            if b >= 0 and med - rep[b] <= d:
                lo = b
                inc += counts[b]
                continue
            if inc < need:  # grow by the nearer outside bin
                if a < 0 or (b >= 0 and med - rep[b] <= rep[a] - med):
                    lo = b
                    inc += counts[b]
                else:
                    hi = a
                    inc += counts[a]
                continue
            # shrink: drop the farthest edge(s) while enough values remain
            drop = 0
            if lo < hi:
                if dl >= dh:
                    drop += counts[lo]
                if dh >= dl:
                    drop += counts[hi]
            if drop and inc - drop >= need:
                if dl >= dh:
                    lo = self._next_above(lo)
                if dh >= dl:
                    hi = self._next_below(hi)
                inc -= drop
                continue
            break
        self._lo, self._hi, self._inc = lo, hi, inc
        self._band_ok = True
        dl, dh = med - rep[lo], rep[hi] - med
        d = dl if dl > dh else dh
        self._d1 = self._d2 = d
        if not even or inc > need:
            return d
        a, b = self._next_above(hi), self._next_below(lo)
        nxt = min(rep[a] - med if a >= 0 else math.inf, med - rep[b] if b >= 0 else math.inf)
        if nxt == math.inf:
            return d
        self._d2 = nxt
        return 0.5 * (d + nxt)

    @property
    def median(self) -> float:
        if not self._fresh:
            self._refresh()
        return self._med

    @property
    def mad(self) -> float:
        if not self._fresh:
            self._refresh()
        return self._mad

    def mean_abs_dev(self) -> float:
        """Mean |x - median| of the rounded window (the scale used when MAD is 0)."""
        n = self.n
        if n == 0:
            return 0.0
        med = self.median
        counts, rep, mb = self._counts, self._rep, self._mb
        below, sb = self._below, self._sum_below
        c_mb = counts[mb]
        above = n - below - c_mb
        s_above = self._sum - sb - c_mb * rep[mb]
        total = (med * below - sb) + (s_above - med * above) + c_mb * abs(rep[mb] - med)
        return max(total, 0.0) / n

    def scale(self) -> float:
        """Robust sigma: 1.4826 MAD, or 1.2533 x mean absolute deviation when the MAD is 0."""
        if not self._fresh:
            self._refresh()
        return self._scale

    def zscore(self, x: float, eps: float = 1e-12, clip: float = math.inf) -> float:
        """(x - median) / (scale + eps) over the window (not counting x), |z| clipped to `clip`."""
        if self.n == 0 or x != x:
            return 0.0
        if not self._fresh:
            self._refresh()
        diff = x - self._med
        if diff == 0.0:
            return 0.0
        z = diff / (self._scale + eps)
        return clip if z > clip else -clip if z < -clip else z

    def update(self, x: float, eps: float = 1e-12, clip: float = math.inf) -> float:
        """z-score of `x` against the window before it, then add `x` (zscore + add, inlined)."""
        z = 0.0
        if self.n and x == x:
            if not self._fresh:
                mb = self._mb
                if x == self._rep[mb] and (self.n & 1 or self._below + self._counts[mb] > self.n >> 1):
                    self.add(x)  # x is the median (a zero-heavy feature's 0): z = 0 without the MAD
                    return 0.0
                self._refresh()
            diff = x - self._med
            if diff != 0.0:
                z = diff / (self._scale + eps)
                z = clip if z > clip else -clip if z < -clip else z
        self.add(x)
        return z


class RollingMean:
    """Mean of the last `window` values with a running sum (re-summed once per window against drift).

    The re-sum comes each time the write position wraps to the start of the ring, i.e. after every
    `window` adds, when the ring is full."""

    __slots__ = ("window", "_ring", "_pos", "n", "total")

    def __init__(self, window: int):
        if window < 1:
            raise ValueError("window must be >= 1")
        self.window = int(window)
        self._ring = [0.0] * self.window
        self._pos = 0
        self.n = 0
        self.total = 0.0

    def add(self, x: float) -> None:
        pos, ring = self._pos, self._ring
        if self.n == self.window:
            self.total += x - ring[pos]
        else:
            self.n += 1
            self.total += x
        ring[pos] = x
        pos += 1
        if pos == self.window:
            self._pos = 0
            self.total = math.fsum(ring)
        else:
            self._pos = pos

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0
