"""LPI features (engine/lpi_features.py) against values computed by hand on small fixtures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.book import OrderBook
from engine.config import Settings
from engine.events import NS
from engine.lpi_features import (
    LpiFeatures,
    band_depth,
    depletion_ratio,
    forced_intensity,
    impact_per_dollar,
    lpi_index,
    microprice,
    mid_spread,
    oi_amplifier,
)

T0 = 1_736_121_600 * NS  # on the 250 ms grid
MS = 1_000_000

B1_BIDS = [(100.0, 2.0), (99.95, 3.0), (99.89, 5.0)]
B1_ASKS = [(100.1, 1.0), (100.15, 4.0), (100.3, 7.0)]
B2_BIDS = [(99.9, 1.0), (99.85, 1.0)]
B2_ASKS = [(100.0, 1.0), (100.05, 2.0)]


def params(**kw):
    return Settings().lpi.for_symbol("ETHUSDT").model_copy(update={"robust_min_samples": 10, **kw})


def test_formulas_by_hand():
    assert mid_spread(100.0, 100.1) == pytest.approx((100.05, 0.1))
    # the microprice leans towards the thinner side: (a·Qb + b·Qa) / (Qb + Qa)
    assert microprice(100.0, 2.0, 100.1, 1.0) == pytest.approx((100.1 * 2 + 100.0 * 1) / 3)
    assert microprice(100.0, 0.0, 100.1, 0.0) == pytest.approx(100.05)
    # eta = 10 bps: bids at or above 100 * 0.999 = 99.9, asks at or below 100.1 * 1.001 = 100.2001
    assert band_depth(B1_BIDS, 100.0, 0.001, "bid") == pytest.approx(5.0)
    assert band_depth(B1_ASKS, 100.1, 0.001, "ask") == pytest.approx(5.0)
    assert band_depth(B1_BIDS, 100.0, 0.0025, "bid") == pytest.approx(10.0)
    # g = 1 + kappa tanh(dOI / sigma), bounded; 1 while sigma is unknown
    assert oi_amplifier(10.0, 10.0, 1.0) == pytest.approx(1 + math.tanh(1.0))
    assert oi_amplifier(-1e9, 1.0, 0.5) == pytest.approx(0.5)
    assert oi_amplifier(5.0, 0.0, 1.0) == 1.0
    assert forced_intensity(200.0, 1600.0, 0.25, 1.5) == pytest.approx(200.0 / 400.0 * 1.5)
    assert forced_intensity(200.0, 0.0, 0.25, 1.0) == 0.0
    assert depletion_ratio(0.1, 99.95, 2.0, 5.0) == pytest.approx((0.1 / 99.95) / (2.0 / 5.0))
    assert impact_per_dollar(-0.001, 600.0, 400.0) == pytest.approx(0.001 / 1000.0)
    assert lpi_index(4.0, 2.0, -1.0) == pytest.approx(0.5 * 4 + 0.3 * 2 - 0.2)


def _feed(f: LpiFeatures, events: list[tuple[int, str, tuple]]) -> list:
    """events: (ts, kind, args); returns the ticks closed on the way."""
    out = []
    for ts, kind, args in events:
        out += f.advance(ts)
        if kind == "book":
            f.on_levels(*args)
        elif kind == "trade":
            f.on_trade(*args)
        elif kind == "ticker":
            f.on_ticker(ts, *args)
        elif kind == "liq":
            f.on_liquidation(ts, *args)
    return out


def test_two_ticks_by_hand():
    f = LpiFeatures(params())
    ticks = _feed(f, [
        (T0 + 1 * MS, "book", (B1_BIDS, B1_ASKS)),
        # window 1, touch before it: bid 100.0, ask 100.1; theta 5 bps: sells below 99.95, buys above 100.15
        (T0 + 10 * MS, "trade", (99.96, 1.0, "sell")),  # within theta: not impact
        (T0 + 20 * MS, "trade", (99.94, 2.0, "sell")),  # impact sell 199.88
        (T0 + 30 * MS, "trade", (100.16, 1.0, "buy")),  # impact buy 100.16
        (T0 + 400 * MS, "book", (B2_BIDS, B2_ASKS)),  # window 2 (touch before it still B1)
        (T0 + 450 * MS, "trade", (99.90, 1.0, "sell")),  # impact sell 99.9
        (T0 + 460 * MS, "trade", (100.05, 1.0, "buy")),  # below 100.15005: not impact
        (T0 + 600 * MS, "book", (B2_BIDS, B2_ASKS)),
    ])
    assert [t.ts for t in ticks] == [T0 + 250 * MS, T0 + 500 * MS]
    t1, t2 = ticks
    assert t1.dollar_volume == pytest.approx(400.0)
    assert (t1.sell.v_impact, t1.buy.v_impact) == pytest.approx((199.88, 100.16))
    assert t1.sell.fsi == 0.0  # no dollar-volume history yet
    assert (t1.mid, t1.spread, t1.r) == pytest.approx((100.05, 0.1, 0.0))
    assert t1.sell.ldr == pytest.approx(0.1 / 100.05)  # depth equals its (empty) mean
    assert (t1.sell.depth, t1.buy.depth) == pytest.approx((5.0, 5.0))
    # tick 2: ADV$ = 400 USD per 0.25 s = 1600 USD/s from tick 1
    r = math.log(99.95 / 100.05)
    assert t2.adv_per_s == pytest.approx(1600.0)
    assert t2.dollar_volume == pytest.approx(199.95)
    assert t2.sell.v_impact == pytest.approx(99.9) and t2.buy.v_impact == 0.0
    assert t2.sell.fsi == pytest.approx(99.9 / 400.0)  # g = 1: no OI yet
    assert t2.r == pytest.approx(r)
    assert t2.sigma == pytest.approx(abs(r))
    assert t2.pi == pytest.approx(abs(r) / (199.95 + 400.0))  # epsilon: one tick of ADV$
    assert t2.sell.ldr == pytest.approx((0.1 / 99.95) / (2.0 / 5.0))  # D_bid(eta) 2 against its mean 5
    assert t2.buy.ldr == pytest.approx((0.1 / 99.95) / (3.0 / 5.0))  # D_ask(eta) 3 against 5
    assert t2.micro == pytest.approx((100.0 * 1 + 99.9 * 1) / 2)


def test_microprice_option_drives_returns():
    f = LpiFeatures(params(use_microprice=True))
    ticks = _feed(f, [(T0 + MS, "book", (B1_BIDS, B1_ASKS)), (T0 + 300 * MS, "book", (B2_BIDS, B2_ASKS)),
                      (T0 + 600 * MS, "book", (B2_BIDS, B2_ASKS))])
    m1, m2 = (100.1 * 2 + 100.0) / 3, (100.0 + 99.9) / 2
    assert [t.price for t in ticks] == pytest.approx([m1, m2])
    assert ticks[1].r == pytest.approx(math.log(m2 / m1))


def test_book_from_an_order_book_matches_the_snapshot_path():
    a, b = LpiFeatures(params()), LpiFeatures(params())
    book = OrderBook("ETHUSDT")
    book.apply_snapshot(B1_BIDS, B1_ASKS)
    a.on_book(book)
    b.on_levels(B1_BIDS, B1_ASKS)
    assert (a.bid, a.ask, a.bid_qty, a.ask_qty, a.depth_bid, a.depth_ask) == \
        (b.bid, b.ask, b.bid_qty, b.ask_qty, b.depth_bid, b.depth_ask) == (100.0, 100.1, 2.0, 1.0, 5.0, 5.0)


def _oi_events(values: list[float], every_s: float) -> list:
    return [(T0 + int((i + 1) * every_s * NS), "ticker", (v, 0.0001)) for i, v in enumerate(values)]


def test_oi_flush_uses_the_lag_set_by_the_update_rate():
    f = LpiFeatures(params(oi_lag_s=3.0))
    _feed(f, [(T0 + MS, "book", (B1_BIDS, B1_ASKS))] + _oi_events([1000.0] * 6 + [990.0, 985.0], 1.0))
    assert f.oi_interval_s == pytest.approx(1.0)
    assert f.oi_lag == 3  # 3 s at one update a second
    assert not f.oi_sparse
    assert f.d_oi == pytest.approx(1000.0 - 985.0)  # OI three updates ago minus OI now
    assert f.funding_rate == pytest.approx(0.0001)


def test_sparse_oi_measures_drops_from_the_smoothed_level():
    f = LpiFeatures(params(oi_sparse_after_s=30.0, oi_ewma_halflife_updates=3.0))
    _feed(f, [(T0 + MS, "book", (B1_BIDS, B1_ASKS))] + _oi_events([1000.0] * 6 + [970.0], 60.0))
    assert f.oi_sparse
    assert f.d_oi == pytest.approx(30.0)  # smoothed 1000 before the update, 970 now
    alpha = 1 - 0.5 ** (1 / 3)
    assert f.oi_smooth == pytest.approx(1000.0 + alpha * (970.0 - 1000.0))


def test_oi_z_score_and_amplifier_follow_the_window():
    f = LpiFeatures(params(oi_lag_s=1.0))
    values = (1000.0 + np.cumsum(np.random.default_rng(5).normal(0.0, 3.0, 40))).tolist()
    _feed(f, [(T0 + MS, "book", (B1_BIDS, B1_ASKS))] + _oi_events(values + [values[-1] - 50.0], 1.0))
    d = -np.diff(values)[4:]  # the ΔOI samples in the window: from the 6th update (the rate is known)
    med = np.median(d)
    mad = np.median(np.abs(d - med))
    z = (50.0 - med) / (1.4826 * mad)
    assert f.d_oi == pytest.approx(50.0)
    assert f.z_oi == pytest.approx(z, rel=0.03)
    assert f.g == pytest.approx(1 + math.tanh(50.0 / (1.4826 * mad)), rel=0.03)


def test_liquidations_count_by_side_within_the_spike_window():
    f = LpiFeatures(params(liq_spike_window_s=1.0))
    ticks = _feed(f, [
        (T0 + MS, "book", (B1_BIDS, B1_ASKS)),
        (T0 + 100 * MS, "liq", ("long", 5000.0)),
        (T0 + 200 * MS, "liq", ("short", 700.0)),
        (T0 + 300 * MS, "liq", ("long", 1000.0)),
        (T0 + 1600 * MS, "book", (B1_BIDS, B1_ASKS)),
    ])
    by_ts = {t.ts - T0: (t.sell.liq_usd, t.buy.liq_usd) for t in ticks}
    assert by_ts[250 * MS] == pytest.approx((5000.0, 700.0))
    assert by_ts[500 * MS] == pytest.approx((6000.0, 700.0))
    assert by_ts[1250 * MS] == pytest.approx((1000.0, 0.0))  # the first two left the 1 s window
    assert by_ts[1500 * MS] == (0.0, 0.0)


def test_a_long_gap_is_not_filled_with_empty_ticks():
    f = LpiFeatures(params())
    ticks = _feed(f, [(T0 + MS, "book", (B1_BIDS, B1_ASKS)), (T0 + 3600 * NS, "book", (B1_BIDS, B1_ASKS))])
    assert len(ticks) == 1
    assert f.next_tick == T0 + 3600 * NS + 250 * MS


def test_robust_z_of_ldr_matches_numpy_on_random_books():
    """z(LDR) of each tick against numpy's median/MAD of the LDRs before it (within the grid bound)."""
    rng = np.random.default_rng(11)
    f = LpiFeatures(params())
    ldrs, zs = [], []
    ts = T0 + MS
    for _ in range(300):
        spread = 0.01 * rng.integers(1, 4)
        bids = [(round(100.0 - i * 0.01, 2), float(rng.uniform(0.5, 3.0))) for i in range(8)]
        asks = [(round(100.0 + spread + i * 0.01, 2), float(rng.uniform(0.5, 3.0))) for i in range(8)]
        for t in _feed(f, [(ts, "book", (bids, asks))]):
            ldrs.append(t.sell.ldr)
            zs.append(t.sell.z_ldr)
        ts += 250 * MS
    for k in (50, 120, 250, len(ldrs) - 1):
        w = np.array(ldrs[:k])
        med = np.median(w)
        mad = np.median(np.abs(w - med))
        assert zs[k] == pytest.approx((ldrs[k] - med) / (1.4826 * mad), rel=0.03, abs=0.02)


def test_bad_input_neither_crashes_nor_poisons_the_sums():
    f = LpiFeatures(params(oi_lag_s=1.0))
    nan = float("nan")
    _feed(f, _oi_events([1000.0] * 7, 1.0))  # OI warm by T0 + 7 s: the next update would be scored
    b = T0 + 8 * NS
    ticks = _feed(f, [
        (b + MS, "book", (B1_BIDS, B1_ASKS)),
        (b + 10 * MS, "trade", (nan, 1.0, "sell")),
        (b + 20 * MS, "trade", (99.0, -2.0, "sell")),
        (b + 30 * MS, "trade", (0.0, 1.0, "buy")),
        (b + 40 * MS, "liq", ("long", nan)),
        (b + 50 * MS, "ticker", (nan, nan)),
        (b + 55 * MS, "ticker", (-5.0, None)),
        (b + 60 * MS, "book", ([(0.0, 1.0)], [(0.0, 1.0)])),  # a broken snapshot: the last good one stays
        (b + 300 * MS, "trade", (100.0, 1.0, "buy")),
        (b + 600 * MS, "book", (B1_BIDS, B1_ASKS)),
    ])
    assert [t.ts - b for t in ticks] == [250 * MS, 500 * MS]
    t = ticks[1]
    assert t.dollar_volume == pytest.approx(100.0) and t.sell.liq_usd == 0.0
    assert all(math.isfinite(x) for x in (t.sell.lpi, t.buy.lpi, t.pi, t.sell.fsi, t.r)) and t.mid == 100.05
    assert f.d_oi == 0.0 and f.g == 1.0 and f.oi_last == 1000.0 and f.funding_rate == pytest.approx(0.0001)
