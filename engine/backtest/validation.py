"""Validation statistics: Probabilistic and Deflated Sharpe Ratio, purged K-fold CV with embargo.

PSR / DSR follow Bailey & López de Prado ("The Sharpe Ratio Efficient Frontier", J. of Risk
15(2), 2012; "The Deflated Sharpe Ratio", J. of Portfolio Management 40(5), 2014). Everything is
per observation period, never annualized: SR = mean / std (ddof 1) of the T returns; skewness
g3 and *raw* kurtosis g4 (3 for a normal law) are the population (biased) moment estimators,
as scipy.stats.skew / kurtosis(fisher=False) compute by default. The standard error of SR is

    sigma(SR) = sqrt((1 - g3*SR + (g4 - 1)/4 * SR^2) / (T - 1))

and PSR(SR*) = Phi((SR - SR*) / sigma(SR)). The DSR is PSR(SR0), where SR0 is the expected
maximum Sharpe of N independent trials with true Sharpe 0 whose estimates have variance V:

    SR0 = sqrt(V) * ((1 - gamma) * Phi^-1(1 - 1/N) + gamma * Phi^-1(1 - 1/(N e)))   (+ mean of the trials)

with gamma the Euler-Mascheroni constant. The paper's worked example (N = 100, V = 0.5/250,
SR = 2.5/sqrt(250), T = 1250, g3 = -3, g4 = 10) gives DSR = 0.9004 (tested).

Purged K-fold (AFML ch. 7) splits observations i = 0..T-1, sorted by start time t0_i, whose
labels end at t1_i >= t0_i, into K contiguous test blocks. For a block with window [a, b]
(a = first start, b = last label end in the block) a training observation is kept only if its
interval [t0, t1] does not touch the window (inclusive on both ends: t1 < a or t0 > b), and the
h = int(pct_embargo * T) observations right after the purged region are embargoed. The right
training set starts at max(j, p) + h (j = block end, p = first observation starting after b),
which avoids the published snippet's leak of test observations into the last fold's training set.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

EULER_GAMMA = 0.5772156649015329
_N = NormalDist()


@dataclass(frozen=True)
class SharpeMoments:
    """Per-period Sharpe ratio and the moments the PSR needs."""

    sharpe: float  # mean / std(ddof=1), not annualized
    skew: float  # population skewness
    kurtosis: float  # population raw kurtosis (normal = 3)
    n: int


def sharpe_moments(returns: Iterable[float] | np.ndarray) -> SharpeMoments:
    r = np.asarray(returns if isinstance(returns, np.ndarray) else list(returns), dtype=np.float64)
    n = len(r)
    if n < 3:
        raise ValueError("need at least 3 returns")
    if not np.all(np.isfinite(r)):
        raise ValueError("returns must be finite")
    sd = float(np.std(r, ddof=1))
    if sd == 0.0:
        raise ValueError("returns have zero variance")
    d = r - r.mean()
    m2 = float(np.mean(d**2))
    return SharpeMoments(
        float(r.mean()) / sd, float(np.mean(d**3)) / m2**1.5, float(np.mean(d**4)) / m2**2, n
    )


def sharpe_std_error(sharpe: float, n: int, skew: float = 0.0, kurtosis: float = 3.0) -> float:
    """Standard error of a per-period Sharpe estimate (Mertens 2002, as used by Bailey & López de Prado)."""
    if n < 2:
        raise ValueError("need at least 2 observations")
    var = (1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2) / (n - 1)
    if var <= 0.0:
        raise ValueError("moments give a non-positive Sharpe variance")
    return math.sqrt(var)


def probabilistic_sharpe_ratio(
    sharpe: float, n: int, skew: float = 0.0, kurtosis: float = 3.0, benchmark: float = 0.0
) -> float:
    """P(true Sharpe > benchmark) given a per-period Sharpe estimate from n observations."""
    return _N.cdf((sharpe - benchmark) / sharpe_std_error(sharpe, n, skew, kurtosis))


def psr_from_returns(returns: Iterable[float] | np.ndarray, benchmark: float = 0.0) -> float:
    m = sharpe_moments(returns)
    return probabilistic_sharpe_ratio(m.sharpe, m.n, m.skew, m.kurtosis, benchmark)


def expected_max_sharpe(n_trials: int, trials_variance: float, trials_mean: float = 0.0) -> float:
    """SR0: the expected maximum per-period Sharpe of n_trials independent trials under the null."""
    if n_trials < 2:
        raise ValueError("need at least 2 trials")
    if trials_variance < 0:
        raise ValueError("trial Sharpe variance must be >= 0")
    z1 = _N.inv_cdf(1.0 - 1.0 / n_trials)
    z2 = _N.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return trials_mean + math.sqrt(trials_variance) * ((1.0 - EULER_GAMMA) * z1 + EULER_GAMMA * z2)


def deflated_sharpe_ratio(
    sharpe: float,
    n: int,
    skew: float,
    kurtosis: float,
    n_trials: int,
    trials_variance: float,
    trials_mean: float = 0.0,
) -> tuple[float, float]:
    """(DSR, SR0) for the best of n_trials; every Sharpe and the variance are per period."""
    sr0 = expected_max_sharpe(n_trials, trials_variance, trials_mean)
    return probabilistic_sharpe_ratio(sharpe, n, skew, kurtosis, sr0), sr0


def null_trials_variance(n: int) -> float:
    """Variance of per-period Sharpe estimates from n observations when every trial's true Sharpe
    is 0 and returns are normal: 1 / (n - 1). The fallback when the trials' Sharpes are not known."""
    return 1.0 / (n - 1)


def effective_trials(n_trials: int, mean_correlation: float) -> float:
    """N_eff = N(1 - rho) + rho for trials with average pairwise correlation rho."""
    return n_trials * (1.0 - mean_correlation) + mean_correlation


def min_track_record_length(
    sharpe: float, skew: float, kurtosis: float, benchmark: float = 0.0, alpha: float = 0.05
) -> float:
    """Observations needed for PSR(benchmark) >= 1 - alpha (per-period Sharpe)."""
    if sharpe <= benchmark:
        return math.inf
    z = _N.inv_cdf(1.0 - alpha)
    return 1.0 + (1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2) * (z / (sharpe - benchmark)) ** 2


# -- purged K-fold cross-validation -----------------------------------------------------------------


class PurgedKFold:
    """K contiguous test blocks; training sets purged of label overlap and embargoed after each block.

    t1: label end time of each observation; t0: start times (default 0..T-1, i.e. bar
    positions). Both in the same unit, t0 non-decreasing, t1 >= t0. No shuffling, ever.
    """

    def __init__(self, n_splits: int = 5, pct_embargo: float = 0.0):
        if n_splits < 2:
            raise ValueError("n_splits must be >= 2")
        if not 0.0 <= pct_embargo < 1.0:
            raise ValueError("pct_embargo must be in [0, 1)")
        self.n_splits = n_splits
        self.pct_embargo = pct_embargo

    def split(
        self, t1: Sequence[float] | np.ndarray, t0: Sequence[float] | np.ndarray | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        end = np.asarray(t1)
        n = len(end)
        start = np.arange(n) if t0 is None else np.asarray(t0)
        if len(start) != n:
            raise ValueError("t0 and t1 differ in length")
        if n < self.n_splits:
            raise ValueError(f"{n} observations cannot make {self.n_splits} folds")
        if np.any(np.diff(start) < 0):
            raise ValueError("observations must be sorted by start time t0")
        if np.any(end < start):
            raise ValueError("a label ends before it starts (t1 < t0)")
        h = int(self.pct_embargo * n)
        positions = np.arange(n)
        for block in np.array_split(positions, self.n_splits):
            i, j = int(block[0]), int(block[-1]) + 1
            a, b = start[i], end[i:j].max()
            left = positions[:i][end[:i] < a]
            p = int(np.searchsorted(start, b, side="right"))  # first observation starting after b
            right = positions[max(j, p) + h :]
            yield np.concatenate((left, right)), block
