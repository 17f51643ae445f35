"""LDPM and LDPS: the Liquidity Trading Algorithm's two metrics, computed at bar close from OHLCV.

Pure numpy, no look-ahead: the value at bar t uses bars <= t only. docs/strategies/lta.md
explains the choice; in short:

* **LDPM (Liquidity Dependent Price Movement)**: the signed Amihud ratio
  a_t = r_t / DV_t (log return per dollar traded), divided by the rolling median of |a| over
  the last `long` bars (so 1 means "a typical move for the liquidity present"), clipped to
  +-CLIP and averaged over the last `short` bars. > 0: price has been rising, and the larger
  the value the more the rise outran the dollars that traded.
* **LDPS (Liquidity Dependent Price Stability)**: the log of dollar volume per unit of realized
  (Parkinson high/low) range, ln(DV_t / range_t), minus its rolling median over `long` bars,
  averaged over `short` bars. > 0: more money traded per unit of price range than usual (a
  deep, stable market); < 0: the range came cheap (thin liquidity, fragile price).

DV_t is the bar's quote turnover when the source has it, else volume x close. A bar with no
volume or no range gets the floors below instead of a division by zero. Until `long` bars exist
the medians use what there is (at least MIN_HISTORY bars; before that the metrics are NaN).
"""

from __future__ import annotations

import warnings

import numpy as np

CLIP = 10.0  # |normalized Amihud| per bar is capped: one print on a dead bar cannot dominate
MIN_HISTORY = 5  # bars before a metric is defined
DV_FLOOR = 1e-9  # dollars
RANGE_FLOOR = 1e-6  # log range of a bar whose high equals its low (e.g. one trade)


def dollar_volume(close: np.ndarray, volume: np.ndarray, turnover: np.ndarray | None = None) -> np.ndarray:
    c = np.asarray(close, dtype=np.float64)
    dv = np.asarray(volume, dtype=np.float64) * c
    if turnover is not None:
        t = np.asarray(turnover, dtype=np.float64)
        dv = np.where(t > 0, t, dv)
    return np.maximum(dv, DV_FLOOR)


def log_returns(close: np.ndarray) -> np.ndarray:
    c = np.asarray(close, dtype=np.float64)
    r = np.zeros(len(c))
    if len(c) > 1:
        r[1:] = np.diff(np.log(c))
    return r


def rolling_median(x: np.ndarray, window: int, min_periods: int = MIN_HISTORY) -> np.ndarray:
    """Trailing median over the last `window` values including the current one (NaN before min_periods)."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    out = np.full(n, np.nan)
    if n == 0:
        return out
    w = max(int(window), 1)
    if n >= w:
        out[w - 1:] = np.median(np.lib.stride_tricks.sliding_window_view(x, w), axis=1)
    k = min(w - 1, n)  # the warm-up: an expanding window (NaN-padded full windows, nanmedian)
    if k >= min_periods:
        head = np.concatenate((np.full(w - 1, np.nan), x[:k]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out[:k] = np.nanmedian(np.lib.stride_tricks.sliding_window_view(head, w), axis=1)
        out[: min_periods - 1] = np.nan
    return out


def rolling_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over the last `window` values (expanding at the start); NaN stays NaN."""
    x = np.asarray(x, dtype=np.float64)
    w = max(int(window), 1)
    c = np.cumsum(np.concatenate(([0.0], np.nan_to_num(x, nan=0.0))))
    valid = np.cumsum(np.concatenate(([0], np.isfinite(x).astype(np.int64))))
    idx = np.arange(1, len(x) + 1)
    lo = np.maximum(idx - w, 0)
    k = valid[idx] - valid[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (c[idx] - c[lo]) / k
    out[(k == 0) | ~np.isfinite(x)] = np.nan
    return out


def ldpm(close, volume, turnover=None, short: int = 6, long: int = 96) -> np.ndarray:
    r = log_returns(close)
    a = r / dollar_volume(close, volume, turnover)
    scale = rolling_median(np.abs(a), long)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(scale > 0, a / scale, 0.0)
    z = np.where(np.isfinite(scale), np.clip(z, -CLIP, CLIP), np.nan)
    z[0] = np.nan  # no return before the first bar
    return rolling_mean(z, short)


def ldps(high, low, close, volume, turnover=None, short: int = 6, long: int = 96) -> np.ndarray:
    rng = np.maximum(np.log(np.asarray(high, dtype=np.float64) / np.asarray(low, dtype=np.float64)), RANGE_FLOOR)
    depth = np.log(dollar_volume(close, volume, turnover)) - np.log(rng)
    return rolling_mean(depth - rolling_median(depth, long), short)


def metrics(o, h, l, c, v, turnover=None, short: int = 6, long: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """(LDPM, LDPS) for every bar; `o` is accepted for symmetry with OHLCV rows (the metrics do not use it)."""
    del o
    return ldpm(c, v, turnover, short, long), ldps(h, l, c, v, turnover, short, long)


def forward_returns(close: np.ndarray, horizon: int) -> np.ndarray:
    """log(c_{t+h} / c_t); NaN for the last `horizon` bars."""
    c = np.log(np.asarray(close, dtype=np.float64))
    out = np.full(len(c), np.nan)
    if horizon < len(c):
        out[: len(c) - horizon] = c[horizon:] - c[: len(c) - horizon]
    return out
