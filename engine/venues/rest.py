"""Funding data from the venues' documented public REST endpoints (httpx, async).

* Binance USD-M: GET /fapi/v1/premiumIndex (every symbol: markPrice, lastFundingRate,
  nextFundingTime), GET /fapi/v1/fundingInfo (symbols whose interval is not the default 8 h:
  fundingIntervalHours; read once an hour), GET /fapi/v1/openInterest?symbol= (base units,
  times the mark for USD). Errors: HTTP 4xx/5xx with {"code": -1121, "msg": "..."}.
* OKX: GET /api/v5/public/funding-rate?instId=BTC-USDT-SWAP (fundingRate for the settlement at
  fundingTime; the interval is nextFundingTime - fundingTime), /api/v5/public/mark-price and
  /api/v5/public/open-interest (oiUsd, else oiCcy x mark). Errors: {"code": "51001", ...}.
* Hyperliquid: POST /info {"type": "metaAndAssetCtxs"} -> [meta, assetCtxs]; universe[i].name
  pairs with assetCtxs[i] (funding per hour, openInterest in coins, markPx). Settles hourly,
  on the hour.

Each `refresh` fetches every symbol; a venue error, a timeout or a malformed payload leaves the
previous snapshots in place, sets `status = "error"` and the message, and counts it.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from ..events import NS
from ..funding.types import FundingSnapshot, base_of
from . import Venue, VenueError

MS = 1_000_000
HOUR_NS = 3600 * NS


def _f(v: Any, what: str) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        raise VenueError(f"bad {what}: {v!r}") from None


class RestVenue(Venue):
    network = True
    default_url = ""

    def __init__(self, name, cfg, symbols, client: httpx.AsyncClient | None = None):
        super().__init__(name, cfg, symbols)
        self.base_url = (cfg.base_url or self.default_url).rstrip("/")
        self.client = client or httpx.AsyncClient(timeout=cfg.timeout_s, headers={"User-Agent": "liqdesk"})

    async def _get(self, path: str, **params: Any) -> Any:
        return await self._request("GET", path, params=params)

    async def _request(self, method: str, path: str, **kw: Any) -> Any:
        try:
            r = await self.client.request(method, self.base_url + path, **kw)
        except httpx.TimeoutException:
            raise VenueError(f"{self.name}: timeout on {path}") from None
        except httpx.HTTPError as exc:
            raise VenueError(f"{self.name}: {type(exc).__name__} on {path}") from None
        try:
            body = r.json()
        except ValueError:
            raise VenueError(f"{self.name}: HTTP {r.status_code}, not JSON, on {path}") from None
        if r.status_code != 200:
            msg = body.get("msg", "") if isinstance(body, dict) else ""
            raise VenueError(f"{self.name}: HTTP {r.status_code} on {path} {msg}".rstrip())
        return body

    async def refresh(self, now: int) -> None:
        try:
            snaps = await self.fetch(now)
        except VenueError as exc:
            self.status, self.error = "error", str(exc)
            self.errors += 1
            return
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            self.status, self.error = "error", f"{self.name}: malformed payload ({type(exc).__name__})"
            self.errors += 1
            return
        for s in snaps:
            self.latest[s.symbol] = s
        self.status, self.error, self.last_ok_ts = "ok", "", now

    async def fetch(self, now: int) -> list[FundingSnapshot]:
        raise NotImplementedError

    async def close(self) -> None:
        await self.client.aclose()


class BinanceVenue(RestVenue):
    adapter = "binance"
    default_url = "https://fapi.binance.com"

    def __init__(self, name, cfg, symbols, client=None):
        super().__init__(name, cfg, symbols, client)
        self.intervals: dict[str, float] = {}
        self._intervals_at = 0.0

    async def fetch(self, now: int) -> list[FundingSnapshot]:
        if not self._intervals_at or time.monotonic() - self._intervals_at > 3600:
            rows = await self._get("/fapi/v1/fundingInfo")
            self.intervals = {r["symbol"]: _f(r["fundingIntervalHours"], "fundingIntervalHours") for r in rows}
            self._intervals_at = time.monotonic()
        rows = await self._get("/fapi/v1/premiumIndex")
        if not isinstance(rows, list):
            raise VenueError(f"{self.name}: premiumIndex is not a list")
        by_sym = {r["symbol"]: r for r in rows}
        out = []
        for sym in self.symbols:
            r = by_sym.get(sym)
            if r is None:
                continue
            mark = _f(r["markPrice"], "markPrice")
            oi = await self._get("/fapi/v1/openInterest", symbol=sym)
            out.append(FundingSnapshot(self.name, sym, _f(r["lastFundingRate"], "lastFundingRate"),
                                       self.intervals.get(sym, 8.0), int(r["nextFundingTime"]) * MS, mark,
                                       _f(oi["openInterest"], "openInterest") * mark, now))
        return out


class OkxVenue(RestVenue):
    adapter = "okx"
    default_url = "https://www.okx.com"

    async def _data(self, path: str, **params: Any) -> dict:
        body = await self._get(path, **params)
        if str(body.get("code")) != "0":
            raise VenueError(f"{self.name}: code {body.get('code')} {body.get('msg', '')} on {path}".rstrip())
        data = body.get("data") or []
        if not data:
            raise VenueError(f"{self.name}: no data for {params.get('instId')} on {path}")
        return data[0]

    async def fetch(self, now: int) -> list[FundingSnapshot]:
        out = []
        for sym in self.symbols:
            inst = f"{base_of(sym)}-USDT-SWAP"
            fr = await self._data("/api/v5/public/funding-rate", instId=inst)
            mk = await self._data("/api/v5/public/mark-price", instType="SWAP", instId=inst)
            oi = await self._data("/api/v5/public/open-interest", instType="SWAP", instId=inst)
            mark = _f(mk["markPx"], "markPx")
            t0, t1 = int(fr["fundingTime"]), int(fr.get("nextFundingTime") or 0)
            interval = (t1 - t0) / 3_600_000 if t1 > t0 else 8.0
            oi_usd = _f(oi["oiUsd"], "oiUsd") if oi.get("oiUsd") else _f(oi["oiCcy"], "oiCcy") * mark
            out.append(FundingSnapshot(self.name, sym, _f(fr["fundingRate"], "fundingRate"), interval, t0 * MS,
                                       mark, oi_usd, now))
        return out


class HyperliquidVenue(RestVenue):
    adapter = "hyperliquid"
    default_url = "https://api.hyperliquid.xyz"

    async def fetch(self, now: int) -> list[FundingSnapshot]:
        body = await self._request("POST", "/info", json={"type": "metaAndAssetCtxs"})
        if not isinstance(body, list) or len(body) != 2:
            raise VenueError(f"{self.name}: metaAndAssetCtxs is not [meta, assetCtxs]")
        meta, ctxs = body
        by_coin = {u["name"]: c for u, c in zip(meta["universe"], ctxs)}
        wall = time.time_ns()
        next_hour = (wall // HOUR_NS + 1) * HOUR_NS
        out = []
        for sym in self.symbols:
            c = by_coin.get(base_of(sym))
            if c is None:
                continue
            mark = _f(c["markPx"], "markPx")
            out.append(FundingSnapshot(self.name, sym, _f(c["funding"], "funding"), 1.0, next_hour, mark,
                                       _f(c["openInterest"], "openInterest") * mark, now))
        return out
