"""OHLCV bars straight from the synthetic market's seeded processes, without building ticks.

A month of the full tick-level synthetic market is ~50M events; a bar strategy needs ~750 hourly
bars. `synthetic_bars` runs each symbol's generator chunk by chunk exactly as
`SyntheticMarket` does (same seed, same state carried across chunks, same random streams: the
liquidation, price and trade streams are drawn in the same order), but instead of building
trade, book and ticker objects it evaluates:

* the mid price path (`_PricePath.logp`) on a 1-second grid plus just after every liquidation
  (where the price jumps) -> open, high, low, close of each bar (mid prices, so they differ from
  the tick market's trade prices by at most half a spread);
* the takers' notional per second with the trade stream's own draws (the Poisson counts and
  lognormal notionals `_trades` draws, in its order) plus the liquidation prints -> turnover, and
  volume = turnover / close.

So the bars are the bars of the tick market's mid and traded notional for the same seed; the
test checks them against bars built from the full tick feed. Bars are on the UTC grid, stamped
with their close time; the first bar starts at the market's start.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..config import Settings
from ..events import NS, Bar
from ..instruments import instrument_for
from .synthetic import (
    _S_TRADE,
    CHUNK_S,
    _SymbolGenerator,
    parse_utc,
    profile_for,
)


def _chunk_samples(gen: _SymbolGenerator, chunk: int, state: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                             np.ndarray, dict]:
    """(price times s, log mids, traded-notional times s, notionals, next state) of one chunk.

    The same processes as `_SymbolGenerator.generate` (via `chunk_paths`), with no events built."""
    st, _slow, liqs, path, _liq_events = gen.chunk_paths(chunk, state)
    grid = np.arange(CHUNK_S, dtype=float)
    pt = np.concatenate([grid, liqs.t])
    order = np.argsort(pt, kind="stable")
    pt = pt[order]
    lp = path.logp(pt)
    # the takers, drawn exactly as `_trades` draws them
    p = gen.p
    r = gen.rng(chunk, _S_TRADE)
    rate = p.trade_rate * gen.syn.activity * (1.0 + 0.5 * np.minimum(path.stress(grid + 0.5), 20.0))
    counts = r.poisson(rate)
    n = int(counts.sum())
    r.random(n)  # arrival times within the second
    r.random(n)  # aggressor sides
    notional = p.trade_median_usd * np.exp(1.2 * r.standard_normal(n))
    per_s = np.bincount(np.repeat(np.arange(CHUNK_S), counts), weights=notional, minlength=CHUNK_S)
    vt = np.concatenate([grid + 0.5, liqs.t])
    vn = np.concatenate([per_s, liqs.notional])
    path.finish(st)
    return pt, lp, vt, vn, st


def synthetic_bars(settings: Settings, seed: int, symbol: str, interval_s: int, start_ns: int | None = None,
                   end_ns: int | None = None, duration_s: float | None = None) -> Iterator[Bar]:
    """Bars of one symbol from the market start (or `start_ns`) up to `end_ns` / `duration_s`."""
    if interval_s < 1:
        raise ValueError("synthetic bars need an interval of at least 1 s")
    start = parse_utc(settings.synthetic.start) if start_ns is None else int(start_ns)
    if end_ns is None:
        end_ns = start + int((duration_s if duration_s is not None else 86_400.0) * NS)
    gen = _SymbolGenerator(symbol, profile_for(symbol, settings), instrument_for(symbol), settings, int(seed), start)
    state = gen.initial_state()
    step = interval_s * NS
    n_chunks = -(-(end_ns - start) // (CHUNK_S * NS))
    pts, lps, vts, vns = [], [], [], []
    for chunk in range(int(n_chunks)):
        pt, lp, vt, vn, state = _chunk_samples(gen, chunk, state)
        base = start + chunk * CHUNK_S * NS
        pts.append(base + (pt * NS).astype(np.int64))
        lps.append(lp)
        vts.append(base + (vt * NS).astype(np.int64))
        vns.append(vn)
    if not pts:
        return
    t = np.concatenate(pts)
    lp = np.concatenate(lps)
    keep = t < end_ns
    t, px = t[keep], np.exp(lp[keep])
    vt, vn = np.concatenate(vts), np.concatenate(vns)
    vkeep = vt < end_ns
    vt, vn = vt[vkeep], vn[vkeep]
    bid = t // step
    starts = np.flatnonzero(np.diff(bid, prepend=bid[0] - 1))
    ids = bid[starts]
    o = px[starts]
    h = np.maximum.reduceat(px, starts)
    lo = np.minimum.reduceat(px, starts)
    c = px[np.append(starts[1:], len(px)) - 1]
    turnover = np.zeros(len(ids))
    pos = np.searchsorted(ids, vt // step)
    ok = (pos < len(ids)) & (ids[np.minimum(pos, len(ids) - 1)] == vt // step)
    np.add.at(turnover, pos[ok], vn[ok])
    dec = max(0, -int(np.floor(np.log10(gen.tick)))) if gen.tick < 1 else 0
    for i in range(len(ids)):
        close_ts = int((ids[i] + 1) * step)
        if close_ts > end_ns:
            break  # an incomplete last bar
        ci = round(float(c[i]), dec)
        yield Bar(close_ts, symbol, int(interval_s), round(float(o[i]), dec), round(float(h[i]), dec),
                  round(float(lo[i]), dec), ci, float(turnover[i]) / ci, float(turnover[i]))


def _bars_list(args: tuple) -> list[Bar]:
    return list(synthetic_bars(*args))


def synthetic_bar_series(settings: Settings, seed: int, symbols: list[str], interval_s: int,
                         start_ns: int | None = None, end_ns: int | None = None, duration_s: float | None = None,
                         jobs: int | None = None) -> dict[str, list[Bar]]:
    """symbol -> bars; symbols are independent streams, so they run on a process pool (`jobs`, default
    the CPUs, one process when there is one symbol). The result does not depend on `jobs`."""
    import os
    from concurrent.futures import ProcessPoolExecutor

    args = [(settings, seed, s, interval_s, start_ns, end_ns, duration_s) for s in symbols]
    n = min(len(symbols), jobs or os.cpu_count() or 1)
    if n <= 1:
        return {s: _bars_list(a) for s, a in zip(symbols, args, strict=True)}
    with ProcessPoolExecutor(max_workers=n) as pool:
        return dict(zip(symbols, pool.map(_bars_list, args), strict=True))
