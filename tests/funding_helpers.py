"""Shared pieces of the funding tests: a venue with fixed rates and a service over them."""

from __future__ import annotations

from engine.clock import SimClock
from engine.config import FundingVenueConfig, load_config
from engine.events import NS
from engine.funding.service import FundingService
from engine.funding.types import FundingSnapshot
from engine.venues import Venue

H = 3600 * NS
T0 = 1_736_121_600 * NS  # 2025-01-06 00:00 UTC


class StaticVenue(Venue):
    """Rates set by the test: {symbol: (rate per interval, OI USD)}."""

    adapter = "static"

    def __init__(self, name: str, interval_h: float, rates: dict[str, tuple[float, float]], is_dex: bool = False,
                 mark: float = 100.0):
        super().__init__(name, FundingVenueConfig(is_dex=is_dex, interval_h=interval_h), list(rates))
        self.interval_h = interval_h
        self.rates = dict(rates)
        self.mark = mark
        self.status = "ok"

    def poll(self, now: int) -> list[FundingSnapshot]:
        step = int(self.interval_h * H)
        return [FundingSnapshot(self.name, s, r, self.interval_h, (now // step + 1) * step, self.mark, oi, now)
                for s, (r, oi) in self.rates.items()]


def make_service(venues: list[Venue], symbols: list[str] | None = None, clock: SimClock | None = None,
                 **cfg) -> FundingService:
    settings = load_config(None, {"funding_arb": {"preset": "none", **cfg}})
    return FundingService(settings.funding_arb, venues, clock or SimClock(T0),
                          symbols or ["BTCUSDT", "ETHUSDT"])


def three_venues() -> list[Venue]:
    """BTC: per hour a = 1e-5 (8 h), b = 5e-5 (1 h), c = 2e-5 (4 h). Per interval the 8 h venue looks
    highest (8e-5) although it is the lowest per hour."""
    return [StaticVenue("a", 8.0, {"BTCUSDT": (8e-5, 2e9), "ETHUSDT": (8e-5, 1e9)}),
            StaticVenue("b", 1.0, {"BTCUSDT": (5e-5, 4e8), "ETHUSDT": (1e-5, 3e8)}, is_dex=True),
            StaticVenue("c", 4.0, {"BTCUSDT": (8e-5, 1e8), "ETHUSDT": (4e-5, 5e7)}, is_dex=True)]
