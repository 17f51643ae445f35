"""Liquidity Pressure Index features (the LPI design document, section 2; docs/strategies/lpi.md).

Sampled on alpha ticks of Δ (250 ms by default): tick k covers trades in (t_k − Δ, t_k]
and sees the book as it stands at t_k. Each tick yields, for the sell side (pressure
down: impact sells into bid depth) and its mirror, the buy side (impact buys into ask
depth, short squeezes):

* mid m, spread s, microprice; r = ln(m_t / m_{t−Δ});
* D(η): base quantity within η of the touch (bids at or above b·(1 − η));
* V_impact: aggressor value beyond the touch of the window start, b_{t−}·(1 − θ);
* ADV$: trailing average dollar volume per second;
* ΔOI = OI_{t−Δ_OI} − OI_t at OI updates (Δ_OI = `oi_lag_s`, in whole update intervals); when OI is
  sparse, the drop from an exponentially smoothed OI, measured at update times;
* FSI = V_impact / (ADV$·Δ) · g(ΔOI), g = 1 + κ·tanh(ΔOI / σ_ΔOI);
* LDR = (s/m) / (D(η) / mean D(η));
* Π = |r| / (V$ + ε), ε = `impact_eps_adv_ticks` ticks of ADV$ (at least 1 USD);
* robust z-scores over a trailing window W (the current value is scored against the
  window before it), and LPI = w1·z(FSI) + w2·z(LDR) + w3·z(Π).

The pure functions below are the formulas; `LpiFeatures` keeps one symbol's windows.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import deque
from itertools import islice
from operator import itemgetter
from typing import TYPE_CHECKING, NamedTuple

from .events import NS
from .stats import RollingMean, RollingMedianMad

if TYPE_CHECKING:
    from .book import OrderBook
    from .config import LpiParams

BPS = 1e-4
OI_WARM_UPDATES = 5  # OI updates seen before the OI update rate (and the z(ΔOI) window) is set
OI_HISTORY = 1000  # OI updates kept for the lag (Δ_OI is at most this many updates)
CATCHUP_TICKS = 240  # a feed gap longer than this many ticks is not filled with empty ticks
_NONE: tuple = ()  # `advance` when no tick is due
_QTY = itemgetter(1)
_PRICE = itemgetter(0)


def _neg_price(level: tuple[float, float]) -> float:
    return -level[0]



# ------------------------------------------------------------------------------------------------
# the formulas
# ------------------------------------------------------------------------------------------------
def mid_spread(bid: float, ask: float) -> tuple[float, float]:
    return (bid + ask) / 2.0, ask - bid


def microprice(bid: float, bid_qty: float, ask: float, ask_qty: float) -> float:
    """(a·Q_bid + b·Q_ask) / (Q_bid + Q_ask): leans towards the side with less size."""
    total = bid_qty + ask_qty
    return (ask * bid_qty + bid * ask_qty) / total if total > 0 else (bid + ask) / 2.0


def band_depth(levels, touch: float, eta: float, side: str, best_first: bool = False) -> float:
    """D(η): summed quantity of the levels within η of the touch ('bid': p >= b(1−η), 'ask': p <= a(1+η)).

    `best_first`: `levels` is a list sorted from the touch outwards (a snapshot), so the band is a
    prefix of it."""
    bid = side == "bid"
    lim = touch * (1.0 - eta) if bid else touch * (1.0 + eta)
    if best_first and levels:
        last = levels[-1][0]
        if (last >= lim) if bid else (last <= lim):  # the whole snapshot is inside the band
            return sum(map(_QTY, levels))
        k = bisect_right(levels, -lim, key=_neg_price) if bid else bisect_right(levels, lim, key=_PRICE)
        return sum(map(_QTY, islice(levels, k)))
    if bid:
        return sum(q for p, q in levels if p >= lim)
    return sum(q for p, q in levels if p <= lim)


def oi_amplifier(d_oi: float, sigma_d_oi: float, kappa: float) -> float:
    """g(ΔOI) = 1 + κ·tanh(ΔOI / σ_ΔOI): bounded in [1 − κ, 1 + κ]; 1 while σ is unknown."""
    if sigma_d_oi <= 0.0:
        return 1.0
    return 1.0 + kappa * math.tanh(d_oi / sigma_d_oi)


def forced_intensity(v_impact: float, adv_per_s: float, dt_s: float, g: float) -> float:
    """FSI = V_impact / (ADV$·Δ) · g; 0 while there is no dollar-volume history."""
    base = adv_per_s * dt_s
    return v_impact / base * g if base > 0.0 else 0.0


def depletion_ratio(spread: float, mid: float, depth: float, mean_depth: float) -> float:
    """LDR = (s/m) / (D / mean D): a wide relative spread over unusually thin depth."""
    if mid <= 0.0:
        return 0.0
    rel_depth = depth / mean_depth if mean_depth > 0.0 else 1.0
    return (spread / mid) / max(rel_depth, 1e-9)


def impact_per_dollar(r: float, dollar_volume: float, eps: float) -> float:
    """Π = |r| / (V$ + ε): price moved per dollar traded (a toxicity proxy)."""
    return abs(r) / (dollar_volume + eps)


def lpi_index(z_fsi: float, z_ldr: float, z_pi: float, w_fsi: float = 0.5, w_ldr: float = 0.3,
              w_pi: float = 0.2) -> float:
    return w_fsi * z_fsi + w_ldr * z_ldr + w_pi * z_pi


# ------------------------------------------------------------------------------------------------
# one symbol's streaming features
# ------------------------------------------------------------------------------------------------
class SidePressure(NamedTuple):
    """One side's features at a tick: 'sell' (pressure down, bid depth) or 'buy' (up, ask depth).

    `LpiTick` and this are named tuples, not dataclasses: one is built per side and tick for every symbol,
    and a tuple is made in one C call where a slotted dataclass's `__init__` sets each field in Python
    (BENCHMARKS.md, LPI). They are read-only records."""

    side: str
    v_impact: float
    fsi: float
    depth: float
    ldr: float
    z_fsi: float
    z_ldr: float
    lpi: float
    liq_usd: float  # liquidated notional on this side within `liq_spike_window_s`


class LpiTick(NamedTuple):
    ts: int
    price: float  # mid, or the microprice when `use_microprice`
    mid: float
    spread: float
    micro: float
    bid: float
    ask: float
    r: float
    sigma: float  # realized volatility over `vol_window_s` (sqrt of summed r²), a fraction
    dollar_volume: float
    adv_per_s: float
    pi: float
    z_pi: float
    d_oi: float
    z_oi: float
    oi_sparse: bool
    warm: bool  # the z windows hold `robust_min_samples` samples
    funding_rate: float | None
    sell: SidePressure
    buy: SidePressure

    def pressure(self, side: str) -> SidePressure:
        return self.sell if side == "sell" else self.buy


class LpiFeatures:
    """Features of one symbol. Feed it events in time order, calling `advance(ts)` before each.

    `advance` closes every alpha tick that ended before `ts` and returns them; `on_book`,
    `on_trade`, `on_ticker` and `on_liquidation` then record the event itself.
    """

    def __init__(self, params: LpiParams):
        p = self.p = params
        self.tick_ns = int(p.tick_ms * 1_000_000)
        self.dt_s = self.tick_ns / NS
        self.eta = p.depth_band_bps * BPS
        self.theta = p.impact_threshold_bps * BPS
        ticks_per_s = 1.0 / self.dt_s
        self.window = max(int(p.robust_window_h * 3600 * ticks_per_s), 10)
        self.min_samples = min(p.robust_min_samples, self.window)
        self.clip = p.z_clip if p.z_clip > 0 else math.inf
        # parameters read on every tick, as plain attributes (`_close` is the hot path)
        self._tick_params = (p.use_microprice, p.impact_eps_adv_ticks, p.w_pi)
        self.w_fsi, self.w_ldr = p.w_fsi, p.w_ldr
        self.z_fsi = (RollingMedianMad(self.window), RollingMedianMad(self.window))  # sell, buy
        self.z_ldr = (RollingMedianMad(self.window), RollingMedianMad(self.window))
        self.z_pi = RollingMedianMad(self.window)
        self.adv = RollingMean(max(int(p.adv_window_s * ticks_per_s), 1))
        self.depth_mean = (RollingMean(max(int(p.depth_mean_window_s * ticks_per_s), 1)),
                           RollingMean(max(int(p.depth_mean_window_s * ticks_per_s), 1)))
        self.rv = RollingMean(max(int(p.vol_window_s * ticks_per_s), 1))
        self.next_tick = 0  # end of the open window (ns); 0 until the first event
        # the book as of the last book event
        self.bid = self.ask = self.bid_qty = self.ask_qty = 0.0
        self.depth_bid = self.depth_ask = 0.0
        self.has_book = False
        # the touch at the start of the open window (b_{t−}, a_{t−})
        self.ref_bid = self.ref_ask = 0.0
        self.prev_price = 0.0
        # the open window's trades
        self.v_sell = self.v_buy = self.v_dollar = 0.0
        self.trades = 0
        # open interest
        self.oi_last: float | None = None
        self.oi_last_ts = 0
        self.oi_updates = 0
        self.oi_intervals: list[float] = []
        self.oi_interval_s = 0.0
        self.oi_history: deque[float] = deque(maxlen=OI_HISTORY + 1)
        self.oi_lag = 0  # Δ_OI in updates, set once the update rate is known
        self.oi_sparse = False  # OI updates further apart than `oi_sparse_after_s`
        self.oi_smooth = 0.0
        self.oi_alpha = 1.0 - 0.5 ** (1.0 / p.oi_ewma_halflife_updates)
        self.z_doi: RollingMedianMad | None = None
        self.d_oi = 0.0
        self.z_oi = 0.0
        self.g = 1.0  # g(ΔOI), set at OI updates
        self.funding_rate: float | None = None
        # liquidations by side within the spike window
        self.liq_window_ns = int(p.liq_spike_window_s * NS)
        self.liqs: deque[tuple[int, int, float]] = deque()  # (ts, side 0 sell-pressure / 1 buy, notional)
        self.liq_sum = [0.0, 0.0]
        self.ticks = 0
        self.last: LpiTick | None = None

    # -- events ------------------------------------------------------------------------------------
    def on_book(self, book: OrderBook) -> None:
        """Record the book after a delta (reads the touch and the η bands from the book's levels)."""
        b, a = book.best_bid, book.best_ask
        if b is None or a is None:
            self.has_book = False
            return
        self._set_book(b, book.bids[b], a, book.asks[a], band_depth(book.bids.items(), b, self.eta, "bid"),
                       band_depth(book.asks.items(), a, self.eta, "ask"))

    def on_levels(self, bids: list[tuple[float, float]], asks: list[tuple[float, float]]) -> None:
        """Record a full snapshot given best-first levels (cheaper than reading an OrderBook)."""
        if not bids or not asks:
            self.has_book = False
            return
        b, bq = bids[0]
        a, aq = asks[0]
        eta = self.eta
        self._set_book(b, bq, a, aq, band_depth(bids, b, eta, "bid", best_first=True),
                       band_depth(asks, a, eta, "ask", best_first=True))

    def _set_book(self, b: float, bq: float, a: float, aq: float, depth_bid: float, depth_ask: float) -> None:
        if not (0.0 < b < math.inf and 0.0 < a < math.inf):  # no usable touch: keep the last good book
            return
        self.bid, self.bid_qty, self.ask, self.ask_qty = b, bq, a, aq
        self.depth_bid, self.depth_ask = depth_bid, depth_ask
        if not self.has_book:
            self.has_book = True
            self.ref_bid, self.ref_ask = b, a

    def on_trade(self, price: float, qty: float, side: str) -> None:
        """Add a trade (`side` = aggressor) to the open window: V$, and V_impact when it prints
        beyond θ from the touch at the window's start (b_{t−}·(1 − θ) for sells, a_{t−}·(1 + θ) for buys)."""
        if not (price > 0.0 and qty > 0.0 and price < math.inf and qty < math.inf):
            return  # a bad print (NaN, zero, negative) must not poison the running sums
        value = price * qty
        self.v_dollar += value
        self.trades += 1
        if side == "sell":
            if price < self.ref_bid * (1.0 - self.theta):
                self.v_sell += value
        elif self.ref_ask > 0.0 and price > self.ref_ask * (1.0 + self.theta):
            self.v_buy += value

    def on_liquidation(self, ts: int, side: str, notional: float) -> None:
        """A liquidated long adds to the sell side's pressure, a liquidated short to the buy side's."""
        if not 0.0 < notional < math.inf:
            return
        k = 0 if side == "long" else 1
        self.liqs.append((ts, k, notional))
        self.liq_sum[k] += notional

    def on_ticker(self, ts: int, open_interest: float | None, funding_rate: float | None = None) -> None:
        if funding_rate is not None and math.isfinite(funding_rate):
            self.funding_rate = funding_rate
        if open_interest is None or not 0.0 < open_interest < math.inf:
            return
        p = self.p
        if self.oi_last is not None:
            gap = (ts - self.oi_last_ts) / NS
            if gap > 0:
                if len(self.oi_intervals) < OI_WARM_UPDATES:
                    self.oi_intervals.append(gap)
                    self.oi_interval_s = sorted(self.oi_intervals)[len(self.oi_intervals) // 2]
                else:  # follow a changing update rate slowly
                    self.oi_interval_s += 0.05 * (gap - self.oi_interval_s)
        self.oi_updates += 1
        hist = self.oi_history
        hist.append(open_interest)
        sparse = self.oi_sparse = self.oi_interval_s > p.oi_sparse_after_s
        smooth_before = self.oi_smooth
        self.oi_smooth = open_interest if self.oi_last is None else (
            smooth_before + self.oi_alpha * (open_interest - smooth_before))
        self.oi_last, self.oi_last_ts = open_interest, ts
        if len(self.oi_intervals) < OI_WARM_UPDATES:
            return
        interval = max(self.oi_interval_s, 1e-3)
        self.oi_lag = min(max(1, round(p.oi_lag_s / interval)), OI_HISTORY)
        if self.z_doi is None:
            self.z_doi = RollingMedianMad(max(int(p.robust_window_h * 3600 / interval), 10))
        if sparse:  # drop from the smoothed level, measured at this update
            d_oi = smooth_before - open_interest
        elif len(hist) > self.oi_lag:
            d_oi = hist[-1 - self.oi_lag] - open_interest
        else:
            return
        zd = self.z_doi
        self.d_oi = d_oi
        warm = zd.n >= min(self.min_samples, zd.window)
        z = zd.zscore(d_oi, clip=self.clip)
        self.z_oi = z if warm else 0.0
        self.g = oi_amplifier(d_oi, zd.scale() if warm else 0.0, p.kappa)  # σ_ΔOI of the window before it
        zd.add(d_oi)

    # -- ticks -------------------------------------------------------------------------------------
    def advance(self, ts: int) -> list[LpiTick] | tuple[()]:
        """Close the alpha ticks that ended before `ts` (ticks sit on multiples of Δ)."""
        nt = self.next_tick
        if ts <= nt:
            return _NONE
        tick = self.tick_ns
        if nt == 0:
            self.next_tick = (ts // tick + 1) * tick
            return []
        out: list[LpiTick] = []
        due = (ts - nt - 1) // tick + 1
        if due > CATCHUP_TICKS:  # a gap: close the open window, then restart at ts
            t = self._close(nt)
            if t is not None:
                out.append(t)
            self.next_tick = (ts // tick + 1) * tick
            return out
        while nt < ts:
            t = self._close(nt)
            if t is not None:
                out.append(t)
            nt += tick
        self.next_tick = nt
        return out

    def _close(self, ts: int) -> LpiTick | None:
        v_sell, v_buy, v_dollar = self.v_sell, self.v_buy, self.v_dollar
        self.v_sell = self.v_buy = self.v_dollar = 0.0
        self.trades = 0
        liqs = self.liqs
        if liqs:
            lim = ts - self.liq_window_ns
            while liqs and liqs[0][0] <= lim:
                _, k, notional = liqs.popleft()
                self.liq_sum[k] -= notional
                if not liqs:
                    self.liq_sum = [0.0, 0.0]  # no float residue once the window empties
        if not self.has_book:
            return None
        # The formulas above (mid_spread, microprice, forced_intensity, depletion_ratio, impact_per_dollar,
        # lpi_index), inlined, parameters read once: this runs every tick for every symbol (BENCHMARKS.md, LPI).
        use_micro, eps_ticks, w_pi = self._tick_params
        bid, ask, bq, aq = self.bid, self.ask, self.bid_qty, self.ask_qty
        mid = (bid + ask) / 2.0
        spread = ask - bid
        micro = (ask * bq + bid * aq) / (bq + aq) if bq + aq > 0 else mid
        price = micro if use_micro else mid
        prev = self.prev_price
        r = math.log(price / prev) if prev > 0.0 else 0.0
        self.prev_price = price
        self.ref_bid, self.ref_ask = bid, ask
        dt = self.dt_s
        # dollar volume and the per-tick price impact
        adv = self.adv
        adv_per_s = adv.total / adv.n / dt if adv.n else 0.0
        adv.add(v_dollar)
        rv = self.rv
        rv.add(r * r)
        sigma = math.sqrt(rv.total) if rv.total > 0.0 else 0.0
        eps = eps_ticks * adv_per_s * dt
        pi = (r if r >= 0.0 else -r) / (v_dollar + (eps if eps > 1.0 else 1.0))
        clip = self.clip
        z_pi_w = self.z_pi
        z_pi = z_pi_w.update(pi, clip=clip)
        warm = z_pi_w.n > self.min_samples
        base = adv_per_s * dt
        rel_spread = spread / mid if mid > 0.0 else 0.0
        lpi_pi = w_pi * (z_pi if warm else 0.0)
        # sell: impact sells into bid depth; buy: impact buys into ask depth
        sell = self._side(0, "sell", v_sell, self.depth_bid, base, rel_spread, mid > 0.0, warm, lpi_pi)
        buy = self._side(1, "buy", v_buy, self.depth_ask, base, rel_spread, mid > 0.0, warm, lpi_pi)
        if not warm:
            z_pi = 0.0
        self.ticks += 1
        tick = self.last = LpiTick(ts, price, mid, spread, micro, bid, ask, r, sigma, v_dollar, adv_per_s, pi, z_pi,
                                   self.d_oi, self.z_oi, self.oi_sparse, warm, self.funding_rate, sell, buy)
        return tick

    def _side(self, k: int, name: str, v_imp: float, depth: float, base: float, rel_spread: float, mid_ok: bool,
              warm: bool, lpi_pi: float) -> SidePressure:
        """One side's FSI, LDR and their z-scores at a tick (k: 0 sell / bid depth, 1 buy / ask depth)."""
        fsi = v_imp / base * self.g if base > 0.0 else 0.0
        dm = self.depth_mean[k]
        rel = depth / (dm.total / dm.n) if dm.n and dm.total > 0.0 else 1.0
        ldr = rel_spread / (rel if rel > 1e-9 else 1e-9) if mid_ok else 0.0
        dm.add(depth)
        clip = self.clip
        z_f = self.z_fsi[k].update(fsi, clip=clip)
        z_l = self.z_ldr[k].update(ldr, clip=clip)
        if not warm:
            z_f = z_l = 0.0
        return SidePressure(name, v_imp, fsi, depth, ldr, z_f, z_l, self.w_fsi * z_f + self.w_ldr * z_l + lpi_pi,
                            self.liq_sum[k])
