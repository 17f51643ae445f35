"""The funding service: every venue's rates each `check_interval_seconds`, and the ranked
opportunities per symbol and venue pair.

For each symbol and each pair of venues with a fresh rate, the opportunity is long on the venue
with the lower rate per hour and short on the higher; its divergence is the difference per hour
(annualized beside it), its expected profit the divergence over `expected_hold_hours` minus the
round-trip cost `rebalance_cost_bps`, as a fraction of the position size; it carries each leg's
open interest in USD. Ranking: expected profit, highest first (ties: symbol, long, short, so
that it is deterministic). Filters (the API's): symbol (BTC or BTCUSDT), min_profit (expected
profit, fraction), max_oi_usd (both legs' OI at or below it: small venues, point farming),
prioritize_dexes (pairs with both legs on those venues first, then one leg, then the rest).

Collection runs on the engine's clock (a timer): simulated time in synthetic runs, wall time in
live ones. Network venues are fetched by an asyncio task every `check_interval_seconds` of wall
time; the timer reads what they last returned and leaves out a rate older than `stale_after_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..events import NS
from ..venues import NoAdapter, Venue
from ..venues.legs import PaperLegs
from .types import FundingSnapshot, Opportunity, symbol_matches

if TYPE_CHECKING:
    from ..config import FundingArbConfig, Settings


class FundingService:
    def __init__(self, cfg: FundingArbConfig, venues: list[Venue], clock: Any, symbols: list[str]):
        self.cfg = cfg
        self.venues = {v.name: v for v in venues}
        self.clock = clock
        self.symbols = list(symbols)
        self.interval_ns = int(cfg.check_interval_seconds * NS)
        self.rates: dict[tuple[str, str], FundingSnapshot] = {}
        self.ranked: list[Opportunity] = []
        self.collections = 0
        self.last_collect = 0
        self.started = False
        self.legs: dict[str, Any] = {}  # venue -> leg executor
        self.positions: Callable[[], list[dict]] = list  # the client's pairs, for GET /positions
        self.store_of: Callable[[], Any] | None = None  # the engine's store, once attached
        self._task: asyncio.Task | None = None

    # -- collection ------------------------------------------------------------------------------
    def ensure_started(self, now: int) -> None:
        """Arm the collection timer (on the first market event: a simulated clock starts then)."""
        if self.started or now <= 0:
            return
        self.started = True
        self._tick(now)
        if any(v.network for v in self.venues.values()):
            with contextlib.suppress(RuntimeError):
                self._task = asyncio.get_running_loop().create_task(self._refresh_loop())

    def _tick(self, now: int) -> None:
        self.collect(now)
        self.clock.call_at(self.next_due(now), self._tick)

    def next_due(self, now: int) -> int:
        """The next collection time: on the check_interval grid (epoch-aligned, so a restart keeps it)."""
        return (now // self.interval_ns + 1) * self.interval_ns

    def collect(self, now: int) -> list[Opportunity]:
        stale = int(self.cfg.stale_after_s * NS)
        rates: dict[tuple[str, str], FundingSnapshot] = {}
        for v in self.venues.values():
            for s in v.poll(now):
                if s.symbol in self.symbols and now - s.ts <= stale and s.interval_h > 0 and s.mark > 0:
                    rates[(v.name, s.symbol)] = s
        self.rates = rates
        self.ranked = self.rank(rates)
        self.collections += 1
        self.last_collect = now
        return self.ranked

    def ensure_fresh(self, now: int) -> None:
        if not self.collections or now - self.last_collect >= self.interval_ns:
            self.collect(now)

    async def _refresh_loop(self) -> None:
        nets = [v for v in self.venues.values() if v.network]
        while True:
            await asyncio.gather(*(v.refresh(self.clock.now()) for v in nets))
            await asyncio.sleep(self.cfg.check_interval_seconds)

    async def refresh_now(self) -> None:
        await asyncio.gather(*(v.refresh(self.clock.now()) for v in self.venues.values() if v.network))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for v in self.venues.values():
            await v.close()

    # -- opportunities ---------------------------------------------------------------------------
    def rank(self, rates: dict[tuple[str, str], FundingSnapshot]) -> list[Opportunity]:
        by_sym: dict[str, list[FundingSnapshot]] = {}
        for (_v, sym), s in sorted(rates.items()):
            by_sym.setdefault(sym, []).append(s)
        cost = self.cfg.rebalance_cost_bps / 1e4
        hold = self.cfg.expected_hold_hours
        out = []
        for sym, snaps in by_sym.items():
            for i, a in enumerate(snaps):
                for b in snaps[i + 1:]:
                    lo, hi = (a, b) if a.rate_h <= b.rate_h else (b, a)
                    div = hi.rate_h - lo.rate_h
                    out.append(Opportunity(sym, lo, hi, div, div * hold - cost, self._is_dex(lo.venue),
                                           self._is_dex(hi.venue)))
        out.sort(key=lambda o: (-o.expected_profit, o.symbol, o.long.venue, o.short.venue))
        return out

    def _is_dex(self, venue: str) -> bool:
        v = self.venues.get(venue)
        return bool(v and v.is_dex)

    def opportunities(self, symbol: str | None = None, min_profit: float | None = None,
                      max_oi_usd: float | None = None, prioritize_dexes: list[str] | tuple[str, ...] = (),
                      exclude: set[str] | None = None) -> list[Opportunity]:
        out = [o for o in self.ranked
               if (symbol is None or symbol_matches(o.symbol, symbol))
               and (min_profit is None or o.expected_profit >= min_profit)
               and (max_oi_usd is None or max(o.long.oi_usd, o.short.oi_usd) <= max_oi_usd)
               and not (exclude and (o.long.venue in exclude or o.short.venue in exclude))]
        if prioritize_dexes:
            pri = set(prioritize_dexes)
            out.sort(key=lambda o: -((o.long.venue in pri) + (o.short.venue in pri)))  # stable: profit order kept
        return out

    def best(self, **filters: Any) -> Opportunity | None:
        found = self.opportunities(**filters)
        return found[0] if found else None

    def snapshot(self, venue: str, symbol: str) -> FundingSnapshot | None:
        return self.rates.get((venue, symbol))

    def compare(self, symbol: str, dex1: str, dex2: str) -> dict[str, Any] | None:
        """dex1 as the long leg, dex2 as the short: divergence = dex2's rate per hour - dex1's."""
        sym = next((s for s in self.symbols if symbol_matches(s, symbol)), None)
        if sym is None:
            return None
        a, b = self.rates.get((dex1, sym)), self.rates.get((dex2, sym))
        if a is None or b is None:
            return None
        div = b.rate_h - a.rate_h
        return {"symbol": sym, "dex1": a.as_dict(), "dex2": b.as_dict(), "divergence_per_hour": div,
                "divergence_annualized": div * 8760.0, "long_dex": dex1 if div >= 0 else dex2,
                "short_dex": dex2 if div >= 0 else dex1, "oi_ratio": a.oi_usd / b.oi_usd if b.oi_usd else None}

    def describe(self) -> dict[str, Any]:
        return {"collections": self.collections, "last_collect_ms": self.last_collect // 1_000_000,
                "check_interval_seconds": self.cfg.check_interval_seconds, "symbols": self.symbols,
                "opportunities": len(self.ranked), "source": self.cfg.source,
                "venues": [v.describe() for v in self.venues.values()]}


# -- building ----------------------------------------------------------------------------------------
def build_venues(settings: Settings, clock: Any, symbols: list[str], mark_of: Callable[[str], float | None],
                 seed: int, mode: str = "paper") -> list[Venue]:
    cfg = settings.funding_arb
    out: list[Venue] = []
    if cfg.source == "synthetic":
        from ..feeds.synthetic import parse_utc
        from ..venues.synthetic import SyntheticMarketFactor, SyntheticVenue
        market = SyntheticMarketFactor(seed, parse_utc(settings.synthetic.start))
        return [SyntheticVenue(name, v, symbols, seed=seed, market=market, mark_of=mark_of)
                for name, v in cfg.venues.items()]
    from ..venues.rest import BinanceVenue, HyperliquidVenue, OkxVenue
    for name, v in cfg.venues.items():
        if v.adapter == "binance":
            out.append(BinanceVenue(name, v, symbols))
        elif v.adapter == "okx":
            out.append(OkxVenue(name, v, symbols))
        elif v.adapter == "hyperliquid":
            out.append(HyperliquidVenue(name, v, symbols))
        elif v.adapter == "bybit":
            from ..bybit_rest import BybitRest
            from ..feeds.bybit import endpoints
            from ..venues.bybit import BybitVenue
            url = v.base_url or endpoints(settings.bybit, mode).rest
            out.append(BybitVenue(name, v, symbols, BybitRest(settings.bybit, url, timeout_s=v.timeout_s)))
        else:  # "none", or "synthetic" named in a live set: listed, never traded
            out.append(NoAdapter(name, v, symbols))
    return out


def service_for(engine: Any) -> FundingService:
    """The engine's funding service, built on first use from its settings."""
    svc = getattr(engine, "funding", None)
    if svc is not None:
        return svc
    settings = engine.settings
    cfg = settings.funding_arb
    symbols = list(cfg.symbols or settings.engine.symbols)

    def mark_of(sym: str) -> float | None:
        m = engine.markets.get(sym)
        return (m.mark or m.price) if m is not None else None

    seed = getattr(engine, "seed", settings.engine.seed)
    venues = build_venues(settings, engine.clock, symbols, mark_of, seed, engine.mode)
    svc = FundingService(cfg, venues, engine.clock, symbols)
    latency = int(cfg.leg_latency_ms * 1_000_000)
    for name, v in cfg.venues.items():
        if isinstance(svc.venues[name], NoAdapter):
            continue
        rest = getattr(engine.broker, "rest", None)
        # real Bybit legs only on real Bybit rates: a synthetic venue set always trades on paper
        if (v.adapter == "bybit" and cfg.source == "live" and engine.mode in ("demo", "testnet", "live")
                and rest is not None):
            from ..venues.legs import BybitLegs
            svc.legs[name] = BybitLegs(name, rest, engine.clock, svc.snapshot, v.leg_fee_bps,
                                       lambda s: engine.instrument(s).qty_step)
        else:
            svc.legs[name] = PaperLegs(name, engine.clock, svc.snapshot, latency, v.leg_fee_bps, v.leg_reject_rate,
                                       seed)
    svc.store_of = lambda: engine.store
    engine.funding = svc
    return svc
