"""Venue adapters against fake venue servers on 127.0.0.1 that serve each venue's documented
payloads, errors, malformed bodies and timeouts; Bybit through the Bybit REST client."""

from __future__ import annotations

import asyncio
import json

import pytest
from fake_bybit import FakeExchange, FakeRestServer
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from engine.bybit_rest import BybitRest
from engine.config import BybitConfig, FundingVenueConfig, load_config
from engine.funding.api import ApiService, bind_socket
from engine.venues import NoAdapter
from engine.venues.bybit import BybitVenue
from engine.venues.rest import BinanceVenue, HyperliquidVenue, OkxVenue

MS = 1_000_000
NOW = 1_703_070_685_309 * MS
SYMS = ["BTCUSDT", "ETHUSDT"]


def fake_venues(mode: dict) -> FastAPI:
    """Binance USD-M, OKX and Hyperliquid public endpoints, as documented; `mode` switches failures."""
    app = FastAPI()

    async def maybe_fail(venue: str):
        m = mode.get(venue, "ok")
        if m == "slow":
            await asyncio.sleep(1.0)
        if m == "garbage":
            return PlainTextResponse("<html>502 Bad Gateway</html>", status_code=502)
        return None

    @app.get("/fapi/v1/premiumIndex")
    async def premium_index():
        if (r := await maybe_fail("binance")) is not None:
            return r
        return [{"symbol": "BTCUSDT", "markPrice": "42000.50000000", "indexPrice": "41990.1", "estimatedSettlePrice":
                 "41995.2", "lastFundingRate": "0.00010000", "interestRate": "0.00010000",
                 "nextFundingTime": 1703088000000, "time": 1703070685309},
                {"symbol": "ETHUSDT", "markPrice": "2200.00", "indexPrice": "2199.5", "estimatedSettlePrice": "2199.9",
                 "lastFundingRate": "-0.00005000", "interestRate": "0.00010000",
                 "nextFundingTime": 1703084400000, "time": 1703070685309}]

    @app.get("/fapi/v1/fundingInfo")
    async def funding_info():
        return [{"symbol": "ETHUSDT", "adjustedFundingRateCap": "0.02000000", "adjustedFundingRateFloor":
                 "-0.02000000", "fundingIntervalHours": 4, "disclaimer": False}]

    @app.get("/fapi/v1/openInterest")
    async def open_interest(symbol: str):
        if mode.get("binance") == "error":
            return JSONResponse({"code": -1121, "msg": "Invalid symbol."}, status_code=400)
        return {"openInterest": {"BTCUSDT": "80000.5", "ETHUSDT": "1000000"}[symbol], "symbol": symbol,
                "time": 1703070685309}

    @app.get("/api/v5/public/funding-rate")
    async def okx_funding(instId: str):  # noqa: N803
        if (r := await maybe_fail("okx")) is not None:
            return r
        if mode.get("okx") == "error" or instId not in ("BTC-USDT-SWAP", "ETH-USDT-SWAP"):
            return {"code": "51001", "msg": "Instrument ID does not exist", "data": []}
        return {"code": "0", "msg": "", "data": [{
            "fundingRate": "0.0000792386885340", "fundingTime": "1703088000000", "instId": instId,
            "instType": "SWAP", "method": "next_period", "maxFundingRate": "0.00375", "minFundingRate": "-0.00375",
            "nextFundingRate": "", "nextFundingTime": "1703116800000", "premium": "0.0001233824646391",
            "settFundingRate": "0.0000699658486700", "settState": "settled", "ts": "1703070685309"}]}

    @app.get("/api/v5/public/mark-price")
    async def okx_mark(instId: str, instType: str):  # noqa: N803
        return {"code": "0", "msg": "", "data": [{"instType": instType, "instId": instId,
                                                  "markPx": "42001.1" if instId.startswith("BTC") else "2200.2",
                                                  "ts": "1703070685309"}]}

    @app.get("/api/v5/public/open-interest")
    async def okx_oi(instId: str, instType: str):  # noqa: N803
        row = {"instId": instId, "instType": instType, "oi": "2125419", "oiCcy": "21254.19", "ts": "1703070685309"}
        if instId.startswith("BTC"):
            row["oiUsd"] = "904570000"
        return {"code": "0", "msg": "", "data": [row]}

    @app.post("/info")
    async def hl_info(request: Request):
        body = json.loads(await request.body())
        if (r := await maybe_fail("hyperliquid")) is not None:
            return r
        if body.get("type") != "metaAndAssetCtxs":
            return JSONResponse("Failed to deserialize the JSON body", status_code=422)
        if mode.get("hyperliquid") == "malformed":
            return [{"universe": [{"name": "BTC"}]}, [{"funding": "0.0000125"}]]
        return [{"universe": [{"name": "BTC", "szDecimals": 5, "maxLeverage": 40},
                              {"name": "ETH", "szDecimals": 4, "maxLeverage": 25},
                              {"name": "SOL", "szDecimals": 2, "maxLeverage": 20}]},
                [{"dayNtlVlm": "1169046.29", "funding": "0.0000125", "impactPxs": ["42000.0", "42002.0"],
                  "markPx": "42001.0", "midPx": "42001.0", "openInterest": "1000.5", "oraclePx": "41999.0",
                  "premium": "0.00031774", "prevDayPx": "41000.0"},
                 {"dayNtlVlm": "5000.0", "funding": "-0.0000030", "impactPxs": ["2200.0", "2200.4"],
                  "markPx": "2200.2", "midPx": "2200.2", "openInterest": "20000", "oraclePx": "2200.0",
                  "premium": "0.0001", "prevDayPx": "2100.0"},
                 {"dayNtlVlm": "1.0", "funding": "0.0000100", "impactPxs": None, "markPx": "100.0", "midPx": None,
                  "openInterest": "1", "oraclePx": "100.0", "premium": None, "prevDayPx": "99.0"}]]

    return app


@pytest.fixture
async def venues_server():
    mode: dict = {}
    sock = bind_socket("127.0.0.1", 0)
    api = ApiService.serve(fake_venues(mode), sock)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    for _ in range(100):
        await asyncio.sleep(0.02)
        if api.server.started:
            break
    yield url, mode
    await api.stop()


def vcfg(url: str, adapter: str, timeout_s: float = 2.0) -> FundingVenueConfig:
    return FundingVenueConfig(adapter=adapter, base_url=url, timeout_s=timeout_s)


async def refreshed(cls, name: str, url: str):
    """The adapter after one good refresh, and its BTC and ETH snapshots."""
    v = cls(name, vcfg(url, name), SYMS)
    await v.refresh(NOW)
    assert v.status == "ok", v.error
    return v, v.latest["BTCUSDT"], v.latest["ETHUSDT"]


async def test_binance_usdm_payloads(venues_server):
    url, mode = venues_server
    v, btc, eth = await refreshed(BinanceVenue, "binance", url)
    assert (btc.rate, btc.interval_h, btc.next_funding_ts, btc.mark) == (1e-4, 8.0, 1703088000000 * MS, 42000.5)
    assert btc.oi_usd == pytest.approx(80000.5 * 42000.5)
    assert (eth.rate, eth.interval_h) == (-5e-5, 4.0)  # fundingInfo lists only the non-default intervals
    assert eth.rate_h == pytest.approx(-1.25e-5)
    mode["binance"] = "error"
    await v.refresh(NOW + 1)
    assert v.status == "error" and "HTTP 400" in v.error and "Invalid symbol" in v.error
    assert v.latest["BTCUSDT"] is btc  # the last good rates stay until they go stale
    await v.close()


async def test_okx_payloads_and_error_code(venues_server):
    url, mode = venues_server
    v, btc, eth = await refreshed(OkxVenue, "okx", url)
    assert btc.rate == pytest.approx(0.0000792386885340) and btc.interval_h == 8.0
    assert btc.next_funding_ts == 1703088000000 * MS and btc.mark == 42001.1 and btc.oi_usd == 904570000.0
    assert eth.oi_usd == pytest.approx(21254.19 * 2200.2)  # no oiUsd: coins x mark
    mode["okx"] = "error"
    await v.refresh(NOW)
    assert v.status == "error" and "51001" in v.error
    await v.close()


async def test_hyperliquid_meta_and_asset_ctxs(venues_server):
    url, mode = venues_server
    v, btc, eth = await refreshed(HyperliquidVenue, "hyperliquid", url)
    assert (btc.rate, btc.interval_h, btc.mark) == (1.25e-5, 1.0, 42001.0)
    assert btc.oi_usd == pytest.approx(1000.5 * 42001.0)
    assert btc.next_funding_ts % (3600 * 10**9) == 0  # on the hour
    assert eth.rate == -3e-6
    mode["hyperliquid"] = "malformed"
    await v.refresh(NOW)
    assert v.status == "error" and "malformed" in v.error
    mode["hyperliquid"] = "garbage"
    await v.refresh(NOW)
    assert v.status == "error" and "502" in v.error and v.errors == 2
    await v.close()


async def test_timeouts_are_errors_not_hangs(venues_server):
    url, mode = venues_server
    mode.update(binance="slow", okx="slow", hyperliquid="slow")
    for cls, name in ((BinanceVenue, "binance"), (OkxVenue, "okx"), (HyperliquidVenue, "hyperliquid")):
        v = cls(name, vcfg(url, name, timeout_s=0.2), SYMS)
        await asyncio.wait_for(v.refresh(NOW), 3.0)
        assert v.status == "error" and "timeout" in v.error and not v.latest
        await v.close()


async def test_unreachable_venue_is_an_error():
    v = BinanceVenue("binance", vcfg("http://127.0.0.1:9", "binance", 0.5), SYMS)
    await v.refresh(NOW)
    assert v.status == "error" and "ConnectError" in v.error
    await v.close()


class TickerExchange(FakeExchange):
    """The fake Bybit exchange plus GET /v5/market/tickers as documented (linear)."""

    fail_tickers = False

    def _market(self, path, params):
        if path == "/v5/market/tickers":
            if self.fail_tickers:
                return self._env(10001, "params error: symbol invalid", {})
            rows = [{"symbol": "BTCUSDT", "lastPrice": "42000", "markPrice": "42000.2", "indexPrice": "41999.8",
                     "openInterest": "50000.5", "openInterestValue": "2100031000", "fundingRate": "0.0001",
                     "nextFundingTime": "1703088000000", "bid1Price": "41999.9", "ask1Price": "42000.1"},
                    {"symbol": "ETHUSDT", "lastPrice": "2200", "markPrice": "2200.1", "indexPrice": "2200",
                     "openInterest": "300000", "fundingRate": "-0.00002", "nextFundingTime": "1703084400000",
                     "fundingIntervalHour": "1"}]
            return self._env(0, "OK", {"category": "linear", "list": rows})
        return super()._market(path, params)


async def test_bybit_venue_on_the_bybit_rest_client():
    ex = TickerExchange("k", "s")
    srv = FakeRestServer(ex)
    url = srv.start()
    try:
        v = BybitVenue("bybit", vcfg(url, "bybit"), SYMS, BybitRest(BybitConfig(rest_max_retries=0), url))
        await v.refresh(NOW)
        assert v.status == "ok", v.error
        btc, eth = v.latest["BTCUSDT"], v.latest["ETHUSDT"]
        assert (btc.rate, btc.interval_h, btc.mark) == (1e-4, 4.0, 42000.2)  # instruments-info: 240 min
        assert btc.oi_usd == pytest.approx(50000.5 * 42000.2)
        assert (eth.interval_h, eth.rate_h) == (1.0, -2e-5)  # the ticker's fundingIntervalHour wins
        ex.fail_tickers = True
        await v.refresh(NOW)
        assert v.status == "error" and "10001" in v.error
    finally:
        srv.stop()


def test_live_source_builds_one_adapter_per_venue_and_lists_the_rest():
    from engine.clock import SimClock
    from engine.funding.service import build_venues
    settings = load_config(None, {"funding_arb": {"source": "live"}})
    venues = {v.name: v for v in build_venues(settings, SimClock(), SYMS, lambda s: None, 1)}
    assert {n: type(v).__name__ for n, v in venues.items()} == {
        "bybit": "BybitVenue", "binance": "BinanceVenue", "okx": "OkxVenue", "hyperliquid": "HyperliquidVenue",
        "lighter": "NoAdapter", "grvt": "NoAdapter"}
    assert isinstance(venues["lighter"], NoAdapter) and venues["lighter"].describe()["status"] == "no adapter"


async def test_bybit_legs_are_market_orders_through_the_signed_rest_client():
    from pydantic import SecretStr

    from engine.clock import SimClock
    from engine.funding.types import FundingSnapshot
    from engine.venues.legs import BybitLegs, LegOrder

    ex = TickerExchange("key-1", "secret-1")
    srv = FakeRestServer(ex)
    url = srv.start()
    try:
        rest = BybitRest(BybitConfig(rest_max_retries=0), url, (SecretStr("key-1"), SecretStr("secret-1")))
        snap = FundingSnapshot("bybit", "ETHUSDT", 1e-4, 8.0, NOW, 50.0, 1e9, NOW)
        legs = BybitLegs("bybit", rest, SimClock(NOW), lambda v, s: snap, 5.5, lambda s: 0.01)
        results = []
        done = asyncio.Event()

        def collect(r):
            results.append(r)
            if len(results) == 3:
                done.set()

        legs.submit(LegOrder("0123456789ab", "bybit", "ETHUSDT", "buy", size_usd=500.0), collect)
        legs.submit(LegOrder("0123456789ab", "bybit", "ETHUSDT", "sell", qty=10.0, close=True), collect)
        legs.submit(LegOrder("0123456789ac", "bybit", "XYZUSDT", "buy", size_usd=500.0), collect)
        await asyncio.wait_for(done.wait(), 10)
        by_sym = {(r.order.symbol, r.order.close): r for r in results}
        opened = by_sym[("ETHUSDT", False)]
        assert opened.ok and opened.qty == 10.0 and opened.fee_usd == pytest.approx(500 * 5.5e-4)
        assert by_sym[("ETHUSDT", True)].ok
        bad = by_sym[("XYZUSDT", False)]
        assert not bad.ok and "10001" in bad.reason
        creates = [p for m, path, p in ex.requests if path == "/v5/order/create"]
        eth = [p for p in creates if p["symbol"] == "ETHUSDT"]
        assert {(p["side"], p["orderType"], p["qty"], bool(p.get("reduceOnly"))) for p in eth} == {
            ("Buy", "Market", "10", False), ("Sell", "Market", "10", True)}
    finally:
        srv.stop()
