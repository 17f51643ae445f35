"""Synthetic funding venues: seeded, on the simulated clock.

Per symbol, every venue's hourly funding rate is a common market factor plus the venue's own
deviation. Both are Ornstein-Uhlenbeck processes stepped on a fixed 60 s grid from a fixed origin
(the synthetic market's start; exact discretization), so the path depends neither on how often
it is read nor on a restart in between: a restored run regenerates the same path. The venue
deviation also takes Poisson jumps (a dislocation: a crowded DEX, a squeeze on one venue) that
decay with its half-life: rates diverge, then converge. DEX venues move twice as much. Open
interest is a symbol base times the venue's `oi_scale`, times a slow log random walk. The mark
is the engine's market price times a small fixed per-venue basis. Calibration (per hour):
market factor mean 1.25e-5 (0.01% per 8 h), sd 1e-5, half-life 3 days; venue deviation sd
1e-5, half-life 12 h, jumps 1 per 3 days, size sd 6e-5.
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Callable

from ..events import NS
from ..funding.types import FundingSnapshot
from . import Venue

STEP_NS = 60 * NS
MAX_REPLAY_NS = 30 * 86_400 * NS  # further than this past the origin (a live clock): start the path at now
BASE_OI_USD = {"BTC": 8e9, "ETH": 4e9, "SOL": 1.5e9, "XRP": 8e8, "DOGE": 6e8}
DEFAULT_OI_USD = 3e8
MARKET_MEAN_H, MARKET_SD_H, MARKET_HALFLIFE_H = 1.25e-5, 1e-5, 72.0
VENUE_SD_H, VENUE_HALFLIFE_H = 1e-5, 12.0
JUMP_PER_DAY, JUMP_SD_H = 1 / 3, 6e-5
OI_SD, OI_HALFLIFE_H = 0.15, 48.0


def _ou_coeffs(halflife_h: float) -> tuple[float, float]:
    """(decay per step, noise scale per unit stationary sd) for one 60 s step."""
    theta = math.log(2) / (halflife_h * 3600.0)
    a = math.exp(-theta * 60.0)
    return a, math.sqrt(1 - a * a)


class _Path:
    __slots__ = ("rng", "x", "oi", "t")

    def __init__(self, rng: random.Random, x: float, oi: float, t: int):
        self.rng, self.x, self.oi, self.t = rng, x, oi, t


def _start(origin: int, now: int) -> int:
    return origin if origin and 0 <= now - origin <= MAX_REPLAY_NS else now


def _seeded(seed: int, *parts: str) -> random.Random:
    return random.Random(zlib.crc32("|".join((str(seed), *parts)).encode()))


class SyntheticMarketFactor:
    """The per-symbol common funding factor, shared by every synthetic venue of one service."""

    def __init__(self, seed: int, origin_ns: int = 0):
        self.seed = seed
        self.origin = origin_ns
        self.paths: dict[str, _Path] = {}
        self._a, self._s = _ou_coeffs(MARKET_HALFLIFE_H)

    def at(self, symbol: str, now: int) -> float:
        p = self.paths.get(symbol)
        if p is None:
            rng = _seeded(self.seed, "market", symbol)
            p = self.paths[symbol] = _Path(rng, MARKET_MEAN_H + MARKET_SD_H * rng.gauss(0, 1), 0.0,
                                           _start(self.origin, now))
        while p.t + STEP_NS <= now:
            p.x = MARKET_MEAN_H + (p.x - MARKET_MEAN_H) * self._a + MARKET_SD_H * self._s * p.rng.gauss(0, 1)
            p.t += STEP_NS
        return p.x


class SyntheticVenue(Venue):
    adapter = "synthetic"

    def __init__(self, name, cfg, symbols, *, seed: int, market: SyntheticMarketFactor,
                 mark_of: Callable[[str], float | None]):
        super().__init__(name, cfg, symbols)
        self.seed = seed
        self.market = market
        self.mark_of = mark_of
        self.interval_h = cfg.interval_h
        self.scale = 2.0 if cfg.is_dex else 1.0
        self.paths: dict[str, _Path] = {}
        self.basis: dict[str, float] = {}
        self._va, self._vs = _ou_coeffs(VENUE_HALFLIFE_H)
        self._oa, self._os = _ou_coeffs(OI_HALFLIFE_H)
        self._jump_p = JUMP_PER_DAY * 60.0 / 86_400.0
        self.status = "ok"

    def _path(self, symbol: str, now: int) -> _Path:
        p = self.paths.get(symbol)
        if p is None:
            rng = _seeded(self.seed, "venue", self.name, symbol)
            p = self.paths[symbol] = _Path(rng, VENUE_SD_H * self.scale * rng.gauss(0, 1), OI_SD * rng.gauss(0, 1),
                                           _start(self.market.origin, now))
            self.basis[symbol] = 3e-4 * (rng.random() - 0.5)
        sd = VENUE_SD_H * self.scale
        while p.t + STEP_NS <= now:
            rng = p.rng
            p.x = p.x * self._va + sd * self._vs * rng.gauss(0, 1)
            if rng.random() < self._jump_p:
                p.x += JUMP_SD_H * self.scale * rng.gauss(0, 1)
            p.oi = p.oi * self._oa + OI_SD * self._os * rng.gauss(0, 1)
            p.t += STEP_NS
        return p

    def poll(self, now: int) -> list[FundingSnapshot]:
        out = []
        interval_ns = int(self.interval_h * 3600 * NS)
        next_ts = (now // interval_ns + 1) * interval_ns
        for sym in self.symbols:
            price = self.mark_of(sym)
            p = self._path(sym, now)
            if not price:
                continue
            rate_h = self.market.at(sym, now) + p.x
            base = sym.removesuffix("USDT")
            oi = BASE_OI_USD.get(base, DEFAULT_OI_USD) * self.cfg.oi_scale * math.exp(p.oi)
            snap = FundingSnapshot(self.name, sym, rate_h * self.interval_h, self.interval_h, next_ts,
                                   price * (1 + self.basis[sym]), oi, now)
            self.latest[sym] = snap
            out.append(snap)
        self.last_ok_ts = now
        return out
