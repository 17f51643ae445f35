"""Bybit v5 REST through pybit's `HTTP`, run in a worker thread (`asyncio.to_thread`).

pybit is synchronous and sleeps inside a call on 10006, so it is built with
`retry_codes={-1}` (pybit treats an empty set as "use the defaults") and this
client does the waiting itself, without blocking the event loop:
* 10006 (per-UID rate limit): wait until `X-Bapi-Limit-Reset-Timestamp`, retry.
* `X-Bapi-Limit-Status` (requests left in the window) of 0: wait for the reset
  before the next call of that endpoint.
* 10002 (request outside the recv window): ask `/v5/market/time`, correct the
  signing clock by the measured offset, retry.
Other errors become `BybitRestError(code, message)`. One pybit session is not
safe to use from several threads at once, so calls on one client are serialised.

Keys come from BYBIT_API_KEY / BYBIT_API_SECRET, else the `[bybit] secrets_file`,
else `[bybit] api_key/api_secret`. They stay SecretStr here and are revealed
only inside the pybit session, whose repr hides them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from pybit.exceptions import FailedRequestError, InvalidRequestError
from pybit.unified_trading import HTTP
from pydantic import SecretStr

from .config import BybitConfig, ConfigError
from .events import NS, Bar, FundingRate, LongShortRatio, Ticker
from .feeds.bybit_parse import (
    MS,
    ExchangeOrder,
    ExchangePosition,
    Execution,
    WalletState,
    opt_float,
    parse_execution,
    parse_order,
    parse_position,
    parse_wallet,
    ticker_event,
)
from .instruments import Instrument

log = logging.getLogger("liqdesk.bybit")

RATE_LIMITED = 10006
TIMESTAMP_OUT_OF_WINDOW = 10002
LEVERAGE_NOT_MODIFIED = 110043

KLINE_SECONDS = {"D": 86_400, "W": 604_800}


class BybitRestError(Exception):
    """A Bybit error: `code` is the retCode (or the HTTP status, or -1 for a network error)."""

    def __init__(self, code: int, message: str, endpoint: str = ""):
        self.code = int(code)
        self.message = message
        self.endpoint = endpoint
        super().__init__(f"{endpoint}: {self.code} {message}" if endpoint else f"{self.code} {message}")


# ----------------------------------------------------------------------------------------------
# credentials
# ----------------------------------------------------------------------------------------------
def _read_secrets_file(path: str) -> dict[str, str]:
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"config error: bybit.secrets_file = {path!r}: cannot read it ({exc.strerror})"
                          ) from None
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        k, _, v = line.partition("=")
        out[k.strip().upper()] = v.strip().strip("'\"")
    return out


Credentials = tuple[SecretStr, SecretStr]


def load_credentials(cfg: BybitConfig, env: dict[str, str] | None = None) -> Credentials | None:
    """(key, secret) from the environment, the secrets file or the config; None if none is set."""
    env = os.environ if env is None else env
    key, secret = env.get("BYBIT_API_KEY", ""), env.get("BYBIT_API_SECRET", "")
    if not (key and secret) and cfg.secrets_file:
        f = _read_secrets_file(cfg.secrets_file)
        key, secret = f.get("BYBIT_API_KEY", ""), f.get("BYBIT_API_SECRET", "")
    if not (key and secret) and cfg.api_key is not None and cfg.api_secret is not None:
        key, secret = cfg.api_key.get_secret_value(), cfg.api_secret.get_secret_value()
    if not (key and secret):
        return None
    return SecretStr(key), SecretStr(secret)


# ----------------------------------------------------------------------------------------------
# the pybit session
# ----------------------------------------------------------------------------------------------
class _Session(HTTP):
    """pybit HTTP with a base-URL override and a corrected signing clock."""

    def __init__(self, *, base_url: str, **kw: Any):
        self._base_url = base_url
        self.time_offset_ms = 0
        super().__init__(**kw)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self._base_url:
            self.endpoint = self._base_url
        logging.getLogger("pybit._http_manager").handlers.clear()  # pybit adds a stderr handler

    def __repr__(self) -> str:  # the dataclass repr would print the key and the secret
        return f"<bybit session {self.endpoint}>"

    def _prepare_headers(self, payload, recv_window, content_type="application/json"):
        # Same headers as pybit's, but the timestamp follows the server's clock (10002 fix).
        timestamp = int(time.time() * 1000) + self.time_offset_ms
        signature = self._auth(payload=payload, recv_window=recv_window, timestamp=timestamp)
        return {"Content-Type": content_type, "X-BAPI-API-KEY": self.api_key, "X-BAPI-SIGN": signature,
                "X-BAPI-SIGN-TYPE": "2", "X-BAPI-TIMESTAMP": str(timestamp),
                "X-BAPI-RECV-WINDOW": str(recv_window)}


class BybitRest:
    """Async Bybit v5 REST client (market data, trading, account)."""

    def __init__(self, cfg: BybitConfig, base_url: str, credentials: Credentials | None = None,
                 *, timeout_s: float = 10.0, now_ms: Callable[[], int] = lambda: int(time.time() * 1000)):
        key, secret = credentials if credentials is not None else (None, None)
        self.session = _Session(
            base_url=base_url, api_key=key.get_secret_value() if key else None,
            api_secret=secret.get_secret_value() if secret else None, retry_codes={-1},
            ignore_codes={LEVERAGE_NOT_MODIFIED}, recv_window=cfg.recv_window_ms, max_retries=1,
            return_response_headers=True, timeout=timeout_s)
        self.base_url = base_url
        self.max_retries = cfg.rest_max_retries
        self.now_ms = now_ms
        self.limits: dict[str, tuple[int, int]] = {}  # endpoint -> (requests left, reset ms)
        self.counters: dict[str, int] = {"calls": 0, "rate_limited": 0, "throttled": 0, "clock_syncs": 0,
                                         "errors": 0}
        self._lock = asyncio.Lock()

    @property
    def time_offset_ms(self) -> int:
        return self.session.time_offset_ms

    # -- the call ------------------------------------------------------------------------------
    async def call(self, endpoint: str, **params: Any) -> dict:
        """Call pybit method `endpoint` (e.g. "place_order"); returns the whole response body."""
        fn = getattr(self.session, endpoint)
        params = {k: v for k, v in params.items() if v is not None}
        attempt = 0
        while True:
            await self._respect_limit(endpoint)
            try:
                async with self._lock:
                    self.counters["calls"] += 1
                    body, _elapsed, headers = await asyncio.to_thread(fn, **params)
                self._note_limit(endpoint, headers)
                return body
            except InvalidRequestError as exc:
                code = int(exc.status_code)
                self._note_limit(endpoint, exc.resp_headers)
                if code == RATE_LIMITED and attempt < self.max_retries:
                    self.counters["rate_limited"] += 1
                    reset = self.limits.get(endpoint, (0, 0))[1]
                    self.limits[endpoint] = (0, reset if reset > self.now_ms() else self.now_ms() + 1000)
                elif code == TIMESTAMP_OUT_OF_WINDOW and attempt < self.max_retries:
                    await self.sync_time()
                else:
                    self.counters["errors"] += 1
                    raise BybitRestError(code, str(exc.message), endpoint) from None
            except FailedRequestError as exc:  # HTTP status not 200 (403: IP limit or region), bad JSON
                self.counters["errors"] += 1
                raise BybitRestError(int(exc.status_code), str(exc.message), endpoint) from None
            except requests.RequestException as exc:
                self.counters["errors"] += 1
                raise BybitRestError(-1, f"network error: {type(exc).__name__}", endpoint) from None
            attempt += 1

    async def _respect_limit(self, endpoint: str) -> None:
        left, reset = self.limits.get(endpoint, (1, 0))
        wait_ms = reset - self.now_ms()
        if left <= 0 and wait_ms > 0:
            self.counters["throttled"] += 1
            await asyncio.sleep(min(wait_ms, 10_000) / 1000)

    def _note_limit(self, endpoint: str, headers: Any) -> None:
        if not headers:
            return
        left, reset = headers.get("X-Bapi-Limit-Status"), headers.get("X-Bapi-Limit-Reset-Timestamp")
        try:
            if left is not None:
                self.limits[endpoint] = (int(left), int(reset or 0))
        except ValueError:
            pass

    async def sync_time(self) -> int:
        """Measure the server clock against ours and sign with the server's time from now on."""
        t0 = self.now_ms()
        async with self._lock:
            body, _elapsed, _headers = await asyncio.to_thread(self.session.get_server_time)
        t1 = self.now_ms()
        res = body.get("result") or {}
        server_ms = (int(res["timeNano"]) // 1_000_000 if res.get("timeNano")
                     else int(res["timeSecond"]) * 1000)
        self.session.time_offset_ms = server_ms - (t0 + t1) // 2
        self.counters["clock_syncs"] += 1
        log.warning("bybit: clock offset to the server %+d ms; signing with server time", self.time_offset_ms)
        return self.session.time_offset_ms

    async def _pages(self, endpoint: str, max_pages: int = 100, **params: Any) -> list[dict]:
        """Every `result.list` row, following `nextPageCursor`."""
        rows: list[dict] = []
        cursor = None
        for _ in range(max_pages):
            body = await self.call(endpoint, cursor=cursor, **params)
            res = body.get("result") or {}
            rows.extend(res.get("list") or [])
            cursor = res.get("nextPageCursor") or None
            if not cursor:
                break
        return rows

    # -- market data ---------------------------------------------------------------------------
    async def server_time_ns(self) -> int:
        body = await self.call("get_server_time")
        return int((body.get("result") or {}).get("timeNano") or 0)

    async def instruments(self, category: str = "linear") -> dict[str, Instrument]:
        rows = await self._pages("get_instruments_info", category=category, limit=1000)
        return {r["symbol"]: instrument_from(r) for r in rows}

    async def tickers(self, symbol: str | None = None) -> list[Ticker]:
        body = await self.call("get_tickers", category="linear", symbol=symbol)
        ts = int(body.get("time") or 0) * MS
        out = [ticker_event(r["symbol"], r, ts) for r in (body.get("result") or {}).get("list") or []]
        return [t for t in out if t is not None]

    async def open_interest(self, symbol: str, interval: str = "5min", start_ms: int | None = None,
                            end_ms: int | None = None, limit: int = 200) -> list[tuple[int, float]]:
        """(ts ns, open interest in base units), oldest first."""
        body = await self.call("get_open_interest", category="linear", symbol=symbol, intervalTime=interval,
                               startTime=start_ms, endTime=end_ms, limit=limit)
        rows = (body.get("result") or {}).get("list") or []
        return sorted((int(r["timestamp"]) * MS, float(r["openInterest"])) for r in rows)

    async def long_short_ratio(self, symbol: str, period: str = "5min",
                               limit: int = 50) -> list[LongShortRatio]:
        """Share of accounts long vs short, oldest first."""
        body = await self.call("get_long_short_ratio", category="linear", symbol=symbol, period=period,
                               limit=limit)
        rows = (body.get("result") or {}).get("list") or []
        out = [LongShortRatio(int(r["timestamp"]) * MS, r["symbol"], float(r["buyRatio"]),
                              float(r["sellRatio"]), "bybit") for r in rows]
        return sorted(out, key=lambda r: r.ts)

    async def funding_history(self, symbol: str, end_ms: int | None = None, start_ms: int | None = None,
                              limit: int = 200, interval_h: float = 8.0) -> list[FundingRate]:
        """Settled funding rates, oldest first. Bybit rejects startTime without endTime."""
        if start_ms is not None and end_ms is None:
            end_ms = self.now_ms()
        body = await self.call("get_funding_rate_history", category="linear", symbol=symbol,
                               startTime=start_ms, endTime=end_ms, limit=limit)
        rows = (body.get("result") or {}).get("list") or []
        out = [FundingRate(int(r["fundingRateTimestamp"]) * MS, r["symbol"], "bybit", float(r["fundingRate"]),
                           interval_h) for r in rows]
        return sorted(out, key=lambda f: f.ts)

    async def klines(self, symbol: str, interval: str = "1", start_ms: int | None = None,
                     end_ms: int | None = None, limit: int = 200) -> list[Bar]:
        """OHLCV bars, oldest first; `ts` is each bar's close time. The newest bar may still be open."""
        seconds = KLINE_SECONDS.get(interval) or (int(interval) * 60 if interval.isdigit() else 0)
        if not seconds:
            raise ValueError(f"kline interval {interval!r}: use minutes (1, 5, 60, ...), D or W")
        body = await self.call("get_kline", category="linear", symbol=symbol, interval=interval,
                               start=start_ms, end=end_ms, limit=limit)
        rows = (body.get("result") or {}).get("list") or []
        bars = [Bar(int(r[0]) * MS + seconds * NS, symbol, seconds, float(r[1]), float(r[2]), float(r[3]),
                    float(r[4]), float(r[5]), float(r[6])) for r in rows]
        return sorted(bars, key=lambda b: b.ts)

    # -- trading -------------------------------------------------------------------------------
    async def place_order(self, **params: Any) -> str:
        """Create an order; returns Bybit's orderId. The outcome arrives on the private stream."""
        body = await self.call("place_order", category="linear", **params)
        return str((body.get("result") or {}).get("orderId", ""))

    async def cancel_order(self, symbol: str, order_id: str = "", link_id: str = "") -> None:
        await self.call("cancel_order", category="linear", symbol=symbol, orderId=order_id or None,
                        orderLinkId=None if order_id else link_id)

    async def cancel_all(self, symbol: str | None = None, settle_coin: str = "USDT") -> list[str]:
        """Cancel every open order (of `symbol`, else of the settle coin); returns the cancelled orderIds."""
        body = await self.call("cancel_all_orders", category="linear", symbol=symbol,
                               settleCoin=None if symbol else settle_coin)
        return [str(r.get("orderId")) for r in (body.get("result") or {}).get("list") or []]

    async def set_leverage(self, symbol: str, leverage: str) -> bool:
        """True if changed; False if it already was `leverage` (110043, ignored)."""
        body = await self.call("set_leverage", category="linear", symbol=symbol, buyLeverage=leverage,
                               sellLeverage=leverage)
        return int(body.get("retCode") or 0) != LEVERAGE_NOT_MODIFIED

    async def set_trading_stop(self, symbol: str, stop_loss: str | None = None,
                               take_profit: str | None = None) -> None:
        """Position-level TP/SL (tpslMode Full, one-way mode); "0" removes one."""
        await self.call("set_trading_stop", category="linear", symbol=symbol, tpslMode="Full", positionIdx=0,
                        stopLoss=stop_loss, takeProfit=take_profit)

    async def open_orders(self, symbol: str | None = None, settle_coin: str = "USDT") -> list[ExchangeOrder]:
        rows = await self._pages("get_open_orders", category="linear", symbol=symbol,
                                 settleCoin=None if symbol else settle_coin, limit=50)
        return [parse_order(r) for r in rows]

    async def positions(self, symbol: str | None = None, settle_coin: str = "USDT") -> list[ExchangePosition]:
        rows = await self._pages("get_positions", category="linear", symbol=symbol,
                                 settleCoin=None if symbol else settle_coin, limit=200)
        return [parse_position(r) for r in rows]

    async def executions(self, symbol: str | None = None, start_ms: int | None = None,
                         limit: int = 100) -> list[Execution]:
        rows = await self._pages("get_executions", max_pages=10, category="linear", symbol=symbol,
                                 startTime=start_ms, limit=limit)
        return sorted((parse_execution(r) for r in rows), key=lambda e: e.ts)

    async def wallet(self) -> WalletState | None:
        body = await self.call("get_wallet_balance", accountType="UNIFIED")
        rows = (body.get("result") or {}).get("list") or []
        return parse_wallet(rows[0], int(body.get("time") or 0) * MS) if rows else None


def instrument_from(r: dict) -> Instrument:
    """An Instrument from one instruments-info row (fundingInterval is in minutes)."""
    lot = r.get("lotSizeFilter") or {}
    lev = r.get("leverageFilter") or {}
    return Instrument(
        symbol=r["symbol"], tick_size=float(r["priceFilter"]["tickSize"]), qty_step=float(lot["qtyStep"]),
        min_qty=opt_float(lot.get("minOrderQty")) or float(lot["qtyStep"]),
        min_notional=opt_float(lot.get("minNotionalValue")) or 0.0,
        max_leverage=opt_float(lev.get("maxLeverage")) or 1.0,
        funding_interval_h=(opt_float(r.get("fundingInterval")) or 480.0) / 60.0)
