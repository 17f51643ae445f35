"""Bybit funding data on the Bybit REST client (engine/bybit_rest.py): GET /v5/market/tickers
(fundingRate, nextFundingTime, markPrice, openInterest in coins; fundingIntervalHour where the
venue sends it) and, once, instruments-info for the funding interval of the others."""

from __future__ import annotations

from ..bybit_rest import BybitRest, BybitRestError
from ..funding.types import FundingSnapshot
from . import Venue


class BybitVenue(Venue):
    adapter = "bybit"
    network = True

    def __init__(self, name, cfg, symbols, rest: BybitRest):
        super().__init__(name, cfg, symbols)
        self.rest = rest
        self.intervals: dict[str, float] = {}

    async def refresh(self, now: int) -> None:
        try:
            if not self.intervals:
                self.intervals = {s: i.funding_interval_h for s, i in (await self.rest.instruments()).items()
                                  if getattr(i, "funding_interval_h", None)}
            tickers = {t.symbol: t for t in await self.rest.tickers()}
        except BybitRestError as exc:
            self.status, self.error = "error", f"{self.name}: {exc}"
            self.errors += 1
            return
        for sym in self.symbols:
            t = tickers.get(sym)
            if t is None or t.mark is None or t.funding_rate is None or t.next_funding_ts is None:
                continue
            interval = t.funding_interval_h or self.intervals.get(sym, 8.0)
            self.latest[sym] = FundingSnapshot(self.name, sym, t.funding_rate, interval, t.next_funding_ts, t.mark,
                                               (t.open_interest or 0.0) * t.mark, now)
        self.status, self.error, self.last_ok_ts = "ok", "", now
