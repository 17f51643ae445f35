"""The embedded synthetic market: a seeded, restartable, multi-symbol perp market.

Model (docs/synthetic-market.md has the parameters, their sources and the calibration):

* Liquidations per symbol follow a marked Hawkes process with exponential kernels,
  simulated exactly by Ogata thinning (quant.md §5.3). The intensity has three parts:
  a constant background rate with weak self-excitation; *episodes*, started by
  exogenous shocks on a regular (gamma-renewal) schedule, whose liquidations excite
  each other; and the decaying excitation of both. Marks are notionals: lognormal,
  larger while an episode is hot (deep cascades liquidate bigger positions), and a
  mark's excitation g(m) has mean 1 so the branching ratio stays α/β.
* Each liquidation moves the log price by an impact ∝ notional / visible depth, and
  depth thins with a stress index (decaying sum of recent liquidated notional).
  A forced episode's impact decays by `reversion_fraction` with a time constant of
  seconds to a minute (a propagator); an informed one keeps its impact and drifts
  `informed_continuation` further over minutes, and its liquidated positions are
  replaced by new ones (OI does not flush). Diffusion adds ordinary volatility,
  at most doubled by stress.
* Trades, books, tickers (mark, index, OI, funding) and long/short ratios are
  computed from that path with numpy, a chunk (`CHUNK_S` seconds) at a time.

Determinism and restarts: every (symbol, chunk, stream) has its own generator from
`SeedSequence([seed, crc32(symbol), chunk, stream])`, and all state that crosses a
chunk boundary is a small JSON dict, so a chunk can be regenerated from its start
state. A symbol's stream does not depend on which other symbols are present, nor the
liquidations on the book/ticker/ratio intervals (each has its own stream).
"""

from __future__ import annotations

import copy
import gc
import math
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import islice, repeat
from typing import Any

import numpy as np

from ..config import Settings
from ..events import NS, BookSnapshot, Liquidation, LongShortRatio, Ticker, Trade
from ..instruments import Instrument, instrument_for

CHUNK_S = 600  # generation unit; a restore regenerates at most one chunk
MAX_EPISODES = 100_000  # `SyntheticMarket.episodes` keeps the most recent ones
FUNDING_INTERVAL_NS = 8 * 3600 * NS  # settles 00:00, 08:00, 16:00 UTC
STATE_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

ALL_KINDS: frozenset[type] = frozenset({Liquidation, Trade, BookSnapshot, Ticker, LongShortRatio})
_IDS_PER_CHUNK = 10**7  # trade ids and book update ids are chunk * this + sequence

# random streams per (symbol, chunk)
_S_LIQ, _S_PRICE, _S_TRADE, _S_BOOK, _S_TICKER, _S_SLOW, _S_INIT = range(7)

_SLOW_STEP_S = 60.0  # latent ratio / funding / OI-noise update step
_RATIO_MEAN = 0.10  # log(long/short) long-run mean: retail leans long
_RATIO_TAU_S = 8 * 3600.0
_RATIO_SD = 0.25  # stationary sd of log ratio
_RATIO_JUMP_PER_DAY = 0.5  # crowding shocks that push the ratio towards extremes
_FUNDING_BASE = 0.0001  # Bybit interest component, 0.01% per 8 h (quant.md §6.1)
_FUNDING_TAU_S = 4 * 3600.0
_FUNDING_SD = 0.00004
_FUNDING_RATIO_BETA = 0.0003  # crowded longs pay more
_FUNDING_JUMP_PER_DAY = 0.5
_FUNDING_CAP = 0.0075
_OI_TAU_S = 6 * 3600.0  # OI refills after a forced flush over hours; informed episodes open new positions:
_OI_OPEN_TAU_S = 3.0  # a liquidated informed position is replaced within seconds ...
_OI_OPEN_SURPLUS = 0.2  # ... by 1.2 times its size, so OI does not flush (the surplus fades over _OI_TAU_S)
_OI_NOISE_SD = 0.003
_STRESS_TAU_S = 30.0  # memory of the book/trade stress index
_INFORMED_FLOW_TAU_S = 300.0  # informed episodes leave a persistent taker imbalance
_BG_REVERT_TAU_S = 60.0
_DRIFT_TAU_S = 6 * 3600.0  # memory of the running mean permanent impact that the drift cancels
_FORCED_TAU_RANGE_S = (5.0, 60.0)  # forced overshoots revert within seconds to a minute, log-uniform
_INFORMED_TAU_RANGE_S = (20.0, 240.0)  # informed repricing goes on for minutes, log-uniform
_VOL_STRESS_MAX = 2.0  # diffusion volatility 1 + 0.5·stress, at most doubled (the jumps are the impacts)
_MARK_THETA = 0.5  # excitation g(m) = (m / median)^θ, normalized to mean 1
_G_CAP = 4.0
_EPISODE_CLOSE = 0.02  # an episode ends when its expected further liquidations drop below this
_IMPACT_CAP = 0.003  # one liquidation moves the price at most 30 bps
_TRANSIENT_FLOOR = 1e-7  # a reverting episode is forgotten below 0.001 bp
_THIN_PER_STRESS = 0.1  # visible depth = base / (1 + 0.1·stress), ...
_THIN_FLOOR = 0.25  # ... but never below a quarter of it
_FRESH_BELOW_THIN = 0.97  # a thinner book is drawn afresh rather than from the resting ladder
_LEVEL_REFRESH_PER_S = 0.05  # a resting level is re-sized about every 20 s


@dataclass(frozen=True, slots=True)
class SymbolProfile:
    """Per-symbol parameters; see docs/synthetic-market.md for where the values come from."""

    price: float
    vol_daily: float  # diffusion volatility (fraction per day), before stress
    p95_usd: float  # target P95 liquidation notional; also the stress unit
    # liquidations: background Hawkes
    bg_per_day: float  # background liquidations per day, children included
    bg_branching: float
    bg_decay_s: float
    bg_median_usd: float
    bg_sigma: float
    # liquidations: episodes (exogenous shocks + in-episode self-excitation)
    episodes_per_day: float
    episode_regularity: float  # gamma shape of the gaps between shocks (1 = Poisson)
    episode_children: float  # mean direct children of a shock
    episode_children_sigma: float  # lognormal dispersion of that severity
    episode_branching: float
    episode_decay_s: float
    ep_median_usd: float
    ep_sigma: float
    ep_heat_exp: float  # mark multiplier (1 + expected remaining children)^exp
    # impact, book, trades, OI
    impact_bps_per_depth: float  # bps when one side's visible depth is liquidated at once
    depth_touch: float  # base units per level near the touch
    level_gap_ticks: float  # mean tick distance between populated levels
    spread_ticks: int
    spread_widen_ticks: float  # extra ticks per unit of stress
    max_spread_ticks: int
    trade_rate: float  # taker trades per second when calm
    trade_median_usd: float
    open_interest: float  # base units


PROFILES: dict[str, SymbolProfile] = {
    "BTCUSDT": SymbolProfile(
        price=95_000.0, vol_daily=0.028, p95_usd=200_000.0,
        bg_per_day=1500.0, bg_branching=0.65, bg_decay_s=20.0, bg_median_usd=4_100.0, bg_sigma=1.1,
        episodes_per_day=7.3, episode_regularity=16.0, episode_children=12.0, episode_children_sigma=0.25,
        episode_branching=0.3, episode_decay_s=5.4, ep_median_usd=41_000.0, ep_sigma=1.0, ep_heat_exp=1.0,
        impact_bps_per_depth=25.0, depth_touch=2.5, level_gap_ticks=1.6, spread_ticks=1,
        spread_widen_ticks=4.0, max_spread_ticks=80, trade_rate=2.5, trade_median_usd=2_500.0,
        open_interest=55_000.0),
    "ETHUSDT": SymbolProfile(
        price=3_300.0, vol_daily=0.038, p95_usd=80_000.0,
        bg_per_day=1800.0, bg_branching=0.65, bg_decay_s=20.0, bg_median_usd=1_800.0, bg_sigma=1.1,
        episodes_per_day=9.45, episode_regularity=16.0, episode_children=12.0, episode_children_sigma=0.25,
        episode_branching=0.3, episode_decay_s=4.9, ep_median_usd=14_500.0, ep_sigma=1.0, ep_heat_exp=1.0,
        impact_bps_per_depth=47.0, depth_touch=40.0, level_gap_ticks=1.6, spread_ticks=1,
        spread_widen_ticks=4.0, max_spread_ticks=80, trade_rate=2.2, trade_median_usd=1_800.0,
        open_interest=1_100_000.0),
    "SOLUSDT": SymbolProfile(
        price=190.0, vol_daily=0.05, p95_usd=15_000.0,
        bg_per_day=1100.0, bg_branching=0.65, bg_decay_s=20.0, bg_median_usd=310.0, bg_sigma=1.1,
        episodes_per_day=7.2, episode_regularity=16.0, episode_children=12.0, episode_children_sigma=0.25,
        episode_branching=0.3, episode_decay_s=4.3, ep_median_usd=2_300.0, ep_sigma=1.0, ep_heat_exp=1.0,
        impact_bps_per_depth=140.0, depth_touch=250.0, level_gap_ticks=1.2, spread_ticks=1,
        spread_widen_ticks=1.5, max_spread_ticks=30, trade_rate=1.8, trade_median_usd=900.0,
        open_interest=9_000_000.0),
    "XRPUSDT": SymbolProfile(
        price=2.3, vol_daily=0.05, p95_usd=10_000.0,
        bg_per_day=900.0, bg_branching=0.65, bg_decay_s=20.0, bg_median_usd=210.0, bg_sigma=1.1,
        episodes_per_day=5.5, episode_regularity=16.0, episode_children=12.0, episode_children_sigma=0.25,
        episode_branching=0.3, episode_decay_s=4.1, ep_median_usd=1_700.0, ep_sigma=1.0, ep_heat_exp=1.0,
        impact_bps_per_depth=275.0, depth_touch=25_000.0, level_gap_ticks=1.05, spread_ticks=1,
        spread_widen_ticks=1.0, max_spread_ticks=20, trade_rate=1.5, trade_median_usd=600.0,
        open_interest=450_000_000.0),
    "DOGEUSDT": SymbolProfile(
        price=0.33, vol_daily=0.055, p95_usd=10_000.0,
        bg_per_day=800.0, bg_branching=0.65, bg_decay_s=20.0, bg_median_usd=240.0, bg_sigma=1.1,
        episodes_per_day=4.5, episode_regularity=16.0, episode_children=12.0, episode_children_sigma=0.25,
        episode_branching=0.3, episode_decay_s=3.7, ep_median_usd=1_950.0, ep_sigma=1.0, ep_heat_exp=1.0,
        impact_bps_per_depth=300.0, depth_touch=250_000.0, level_gap_ticks=1.05, spread_ticks=1,
        spread_widen_ticks=1.0, max_spread_ticks=20, trade_rate=1.5, trade_median_usd=500.0,
        open_interest=4_500_000_000.0),
}


def profile_for(symbol: str, settings: Settings | None = None) -> SymbolProfile:
    """The profile of a known symbol; unknown ones get an XRP-like profile priced at 10 USDT,
    scaled to the configured default cascade seed threshold."""
    if symbol in PROFILES:
        return PROFILES[symbol]
    base = PROFILES["XRPUSDT"]
    p95 = settings.cascade.default_seed_threshold_usd if settings is not None else base.p95_usd
    k = p95 / base.p95_usd
    return replace(base, price=10.0, p95_usd=p95, bg_median_usd=base.bg_median_usd * k,
                   ep_median_usd=base.ep_median_usd * k, depth_touch=base.depth_touch * base.price / 10.0 * k,
                   open_interest=base.open_interest * base.price / 10.0)


@dataclass(slots=True)
class Episode:
    """Ground truth for one liquidation episode (a cluster started by a shock).

    `direction` is the side that was liquidated (long: price pushed down).
    `impact_bps` is the summed absolute impact of the episode's liquidations, at the
    moment each hit. `reversion_fraction` is the share of that impact the price gives
    back over `reversion_tau_s` (exponentially); negative means it continues further
    (informed episodes). `start_price` is the mid just before the first liquidation.
    """

    id: int
    symbol: str
    start_ts: int
    end_ts: int
    kind: str  # "forced" | "informed"
    direction: str  # "long" | "short"
    impact_bps: float
    reversion_fraction: float
    reversion_tau_s: float
    liquidations: int
    notional_usd: float
    start_price: float


def parse_utc(text: str) -> int:
    """ISO-8601 time (naive means UTC) to int ns since the epoch."""
    dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH) // timedelta(microseconds=1) * 1000


def _thin(z: np.ndarray) -> np.ndarray:
    """Share of the calm visible depth left at stress z."""
    return np.maximum(_THIN_FLOOR, 1.0 / (1.0 + _THIN_PER_STRESS * z))


def _decimals(step: float) -> int:
    return max(0, -Decimal(repr(step)).normalize().as_tuple().exponent)


def _decayed(ev_t: np.ndarray, amounts: np.ndarray, tau: float, v0: float, q: np.ndarray,
             side: str = "right") -> tuple[np.ndarray, float, float]:
    """v(q) = v0·e^(−q/τ) + Σ_{t_i ≤ q} a_i·e^(−(q − t_i)/τ) at chunk-relative times q.

    Returns (values at q, value just after the last event, time of the last event).
    side="left" excludes an event at exactly q (the price a liquidation itself sees).
    Within a chunk t ≤ 600 s and every τ here is ≥ 3 s, so e^(t/τ) ≤ e^200 stays finite.
    """
    if len(ev_t) == 0:
        return v0 * np.exp(-q / tau), v0, 0.0
    scale = np.exp(ev_t / tau)
    after = (v0 + np.cumsum(amounts * scale)) / scale  # value just after each event
    idx = np.searchsorted(ev_t, q, side) - 1
    j = np.maximum(idx, 0)
    base_v = np.where(idx >= 0, after[j], v0)
    base_t = np.where(idx >= 0, ev_t[j], 0.0)
    return base_v * np.exp(-(q - base_t) / tau), float(after[-1]), float(ev_t[-1])


def _copy_state(state: dict) -> dict:
    """A symbol state is flat but for the list of episode dicts, which are flat."""
    return {**state, "episodes": [dict(e) for e in state["episodes"]]}


def _grid(off_ns: int, length_ns: int, step_ns: int) -> np.ndarray:
    """Multiples of step_ns (from the market start) inside [off_ns, off_ns + length_ns), as offsets."""
    first = -(-off_ns // step_ns)
    last = (off_ns + length_ns - 1) // step_ns
    return np.arange(first, last + 1, dtype=np.int64) * step_ns - off_ns


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while a chunk's ~10^5 short-lived tuples and events are built.

    Collecting them every 700 allocations costs more than building them (measured 2x on
    the whole stream); the deferred young generation is collected once afterwards.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class _Draws:
    """Pre-drawn variates for the thinning loop (scalar Generator calls are slow)."""

    __slots__ = ("rng", "u", "e", "z", "iu", "ie", "iz")
    N = 1024

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.u = self.e = self.z = []
        self.iu = self.ie = self.iz = self.N

    def uniform(self) -> float:
        if self.iu == self.N:
            self.u, self.iu = self.rng.random(self.N).tolist(), 0
        self.iu += 1
        return self.u[self.iu - 1]

    def exponential(self) -> float:
        if self.ie == self.N:
            self.e, self.ie = self.rng.standard_exponential(self.N).tolist(), 0
        self.ie += 1
        return self.e[self.ie - 1]

    def normal(self) -> float:
        if self.iz == self.N:
            self.z, self.iz = self.rng.standard_normal(self.N).tolist(), 0
        self.iz += 1
        return self.z[self.iz - 1]


@dataclass(slots=True)
class _Liqs:
    """One chunk's liquidations (chunk-relative seconds) and the episodes they closed."""

    t: np.ndarray
    notional: np.ndarray
    sign: np.ndarray  # +1: a long was liquidated (sell), −1: a short (buy)
    impact: np.ndarray  # signed log-price jump
    group: np.ndarray  # episode id, −1 for background
    informed: np.ndarray  # bool
    closed: list[dict]  # episode states whose Hawkes part ended in this chunk
    started: list[dict]  # episode states created in this chunk


class _SymbolGenerator:
    """Generates one symbol's events chunk by chunk from a carried JSON state."""

    def __init__(self, symbol: str, profile: SymbolProfile, inst: Instrument, settings: Settings, seed: int,
                 start_ns: int):
        self.symbol = symbol
        self.p = profile
        self.inst = inst
        self.syn = settings.synthetic
        self.seed = seed
        self.key = zlib.crc32(symbol.encode())
        self.start_ns = start_ns
        self.tick = inst.tick_size
        self.step = inst.qty_step
        self.pdec = _decimals(inst.tick_size)
        self.qdec = _decimals(inst.qty_step)
        L = settings.synthetic.book_levels
        self.levels = L
        self.depth_usd = profile.depth_touch * L * profile.price  # one side's calm visible notional

    def rng(self, chunk: int, stream: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, self.key, chunk, stream]))

    # -- state ------------------------------------------------------------------------------------
    def initial_state(self) -> dict:
        r = self.rng(0, _S_INIT)
        p = self.p
        gap = self._shock_gap(r) * float(r.random())  # the first shock at a random phase
        return {
            "logp": math.log(p.price) + float(r.normal(0, 0.02)),
            "bg_trans": 0.0, "drift": 0.0, "hawkes_bg": 0.0, "z": 0.0, "zs": 0.0, "zi": 0.0,
            "next_shock_s": gap, "episodes": [], "next_episode_id": 1,
            "x": _RATIO_MEAN + float(r.normal(0, _RATIO_SD)),
            "funding": _FUNDING_BASE + float(r.normal(0, _FUNDING_SD)),
            "oi_noise": float(r.normal(0, _OI_NOISE_SD)), "oi_liq": 0.0, "oi_inf": 0.0, "oi_new": 0.0,
        }

    def _shock_gap(self, r: np.random.Generator) -> float:
        p = self.p
        k = p.episode_regularity
        mean = 86400.0 / (p.episodes_per_day * self.syn.activity)
        return float(r.gamma(k, mean / k))

    # -- chunk ------------------------------------------------------------------------------------
    def generate(self, chunk: int, state: dict, kinds: frozenset[type] = ALL_KINDS
                 ) -> tuple[list, np.ndarray, dict, list[dict]]:
        """One chunk: (events, their ts, the next state, the episodes whose liquidations ended here).

        Events come grouped by type (books, tickers, ratios, trades, liquidations), each group
        in time order; the market sorts them. Only `kinds` are built; the state evolves the
        same either way. `state` is not modified."""
        st, slow, liqs, path, (liq_objs, liq_ts, liq_qty) = self.chunk_paths(chunk, state)
        off_ns = chunk * CHUNK_S * NS
        t0_ns = self.start_ns + off_ns
        parts = []
        if BookSnapshot in kinds:
            parts.append(self._books(path, off_ns, t0_ns))
        if Ticker in kinds:
            parts.append(self._tickers(path, liqs, liq_qty, slow, state, off_ns, t0_ns))
        if LongShortRatio in kinds:
            parts.append(self._ratios(slow, off_ns, t0_ns))
        if Trade in kinds:
            parts.append(self._trades(path, liqs, liq_qty, t0_ns))
        if Liquidation in kinds:
            parts.append((liq_objs, liq_ts))
        path.finish(st)
        objs: list = []
        for o, _ in parts:
            objs += o
        ts = np.concatenate([t for _, t in parts]) if parts else np.empty(0, dtype=np.int64)
        return objs, ts, st, liqs.closed

    def chunk_paths(self, chunk: int, state: dict) -> tuple[dict, dict, Any, _PricePath, tuple]:
        """The chunk's processes before any event is built: (next state, slow series, liquidations,
        price path, (liquidation events, their ts, their qty)). `generate` and the bar-level market
        (feeds/synthetic_bars.py) both start here, so their prices cannot drift apart."""
        st = _copy_state(state)
        slow = self._slow(chunk, st)
        liqs = self._liquidations(chunk, st, slow, float(CHUNK_S))
        path = _PricePath(self, chunk, st, liqs)
        if self.syn.imbalance_regime == "edge":
            path.w = path.w + self._contrarian_drift(slow)
        liq_events = self._liquidation_events(path, liqs, self.start_ns + chunk * CHUNK_S * NS)
        self._update_open_interest(liqs, liq_events[2], st)
        return st, slow, liqs, path, liq_events

    # -- LIT's imbalance regime (docs/synthetic-market.md): more crowding, optionally a planted edge --
    def _ratio_jumps_per_day(self) -> float:
        return _RATIO_JUMP_PER_DAY if self.syn.imbalance_regime == "off" else self.syn.imbalance_shocks_per_day

    def _contrarian_drift(self, slow: dict) -> np.ndarray:
        """Cumulative log-price drift on the 1 s grid against the crowd: none below a 1.5x long/short
        ratio, rising linearly to `imbalance_edge_pct_per_day` at 2x and beyond (crowded longs: down)."""
        x = np.repeat(slow["x"], int(slow["dt"]))[:CHUNK_S]
        lo, hi = math.log(1.5), math.log(2.0)
        strength = np.clip((np.abs(x) - lo) / (hi - lo), 0.0, 1.0)
        rate = -np.sign(x) * strength * self.syn.imbalance_edge_pct_per_day / 100.0 / 86400.0
        return np.concatenate([[0.0], np.cumsum(rate)])

    # -- slow latent processes: long/short ratio, funding, OI noise (minute grid) -----------------
    def _slow(self, chunk: int, st: dict) -> dict:
        r = self.rng(chunk, _S_SLOW)
        n = int(CHUNK_S / _SLOW_STEP_S)
        dt = _SLOW_STEP_S
        rho_x = math.exp(-dt / _RATIO_TAU_S)
        rho_f = math.exp(-dt / _FUNDING_TAU_S)
        rho_o = math.exp(-dt / _OI_TAU_S)
        eps = r.standard_normal((n, 3))
        jumps = r.random((n, 2))
        jump_size = r.normal(0, 1, (n, 2))
        x = np.empty(n)
        f = np.empty(n)
        o = np.empty(n + 1)
        xv, fv, ov = st["x"], st["funding"], st["oi_noise"]
        px = self._ratio_jumps_per_day() * dt / 86400.0
        jump0 = 0.5 if self.syn.imbalance_regime == "off" else 0.8  # LIT's regime: shocks past a 2x ratio
        pf = _FUNDING_JUMP_PER_DAY * dt / 86400.0
        for k in range(n):
            x[k], f[k], o[k] = xv, fv, ov
            xv = _RATIO_MEAN + (xv - _RATIO_MEAN) * rho_x + _RATIO_SD * math.sqrt(1 - rho_x**2) * eps[k, 0]
            if jumps[k, 0] < px:  # a crowding shock: the crowd piles onto one side
                xv += math.copysign(jump0 + 0.3 * abs(jump_size[k, 0]), jump_size[k, 0])
            f_mean = _FUNDING_BASE + _FUNDING_RATIO_BETA * (xv - _RATIO_MEAN)
            fv = f_mean + (fv - f_mean) * rho_f + _FUNDING_SD * math.sqrt(1 - rho_f**2) * eps[k, 1]
            if jumps[k, 1] < pf:
                fv += 0.0004 * jump_size[k, 1]
            fv = min(max(fv, -_FUNDING_CAP), _FUNDING_CAP)
            ov = ov * rho_o + _OI_NOISE_SD * math.sqrt(1 - rho_o**2) * eps[k, 2]
        o[n] = ov
        st["x"], st["funding"], st["oi_noise"] = xv, fv, ov
        return {"x": x, "funding": f, "oi_noise": o, "dt": dt}

    # -- liquidations: Ogata thinning of the marked Hawkes intensity ------------------------------
    def _liquidations(self, chunk: int, st: dict, slow: dict, T: float) -> _Liqs:
        """Exact thinning (quant.md §5.3) of λ = μ + S_bg + Σ S_episode, with shocks at scheduled times.

        Between events every part only decays, so the intensity just after the current time
        bounds it until the next event; a shock falling before a candidate restarts the
        draw at the shock (memorylessness keeps this exact).
        """
        p, syn = self.p, self.syn
        rng = self.rng(chunk, _S_LIQ)
        draw = _Draws(rng)
        mu = p.bg_per_day * (1 - p.bg_branching) / 86400.0 * syn.activity
        beta_b, beta_e = 1.0 / p.bg_decay_s, 1.0 / p.episode_decay_s
        alpha_b, alpha_e = p.bg_branching * beta_b, p.episode_branching * beta_e
        g_norm_b = math.exp(-0.5 * (_MARK_THETA * p.bg_sigma) ** 2)  # E[g] = 1 for lognormal marks
        g_norm_e = math.exp(-0.5 * (_MARK_THETA * p.ep_sigma) ** 2)
        chunk_t0 = chunk * float(CHUNK_S)
        base_ns = self.start_ns + chunk * CHUNK_S * NS
        x_grid = slow["x"]
        k_imp = p.impact_bps_per_depth * 1e-4 / self.depth_usd
        ref = p.p95_usd
        open_eps: list[dict] = [e for e in st["episodes"] if e["open"]]
        s_bg, z, t = st["hawkes_bg"], st["z"], 0.0
        out: list[tuple[float, float, int, float, int, bool]] = []
        started: list[dict] = []
        closed: list[dict] = []

        def emit(m: float, sign: int, ep: dict | None) -> None:
            nonlocal z
            imp = -sign * min(_IMPACT_CAP, k_imp * m / max(_THIN_FLOOR, 1.0 / (1.0 + _THIN_PER_STRESS * z)))
            z += m / ref
            out.append((t, m, sign, imp, ep["id"] if ep else -1, bool(ep and ep["kind"] == "informed")))
            if ep is not None:
                ep["n"] += 1
                ep["notional"] += m
                ep["impact_bps"] += abs(imp) * 1e4
                ep["last_ts_ns"] = base_ns + int(t * NS)  # equals the Liquidation's ts

        def ratio_at(now: float) -> float:
            return x_grid[min(int(now // _SLOW_STEP_S), len(x_grid) - 1)]

        while True:
            lam_bar = mu + s_bg + sum(e["S"] for e in open_eps)
            w = draw.exponential() / lam_bar
            shock_at = st["next_shock_s"] - chunk_t0
            stop = min(T, shock_at)
            reached = w >= stop - t  # no candidate before the stop (the chunk end or a shock)
            dt = stop - t if reached else w
            s_bg *= math.exp(-beta_b * dt)
            de = math.exp(-beta_e * dt)
            for e in open_eps:
                e["S"] *= de
            z *= math.exp(-dt / _STRESS_TAU_S)
            t = stop if reached else t + dt
            for e in [e for e in open_eps if e["S"] / beta_e < _EPISODE_CLOSE]:
                e["open"], e["S"] = False, 0.0  # expected further liquidations < 2%: the episode is over
                open_eps.remove(e)
                closed.append(e)
            if reached:
                if shock_at >= T:
                    break
                sev = p.episode_children * math.exp(
                    p.episode_children_sigma * draw.normal() - 0.5 * p.episode_children_sigma**2)
                p_long = 1.0 / (1.0 + math.exp(-(0.6 + 1.5 * (ratio_at(t) - _RATIO_MEAN))))  # crowded side breaks
                sign = 1 if draw.uniform() < p_long else -1
                kind = "informed" if draw.uniform() < syn.informed_share else "forced"
                lo, hi = _FORCED_TAU_RANGE_S if kind == "forced" else _INFORMED_TAU_RANGE_S
                ep = {"id": st["next_episode_id"], "kind": kind, "dir": sign,
                      "start_ts_ns": base_ns + int(t * NS), "last_ts_ns": 0, "S": sev * beta_e,
                      "f": syn.reversion_fraction if kind == "forced" else -syn.informed_continuation,
                      "tau": lo * (hi / lo) ** draw.uniform(), "K": 0.0, "impact_bps": 0.0, "n": 0,
                      "notional": 0.0, "start_price": 0.0, "open": True}
                st["next_episode_id"] += 1
                st["episodes"].append(ep)
                open_eps.append(ep)
                started.append(ep)
                emit(p.ep_median_usd * (1.0 + sev) ** p.ep_heat_exp * math.exp(p.ep_sigma * draw.normal()), sign, ep)
                st["next_shock_s"] += self._shock_gap(rng)
                continue
            lam = mu + s_bg + sum(e["S"] for e in open_eps)
            if draw.uniform() * lam_bar > lam:
                continue  # thinned
            v = draw.uniform() * lam  # attribute: background (immigrant or child) or one episode
            zn = draw.normal()
            if v < mu + s_bg:
                sign = 1 if draw.uniform() < 0.5 + 0.15 * math.tanh(ratio_at(t)) else -1
                emit(p.bg_median_usd * math.exp(p.bg_sigma * zn), sign, None)
                s_bg += alpha_b * min(_G_CAP, math.exp(_MARK_THETA * p.bg_sigma * zn) * g_norm_b)
                continue
            v -= mu + s_bg
            ep = open_eps[-1]
            for e in open_eps:
                if v < e["S"]:
                    ep = e
                    break
                v -= e["S"]
            heat = (1.0 + ep["S"] / beta_e) ** p.ep_heat_exp  # hot episodes liquidate bigger positions
            sign = ep["dir"] if draw.uniform() < 0.9 else -ep["dir"]
            emit(p.ep_median_usd * heat * math.exp(p.ep_sigma * zn), sign, ep)
            ep["S"] += alpha_e * min(_G_CAP, math.exp(_MARK_THETA * p.ep_sigma * zn) * g_norm_e)

        st["hawkes_bg"] = s_bg
        cols = list(zip(*out)) if out else [(), (), (), (), (), ()]
        return _Liqs(np.array(cols[0], dtype=float), np.array(cols[1], dtype=float),
                     np.array(cols[2], dtype=np.int64), np.array(cols[3], dtype=float),
                     np.array(cols[4], dtype=np.int64), np.array(cols[5], dtype=bool), closed, started)

    # -- quotes on the tick grid ------------------------------------------------------------------
    def _spread_ticks(self, z: np.ndarray) -> np.ndarray:
        p = self.p
        return np.minimum(p.max_spread_ticks, p.spread_ticks + np.floor(p.spread_widen_ticks * z)).astype(np.int64)

    def _touch(self, logp: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mid in ticks, best bid ticks, best ask ticks) for log prices and stress levels."""
        mid_t = np.exp(logp) / self.tick
        spread = self._spread_ticks(z)
        bid = np.floor(mid_t - spread / 2 + 0.5).astype(np.int64)
        return mid_t, bid, bid + spread

    def _px(self, ticks: np.ndarray) -> np.ndarray:
        return np.round(ticks * self.tick, self.pdec)

    def _qty(self, qty: np.ndarray) -> np.ndarray:
        return np.round(np.maximum(np.floor(qty / self.step), 1.0) * self.step, self.qdec)

    # -- events -----------------------------------------------------------------------------------
    def _liquidation_events(self, path: _PricePath, liqs: _Liqs, t0_ns: int
                            ) -> tuple[list, np.ndarray, np.ndarray]:
        n = len(liqs.t)
        if n == 0:
            return [], np.empty(0, dtype=np.int64), np.empty(0)
        logp = path.logp(liqs.t, "left")  # the price each liquidation meets, before its own impact
        z = path.stress(liqs.t, "left")
        mid_t, bid, ask = self._touch(logp, z)
        r = path.rng  # the price stream, after the diffusion draws
        off_bps = np.minimum(50.0, 4.0 * np.exp(0.6 * r.standard_normal(n)))  # bankruptcy price beyond the touch
        off = np.maximum(1, np.round(off_bps * 1e-4 * mid_t)).astype(np.int64)
        long = liqs.sign > 0
        ticks = np.where(long, bid - off, ask + off)
        px = self._px(ticks)
        qty = self._qty(liqs.notional / px)
        for ep in liqs.started:
            i = int(np.argmax(liqs.group == ep["id"]))
            ep["start_price"] = float(self._px(np.round(mid_t[i : i + 1]))[0])
        ts = t0_ns + (liqs.t * NS).astype(np.int64)
        side = np.where(long, "long", "short").tolist()
        raw = np.where(long, "Buy", "Sell").tolist()
        tsl = ts.tolist()
        objs = list(map(Liquidation, tsl, repeat(self.symbol), side, px.tolist(), qty.tolist(), raw, tsl))
        return objs, ts, qty

    def _trades(self, path: _PricePath, liqs: _Liqs, liq_qty: np.ndarray, t0_ns: int) -> tuple[list, np.ndarray]:
        """Takers: Poisson per second at a rate that rises with stress, leaning with the forced
        (and informed) flow; plus each liquidation's own print 1 µs after it, at the touch."""
        p = self.p
        r = self.rng(path.chunk, _S_TRADE)
        cells = np.arange(CHUNK_S, dtype=float)
        rate = p.trade_rate * self.syn.activity * (1.0 + 0.5 * np.minimum(path.stress(cells + 0.5), 20.0))
        counts = r.poisson(rate)
        tk = np.sort(np.repeat(cells, counts) + r.random(int(counts.sum())))
        n = len(tk)
        sell = r.random(n) < 0.5 + 0.4 * np.tanh(0.4 * path.pressure(tk))
        notional = p.trade_median_usd * np.exp(1.2 * r.standard_normal(n))
        lt = np.minimum(liqs.t + 1e-6, np.nextafter(float(CHUNK_S), 0.0))
        t = np.concatenate([tk, lt])
        order = np.argsort(t, kind="stable")
        t = t[order]
        sell = np.concatenate([sell, liqs.sign > 0])[order]
        _, bid, ask = self._touch(path.logp(t), path.stress(t))
        px = self._px(np.where(sell, bid, ask))
        qty = np.concatenate([notional, liq_qty])[order]
        qty = np.where(order < n, self._qty(qty / px), qty)  # takers: from notional; prints: the liquidated size
        ts = t0_ns + (t * NS).astype(np.int64)
        first = path.chunk * _IDS_PER_CHUNK
        tsl = ts.tolist()
        objs = list(map(Trade, tsl, repeat(self.symbol), np.where(sell, "sell", "buy").tolist(), px.tolist(),
                        qty.tolist(), map(str, range(first, first + len(t))), tsl))
        return objs, ts

    def _books(self, path: _PricePath, off_ns: int, t0_ns: int) -> tuple[list, np.ndarray]:
        """L2 snapshots around the touch; the spread widens and depth thins with stress."""
        rel = _grid(off_ns, CHUNK_S * NS, int(round(self.syn.book_interval_s * NS)))
        n = len(rel)
        if n == 0:
            return [], rel
        r = self.rng(path.chunk, _S_BOOK)
        q = rel / NS
        z = path.stress(q)
        _, bid, ask = self._touch(path.logp(q), z)
        thin = _thin(z)
        bids = self._side(r, bid, -1, thin)
        asks = self._side(r, ask, 1, thin)
        ts = t0_ns + rel
        first = path.chunk * _IDS_PER_CHUNK
        tsl = ts.tolist()
        objs = list(map(BookSnapshot, tsl, repeat(self.symbol), bids, asks, range(first, first + n), tsl))
        return objs, ts

    def _side(self, r: np.random.Generator, touch: np.ndarray, way: int, thin: np.ndarray) -> list[list]:
        """One side's levels (best first) for each snapshot; way −1: bids, +1: asks.

        Behind a fresh touch level sits a resting ladder of populated ticks built once per
        chunk; each snapshot shows the part of it beyond the touch, and a few of its levels
        are re-sized between snapshots. Unchanged levels keep their (price, size) tuple, which
        makes a snapshot cheap. Under stress (depth thinned) the levels are drawn afresh.
        """
        p, L, n = self.p, self.levels, len(touch)
        touch_qty = self._qty(p.depth_touch * thin * np.exp(0.6 * r.standard_normal(n) - 0.18))
        touches = list(zip(self._px(touch).tolist(), touch_qty.tolist()))
        # the ladder: from just beyond the best touch to L levels beyond the worst one
        start = touch.max() - 1 if way < 0 else touch.min() + 1
        reach = int(touch.max() - touch.min())
        m = int(reach / p.level_gap_ticks * 1.3) + 2 * L + 8
        ticks = start + way * (np.cumsum(r.geometric(1.0 / p.level_gap_ticks, m)) - 1)
        worst = touch.min() if way < 0 else touch.max()
        while (way * (ticks - worst) > 0).sum() < L:  # rare: the gaps came out wide
            ticks = np.concatenate([ticks, ticks[-1] + way * np.cumsum(r.geometric(1.0 / p.level_gap_ticks, m))])
        base = self._qty(p.depth_touch * np.exp(0.6 * r.standard_normal(len(ticks)) - 0.18))
        ladder = list(zip(self._px(ticks).tolist(), base.tolist()))
        # first ladder level strictly beyond each snapshot's touch
        idx = np.searchsorted(-ticks, -touch, "right") if way < 0 else np.searchsorted(ticks, touch, "right")
        # re-sizing: each shown level changes about every 20 s
        k = r.poisson(_LEVEL_REFRESH_PER_S * (L - 1) * self.syn.book_interval_s, n)
        pos = np.repeat(idx, k) + r.integers(0, L - 1, int(k.sum()))
        upd = list(zip(self._px(ticks[pos]).tolist(),
                       self._qty(p.depth_touch * np.exp(0.6 * r.standard_normal(len(pos)) - 0.18)).tolist()))
        out: list[list] = []
        changes = zip(pos.tolist(), upd)
        for j, t, c in zip(idx.tolist(), touches, k.tolist()):
            for at, level in islice(changes, c):
                ladder[at] = level
            levels = ladder[j : j + L - 1]
            levels.insert(0, t)
            out.append(levels)
        for i in np.flatnonzero(thin < _FRESH_BELOW_THIN).tolist():  # stressed: drawn afresh
            out[i] = self._fresh_levels(r, int(touch[i]), way, float(thin[i]), touches[i])
        return out

    def _fresh_levels(self, r: np.random.Generator, touch: int, way: int, thin: float,
                      first: tuple[float, float]) -> list[tuple[float, float]]:
        """A thinned side drawn afresh (stress): random gaps, sizes scaled by `thin`."""
        p, L = self.p, self.levels
        ticks = touch + way * np.cumsum(r.geometric(1.0 / p.level_gap_ticks, L - 1))
        qty = self._qty(p.depth_touch * thin * np.exp(0.6 * r.standard_normal(L - 1) - 0.18))
        return [first, *zip(self._px(ticks).tolist(), qty.tolist())]

    @staticmethod
    def _oi_deficits(liqs: _Liqs, liq_qty: np.ndarray, st: dict, q: np.ndarray
                     ) -> tuple[np.ndarray, float, float, float]:
        """Liquidated size not yet replaced by new positions, at times q, and the three carried
        deficits at the chunk end. A forced flush refills over hours. An informed liquidation of
        size Q counts (1 + s)·Q·e^(−t/3 s) − s·Q·e^(−t/6 h), s = `_OI_OPEN_SURPLUS`: the full Q at
        once, then new positions take its place within seconds and OI ends up s·Q higher."""
        inf = liqs.informed
        out = np.zeros(len(q))
        ends = []
        s = _OI_OPEN_SURPLUS
        for sel, k, tau, key in ((~inf, 1.0, _OI_TAU_S, "oi_liq"), (inf, 1.0 + s, _OI_OPEN_TAU_S, "oi_inf"),
                                 (inf, -s, _OI_TAU_S, "oi_new")):
            v, last, tl = _decayed(liqs.t[sel], k * liq_qty[sel], tau, st.get(key, 0.0), q)
            out += v
            ends.append(last * math.exp(-(CHUNK_S - tl) / tau))
        return out, ends[0], ends[1], ends[2]

    def _update_open_interest(self, liqs: _Liqs, liq_qty: np.ndarray, st: dict) -> None:
        _, st["oi_liq"], st["oi_inf"], st["oi_new"] = self._oi_deficits(liqs, liq_qty, st, np.empty(0))

    def _tickers(self, path: _PricePath, liqs: _Liqs, liq_qty: np.ndarray, slow: dict, start: dict, off_ns: int,
                 t0_ns: int) -> tuple[list, np.ndarray]:
        """Mark, index, open interest (liquidations flush it), predicted funding, next funding time.
        `start` is the chunk's start state (for the carried OI deficits)."""
        rel = _grid(off_ns, CHUNK_S * NS, int(round(self.syn.ticker_interval_s * NS)))
        n = len(rel)
        if n == 0:
            return [], rel
        q = rel / NS
        r = self.rng(path.chunk, _S_TICKER)
        slow_t = np.arange(len(slow["oi_noise"])) * slow["dt"]
        deficit = self._oi_deficits(liqs, liq_qty, start, q)[0]
        oi = self._qty(self.p.open_interest * (1.0 + np.interp(q, slow_t, slow["oi_noise"])) - deficit)
        k = np.minimum((q // slow["dt"]).astype(np.int64), len(slow["funding"]) - 1)
        funding = slow["funding"][k]
        mid_t, _, _ = self._touch(path.logp(q), path.stress(q))
        mark = self._px(np.round(mid_t))
        premium = 0.5 * (funding - _FUNDING_BASE) + 0.3e-4 * r.standard_normal(n)  # perp over index
        index = self._px(np.round(mid_t / (1.0 + premium)))
        ts = t0_ns + rel
        next_funding = (ts // FUNDING_INTERVAL_NS + 1) * FUNDING_INTERVAL_NS
        tsl = ts.tolist()
        objs = list(map(Ticker, tsl, repeat(self.symbol), mark.tolist(), index.tolist(), oi.tolist(),
                        np.round(funding, 8).tolist(), next_funding.tolist(), repeat(8.0), mark.tolist(), tsl))
        return objs, ts

    def _ratios(self, slow: dict, off_ns: int, t0_ns: int) -> tuple[list, np.ndarray]:
        rel = _grid(off_ns, CHUNK_S * NS, int(round(self.syn.ratio_interval_s * NS)))
        if len(rel) == 0:
            return [], rel
        k = np.minimum((rel / NS // slow["dt"]).astype(np.int64), len(slow["x"]) - 1)
        long_share = np.round(1.0 / (1.0 + np.exp(-slow["x"][k])), 4)
        ts = t0_ns + rel
        tsl = ts.tolist()
        objs = list(map(LongShortRatio, tsl, repeat(self.symbol), long_share.tolist(),
                        np.round(1.0 - long_share, 4).tolist(), repeat("synthetic"), tsl))
        return objs, ts


class _PricePath:
    """One chunk's log price and stress curves, evaluated exactly at any times.

    log p(t) = carried level + diffusion W(t) + Σ permanent impacts + Σ per-group transients,
    where a group (the background, or one episode) gives back its fraction f of each
    impact with its own time constant (f < 0: continues).
    """

    def __init__(self, gen: _SymbolGenerator, chunk: int, st: dict, liqs: _Liqs):
        p, syn = gen.p, gen.syn
        self.chunk = chunk
        self.st = st
        self.liqs = liqs
        t = liqs.t
        stress_amt = liqs.notional / p.p95_usd
        # stress (book, trade rate, volatility) and signed pressure (trade lean)
        self._stress = (t, stress_amt, st["z"])
        self._press = (t, stress_amt * liqs.sign, st["zs"])
        self._inf = (t[liqs.informed], 0.3 * (stress_amt * liqs.sign)[liqs.informed], st["zi"])
        # diffusion on a 1 s grid, volatility rising with stress
        self.rng = r = gen.rng(chunk, _S_PRICE)
        grid = np.arange(CHUNK_S + 1, dtype=float)
        sigma = p.vol_daily / math.sqrt(86400.0) * np.minimum(1.0 + 0.5 * self.stress(grid[:-1]), _VOL_STRESS_MAX)
        self.grid = grid
        steps = sigma * r.standard_normal(CHUNK_S) - st["drift"]  # drift offsets the liquidations' mean push
        self.w = np.concatenate([[0.0], np.cumsum(steps)])
        # impact split into permanent and transient parts, by group
        eps = {e["id"]: e for e in st["episodes"]}
        f = np.array([eps[g]["f"] if g >= 0 else syn.reversion_fraction for g in liqs.group.tolist()])
        self.perm = np.cumsum(liqs.impact * (1.0 - f))
        self.groups: list[tuple[np.ndarray, np.ndarray, float, float, dict | None]] = []
        bg = liqs.group < 0
        self.groups.append((t[bg], (liqs.impact * f)[bg], _BG_REVERT_TAU_S, st["bg_trans"], None))
        for e in st["episodes"]:
            sel = liqs.group == e["id"]
            self.groups.append((t[sel], (liqs.impact * f)[sel], e["tau"], e["K"], e))

    def stress(self, q: np.ndarray, side: str = "right") -> np.ndarray:
        t, a, v0 = self._stress
        return _decayed(t, a, _STRESS_TAU_S, v0, q, side)[0]

    def pressure(self, q: np.ndarray) -> np.ndarray:
        """Signed flow pressure: > 0 when longs are being forced out (or informed sellers persist)."""
        t, a, v0 = self._press
        ti, ai, vi = self._inf
        return _decayed(t, a, _STRESS_TAU_S, v0, q)[0] + _decayed(ti, ai, _INFORMED_FLOW_TAU_S, vi, q)[0]

    def logp(self, q: np.ndarray, side: str = "right") -> np.ndarray:
        out = self.st["logp"] + np.interp(q, self.grid, self.w)
        if len(self.perm):
            idx = np.searchsorted(self.liqs.t, q, side) - 1
            out = out + np.where(idx >= 0, self.perm[np.maximum(idx, 0)], 0.0)
        for t, a, tau, k0, _ in self.groups:
            if len(t) or k0:
                out = out + _decayed(t, a, tau, k0, q, side)[0]
        return out

    def finish(self, st: dict) -> None:
        """Write the end-of-chunk values into the carried state."""
        T = float(CHUNK_S)

        def end(t: np.ndarray, a: np.ndarray, tau: float, v0: float) -> float:
            _, v, tl = _decayed(t, a, tau, v0, np.empty(0))
            return v * math.exp(-(T - tl) / tau)

        perm = float(self.perm[-1]) if len(self.perm) else 0.0
        st["logp"] += float(self.w[-1]) + perm
        a = math.exp(-T / _DRIFT_TAU_S)
        st["drift"] = st["drift"] * a + perm / T * (1.0 - a)
        st["z"] = end(*self._stress[:2], _STRESS_TAU_S, self._stress[2])
        st["zs"] = end(*self._press[:2], _STRESS_TAU_S, self._press[2])
        st["zi"] = end(*self._inf[:2], _INFORMED_FLOW_TAU_S, self._inf[2])
        for t, a, tau, k0, e in self.groups:
            k = end(t, a, tau, k0)
            if e is None:
                st["bg_trans"] = k
            else:
                e["K"] = k
        st["episodes"] = [e for e in st["episodes"] if e["open"] or abs(e["K"]) >= _TRANSIENT_FLOOR]


class SyntheticMarket:
    """The synthetic feed: `events()` is an endless, seeded, timestamp-ordered stream.

    Equal timestamps are ordered by symbol (in `symbols` order), then type (book, ticker,
    ratio, trade, liquidation), then generation order. `episodes` holds ground truth for
    the most recent `MAX_EPISODES` episodes, appended when the chunk in which an episode's
    liquidations end is generated, i.e. up to `CHUNK_S` seconds ahead of the consumer.
    Iterate one `events()` generator at a time; it continues from the market's position.

    `kinds` restricts the event types built (e.g. only Liquidation for a fast calibration);
    the events of the kinds kept are the same as in the full stream.
    """

    name = "synthetic"
    live = False

    def __init__(self, settings: Settings, seed: int, symbols: list[str] | None = None,
                 start_ns: int | None = None, *, kinds: frozenset[type] | set[type] | None = None):
        self.settings = settings
        self.kinds = ALL_KINDS if kinds is None else frozenset(kinds)
        if not self.kinds <= ALL_KINDS:
            raise ValueError(f"kinds must be among {sorted(k.__name__ for k in ALL_KINDS)}")
        self.seed = int(seed)
        self.symbols = list(symbols) if symbols is not None else list(settings.engine.symbols)
        if not self.symbols or len(set(self.symbols)) != len(self.symbols):
            raise ValueError("symbols must be a non-empty list without duplicates")
        self.start_ns = parse_utc(settings.synthetic.start) if start_ns is None else int(start_ns)
        self._gens = [_SymbolGenerator(s, profile_for(s, settings), instrument_for(s), settings, self.seed,
                                       self.start_ns) for s in self.symbols]
        self.episodes: list[Episode] = []
        # position: the chunk being emitted, its start states, events emitted before it and in it
        self._chunk = 0
        self._states: list[dict] = [g.initial_state() for g in self._gens]
        self._before = 0
        self._pos = 0
        self._prev: tuple[int, list[dict], int] | None = None  # the previous chunk's (chunk, states, before)
        self._recorded = -1  # last chunk whose closed episodes were recorded

    @property
    def emitted(self) -> int:
        """Events yielded so far (counting those before a restore)."""
        return self._before + self._pos

    def _build(self, chunk: int, states: list[dict]) -> tuple[list, list[dict]]:
        with _gc_paused():
            return self._build_chunk(chunk, states)

    def _build_chunk(self, chunk: int, states: list[dict]) -> tuple[list, list[dict]]:
        objs: list = []
        ts_parts: list[np.ndarray] = []
        nxt: list[dict] = []
        for gen, state in zip(self._gens, states):
            o, ts, st, closed = gen.generate(chunk, state, self.kinds)
            objs += o
            ts_parts.append(ts)
            nxt.append(st)
            if chunk > self._recorded:
                self.episodes += [_episode(gen.symbol, e) for e in closed]
        self._recorded = max(self._recorded, chunk)
        if len(self.episodes) > MAX_EPISODES:
            del self.episodes[: len(self.episodes) - MAX_EPISODES]
        order = np.argsort(np.concatenate(ts_parts), kind="stable").tolist()
        return [objs[i] for i in order], nxt

    def events(self) -> Iterator[Any]:
        while True:
            objs, nxt = self._build(self._chunk, self._states)
            for i in range(self._pos, len(objs)):
                self._pos = i + 1
                yield objs[i]
            self._prev = (self._chunk, self._states, self._before)
            self._before += len(objs)
            self._chunk += 1
            self._states = nxt
            self._pos = 0

    # -- restart ----------------------------------------------------------------------------------
    def snapshot(self, emitted: int | None = None) -> dict:
        """JSON-serializable state such that a restored market yields the events after event
        number `emitted` (default: all events yielded so far).

        `emitted` may lag the current position by up to one chunk, because a consumer that
        merges feeds (heapq.merge) has pulled one event it has not dispatched yet.
        """
        n = self.emitted if emitted is None else int(emitted)
        if self._before <= n <= self.emitted:
            chunk, states, before = self._chunk, self._states, self._before
        elif self._prev is not None and self._prev[2] <= n < self._before:
            chunk, states, before = self._prev
        else:
            raise ValueError(f"cannot snapshot at event {n}: the market is at event {self.emitted}")
        return {"version": STATE_VERSION, "seed": self.seed, "symbols": list(self.symbols),
                "start_ns": self.start_ns, "kinds": self._kind_names(), "chunk": chunk, "skip": n - before,
                "emitted": n, "states": copy.deepcopy(states)}

    def _kind_names(self) -> list[str]:
        return sorted(k.__name__ for k in self.kinds)

    def restore(self, state: dict) -> None:
        """Continue from a snapshot taken by a market with the same settings, seed and symbols."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported synthetic market state version {state.get('version')!r}")
        if (int(state["seed"]), list(state["symbols"]), int(state["start_ns"]), state["kinds"]) != (
                self.seed, self.symbols, self.start_ns, self._kind_names()):
            raise ValueError("snapshot is from a market with another seed, symbols, start or kinds")
        self._chunk = int(state["chunk"])
        self._states = copy.deepcopy(state["states"])
        self._pos = int(state["skip"])
        self._before = int(state["emitted"]) - self._pos
        self._prev = None
        self._recorded = self._chunk - 1


def _episode(symbol: str, e: dict) -> Episode:
    return Episode(
        id=e["id"], symbol=symbol, start_ts=int(e["start_ts_ns"]), end_ts=int(e["last_ts_ns"]), kind=e["kind"],
        direction="long" if e["dir"] > 0 else "short", impact_bps=round(e["impact_bps"], 4),
        reversion_fraction=e["f"], reversion_tau_s=round(e["tau"], 3), liquidations=e["n"],
        notional_usd=round(e["notional"], 2), start_price=e["start_price"])
