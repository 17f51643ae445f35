"""The Bybit broker (`--mode demo | testnet | live`): the paper exchange's interface on Bybit v5.

Orders go out over REST (pybit, in a worker thread): PostOnly limit entries,
reduce-only take-profit limits, stop losses as reduce-only conditional market
orders (or the position's trading-stop, `[bybit] stop_loss_via`), market exits,
cancel and cancel-all, and set-leverage before an entry (110043, "not
modified", is fine). Prices and quantities are Decimal strings on the
instrument grid; each order's orderLinkId is our order id, so the store maps
every exchange record back to the intent.

What happened to an order is learned only from the authenticated private
stream (asyncio `websockets`, HMAC auth): `order` gives the status (a PostOnly
order that would take liquidity is accepted by REST and then cancelled with
rejectReason EC_PostOnlyWillTakeLiquidity: reported as a rejection),
`execution` gives fills (mapped by orderId: fast executions of maker fills
carry no orderLinkId), `position` and `wallet` keep the exchange's view for
reconciliation. Fills drive the engine's filled quantities; a terminal order
status is held back until the executions it counts have arrived.

After each (re)connect of the private stream the broker reconciles over REST:
recent executions (deduplicated by execId), open orders and positions.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import re
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from websockets.asyncio.client import ClientConnection

from ..bybit_rest import BybitRest, BybitRestError, Credentials, load_credentials
from ..config import ConfigError, Settings
from ..feeds.bybit import BybitConnection, ConnectionLost, endpoints
from ..feeds.bybit_parse import (
    MS,
    ExchangeOrder,
    ExchangePosition,
    Execution,
    WalletState,
    decode,
    parse_private,
)
from ..orders import Fill, Order, OrderStatus, OrderType, OrderUpdate, Purpose

if TYPE_CHECKING:
    from ..engine import Engine

POST_ONLY_REJECT = "EC_PostOnlyWillTakeLiquidity"
PRIVATE_TOPICS = ["order", "execution", "position", "wallet"]
LINK_ID_OK = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
TERMINAL = {"Cancelled": OrderStatus.CANCELLED, "Rejected": OrderStatus.REJECTED,
            "Deactivated": OrderStatus.CANCELLED, "PartiallyFilledCanceled": OrderStatus.CANCELLED}
WORKING = {"New": OrderStatus.NEW, "Untriggered": OrderStatus.UNTRIGGERED, "Triggered": OrderStatus.NEW}
QTY_EPS = 1e-9


def link_id_for(order_id: str) -> str:
    """orderLinkId: our id when Bybit accepts it (<= 36 of [A-Za-z0-9_-]), else a stable digest of it."""
    if LINK_ID_OK.match(order_id):
        return order_id
    return "lq-" + hashlib.sha256(order_id.encode()).hexdigest()[:33]


class BybitPrivateStream(BybitConnection):
    """The authenticated private stream: auth, subscribe order/execution/position/wallet, hand rows over."""

    feed_name = "bybit-private"

    def __init__(self, broker: BybitBroker, url: str, credentials: Credentials, **kw: Any):
        super().__init__(url, broker.cfg, **kw)
        self.broker = broker
        self._creds = credentials
        self.counters["auth_failures"] = 0

    async def on_open(self, ws: ClientConnection) -> None:
        key, secret = self._creds
        expires = int(time.time() * 1000) + self.broker.rest.time_offset_ms + 5000
        sig = hmac.new(secret.get_secret_value().encode(), f"GET/realtime{expires}".encode(),
                       hashlib.sha256).hexdigest()
        await ws.send(_json({"req_id": self.next_req_id("auth"), "op": "auth",
                             "args": [key.get_secret_value(), expires, sig]}))
        while True:  # the reply comes before any data
            msg = decode(await asyncio.wait_for(ws.recv(), timeout=self.cfg.pong_timeout_s))
            if msg.get("op") == "auth":
                break
        if not msg.get("success"):
            self.counters["auth_failures"] += 1
            raise ConnectionLost(f"auth failed: {msg.get('ret_msg', '')}")
        await ws.send(_json({"req_id": self.next_req_id("sub"), "op": "subscribe", "args": PRIVATE_TOPICS}))
        self.broker.on_stream_open()

    async def on_message(self, msg: dict, recv_ns: int) -> None:
        if "topic" not in msg:
            if msg.get("op") == "subscribe" and not msg.get("success"):
                self._log(f"private subscribe rejected: {msg.get('ret_msg', '')}", "error")
            return
        self.mark_healthy()
        kind, rows = parse_private(msg)
        self.broker.on_private(kind, rows)

    def on_state(self, state: str, detail: str) -> None:
        engine = self.broker.engine
        if engine is not None:
            engine.feed_states[self.feed_name] = state


def _json(obj: Any) -> str:
    import orjson
    return orjson.dumps(obj).decode()


class BybitBroker:
    """engine.Broker on Bybit v5 (demo, testnet or mainnet, by `mode`)."""

    name = "bybit"

    def __init__(self, settings: Settings, mode: str, *, rest: BybitRest | None = None,
                 credentials: Credentials | None = None, seed: int | None = None):
        self.cfg = settings.bybit
        self.mode = mode
        creds = credentials or load_credentials(self.cfg)
        if creds is None:
            raise ConfigError(f"config error: --mode = {mode!r} needs Bybit API keys: set BYBIT_API_KEY and "
                              "BYBIT_API_SECRET, or [bybit] secrets_file")
        ep = endpoints(self.cfg, mode)
        self.endpoints = ep
        self.rest = rest or BybitRest(self.cfg, ep.rest, creds)
        self.stream = BybitPrivateStream(self, ep.private_ws, creds, seed=seed)
        self.engine: Engine | None = None
        self.link_ids: dict[str, str] = {}  # orderLinkId -> our order id
        self.exchange_ids: dict[str, str] = {}  # our order id -> Bybit orderId
        self.our_ids: dict[str, str] = {}  # Bybit orderId -> our order id
        self.positions: dict[str, float] = {}  # the exchange's signed position per symbol
        self.exchange_positions: dict[str, ExchangePosition] = {}
        self.exchange_orders: dict[str, ExchangeOrder] = {}  # our id -> last order state seen
        self.wallet: WalletState | None = None
        self.leverage: dict[str, str] = {}
        self.position_stops: dict[str, str] = {}  # symbol -> our stop order id (trading-stop mode)
        self.counters: dict[str, int] = dict.fromkeys(
            ("orders", "rejects", "fills", "duplicate_fills", "foreign_fills", "cancels", "post_only_rejects",
             "reconciles"), 0)
        self._position_updates: dict[str, int] = {}  # stream position messages per symbol
        self._exec_qty: dict[str, float] = {}
        self._held: dict[str, tuple[int, OrderStatus, str, float]] = {}  # our id -> held terminal update
        self._seen_execs: OrderedDict[str, None] = OrderedDict()
        self._orphans: dict[str, list[Execution]] = {}  # Bybit orderId -> fills before the REST reply
        self._placing = 0
        self._last_exec_ms = 0
        self._tasks: set[asyncio.Task] = set()
        self._stream_task: asyncio.Task | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def attach(self, engine: Engine) -> None:
        self.engine = engine
        engine.feed_states.setdefault(self.stream.feed_name, self.stream.state)
        if self.stream._log_sink is None:
            self.stream._log_sink = lambda message, level: engine.log(message, level)

    async def start(self, wait_s: float = 10.0) -> None:
        """Grid specs, the exchange's positions, then the private stream (waits up to `wait_s` for it)."""
        if self.engine is not None and self.cfg.load_instruments:
            try:
                self.engine.instruments.update(await self.rest.instruments())
            except BybitRestError as exc:
                self._log(f"instruments-info failed, using default specs: {exc}", "warn")
        await self._sync_positions()
        self._ensure_stream()
        try:
            await asyncio.wait_for(self.stream.connected.wait(), timeout=wait_s)
        except TimeoutError:
            self._log(f"private stream not connected after {wait_s:g} s; retrying in the background", "warn")

    async def stop(self) -> None:
        tasks = list(self._tasks) + ([self._stream_task] if self._stream_task else [])
        if self._tasks:  # let order requests in flight finish
            await asyncio.wait(list(self._tasks), timeout=5)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._stream_task = None

    def _ensure_stream(self) -> None:
        if self._stream_task is None or self._stream_task.done():
            self._stream_task = asyncio.get_running_loop().create_task(self.stream.run_connection())

    def _spawn(self, coro) -> None:
        self._ensure_stream()
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _log(self, message: str, level: str = "info") -> None:
        if self.engine is not None:
            self.engine.log(f"bybit: {message}", level)

    def _now(self) -> int:
        return self.engine.clock.now() if self.engine is not None else time.time_ns()

    # -- the broker interface ------------------------------------------------------------------
    def submit(self, order: Order) -> None:
        self.counters["orders"] += 1
        self.link_ids[link_id_for(order.id)] = order.id
        self._placing += 1
        self._spawn(self._place(order))

    def cancel(self, order_id: str) -> None:
        self._spawn(self._cancel(order_id))

    def cancel_all(self, symbol: str | None = None) -> None:
        self._spawn(self._cancel_all(symbol))

    def on_market(self, ev: Any) -> None:
        """The exchange matches orders itself; market events are not needed here."""

    def settle_funding(self, symbol: str, mark: float, rate: float, funding_ts: int) -> float:
        """Funding is booked from the exchange's own Funding executions, not computed here."""
        return 0.0

    def open_orders(self) -> list[ExchangeOrder]:
        return [o for o in self.exchange_orders.values()
                if o.status in WORKING or o.status == "PartiallyFilled"]

    def is_flat(self) -> bool:
        return not any(self.positions.values()) and not self.open_orders() and not self._placing

    def snapshot(self) -> dict:
        return {"exchange_ids": dict(self.exchange_ids), "leverage": dict(self.leverage),
                "exec_qty": dict(self._exec_qty), "position_stops": dict(self.position_stops),
                "seen_execs": list(self._seen_execs)[-2000:], "last_exec_ms": self._last_exec_ms}

    def restore(self, state: dict) -> None:
        for oid, xid in (state.get("exchange_ids") or {}).items():
            self._map(oid, xid)
        self.leverage.update(state.get("leverage") or {})
        self._exec_qty.update(state.get("exec_qty") or {})
        self.position_stops.update(state.get("position_stops") or {})
        for e in state.get("seen_execs") or []:
            self._seen_execs[e] = None
        self._last_exec_ms = int(state.get("last_exec_ms") or 0)

    # -- placing and cancelling ----------------------------------------------------------------
    def order_params(self, order: Order) -> dict:
        """The create-order parameters: Decimal strings on the grid, orderLinkId from our id."""
        assert self.engine is not None
        inst = self.engine.instrument(order.symbol)
        p: dict[str, Any] = {"symbol": order.symbol, "side": "Buy" if order.side == "buy" else "Sell",
                             "qty": inst.qty_str(order.qty), "orderLinkId": link_id_for(order.id),
                             "positionIdx": 0}
        if order.order_type is OrderType.LIMIT:
            p.update(orderType="Limit", price=inst.price_str(order.price or 0.0),
                     timeInForce="PostOnly" if order.post_only else "GTC")
        elif order.order_type is OrderType.MARKET:
            p.update(orderType="Market", timeInForce="IOC")
        else:  # a stop: conditional market order; a buy stop triggers on a rise, a sell stop on a fall
            p.update(orderType="Market", triggerPrice=inst.price_str(order.trigger_price or 0.0),
                     triggerDirection=1 if order.side == "buy" else 2, triggerBy="LastPrice")
            if order.reduce_only:
                p["closeOnTrigger"] = True
        if order.reduce_only:
            p["reduceOnly"] = True
        return p

    async def _place(self, order: Order) -> None:
        try:
            if order.purpose is Purpose.ENTRY and not order.reduce_only:
                await self._set_leverage(order.symbol, order.leverage)
            position_stop = self.cfg.stop_loss_via == "trading_stop" and order.reduce_only
            if order.order_type is OrderType.STOP and position_stop:
                await self._place_position_stop(order)
                return
            exchange_id = await self.rest.place_order(**self.order_params(order))
        except BybitRestError as exc:
            self._update(order.id, OrderStatus.REJECTED, f"bybit {exc.code}: {exc.message}")
            return
        except Exception as exc:  # never leave an order PENDING because of a bug on our side
            self._log(f"placing {order.id} failed: {type(exc).__name__}: {exc}", "error")
            self._update(order.id, OrderStatus.REJECTED, f"not sent: {type(exc).__name__}")
            return
        finally:
            self._placing -= 1
            self._release_orphans()
        self._map(order.id, exchange_id)
        for e in self._orphans.pop(exchange_id, []):
            self._on_execution(e)

    def _release_orphans(self) -> None:
        """With no placement in flight, fills still unmatched are not ours: book them as foreign."""
        if self._placing == 0 and self._orphans:
            orphans, self._orphans = self._orphans, {}
            for rows in orphans.values():
                for e in rows:
                    self._on_execution(e)

    async def _set_leverage(self, symbol: str, leverage: float) -> None:
        assert self.engine is not None
        lev = format(max(leverage, 1.0), "g")
        if self.leverage.get(symbol) == lev:
            return
        changed = await self.rest.set_leverage(symbol, lev)
        self.leverage[symbol] = lev
        if changed:
            self._log(f"{symbol} leverage set to {lev}x")

    async def _place_position_stop(self, order: Order) -> None:
        assert self.engine is not None
        price = self.engine.instrument(order.symbol).price_str(order.trigger_price or 0.0)
        await self.rest.set_trading_stop(order.symbol, stop_loss=price)
        self.position_stops[order.symbol] = order.id
        self._update(order.id, OrderStatus.UNTRIGGERED, "position stop loss")

    async def _cancel(self, order_id: str) -> None:
        assert self.engine is not None
        o = self.engine.orders.get(order_id)
        if o is None:
            return
        self.counters["cancels"] += 1
        if self.position_stops.get(o.symbol) == order_id:
            await self._guard(self.rest.set_trading_stop(o.symbol, stop_loss="0"), f"cancel stop {order_id}")
            del self.position_stops[o.symbol]
            self._update(order_id, OrderStatus.CANCELLED, "position stop removed")
            return
        try:
            await self.rest.cancel_order(o.symbol, self.exchange_ids.get(order_id, ""), link_id_for(order_id))
        except BybitRestError as exc:
            # 110001/110008: gone or already done at Bybit; the order stream tells what happened
            self._log(f"cancel {order_id}: {exc.code} {exc.message}", "warn")

    async def _cancel_all(self, symbol: str | None) -> None:
        await self._guard(self.rest.cancel_all(symbol), "cancel-all")

    async def _guard(self, coro, what: str) -> Any:
        try:
            return await coro
        except BybitRestError as exc:
            self._log(f"{what} failed: {exc.code} {exc.message}", "warn")
            return None

    def _map(self, order_id: str, exchange_id: str) -> None:
        if exchange_id:
            self.exchange_ids[order_id] = exchange_id
            self.our_ids[exchange_id] = order_id
        self.link_ids.setdefault(link_id_for(order_id), order_id)

    def _our_id(self, exchange_id: str, link_id: str) -> str | None:
        oid = self.our_ids.get(exchange_id)
        if oid is None and link_id:
            oid = self.link_ids.get(link_id)
            if oid is not None:
                self._map(oid, exchange_id)
        return oid

    # -- the private stream --------------------------------------------------------------------
    def on_stream_open(self) -> None:
        self._spawn(self.reconcile())

    def on_private(self, kind: str, rows: list) -> None:
        if self.engine is None:
            return
        for r in rows:
            if kind == "order":
                self._on_order(r)
            elif kind == "execution":
                self._on_execution(r)
            elif kind == "position":
                self._on_position(r)
            elif kind == "wallet":
                self.wallet = r
                self.engine.notify("wallet", r)

    def _update(self, order_id: str, status: OrderStatus, reason: str = "", ts: int = 0) -> None:
        assert self.engine is not None
        o = self.engine.orders.get(order_id)
        if o is None or not o.status.is_open or o.status is status:
            return  # closed orders stay closed; repeats of the same state say nothing new
        if status is OrderStatus.NEW and o.status is OrderStatus.PARTIALLY_FILLED:
            return
        if status is OrderStatus.REJECTED:
            self.counters["rejects"] += 1
        self.engine.on_order_update(OrderUpdate(ts or self._now(), order_id, status, reason))

    def _on_order(self, x: ExchangeOrder) -> None:
        oid = self._our_id(x.order_id, x.link_id)
        if oid is None:
            return  # not ours (placed elsewhere): positions and fills still reconcile
        seen = self.exchange_orders.get(oid)
        if seen is not None and seen.ts > x.ts:
            return  # an older state (a REST list that raced the stream)
        self.exchange_orders[oid] = x
        if x.status in WORKING:
            self._update(oid, WORKING[x.status], ts=x.ts)
            return
        terminal = TERMINAL.get(x.status)
        if terminal is None:
            return  # PartiallyFilled / Filled: the executions carry the quantities
        if x.reject_reason == POST_ONLY_REJECT:
            self.counters["post_only_rejects"] += 1
            terminal = OrderStatus.REJECTED
            reason = f"post-only order would take liquidity ({POST_ONLY_REJECT})"
        elif x.reject_reason and x.reject_reason != "EC_NoError":
            reason = x.reject_reason
        else:
            reason = "cancelled at Bybit"
        if x.cum_qty > self._exec_qty.get(oid, 0.0) + QTY_EPS:  # fills still on their way: hold the status
            self._held[oid] = (x.ts, terminal, reason, x.cum_qty)
            return
        self._update(oid, terminal, reason, x.ts)

    def _on_execution(self, e: Execution) -> None:
        assert self.engine is not None
        if e.exec_id in self._seen_execs:
            self.counters["duplicate_fills"] += 1
            return
        if e.exec_type == "Funding":
            self._remember(e)
            self._book_funding(e)
            return
        oid = self._our_id(e.order_id, e.link_id)
        if oid is None and self._placing and e.exec_type == "Trade":
            self._orphans.setdefault(e.order_id, []).append(e)  # our REST reply is still on its way
            return
        self._remember(e)
        if oid is None:
            self.counters["foreign_fills"] += 1
            oid = f"bybit:{e.order_id}"
            self._log(f"fill of an order not placed by this engine ({e.exec_type} {e.symbol} {e.side} "
                      f"{e.qty:g} @ {e.price:g}); booked to keep positions true", "warn")
        self.counters["fills"] += 1
        o = self.engine.orders.get(oid)
        self._exec_qty[oid] = self._exec_qty.get(oid, 0.0) + e.qty
        self.engine.on_fill(Fill(e.ts, oid, e.symbol, e.side, e.price, e.qty, e.fee,
                                 "maker" if e.is_maker else "taker", placed_ts=o.ts if o is not None else 0,
                                 fill_id=e.exec_id))
        held = self._held.get(oid)
        if held is not None and self._exec_qty[oid] >= held[3] - QTY_EPS:
            del self._held[oid]
            self._update(oid, held[1], held[2], held[0])

    def _remember(self, e: Execution) -> None:
        self._seen_execs[e.exec_id] = None
        while len(self._seen_execs) > 10_000:
            self._seen_execs.popitem(last=False)
        self._last_exec_ms = max(self._last_exec_ms, e.ts // MS)

    def _book_funding(self, e: Execution) -> None:
        """A Funding execution: execFee is what was paid (negative: received)."""
        assert self.engine is not None
        pos = self.engine.portfolio.positions.get(e.symbol)
        if pos is None or pos.qty == 0.0 or e.price <= 0:
            return
        rate = e.fee / (pos.qty * e.price)  # so that the portfolio books exactly -fee
        amount = self.engine.portfolio.apply_funding(e.symbol, e.price, rate)
        self._log(f"{e.symbol} funding {amount:+.4f} USD (Bybit)")

    def _on_position(self, p: ExchangePosition) -> None:
        assert self.engine is not None
        self._position_updates[p.symbol] = self._position_updates.get(p.symbol, 0) + 1
        self.positions[p.symbol] = p.qty
        self.exchange_positions[p.symbol] = p
        self.engine.notify("exchange_position", p)
        if p.qty == 0.0 and p.symbol in self.position_stops:  # the position stop fired or is moot
            oid = self.position_stops.pop(p.symbol)
            self._update(oid, OrderStatus.CANCELLED, "position closed")

    # -- reconciliation ------------------------------------------------------------------------
    async def _sync_positions(self) -> None:
        """Positions over REST. A symbol the stream updated while the request was out keeps the
        stream's (newer) value: the REST answer may predate it."""
        before = dict(self._position_updates)
        try:
            rows = await self.rest.positions()
        except BybitRestError as exc:
            self._log(f"position list failed: {exc}", "warn")
            return
        fresh = {p.symbol: p for p in rows}
        for sym in set(self.positions) | set(fresh):
            if self._position_updates.get(sym, 0) != before.get(sym, 0):
                continue
            p = fresh.get(sym)
            self.positions[sym] = p.qty if p is not None else 0.0  # the list leaves out flat positions
            if p is not None:
                self.exchange_positions[sym] = p

    async def reconcile(self) -> None:
        """Catch up on what the stream may have missed: executions, open orders, positions."""
        if self.engine is None:
            return
        self.counters["reconciles"] += 1
        placed_before = set(self.exchange_ids)
        try:  # open orders first: an order that fills in between then shows up in the executions
            open_now = await self.rest.open_orders()
            since = self._last_exec_ms - 1000 if self._last_exec_ms else None
            for e in await self.rest.executions(start_ms=since):
                self._on_execution(e)
        except BybitRestError as exc:
            self._log(f"reconcile failed: {exc}", "warn")
            return
        for x in open_now:
            self._on_order(x)
        await self._sync_positions()
        still_open = {self._our_id(x.order_id, x.link_id) for x in open_now}
        stops = set(self.position_stops.values())
        for oid in list(self.engine.open_orders):
            if oid in placed_before and oid not in still_open and oid not in self._held and oid not in stops:
                self._update(oid, OrderStatus.CANCELLED, "not open at Bybit after reconnect")


async def wait_private(broker: BybitBroker, timeout_s: float) -> bool:
    """True once the private stream is up (for tests and start-up)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(broker.stream.connected.wait(), timeout=timeout_s)
        return True
    return False


__all__ = ["BybitBroker", "BybitPrivateStream", "link_id_for", "wait_private"]
