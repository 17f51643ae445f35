"""RollingMedianMad (engine/stats.py) against numpy's median and MAD on seeded random data.

Two properties: the structure's median/MAD equal numpy's on the *rounded* window exactly,
and they stay within the documented bound of numpy's on the raw window:
|median - M| <= delta(|M| + D), |MAD - D| <= 2 delta(|M| + D), delta(x) = step/2 e^(step/2) (floor + |x|).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.stats import RollingMean, RollingMedianMad


def _series(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "normal":
        return rng.normal(0.0, 1.0, n)
    if kind == "lognormal":
        return rng.lognormal(0.0, 2.0, n)
    if kind == "mostly_zero":  # like FSI or Pi: no impact trade in most ticks
        return np.where(rng.random(n) < 0.7, 0.0, rng.exponential(1.0, n))
    if kind == "integers":  # many ties
        return rng.integers(-3, 4, n).astype(float)
    if kind == "trend":  # the distribution drifts through the window
        return np.cumsum(rng.normal(0.0, 1.0, n)) + 100.0
    if kind == "cauchy":
        return rng.standard_cauchy(n)
    raise ValueError(kind)


def _delta(x: float, step: float, floor: float) -> float:
    return step / 2 * math.exp(step / 2) * (floor + abs(x))


KINDS = ["normal", "lognormal", "mostly_zero", "integers", "trend", "cauchy"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("window", [1, 2, 5, 50, 301])
def test_rolling_median_mad_matches_numpy(kind: str, window: int):
    rng = np.random.default_rng([KINDS.index(kind), window])
    data = _series(kind, 1500, rng)
    step, floor = 0.01, 1e-12
    r = RollingMedianMad(window, step=step, floor=floor)
    rounded: list[float] = []
    for t, x in enumerate(data.tolist()):
        r.add(x)
        rounded.append(r.rounded(x))
        if t % 11 and t != len(data) - 1:
            continue
        w = np.array(rounded[-window:])
        med = float(np.median(w))
        mad = float(np.median(np.abs(w - med)))
        # exact on the rounded window
        assert r.n == len(w)
        assert r.median == pytest.approx(med, rel=1e-12, abs=1e-300)
        assert r.mad == pytest.approx(mad, rel=1e-9, abs=1e-15)
        assert r.mean_abs_dev() == pytest.approx(float(np.mean(np.abs(w - med))), rel=1e-9, abs=1e-12)
        # within the documented bound of the raw window
        raw = data[max(0, t + 1 - window): t + 1]
        m_true = float(np.median(raw))
        d_true = float(np.median(np.abs(raw - m_true)))
        bound = _delta(abs(m_true) + d_true, step, floor)
        assert abs(r.median - m_true) <= bound * (1 + 1e-9)
        assert abs(r.mad - d_true) <= 2 * bound * (1 + 1e-9)


def test_long_window_with_eviction_matches_numpy():
    rng = np.random.default_rng(3)
    window = 4000
    data = np.concatenate([rng.lognormal(0, 1, 6000), rng.lognormal(2, 0.5, 6000)])  # a regime change
    r = RollingMedianMad(window)
    rounded = []
    for t, x in enumerate(data.tolist()):
        r.add(x)
        rounded.append(r.rounded(x))
        if t in (3999, 6500, 9000, 11999):
            w = np.array(rounded[-window:])
            med = float(np.median(w))
            assert r.median == pytest.approx(med, rel=1e-12)
            assert r.mad == pytest.approx(float(np.median(np.abs(w - med))), rel=1e-9)


def test_quant_reference_vector():
    """quant.md section 7.1: x = [1, 2, 2, 3, 3, 3, 4, 4, 5, 40] has median 3 and MAD 1."""
    x = [1, 2, 2, 3, 3, 3, 4, 4, 5, 40]
    r = RollingMedianMad(len(x))
    for v in x:
        r.add(float(v))
    assert r.median == pytest.approx(3.0, rel=0.006)
    assert r.mad == pytest.approx(1.0, rel=0.03)
    expected = [-1.349, -0.6745, -0.6745, 0, 0, 0, 0.6745, 0.6745, 1.349, 24.9562]
    for v, z in zip(x, expected):
        assert r.zscore(float(v), eps=0.0) == pytest.approx(z, rel=0.03, abs=0.03)


def test_zscore_uses_the_window_before_the_value_and_handles_degenerate_input():
    r = RollingMedianMad(100)
    assert r.update(5.0) == 0.0  # empty window: no opinion
    for v in [1.0, 2.0, 3.0, 4.0, 5.0]:
        r.update(v)
    z = r.zscore(100.0)
    assert z > 10
    assert r.zscore(100.0, clip=4.0) == 4.0
    assert r.zscore(-100.0, clip=4.0) == -4.0
    n = r.n
    r.add(float("nan"))
    r.add(float("inf"))
    assert r.n == n
    assert r.zscore(float("nan")) == 0.0


def test_zero_mad_falls_back_to_mean_absolute_deviation():
    r = RollingMedianMad(10)
    for v in [0.0] * 7 + [1.0, 2.0, 3.0]:
        r.add(v)
    assert r.median == 0.0 and r.mad == 0.0
    mean_abs = r.mean_abs_dev()
    assert mean_abs == pytest.approx(0.6, rel=0.01)
    assert r.scale() == pytest.approx(1.2533 * mean_abs)
    assert r.zscore(3.0, eps=0.0) == pytest.approx(3.0 / (1.2533 * 0.6), rel=0.01)


def test_values_in_the_same_bin_replace_each_other_without_changing_the_answer():
    r = RollingMedianMad(3)
    for v in [0.0, 1.0, 2.0, 0.0, 0.0]:
        r.add(v)
    assert (r.n, r.median) == (3, 0.0)
    r.add(0.0)
    assert r.median == 0.0 and r.mad == 0.0


def test_rejects_bad_parameters():
    with pytest.raises(ValueError):
        RollingMedianMad(0)
    with pytest.raises(ValueError):
        RollingMedianMad(10, step=0.0)
    with pytest.raises(ValueError):
        RollingMedianMad(10, bins=100)


def test_rolling_mean():
    m = RollingMean(3)
    assert m.mean == 0.0
    for v in [1.0, 2.0, 3.0, 10.0]:
        m.add(v)
    assert m.mean == pytest.approx(5.0)
    assert m.n == 3
