"""The Bybit broker against a fake exchange (signed REST + authenticated private stream) on 127.0.0.1,
and an end-to-end demo-mode run: live public feed -> strategy -> risk -> manual approval -> broker
-> fake exchange -> fills back into the portfolio."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from fake_bybit import FakeExchange, FakePrivateStream, FakePublicStream, FakeRestServer
from pydantic import SecretStr
from test_bybit_feed import until

from engine.config import Settings
from engine.engine import Engine
from engine.events import BookDelta, BookSnapshot
from engine.execution.approval import Approval
from engine.execution.bybit import BybitBroker, link_id_for
from engine.execution.risk import Risk
from engine.feeds.bybit_parse import ExchangeOrder, Execution
from engine.orders import OrderStatus, OrderType, PlaceOrder, Purpose
from engine.runtime import RunOptions, build_engine
from engine.strategies.base import Strategy

KEY, SECRET = "demo-key-abc", "demo-secret-never-logged"
CREDS = (SecretStr(KEY), SecretStr(SECRET))


class Venue:
    def __init__(self) -> None:
        self.exchange = FakeExchange(KEY, SECRET)
        self.rest = FakeRestServer(self.exchange)
        self.private = FakePrivateStream(self.exchange)

    async def start(self) -> None:
        self.rest.start()
        await self.private.start()

    async def stop(self) -> None:
        await self.private.stop()
        self.rest.stop()

    def bybit_cfg(self, **extra) -> dict:
        cfg = {"rest_url": self.rest.url, "private_ws_url": self.private.url, "ping_interval_s": 0.1,
               "pong_timeout_s": 3.0, "reconnect_min_s": 0.01, "reconnect_max_s": 0.05, "topic_stale_s": 2.0}
        cfg.update(extra)
        return cfg

    def created(self) -> list[dict]:
        return [p for m, path, p in self.exchange.requests if path == "/v5/order/create"]


@pytest.fixture
async def venue():
    v = Venue()
    await v.start()
    yield v
    await v.stop()


@pytest.fixture
async def desk(venue):
    """An engine with risk, auto approval and the Bybit broker (demo), private stream up."""
    settings = Settings(engine={"symbols": ["BTCUSDT", "ETHUSDT"], "strategies": []}, bybit=venue.bybit_cfg())
    lines: list[str] = []
    broker = BybitBroker(settings, "demo", credentials=CREDS, seed=1)
    engine = Engine(settings, broker=broker, risk=Risk(settings), approval=Approval(settings), mode="demo",
                    output=lines.append)
    await broker.start(wait_s=5)
    engine.lines = lines
    yield engine
    await broker.stop()


def entry(price: float, qty: float = 0.1, side: str = "buy", post_only: bool = True) -> PlaceOrder:
    return PlaceOrder("BTCUSDT", side, qty, price, post_only=post_only, purpose=Purpose.ENTRY, strategy="t",
                      reason="test", leverage=5.0)


async def test_post_only_entry_rests_then_fills_by_order_id(desk, venue):
    assert desk.instrument("BTCUSDT").tick_size == 0.1  # instruments-info loaded from the venue
    order = desk.place(entry(99.53))
    assert order is not None
    await until(lambda: order.status is OrderStatus.NEW, what="acknowledged")
    (p,) = venue.created()
    assert p == {"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "qty": "0.100", "orderLinkId": order.id,
                 "positionIdx": 0, "orderType": "Limit", "price": "99.5", "timeInForce": "PostOnly"}
    assert venue.exchange.leverage["BTCUSDT"] == "5"
    xid = desk.broker.exchange_ids[order.id]
    venue.exchange.fill(xid, 99.5, 0.04)
    await until(lambda: order.status is OrderStatus.PARTIALLY_FILLED, what="partial")
    venue.exchange.fill(xid, 99.5, 0.06)
    await until(lambda: order.status is OrderStatus.FILLED, what="filled")
    pos = desk.portfolio.positions["BTCUSDT"]
    assert pos.qty == pytest.approx(0.1) and pos.entry_price == pytest.approx(99.5)
    assert desk.broker.counters["fills"] == 2
    await until(lambda: desk.broker.positions["BTCUSDT"] == pytest.approx(0.1), what="position stream")
    assert order.id not in desk.open_orders


async def test_post_only_that_would_cross_is_rejected_from_the_stream(desk, venue):
    order = desk.place(entry(100.5))  # the venue's best ask is 100.1: this would take liquidity
    await until(lambda: order.status is OrderStatus.REJECTED, what="rejected")
    assert "EC_PostOnlyWillTakeLiquidity" in order.reject_reason
    assert desk.broker.counters["post_only_rejects"] == 1
    assert order.id not in desk.open_orders


async def test_below_min_notional_110094_is_a_rejection(desk, venue):
    desk.risk.check = lambda intent, engine: type("D", (), {"ok": True, "intent": intent, "reason": ""})()
    order = desk.place(entry(99.0, qty=0.001))  # 0.099 USD: risk waved through, the venue says no
    await until(lambda: order.status is OrderStatus.REJECTED, what="rejected")
    assert "110094" in order.reject_reason


async def test_set_leverage_not_modified_is_ignored(desk, venue):
    venue.exchange.leverage["BTCUSDT"] = "5"
    order = desk.place(entry(99.0))
    await until(lambda: order.status is OrderStatus.NEW, what="placed despite 110043")
    assert desk.broker.leverage["BTCUSDT"] == "5"


async def test_cancel_and_cancel_all(desk, venue):
    a = desk.place(entry(99.0))
    b = desk.place(PlaceOrder("ETHUSDT", "buy", 0.5, 49.5, post_only=True, purpose=Purpose.ENTRY, strategy="t",
                              leverage=5.0))
    assert a is not None and b is not None
    await until(lambda: a.status is OrderStatus.NEW and b.status is OrderStatus.NEW, what="both new")
    desk.cancel_order(a.id)
    await until(lambda: a.status is OrderStatus.CANCELLED, what="cancelled")
    desk.broker.cancel_all()
    await until(lambda: b.status is OrderStatus.CANCELLED, what="all cancelled")
    assert not desk.open_orders


async def test_take_profit_and_conditional_stop_loss(desk, venue):
    order = desk.place(entry(99.5))
    await until(lambda: order.status is OrderStatus.NEW)
    venue.exchange.fill(desk.broker.exchange_ids[order.id], 99.5, 0.1)
    await until(lambda: order.status is OrderStatus.FILLED)
    tp = desk.place(PlaceOrder("BTCUSDT", "sell", 0.1, 101.0, post_only=True, reduce_only=True,
                               purpose=Purpose.TAKE_PROFIT, strategy="t"))
    sl = desk.place(PlaceOrder("BTCUSDT", "sell", 0.1, None, order_type=OrderType.STOP, trigger_price=98.0,
                               reduce_only=True, purpose=Purpose.STOP_LOSS, strategy="t"))
    await until(lambda: tp.status is OrderStatus.NEW and sl.status is OrderStatus.UNTRIGGERED, what="tp + sl")
    created = {p["orderLinkId"]: p for p in venue.created()}
    assert created[tp.id]["reduceOnly"] is True and created[tp.id]["price"] == "101.0"
    s = created[sl.id]
    assert (s["orderType"], s["triggerPrice"], s["triggerDirection"], s["reduceOnly"], s["closeOnTrigger"]) == (
        "Market", "98.0", 2, True, True)
    venue.exchange.trigger(desk.broker.exchange_ids[sl.id], 97.9)
    await until(lambda: sl.status is OrderStatus.FILLED, what="stop filled")
    assert desk.portfolio.positions["BTCUSDT"].qty == pytest.approx(0.0)
    await until(lambda: desk.broker.positions["BTCUSDT"] == 0.0, what="position stream")
    assert sl.filled_qty == pytest.approx(0.1) and sl.avg_price == pytest.approx(97.9)


async def test_trading_stop_mode_sets_the_position_stop(venue):
    settings = Settings(engine={"symbols": ["BTCUSDT"], "strategies": []},
                        bybit=venue.bybit_cfg(stop_loss_via="trading_stop"))
    broker = BybitBroker(settings, "demo", credentials=CREDS)
    engine = Engine(settings, broker=broker, mode="demo")
    await broker.start(wait_s=5)
    sl = engine.place(PlaceOrder("BTCUSDT", "sell", 0.1, None, order_type=OrderType.STOP, trigger_price=98.0,
                                 reduce_only=True, purpose=Purpose.STOP_LOSS, strategy="t"))
    await until(lambda: sl.status is OrderStatus.UNTRIGGERED, what="position stop")
    assert venue.exchange.trading_stop["BTCUSDT"]["stopLoss"] == "98.0"
    assert venue.exchange.trading_stop["BTCUSDT"]["tpslMode"] == "Full"
    engine.cancel_order(sl.id)
    await until(lambda: sl.status is OrderStatus.CANCELLED, what="removed")
    assert venue.exchange.trading_stop["BTCUSDT"]["stopLoss"] == "0"
    await broker.stop()


async def test_terminal_status_waits_for_its_fills_and_early_fills_wait_for_the_order_id(desk, venue):
    b = desk.broker
    order = desk.send(entry(99.0))
    assert order is not None
    await until(lambda: order.status is OrderStatus.NEW)
    xid = b.exchange_ids[order.id]
    # Bybit sends "Cancelled, 0.05 executed" before the execution message itself
    b.on_private("order", [ExchangeOrder(xid, order.id, "BTCUSDT", "buy", "Cancelled", "EC_NoError", 0.1, 99.0,
                                         0.05, 99.0, "Limit", "PostOnly", False, "", None, time.time_ns())])
    assert order.status is OrderStatus.NEW  # held until the fill it counts arrives
    b.on_private("execution", [Execution("x-1", xid, "", "BTCUSDT", "buy", 99.0, 0.05, 0.001, True, "Trade", "", 2)])
    assert order.status is OrderStatus.CANCELLED and order.filled_qty == pytest.approx(0.05)
    b.on_private("execution", [Execution("x-1", xid, "", "BTCUSDT", "buy", 99.0, 0.05, 0.001, True, "Trade", "", 2)])
    assert b.counters["duplicate_fills"] == 1
    # a maker fill (no orderLinkId) for an order whose REST reply has not come back yet
    b._placing += 1
    b.on_private("execution", [Execution("x-2", "ex-late", "", "BTCUSDT", "buy", 98.0, 0.1, 0.0, True, "Trade", "",
                                         3)])
    late = desk.send(entry(98.0))
    assert late is not None
    b._map(late.id, "ex-late")
    for e in b._orphans.pop("ex-late"):
        b._on_execution(e)
    b._placing -= 1
    assert late.filled_qty == pytest.approx(0.1) and late.status is OrderStatus.FILLED


async def test_private_reconnect_reconciles_missed_fills(desk, venue):
    order = desk.place(entry(99.0))
    await until(lambda: order.status is OrderStatus.NEW)
    reconciles = desk.broker.counters["reconciles"]
    venue.private.subs.clear()  # the venue stops pushing to us...
    venue.exchange.fill(desk.broker.exchange_ids[order.id], 99.0, 0.1)  # ...so this fill is never pushed
    venue.private.drop_all()  # then the connection dies
    await until(lambda: desk.broker.counters["reconciles"] > reconciles, what="reconnect + reconcile")
    await until(lambda: order.status is OrderStatus.FILLED, what="missed fill recovered")
    assert desk.broker.stream.counters["reconnects"] >= 1
    assert desk.portfolio.positions["BTCUSDT"].qty == pytest.approx(0.1)


async def test_bad_keys_fail_auth_without_crashing(venue):
    settings = Settings(engine={"symbols": ["BTCUSDT"], "strategies": []}, bybit=venue.bybit_cfg())
    broker = BybitBroker(settings, "demo", credentials=(SecretStr(KEY), SecretStr("wrong")))
    engine = Engine(settings, broker=broker, mode="demo")
    await broker.start(wait_s=0.3)
    await until(lambda: broker.stream.counters["auth_failures"] >= 2, what="auth retried with backoff")
    assert engine.feed_states["bybit-private"] == "RECONNECTING"
    await broker.stop()


def test_link_ids_fit_bybit_rules():
    assert link_id_for("run7-12") == "run7-12"
    odd = "2025-01-06T00:00:00Z/cascade/entry-123456"
    long = link_id_for(odd)
    assert len(long) <= 36 and long.startswith("lq-") and long == link_id_for(odd)


def test_missing_keys_are_a_config_error(monkeypatch, capsys):
    from engine.cli import main
    monkeypatch.delenv("BYBIT_API_KEY", raising=False)
    monkeypatch.delenv("BYBIT_API_SECRET", raising=False)
    assert main(["run", "--headless", "--mode", "testnet", "--duration", "1"]) == 2
    assert "BYBIT_API_KEY" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------
# end to end
# ----------------------------------------------------------------------------------------------
class OneShot(Strategy):
    """Buys once at the best bid (PostOnly); after the fill, a reduce-only TP and a stop."""

    name = "oneshot"
    subscriptions = (BookSnapshot, BookDelta)

    def __init__(self, settings, symbols):
        super().__init__(settings, symbols)
        self.sent = False
        self.exits: list = []

    def on_event(self, ev, ctx):
        book = ctx.market("BTCUSDT").book
        if self.sent or ev.symbol != "BTCUSDT" or book.best_bid is None:
            return []
        self.sent = True
        return [PlaceOrder("BTCUSDT", "buy", 0.1, book.best_bid, post_only=True, purpose=Purpose.ENTRY,
                           reason="e2e", leverage=5.0)]

    def on_order_update(self, order, fill, ctx):
        if fill is not None and order.purpose is Purpose.ENTRY and order.status is OrderStatus.FILLED:
            self.exits = [PlaceOrder("BTCUSDT", "sell", 0.1, 101.0, post_only=True, reduce_only=True,
                                     purpose=Purpose.TAKE_PROFIT),
                          PlaceOrder("BTCUSDT", "sell", 0.1, None, order_type=OrderType.STOP, trigger_price=98.0,
                                     reduce_only=True, purpose=Purpose.STOP_LOSS)]
            return list(self.exits)
        return []


async def test_end_to_end_demo_mode(venue, monkeypatch):
    public = FakePublicStream(["BTCUSDT"])
    await public.start()
    venue.exchange.best["BTCUSDT"] = (99.5, 100.5)  # the public book's touch
    monkeypatch.setenv("BYBIT_API_KEY", KEY)
    monkeypatch.setenv("BYBIT_API_SECRET", SECRET)
    settings = Settings(engine={"symbols": ["BTCUSDT"], "strategies": []}, approval={"mode": "manual"},
                        bybit=venue.bybit_cfg(public_ws_url=public.url, ratio_poll_s=60))
    lines: list[str] = []
    engine, feeds = build_engine(settings, RunOptions(feed="bybit", mode="demo", strategies=[]), output=lines.append)
    strategy = OneShot(settings, ["BTCUSDT"])
    engine.add_strategy(strategy)
    assert isinstance(engine.broker, BybitBroker)
    await engine.broker.start(wait_s=5)
    run = asyncio.create_task(engine.run_live(feeds))
    try:
        await until(lambda: len(engine.approval.pending()) == 1, what="entry waiting for approval")
        assert not venue.created()  # nothing reaches the venue before a human says yes
        order = engine.approve(engine.approval.ids()[0])
        assert order is not None
        await until(lambda: order.status is OrderStatus.NEW, what="resting at the venue")
        assert venue.created()[0]["price"] == "99.5" and venue.created()[0]["timeInForce"] == "PostOnly"
        venue.exchange.fill(engine.broker.exchange_ids[order.id], 99.5, 0.1)
        await until(lambda: len(strategy.exits) == 2 and all(
            engine.orders.get(o.client_id) is not None for o in strategy.exits), what="exits placed")
        tp = engine.orders[strategy.exits[0].client_id]
        await until(lambda: tp.status is OrderStatus.NEW and tp.id in engine.broker.exchange_ids, what="tp resting")
        venue.exchange.fill(engine.broker.exchange_ids[tp.id], 101.0, 0.1)
        await until(lambda: tp.status is OrderStatus.FILLED, what="tp filled")
        assert engine.portfolio.positions["BTCUSDT"].qty == pytest.approx(0.0)
        fees = 0.1 * 99.5 * 0.0002 + 0.1 * 101.0 * 0.0002
        assert engine.portfolio.realized_equity == pytest.approx(10_000 + 0.15 - fees, abs=1e-6)
        assert engine.market("BTCUSDT").long_short.long_share == 0.61  # account-ratio polled over REST
        assert engine.feed_states["bybit"] == "LIVE" and engine.feed_states["bybit-private"] == "LIVE"
        assert engine.instrument("BTCUSDT").funding_interval_h == 4.0
    finally:
        engine.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await run
        await engine.broker.stop()
        await public.stop()
    text = "\n".join(lines)
    assert SECRET not in text and KEY not in text
    assert "FILL BTCUSDT buy 0.1 @ 99.5" in text and "FILL BTCUSDT sell 0.1 @ 101" in text
