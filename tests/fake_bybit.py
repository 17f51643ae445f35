"""Fake Bybit v5 servers for tests, on 127.0.0.1 only.

`FakePublicStream`: the public linear WebSocket. It keeps the true order book
of each symbol, answers subscribe (with failures), ping and unsubscribe as
Bybit does, and injects faults: dropped connections, unanswered pings,
garbage frames, skipped update ids, `u = 1` restart snapshots, bursts.

`FakeExchange` + `FakeRestServer` + `FakePrivateStream` (below): a tiny
matching venue behind signed v5 REST and an authenticated private stream.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlparse

from websockets.asyncio.server import ServerConnection, serve

KINDS = ("allLiquidation", "publicTrade", "orderbook", "tickers")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


class _WsServer:
    """Start/stop plumbing shared by the fake streams."""

    path = "/"

    def __init__(self) -> None:
        self.conns: set[ServerConnection] = set()
        self.received: list[dict] = []
        self.answer_pings = True
        self.connects = 0
        self._server: Any = None
        self.port = 0

    async def start(self) -> str:
        self._server = await serve(self._handler, "127.0.0.1", 0, ping_interval=None, compression=None)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.url

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{self.path}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handler(self, ws: ServerConnection) -> None:
        self.connects += 1
        self.conns.add(ws)
        try:
            async for raw in ws:
                try:
                    msg = json.loads(raw)
                except ValueError:
                    continue
                self.received.append(msg)
                await self.on_request(ws, msg)
        except Exception:  # noqa: S110 - a dropped client is normal here
            pass
        finally:
            self.conns.discard(ws)
            self.on_close(ws)

    async def on_request(self, ws: ServerConnection, msg: dict) -> None:  # pragma: no cover
        raise NotImplementedError

    def on_close(self, ws: ServerConnection) -> None:
        pass

    async def _pong(self, ws: ServerConnection, msg: dict) -> None:
        if self.answer_pings:
            await ws.send(_dumps({"success": True, "ret_msg": "pong", "conn_id": "fake", "req_id":
                                  msg.get("req_id", ""), "op": "ping"}))

    def drop_all(self) -> None:
        """Cut every connection without a close handshake (a network failure)."""
        for ws in list(self.conns):
            ws.transport.abort()

    async def send_raw(self, text: str) -> None:
        for ws in list(self.conns):
            await ws.send(text)

    def count(self, op: str) -> int:
        return sum(1 for m in self.received if m.get("op") == op)


class FakePublicStream(_WsServer):
    path = "/v5/public/linear"

    def __init__(self, symbols: list[str], reject_topics: set[str] | None = None) -> None:
        super().__init__()
        self.symbols = list(symbols)
        self.reject_topics = set(reject_topics or ())
        self.subs: dict[ServerConnection, set[str]] = {}
        self.books: dict[str, dict[str, dict[str, str]]] = {}
        self.u: dict[str, int] = {}
        self.ts = 1_700_000_000_000
        for i, s in enumerate(self.symbols):
            base = 100 * (i + 1)
            self.books[s] = {"b": {f"{base - k * 0.5:.1f}": f"{1 + k}.000" for k in range(1, 6)},
                             "a": {f"{base + k * 0.5:.1f}": f"{1 + k}.000" for k in range(1, 6)}}
            self.u[s] = 1000

    # -- protocol --------------------------------------------------------------------------------
    def _valid(self, topic: str) -> str:
        kind, _, rest = topic.partition(".")
        sym = rest.rpartition(".")[2]
        if topic in self.reject_topics:
            return f"error:handler not found,topic:{topic}"
        if kind not in KINDS or (kind == "orderbook" and not rest.startswith(("1.", "50.", "200.", "1000."))):
            return f"error:handler not found,topic:{topic}"
        if sym not in self.symbols:
            return f"Invalid symbol :[{topic}]"
        return ""

    async def on_request(self, ws: ServerConnection, msg: dict) -> None:
        op = msg.get("op")
        if op == "ping":
            await self._pong(ws, msg)
        elif op == "subscribe":
            args = list(msg.get("args") or [])
            errors = [e for e in (self._valid(t) for t in args) if e]
            subs = self.subs.setdefault(ws, set())
            already = [t for t in args if t in subs]
            ok = not errors and not already
            ret = errors[0] if errors else (f"already subscribed,topic:{already[0]}" if already else "")
            await ws.send(_dumps({"success": ok, "ret_msg": ret, "conn_id": "fake",
                                  "req_id": msg.get("req_id", ""), "op": "subscribe"}))
            if ok:  # Bybit: one bad topic fails the whole request
                subs.update(args)
                for t in args:
                    await self._initial(ws, t)
        elif op == "unsubscribe":
            for t in msg.get("args") or []:
                self.subs.get(ws, set()).discard(t)
            await ws.send(_dumps({"success": True, "ret_msg": "", "conn_id": "fake",
                                  "req_id": msg.get("req_id", ""), "op": "unsubscribe"}))

    def on_close(self, ws: ServerConnection) -> None:
        self.subs.pop(ws, None)

    async def _initial(self, ws: ServerConnection, topic: str) -> None:
        kind = topic.partition(".")[0]
        sym = topic.rpartition(".")[2]
        if kind == "orderbook":
            await ws.send(self._book_msg(sym, "snapshot", self._levels(sym)))
        elif kind == "tickers":
            await ws.send(_dumps({"topic": topic, "type": "snapshot", "ts": self._tick(), "cs": 1, "data": {
                "symbol": sym, "lastPrice": "100.0", "markPrice": "100.1", "indexPrice": "100.2",
                "openInterest": "5000", "fundingRate": "0.0001", "nextFundingTime": "1700006400000",
                "fundingIntervalHour": "8", "bid1Price": "99.5", "ask1Price": "100.5"}}))

    def _tick(self) -> int:
        """Message time: real time in ms (the engine's staleness checks compare it to its clock), increasing."""
        self.ts = max(self.ts + 1, _now_ms())
        return self.ts

    def _levels(self, sym: str) -> dict[str, list]:
        b = self.books[sym]
        return {"b": sorted(([p, q] for p, q in b["b"].items()), key=lambda x: -float(x[0])),
                "a": sorted(([p, q] for p, q in b["a"].items()), key=lambda x: float(x[0]))}

    def _book_msg(self, sym: str, kind: str, levels: dict[str, list]) -> str:
        return _dumps({"topic": f"orderbook.50.{sym}", "type": kind, "ts": self._tick(),
                       "data": {"s": sym, "b": levels["b"], "a": levels["a"], "u": self.u[sym], "seq": self.u[sym]},
                       "cts": self.ts - 2})

    async def _publish(self, topic: str, text: str) -> None:
        for ws, subs in list(self.subs.items()):
            if topic in subs:
                try:
                    await ws.send(text)
                except Exception:  # noqa: S110 - the client went away
                    pass

    # -- market actions ----------------------------------------------------------------------------
    def book_floats(self, sym: str) -> tuple[dict[float, float], dict[float, float]]:
        b = self.books[sym]
        return ({float(p): float(q) for p, q in b["b"].items()}, {float(p): float(q) for p, q in b["a"].items()})

    async def book_delta(self, sym: str, bids: list[tuple[str, str]] = (), asks: list[tuple[str, str]] = (),
                         skip: int = 0) -> None:
        """Apply a change to the true book and push it; `skip` > 0 leaves a gap in `u`."""
        book = self.books[sym]
        for side, rows in (("b", bids), ("a", asks)):
            for p, q in rows:
                if Decimal(q) == 0:
                    book[side].pop(p, None)
                else:
                    book[side][p] = q
        self.u[sym] += 1 + skip
        await self._publish(f"orderbook.50.{sym}", self._book_msg(sym, "delta", {"b": [list(r) for r in bids],
                                                                                  "a": [list(r) for r in asks]}))

    async def restart_book(self, sym: str, bids: dict[str, str], asks: dict[str, str]) -> None:
        """A service restart: a new book pushed with `u = 1`."""
        self.books[sym] = {"b": dict(bids), "a": dict(asks)}
        self.u[sym] = 1
        await self._publish(f"orderbook.50.{sym}", self._book_msg(sym, "snapshot", self._levels(sym)))

    async def trade(self, sym: str, side: str, price: str, qty: str) -> None:
        ts = self._tick()
        await self._publish(f"publicTrade.{sym}", _dumps({"topic": f"publicTrade.{sym}", "type": "snapshot", "ts": ts,
                                                          "data": [{"T": ts - 1, "s": sym, "S": side, "v": qty,
                                                                    "p": price, "L": "PlusTick", "i": f"t{ts}",
                                                                    "BT": False, "seq": ts}]}))

    async def liquidations(self, sym: str, rows: list[tuple[str, str, str]]) -> None:
        """One allLiquidation push with several entries: (S, price, size)."""
        ts = self._tick()
        data = [{"T": ts - 100 + i, "s": sym, "S": s, "v": v, "p": p} for i, (s, p, v) in enumerate(rows)]
        await self._publish(f"allLiquidation.{sym}", _dumps({"topic": f"allLiquidation.{sym}", "type": "snapshot",
                                                             "ts": ts, "data": data}))

    async def ticker_delta(self, sym: str, fields: dict[str, str]) -> None:
        await self._publish(f"tickers.{sym}", _dumps({"topic": f"tickers.{sym}", "type": "delta", "ts": self._tick(),
                                                      "cs": 2, "data": {"symbol": sym, **fields}}))


# ----------------------------------------------------------------------------------------------
# a tiny exchange: signed REST + private stream
# ----------------------------------------------------------------------------------------------
def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


class FakeExchange:
    """Orders, positions and fills for one account; REST and the private stream both use it.

    Thread-safety: REST handlers run in server threads; they only queue pushes, and
    `pump()` (in the event loop) sends them to private-stream clients.
    """

    def __init__(self, key: str, secret: str, instruments: dict[str, dict] | None = None) -> None:
        self.key = key
        self.secret = secret
        self.instruments = instruments or {
            "BTCUSDT": {"tick": "0.1", "step": "0.001", "min_qty": "0.001", "min_notional": "5", "max_lev": "100"},
            "ETHUSDT": {"tick": "0.01", "step": "0.01", "min_qty": "0.01", "min_notional": "5", "max_lev": "100"}}
        self.best: dict[str, tuple[float, float]] = {"BTCUSDT": (99.9, 100.1), "ETHUSDT": (49.9, 50.1)}
        self.orders: dict[str, dict] = {}  # orderId -> order
        self.positions: dict[str, float] = {}
        self.entry: dict[str, float] = {}
        self.leverage: dict[str, str] = {}
        self.trading_stop: dict[str, dict] = {}
        self.requests: list[tuple[str, str, dict]] = []  # (method, path, params)
        self.bad_signatures = 0
        self.clock_skew_ms = 0  # server time minus real time
        self.fail_next: dict[str, list[int]] = {}  # path -> retCodes to answer next, in order
        self.limit_status: dict[str, int] = {}  # path -> X-Bapi-Limit-Status to report
        self.pushes: list[dict] = []
        self.push_event: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ids = itertools.count(1)
        self._execs = itertools.count(1)
        self.lock = threading.Lock()
        self.server_time_calls = 0
        self.executions: list[dict] = []

    def now_ms(self) -> int:
        return _now_ms() + self.clock_skew_ms

    def _push(self, topic: str, data: list[dict]) -> None:
        self.pushes.append({"id": f"p{len(self.pushes)}", "topic": topic, "creationTime": self.now_ms(),
                            "data": data})
        if self.loop is not None and self.push_event is not None:
            self.loop.call_soon_threadsafe(self.push_event.set)

    # -- REST ------------------------------------------------------------------------------------
    def handle(self, method: str, path: str, params: dict, headers: dict, payload: str) -> tuple[int, dict, dict]:
        """(http status, body, extra headers) of one request."""
        self.requests.append((method, path, params))
        extra: dict[str, str] = {}
        if path in self.limit_status:
            extra = {"X-Bapi-Limit": "10", "X-Bapi-Limit-Status": str(self.limit_status[path]),
                     "X-Bapi-Limit-Reset-Timestamp": str(self.now_ms() + 50)}
        queued = self.fail_next.get(path)
        if queued:
            code = queued.pop(0)
            msg = {10006: "Too many visits!", 10002: "invalid request, please check your server timestamp or "
                   "recv_window param. req_timestamp[1],server_timestamp[2],recv_window[5000]"}.get(code, "error")
            if code == 10006:
                extra = {"X-Bapi-Limit": "10", "X-Bapi-Limit-Status": "0",
                         "X-Bapi-Limit-Reset-Timestamp": str(self.now_ms() + 50)}
            return 200, self._env(code, msg, {}), extra
        if path.startswith("/v5/market/"):
            return 200, self._market(path, params), extra
        err = self._check_signature(headers, payload)
        if err is not None:
            return 200, err, extra
        with self.lock:
            return 200, self._private(path, params), extra

    def _env(self, code: int, msg: str, result: dict) -> dict:
        return {"retCode": code, "retMsg": msg, "result": result, "retExtInfo": {}, "time": self.now_ms()}

    def _check_signature(self, headers: dict, payload: str) -> dict | None:
        key = headers.get("x-bapi-api-key", "")
        ts = headers.get("x-bapi-timestamp", "")
        rw = headers.get("x-bapi-recv-window", "")
        sig = headers.get("x-bapi-sign", "")
        if key != self.key:
            return self._env(10003, "API key is invalid.", {})
        if not hmac.compare_digest(sig, sign(self.secret, ts + key + rw + payload)):
            self.bad_signatures += 1
            return self._env(10004, "error sign!", {})
        server = self.now_ms()
        if not (server - int(rw) <= int(ts) < server + 1000):
            return self._env(10002, f"invalid request, please check your server timestamp or recv_window param. "
                                    f"req_timestamp[{ts}],server_timestamp[{server}],recv_window[{rw}]", {})
        return None

    def _market(self, path: str, params: dict) -> dict:
        if path == "/v5/market/time":
            self.server_time_calls += 1
            now = self.now_ms()
            return self._env(0, "OK", {"timeSecond": str(now // 1000), "timeNano": str(now * 1_000_000)})
        if path == "/v5/market/instruments-info":
            names = sorted(self.instruments)
            start = int(params.get("cursor") or 0)
            page = names[start:start + 1]  # one per page, to exercise pagination
            nxt = str(start + 1) if start + 1 < len(names) else ""
            rows = [{"symbol": n, "status": "Trading", "priceFilter": {"tickSize": self.instruments[n]["tick"]},
                     "lotSizeFilter": {"qtyStep": self.instruments[n]["step"],
                                       "minOrderQty": self.instruments[n]["min_qty"],
                                       "minNotionalValue": self.instruments[n]["min_notional"]},
                     "leverageFilter": {"maxLeverage": self.instruments[n]["max_lev"]}, "fundingInterval": 240}
                    for n in page]
            return self._env(0, "OK", {"category": "linear", "list": rows, "nextPageCursor": nxt})
        if path == "/v5/market/account-ratio":
            return self._env(0, "OK", {"list": [
                {"symbol": params["symbol"], "buyRatio": "0.61", "sellRatio": "0.39", "timestamp": "1700000300000"},
                {"symbol": params["symbol"], "buyRatio": "0.6", "sellRatio": "0.4", "timestamp": "1700000000000"}],
                "nextPageCursor": ""})
        return self._env(10001, f"unknown path {path}", {})

    def _private(self, path: str, p: dict) -> dict:
        if path == "/v5/order/create":
            return self._create(p)
        if path == "/v5/order/cancel":
            o = self._find(p)
            if o is None or o["orderStatus"] not in ("New", "PartiallyFilled", "Untriggered"):
                return self._env(110001, "Order does not exist.", {})
            o["orderStatus"] = "Cancelled"
            o["cancelType"] = "CancelByUser"
            self._push("order", [dict(o)])
            return self._env(0, "OK", {"orderId": o["orderId"], "orderLinkId": o["orderLinkId"]})
        if path == "/v5/order/cancel-all":
            done = []
            for o in self.orders.values():
                if o["orderStatus"] in ("New", "PartiallyFilled", "Untriggered") and \
                        (not p.get("symbol") or o["symbol"] == p["symbol"]):
                    o["orderStatus"] = "Cancelled"
                    self._push("order", [dict(o)])
                    done.append({"orderId": o["orderId"], "orderLinkId": o["orderLinkId"]})
            return self._env(0, "OK", {"list": done, "success": "1"})
        if path == "/v5/position/set-leverage":
            if self.leverage.get(p["symbol"]) == p["buyLeverage"]:
                return self._env(110043, "Set leverage has not been modified.", {})
            self.leverage[p["symbol"]] = p["buyLeverage"]
            return self._env(0, "OK", {})
        if path == "/v5/position/trading-stop":
            self.trading_stop[p["symbol"]] = p
            return self._env(0, "OK", {})
        if path == "/v5/order/realtime":
            rows = [o for o in self.orders.values() if o["orderStatus"] in ("New", "PartiallyFilled", "Untriggered")]
            return self._env(0, "OK", {"list": rows, "nextPageCursor": "", "category": "linear"})
        if path == "/v5/position/list":
            rows = [self._position_row(s) for s in sorted(self.positions) if self.positions[s]]
            return self._env(0, "OK", {"list": rows, "nextPageCursor": "", "category": "linear"})
        if path == "/v5/execution/list":
            since = int(p.get("startTime") or 0)
            rows = [e for e in self.executions if int(e["execTime"]) >= since]
            return self._env(0, "OK", {"list": rows, "nextPageCursor": "", "category": "linear"})
        if path == "/v5/account/wallet-balance":
            return self._env(0, "OK", {"list": [{"accountType": "UNIFIED", "totalEquity": "10000",
                                                 "totalWalletBalance": "10000", "totalAvailableBalance": "9000",
                                                 "totalPerpUPL": "0", "coin": []}]})
        return self._env(10001, f"unknown path {path}", {})

    def _find(self, p: dict) -> dict | None:
        if p.get("orderId"):
            return self.orders.get(p["orderId"])
        return next((o for o in self.orders.values() if o["orderLinkId"] == p.get("orderLinkId")), None)

    def _create(self, p: dict) -> dict:
        sym = p["symbol"]
        inst = self.instruments.get(sym)
        if inst is None:
            return self._env(10001, "symbol invalid", {})
        qty, price = Decimal(p["qty"]), Decimal(p["price"]) if p.get("price") else None
        if qty % Decimal(inst["step"]) or (price is not None and price % Decimal(inst["tick"])):
            return self._env(10001, "price or qty off the grid", {})
        if any(o["orderLinkId"] == p.get("orderLinkId") for o in self.orders.values()):
            return self._env(110072, "OrderLinkedID is duplicate", {})
        ref = price if price is not None else Decimal(str(self.best[sym][1]))
        if not p.get("reduceOnly") and qty * ref < Decimal(inst["min_notional"]):
            return self._env(110094, "Order does not meet minimum order value 5USDT", {})
        oid = f"ex-{next(self._ids)}"
        o = {"orderId": oid, "orderLinkId": p.get("orderLinkId", ""), "symbol": sym, "side": p["side"],
             "orderType": p["orderType"], "price": p.get("price", "0"), "qty": p["qty"],
             "timeInForce": p.get("timeInForce", "GTC"), "orderStatus": "New", "rejectReason": "EC_NoError",
             "cancelType": "UNKNOWN", "cumExecQty": "0", "avgPrice": "0", "leavesQty": p["qty"],
             "reduceOnly": bool(p.get("reduceOnly")), "triggerPrice": p.get("triggerPrice", ""),
             "stopOrderType": "Stop" if p.get("triggerPrice") else "", "createdTime": str(self.now_ms()),
             "updatedTime": str(self.now_ms()), "category": "linear", "positionIdx": 0}
        self.orders[oid] = o
        bid, ask = self.best[sym]
        crosses = price is not None and ((p["side"] == "Buy" and float(price) >= ask)
                                         or (p["side"] == "Sell" and float(price) <= bid))
        if p.get("timeInForce") == "PostOnly" and crosses:  # Bybit: accepted, then cancelled on the stream
            o["orderStatus"] = "Cancelled"
            o["rejectReason"] = "EC_PostOnlyWillTakeLiquidity"
            self._push("order", [dict(o)])
        elif p.get("triggerPrice"):
            o["orderStatus"] = "Untriggered"
            self._push("order", [dict(o)])
        elif p["orderType"] == "Market":
            self._push("order", [dict(o)])
            self.fill(oid, ask if p["side"] == "Buy" else bid, float(qty), maker=False)
        else:
            self._push("order", [dict(o)])
        return self._env(0, "OK", {"orderId": oid, "orderLinkId": o["orderLinkId"]})

    def fill(self, order_id: str, price: float, qty: float, maker: bool = True) -> None:
        """Execute `qty` of an order: push execution, then order, then position."""
        o = self.orders[order_id]
        cum = float(o["cumExecQty"]) + qty
        total = float(o["qty"])
        o["cumExecQty"] = f"{cum:g}"
        o["leavesQty"] = f"{total - cum:g}"
        o["avgPrice"] = f"{price:g}"
        o["orderStatus"] = "Filled" if cum >= total - 1e-12 else "PartiallyFilled"
        fee = price * qty * (0.0002 if maker else 0.00055)
        e = {"category": "linear", "symbol": o["symbol"], "execId": f"e{next(self._execs)}", "execPrice": f"{price:g}",
             "execQty": f"{qty:g}", "execType": "Trade", "execFee": f"{fee:.8f}", "isMaker": maker,
             "orderId": order_id, "orderLinkId": o["orderLinkId"], "side": o["side"], "execTime": str(self.now_ms()),
             "stopOrderType": o["stopOrderType"], "feeRate": "0.0002" if maker else "0.00055"}
        sym = o["symbol"]
        signed = qty if o["side"] == "Buy" else -qty
        prev = self.positions.get(sym, 0.0)
        new = prev + signed
        if prev == 0 or (prev > 0) == (signed > 0):
            self.entry[sym] = (self.entry.get(sym, 0.0) * abs(prev) + price * qty) / abs(new) if new else 0.0
        self.positions[sym] = new
        self.executions.append(e)
        self._push("execution", [e])
        self._push("order", [dict(o)])
        self._push("position", [self._position_row(sym)])

    def trigger(self, order_id: str, price: float) -> None:
        o = self.orders[order_id]
        o["orderStatus"] = "Triggered"
        self._push("order", [dict(o)])
        self.fill(order_id, price, float(o["qty"]), maker=False)

    def _position_row(self, sym: str) -> dict:
        q = self.positions.get(sym, 0.0)
        return {"symbol": sym, "side": "Buy" if q > 0 else "Sell" if q < 0 else "", "size": f"{abs(q):g}",
                "entryPrice": f"{self.entry.get(sym, 0.0):g}", "avgPrice": f"{self.entry.get(sym, 0.0):g}",
                "leverage": self.leverage.get(sym, "10"), "markPrice": "100", "liqPrice": "", "unrealisedPnl": "0",
                "takeProfit": "0", "stopLoss": "0", "positionIdx": 0, "updatedTime": str(self.now_ms()),
                "category": "linear"}


class FakeRestServer:
    """`FakeExchange` behind HTTP on 127.0.0.1 (a thread), v5 envelopes and signature checks."""

    def __init__(self, exchange: FakeExchange) -> None:
        self.exchange = exchange
        ex = exchange

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, method: str) -> None:
                u = urlparse(self.path)
                if method == "GET":
                    payload = u.query
                    params = dict(parse_qsl(u.query, keep_blank_values=True))
                else:
                    n = int(self.headers.get("Content-Length") or 0)
                    payload = self.rfile.read(n).decode()
                    params = json.loads(payload or "{}")
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, body, extra = ex.handle(method, u.path, params, headers, payload)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                self._reply("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._reply("POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> str:
        self.thread.start()
        return self.url

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class FakePrivateStream(_WsServer):
    """The private stream: auth (HMAC over "GET/realtime" + expires), subscribe, pushes from the exchange."""

    path = "/v5/private"

    def __init__(self, exchange: FakeExchange) -> None:
        super().__init__()
        self.exchange = exchange
        self.authed: set[ServerConnection] = set()
        self.subs: dict[ServerConnection, set[str]] = {}
        self.auth_failures = 0
        self._pump_task: asyncio.Task | None = None
        self._sent = 0

    async def start(self) -> str:
        url = await super().start()
        self.exchange.loop = asyncio.get_running_loop()
        self.exchange.push_event = asyncio.Event()
        self._pump_task = asyncio.create_task(self._pump())
        return url

    async def stop(self) -> None:
        if self._pump_task is not None:
            self._pump_task.cancel()
        await super().stop()

    async def on_request(self, ws: ServerConnection, msg: dict) -> None:
        op = msg.get("op")
        if op == "ping":
            if self.answer_pings:
                await ws.send(_dumps({"req_id": msg.get("req_id", ""), "op": "pong", "args": [str(_now_ms())],
                                      "conn_id": "fake"}))
        elif op == "auth":
            key, expires, sig = msg["args"]
            ok = key == self.exchange.key and int(expires) > _now_ms() - 1000 and hmac.compare_digest(
                sig, sign(self.exchange.secret, f"GET/realtime{expires}"))
            if ok:
                self.authed.add(ws)
            else:
                self.auth_failures += 1
            await ws.send(_dumps({"success": ok, "ret_msg": "" if ok else "Invalid signature", "op": "auth",
                                  "conn_id": "fake"}))
        elif op == "subscribe":
            ok = ws in self.authed
            if ok:
                self.subs.setdefault(ws, set()).update(msg.get("args") or [])
            await ws.send(_dumps({"success": ok, "ret_msg": "" if ok else "Request not authorized",
                                  "op": "subscribe", "conn_id": "fake", "req_id": msg.get("req_id", "")}))

    def on_close(self, ws: ServerConnection) -> None:
        self.authed.discard(ws)
        self.subs.pop(ws, None)

    async def _pump(self) -> None:
        ev = self.exchange.push_event
        assert ev is not None
        while True:
            await ev.wait()
            ev.clear()
            while self._sent < len(self.exchange.pushes):
                push = self.exchange.pushes[self._sent]
                self._sent += 1
                for ws, subs in list(self.subs.items()):
                    if push["topic"] in subs:
                        try:
                            await ws.send(_dumps(push))
                        except Exception:  # noqa: S110
                            pass
