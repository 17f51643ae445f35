"""PSR / DSR against the published worked example; purged K-fold with embargo and no last-fold leak."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.backtest.validation import (
    PurgedKFold,
    deflated_sharpe_ratio,
    effective_trials,
    expected_max_sharpe,
    min_track_record_length,
    probabilistic_sharpe_ratio,
    psr_from_returns,
    sharpe_moments,
    sharpe_std_error,
)

# Bailey & López de Prado (2014), worked example: 100 trials, annualized trial-Sharpe variance 1/2,
# best annualized Sharpe 2.5, five years of daily data (250 per year), skew -3, raw kurtosis 10.
SR = 2.5 / math.sqrt(250)
V = 0.5 / 250
T = 1250


def test_dsr_of_the_papers_worked_example_is_0_9004():
    dsr, sr0 = deflated_sharpe_ratio(SR, T, skew=-3.0, kurtosis=10.0, n_trials=100, trials_variance=V)
    assert round(dsr, 4) == 0.9004
    assert round(sr0, 4) == 0.1132
    assert sr0 * math.sqrt(250) == pytest.approx(1.7894, abs=1e-4)


def test_dsr_companion_figures_from_the_paper():
    assert round(deflated_sharpe_ratio(SR, T, -3.0, 10.0, 46, V)[0], 4) == 0.9505
    # with normal moments it takes 88 trials to reach the same confidence
    assert round(deflated_sharpe_ratio(SR, T, 0.0, 3.0, 88, V)[0], 4) == 0.9505
    assert deflated_sharpe_ratio(SR, T, 0.0, 3.0, 100, V)[0] == pytest.approx(0.942771, abs=1e-6)


def test_min_track_record_length_of_the_frontier_paper_example():
    mtrl = min_track_record_length(2 / math.sqrt(12), -0.72, 5.78, benchmark=1 / math.sqrt(12), alpha=0.05)
    assert mtrl == pytest.approx(59.8951, abs=1e-4)
    assert min_track_record_length(0.1, 0.0, 3.0, benchmark=0.2) == math.inf


def test_psr_reduces_to_lo_under_normal_moments_and_grows_with_track_length():
    assert sharpe_std_error(0.1, 101) == pytest.approx(math.sqrt((1 + 0.1**2 / 2) / 100))
    short = probabilistic_sharpe_ratio(0.1, 50)
    long = probabilistic_sharpe_ratio(0.1, 500)
    assert 0.5 < short < long < 1.0
    assert probabilistic_sharpe_ratio(0.0, 100) == pytest.approx(0.5)
    # negative skew and fat tails widen the error, lowering confidence in a positive Sharpe
    assert probabilistic_sharpe_ratio(0.1, 200, skew=-2.0, kurtosis=9.0) < probabilistic_sharpe_ratio(
        0.1, 200
    )


def test_sharpe_moments_use_population_skew_and_raw_kurtosis():
    r = np.array([0.01, -0.02, 0.03, 0.0, -0.01, 0.02, 0.05, -0.04])
    mm = sharpe_moments(r)
    d = r - r.mean()
    assert mm.sharpe == pytest.approx(r.mean() / r.std(ddof=1))
    assert mm.skew == pytest.approx(np.mean(d**3) / np.mean(d**2) ** 1.5)
    assert mm.kurtosis == pytest.approx(np.mean(d**4) / np.mean(d**2) ** 2)
    scipy_stats = pytest.importorskip("scipy.stats")
    assert mm.skew == pytest.approx(scipy_stats.skew(r))
    assert mm.kurtosis == pytest.approx(scipy_stats.kurtosis(r, fisher=False))
    assert psr_from_returns(r) == pytest.approx(
        probabilistic_sharpe_ratio(mm.sharpe, mm.n, mm.skew, mm.kurtosis)
    )


def test_expected_max_sharpe_and_effective_trials():
    assert expected_max_sharpe(100, V) == pytest.approx(0.113172, abs=1e-6)
    assert expected_max_sharpe(100, V, trials_mean=0.01) == pytest.approx(0.123172, abs=1e-6)
    assert expected_max_sharpe(1000, V) > expected_max_sharpe(100, V)
    assert effective_trials(100, 0.0) == 100 and effective_trials(100, 1.0) == 1
    with pytest.raises(ValueError):
        expected_max_sharpe(1, V)


# -- purged K-fold ----------------------------------------------------------------------------------

T1 = np.minimum(np.arange(20) + 3, 19)  # each label ends 3 bars after it starts, clipped to the data


def _folds(pct):
    return [(list(train), list(test)) for train, test in PurgedKFold(4, pct).split(T1)]


def test_purged_kfold_reference_vector_with_embargo():
    folds = _folds(0.10)  # h = 2 bars
    assert [t for _, t in folds] == [
        list(range(0, 5)),
        list(range(5, 10)),
        list(range(10, 15)),
        list(range(15, 20)),
    ]
    assert folds[0][0] == list(range(10, 20))  # test labels reach bar 7; 8, 9 embargoed
    assert folds[1][0] == [0, 1] + list(range(15, 20))  # label of 2 ends at 5 = test start: purged
    assert folds[2][0] == list(range(0, 7))
    assert folds[3][0] == list(range(0, 12))


def test_purged_kfold_last_fold_does_not_leak_test_observations():
    # The AFML snippet would put 19 (a test observation) into fold 3's training set here.
    folds = _folds(0.0)
    assert folds[3][0] == list(range(0, 12))
    assert folds[0][0] == list(range(8, 20)) and folds[2][0] == list(range(0, 7)) + [18, 19]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("pct", [0.0, 0.05])
def test_purged_kfold_never_trains_on_an_overlapping_label(seed, pct):
    rng = np.random.default_rng(seed)
    t0 = np.sort(rng.integers(0, 1000, 120)).astype(float)
    t1 = t0 + rng.integers(0, 40, 120)
    h = int(pct * len(t0))
    for train, test in PurgedKFold(5, pct).split(t1, t0):
        assert not set(train) & set(test)
        a, b = t0[test[0]], t1[test].max()
        assert np.all((t1[train] < a) | (t0[train] > b))  # no overlap, inclusive ends
        after = [k for k in range(test[-1] + 1, len(t0)) if t0[k] > b]
        assert not set(after[:h]) & set(train)  # the embargo after the test window


def test_purged_kfold_rejects_bad_inputs():
    with pytest.raises(ValueError):
        list(PurgedKFold(4).split([3, 2, 1], [0, 1, 2]))  # t1 < t0
    with pytest.raises(ValueError):
        list(PurgedKFold(4).split([1, 2, 3, 4], [1, 0, 2, 3]))  # unsorted starts
    with pytest.raises(ValueError):
        PurgedKFold(1)
