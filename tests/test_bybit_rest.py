"""REST through pybit against a fake v5 server on 127.0.0.1 that checks the X-BAPI signature:
pagination, 10006 waits, X-Bapi-Limit-Status throttling, 10002 clock-skew correction,
110043 ignored, 110094 surfaced; and the market-data mappings on the documented samples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_bybit import FakeExchange, FakeRestServer
from pydantic import SecretStr

from engine.bybit_rest import BybitRest, BybitRestError, instrument_from, load_credentials
from engine.config import BybitConfig, ConfigError, Settings

FIX = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "bybit"
KEY, SECRET = "test-key-123", "test-secret-very-private"
MS = 1_000_000


@pytest.fixture
def exchange():
    ex = FakeExchange(KEY, SECRET)
    srv = FakeRestServer(ex)
    srv.start()
    ex.url = srv.url
    yield ex
    srv.stop()


def client(exchange, secret: str = SECRET, **cfg) -> BybitRest:
    return BybitRest(BybitConfig(**cfg), exchange.url, (SecretStr(KEY), SecretStr(secret)))


async def test_instruments_are_paginated_into_grid_specs(exchange):
    table = await client(exchange).instruments()
    assert sorted(table) == ["BTCUSDT", "ETHUSDT"]
    btc = table["BTCUSDT"]
    assert (btc.tick_size, btc.qty_step, btc.min_qty, btc.min_notional, btc.max_leverage, btc.funding_interval_h) == (
        0.1, 0.001, 0.001, 5.0, 100.0, 4.0)
    cursors = [p.get("cursor") for m, path, p in exchange.requests if path == "/v5/market/instruments-info"]
    assert cursors == [None, "1"]


@pytest.mark.skipif(not FIX.is_dir(), reason="../shared/fixtures/bybit is not present")
def test_instrument_from_the_documented_sample():
    row = json.loads((FIX / "rest_market_instruments_info_linear.json").read_text())["result"]["list"][0]
    i = instrument_from(row)
    assert (i.symbol, i.tick_size, i.qty_step, i.min_qty, i.min_notional, i.max_leverage, i.funding_interval_h) == (
        "BTCUSDT", 0.1, 0.001, 0.001, 5.0, 100.0, 8.0)


async def test_signed_order_passes_the_signature_check(exchange):
    rest = client(exchange)
    oid = await rest.place_order(symbol="BTCUSDT", side="Buy", orderType="Limit", qty="0.100", price="99.5",
                                 timeInForce="PostOnly", orderLinkId="L-1", positionIdx=0)
    assert oid == "ex-1" and exchange.bad_signatures == 0
    assert exchange.orders["ex-1"]["price"] == "99.5" and exchange.orders["ex-1"]["qty"] == "0.100"


async def test_a_wrong_secret_is_refused(exchange):
    with pytest.raises(BybitRestError) as ei:
        await client(exchange, secret="wrong").cancel_all("BTCUSDT")
    assert ei.value.code == 10004 and exchange.bad_signatures == 1


async def test_rate_limit_10006_waits_for_the_reset_and_retries(exchange):
    exchange.fail_next["/v5/order/create"] = [10006]
    rest = client(exchange)
    oid = await rest.place_order(symbol="BTCUSDT", side="Buy", orderType="Limit", qty="0.1", price="99",
                                 orderLinkId="L-2")
    assert oid and rest.counters["rate_limited"] == 1 and rest.counters["throttled"] == 1
    creates = [r for r in exchange.requests if r[1] == "/v5/order/create"]
    assert len(creates) == 2


async def test_rate_limit_gives_up_after_the_configured_retries(exchange):
    exchange.fail_next["/v5/order/cancel-all"] = [10006, 10006]
    with pytest.raises(BybitRestError) as ei:
        await client(exchange, rest_max_retries=1).cancel_all("BTCUSDT")
    assert ei.value.code == 10006


async def test_limit_status_zero_throttles_the_next_call(exchange):
    exchange.limit_status["/v5/order/cancel-all"] = 0
    rest = client(exchange)
    await rest.cancel_all("BTCUSDT")
    assert rest.limits["cancel_all_orders"][0] == 0
    await rest.cancel_all("BTCUSDT")
    assert rest.counters["throttled"] == 1


async def test_clock_skew_10002_is_corrected_from_server_time(exchange):
    exchange.clock_skew_ms = 8000  # the server is 8 s ahead: our timestamps fall out of the window
    rest = client(exchange)
    await rest.cancel_all("BTCUSDT")
    assert exchange.server_time_calls == 1 and 7000 <= rest.time_offset_ms <= 9000
    await rest.cancel_all("ETHUSDT")  # no second sync needed
    assert exchange.server_time_calls == 1 and rest.counters["clock_syncs"] == 1


async def test_set_leverage_ignores_110043(exchange):
    rest = client(exchange)
    assert await rest.set_leverage("BTCUSDT", "5") is True
    assert await rest.set_leverage("BTCUSDT", "5") is False  # "not modified" is not an error


async def test_min_notional_110094_is_an_error_with_its_code(exchange):
    with pytest.raises(BybitRestError) as ei:
        await client(exchange).place_order(symbol="BTCUSDT", side="Buy", orderType="Limit", qty="0.001",
                                           price="99.0", orderLinkId="L-3")
    assert ei.value.code == 110094 and "minimum" in ei.value.message


async def test_account_ratio_is_polled_into_long_short_ratios(exchange):
    rows = await client(exchange).long_short_ratio("BTCUSDT")
    assert [(r.ts, r.long_share, r.short_share, r.source) for r in rows] == [
        (1700000000000 * MS, 0.6, 0.4, "bybit"), (1700000300000 * MS, 0.61, 0.39, "bybit")]


def fixture_call(rest: BybitRest, endpoint: str, name: str) -> list:
    body = json.loads((FIX / name).read_text())
    seen: list = []

    def fake(**params):
        seen.append(params)
        if params.get("cursor"):  # the sample's next page: empty
            return {"retCode": 0, "result": {"list": [], "nextPageCursor": ""}}, 0, {}
        return body, 0, {}
    setattr(rest.session, endpoint, fake)
    return seen


@pytest.mark.skipif(not FIX.is_dir(), reason="../shared/fixtures/bybit is not present")
async def test_market_data_mappings_on_the_documented_samples(exchange):
    rest = client(exchange)
    fixture_call(rest, "get_tickers", "rest_market_tickers_inverse.json")
    (t,) = await rest.tickers()
    assert (t.symbol, t.mark, t.index, t.open_interest, t.funding_rate, t.next_funding_ts, t.funding_interval_h,
            t.last) == ("BTCUSD", 114898.43, 114890.92, 240113967.0, 0.0001, 1760371200000 * MS, 8.0, 120635.5)
    fixture_call(rest, "get_open_interest", "rest_market_open_interest.json")
    oi = await rest.open_interest("BTCUSD", "1d")
    assert oi[0] == (1780617600000 * MS, 63942311.0) and oi[-1] == (1780963200000 * MS, 63910691.0)
    seen = fixture_call(rest, "get_funding_rate_history", "rest_market_funding_history.json")
    (f,) = await rest.funding_history("ETHPERP", start_ms=1672000000000)
    assert (f.ts, f.rate, f.venue) == (1672041600000 * MS, 0.0001, "bybit")
    assert seen[0]["endTime"] is not None  # Bybit rejects startTime alone
    fixture_call(rest, "get_kline", "rest_market_kline.json")
    bars = await rest.klines("BTCUSD", "60")
    assert [b.ts for b in bars] == [(t0 + 3600_000) * MS for t0 in (1670601600000, 1670605200000, 1670608800000)]
    assert (bars[-1].open, bars[-1].high, bars[-1].low, bars[-1].close, bars[-1].volume) == (
        17071.0, 17073.0, 17027.0, 17055.5, 268611.0)
    fixture_call(rest, "get_positions", "rest_position_list.json")
    (p,) = await rest.positions("BTCUSD")
    assert (p.qty, p.entry_price, p.leverage, p.liq_price) == (-300.0, 27464.50441675, 10.0, None)
    fixture_call(rest, "get_open_orders", "rest_order_realtime.json")
    (o,) = await rest.open_orders("ETHUSDT")
    assert (o.link_id, o.status, o.price, o.qty, o.side) == ("test-000005", "New", 1600.0, 0.1, "buy")
    fixture_call(rest, "get_long_short_ratio", "rest_market_account_ratio.json")
    assert [(r.ts, r.long_share, r.short_share) for r in await rest.long_short_ratio("BTCUSDT", "1h")] == [
        (1696258800000 * MS, 0.4927, 0.5073), (1696262400000 * MS, 0.49, 0.51)]
    fixture_call(rest, "get_server_time", "rest_market_time.json")
    assert await rest.server_time_ns() == 1688639403423213947
    fixture_call(rest, "cancel_all_orders", "rest_order_cancel_all.json")
    assert await rest.cancel_all("BTCUSDT") == ["1616024329462743808", "1616024287544869632"]
    fixture_call(rest, "get_wallet_balance", "rest_account_wallet_balance.json")
    w = await rest.wallet()
    assert w is not None and w.equity == 3.31216591 and w.available == 3.00326056


def test_credentials_come_from_env_then_secrets_file_then_config(tmp_path):
    f = tmp_path / "bybit.env"
    f.write_text("# keys\nBYBIT_API_KEY = fk\nBYBIT_API_SECRET='fs'\n")
    cfg = BybitConfig(secrets_file=str(f), api_key="ck", api_secret="cs")
    env = load_credentials(cfg, env={"BYBIT_API_KEY": "ek", "BYBIT_API_SECRET": "es"})
    assert env is not None and [s.get_secret_value() for s in env] == ["ek", "es"]
    from_file = load_credentials(cfg, env={})
    assert from_file is not None and [s.get_secret_value() for s in from_file] == ["fk", "fs"]
    from_cfg = load_credentials(BybitConfig(api_key="ck", api_secret="cs"), env={})
    assert from_cfg is not None and [s.get_secret_value() for s in from_cfg] == ["ck", "cs"]
    assert load_credentials(BybitConfig(), env={}) is None
    assert "fs" not in repr(from_file) and "fs" not in str(from_file)
    with pytest.raises(ConfigError, match="cannot read"):
        load_credentials(BybitConfig(secrets_file=str(tmp_path / "none")), env={})


def test_the_session_never_shows_the_secret(exchange):
    rest = client(exchange)
    assert SECRET not in repr(rest.session) and KEY not in repr(rest.session)
    assert SECRET not in json.dumps(Settings(bybit={"api_key": KEY, "api_secret": SECRET}).public_dict())
