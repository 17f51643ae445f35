"""LpiStrategy through a real Engine: Mode A fades an exhausting forced episode and stays flat on an
informed one; the toxicity gate, cancel/replace rules, exits, the BTC filter and Mode B.

Orders go to a scripted broker (every acknowledgement and fill is written by the test), behind the
engine's default pass-through risk gate and automatic approval.
"""

from __future__ import annotations

import math

from cascade_helpers import ScriptedBroker
from lpi_helpers import T0, CraftedMarket

from engine.clock import SimClock
from engine.config import Settings
from engine.engine import Engine
from engine.events import NS, BookSnapshot
from engine.lpi_features import LpiTick, SidePressure
from engine.orders import (
    Alert,
    Fill,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Purpose,
)
from engine.strategies.lpi import FORCED, INFORMED, LpiStrategy, SideSignal

STEP = 250_000_000


def make_settings(symbols=("ETHUSDT",), **lpi) -> Settings:
    data = Settings().model_dump()
    data["engine"] = {**data["engine"], "symbols": list(symbols), "log_file": ""}
    data["lpi"] = {**data["lpi"], "robust_min_samples": 10, **lpi}
    return Settings(**data)


class Desk:
    def __init__(self, symbols=("ETHUSDT",), **lpi):
        self.settings = make_settings(symbols, **lpi)
        self.clock = SimClock(T0)
        self.strategy = LpiStrategy(self.settings, list(symbols))
        self.broker = ScriptedBroker()
        self.lines: list[str] = []
        self.engine = Engine(self.settings, clock=self.clock, strategies=[self.strategy], broker=self.broker,
                             output=self.lines.append)
        self.notes = self.engine.notifier.subscribe(100_000)
        self.engine.start()

    def send(self, events) -> None:
        for ev in events:
            self.engine.dispatch(ev)

    def entries(self, status_open: bool = True) -> list:
        orders = self.engine.open_orders.values() if status_open else self.broker.sent
        return [o for o in orders if o.purpose is Purpose.ENTRY]

    def alerts(self) -> list[Alert]:
        return [p for k, p in self.notes.drain() if k == "alert"]

    def ack(self, order) -> None:
        self.engine.on_order_update(OrderUpdate(self.clock.now(), order.id, OrderStatus.NEW))

    def cancelled(self, order_id: str) -> None:
        self.engine.on_order_update(OrderUpdate(self.clock.now(), order_id, OrderStatus.CANCELLED))

    def fill(self, order, price: float | None = None, qty: float | None = None) -> None:
        self.engine.on_fill(Fill(self.clock.now(), order.id, order.symbol, order.side, price or order.price,
                                 qty or order.qty, 0.0, "maker"))


# -- Mode A on crafted events ------------------------------------------------------------------------
def _episode(desk: Desk, kind: str) -> None:
    m = CraftedMarket()
    desk.send(m.calm(300).take())
    desk.send(m.episode(2, kind).recovery(15).take())


def test_mode_a_fades_an_exhausting_forced_episode_with_layered_post_only_quotes():
    desk = Desk()
    _episode(desk, "forced")
    sent = desk.entries(status_open=False)
    first = sent[:3]
    assert [o.side for o in first] == ["buy"] * 3
    assert all(o.post_only and o.order_type is OrderType.LIMIT for o in first)
    bid = first[0].price
    assert [o.price for o in first] == [bid, round(bid - 0.01, 2), round(bid - 0.02, 2)]
    assert bid == desk.engine.market("ETHUSDT").book.best_bid  # the touch (it has not moved since)
    alert = next(a for a in desk.alerts() if a.kind == "lpi")
    d = alert.data
    assert d["pressure"] == "sell" and d["side"] == "buy"
    p = desk.settings.lpi.for_symbol("ETHUSDT")
    w = p.w_max_usd * p.sigma_ref_bps / d["sigma_bps"] * math.tanh((d["lpi"] - p.lpi_hi) / 2)
    assert abs(d["target_usd"] - min(w, p.inventory_cap_usd)) < 1e-6
    weights = p.layer_weights
    for o, wt in zip(first, weights):
        assert abs(o.qty - math.floor(d["target_usd"] * wt / o.price / 0.01) * 0.01) < 1e-9
    assert first[-1].qty < first[0].qty  # the deepest layer is the small one


def test_mode_a_stays_flat_on_an_informed_episode():
    desk = Desk()
    _episode(desk, "informed")
    assert desk.broker.sent == []
    assert not [a for a in desk.alerts() if a.kind == "lpi"]


def test_the_toxicity_gate_blocks_quoting_while_it_fails():
    desk = Desk(z_pi_max=-1000.0)  # z(Pi) is never below this: the gate never opens
    _episode(desk, "forced")
    assert desk.strategy.decisions.get("exhaustion", 0) >= 1  # the signal fired ...
    assert desk.broker.sent == []  # ... but nothing was quoted


# -- scripted ticks ----------------------------------------------------------------------------------
class ScriptedSignal:
    """Stands in for LpiSignal: hands out the judged ticks the test queues, one per event."""

    def __init__(self) -> None:
        self.queue: list = []
        self.last = None

    def on_event(self, ev, book, liq_p95) -> list:
        if not self.queue:
            return []
        j = self.queue.pop(0)
        self.last = j
        return [j]


def judged(ts: int, mid: float = 2500.0, spread: float = 0.01, z_pi: float = 0.0, sigma: float = 0.002,
           lpi: float = 20.0, state: str = FORCED, exhausted: bool = True, pressure: str = "sell",
           price: float | None = None) -> tuple:
    hot = SidePressure(pressure, 0.0, 0.0, 1.0, 1.0, 5.0, 3.0, lpi, 0.0)
    cold = SidePressure("buy" if pressure == "sell" else "sell", 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0)
    sell, buy = (hot, cold) if pressure == "sell" else (cold, hot)
    px = price if price is not None else mid
    tick = LpiTick(ts, px, mid, spread, mid, mid - spread / 2, mid + spread / 2, 0.0, sigma, 1000.0, 1000.0,
                   0.0, z_pi, 0.0, 5.0, False, True, 0.0001, sell, buy)
    hot_sig = SideSignal(pressure, state, exhausted, (True,) * 5 if exhausted else (False,) * 5)
    cold_sig = SideSignal(cold.side, INFORMED, False, (False,) * 5)
    return (tick, hot_sig, cold_sig) if pressure == "sell" else (tick, cold_sig, hot_sig)


class Scripted(Desk):
    def __init__(self, symbols=("ETHUSDT",), **lpi):
        super().__init__(symbols, **lpi)
        self.sig = {s: ScriptedSignal() for s in symbols}
        for s in symbols:
            self.strategy.signals[s] = self.sig[s]
        self.ts = T0

    def step(self, sym: str = "ETHUSDT", dt: float = 0.25, mid: float = 2500.0, spread: float = 0.01,
             **kw) -> None:
        """Advance dt, queue a judged tick, and send the book that carries it."""
        self.ts += int(dt * NS)
        self.sig[sym].queue.append(judged(self.ts, mid=mid, spread=spread, **kw))
        bid, ask = round(mid - spread / 2, 2), round(mid + spread / 2, 2)
        self.engine.dispatch(BookSnapshot(self.ts, sym, [(bid, 5.0), (round(bid - 0.01, 2), 5.0)],
                                          [(ask, 5.0), (round(ask + 0.01, 2), 5.0)]))


def quoted(desk: Scripted) -> list:
    desk.step(mid=2500.0, lpi=20.0)
    entries = desk.entries()
    for o in entries:
        desk.ack(o)
    return entries


def test_quotes_wait_for_the_gate_then_go_out_within_the_entry_window():
    desk = Scripted()
    desk.step(z_pi=5.0)  # E_t while toxic
    assert desk.broker.sent == []
    desk.step(z_pi=3.0, exhausted=False)
    assert desk.broker.sent == []
    desk.step(z_pi=0.5, exhausted=False)  # the gate opens
    assert len(desk.entries()) == 3
    assert {o.price for o in desk.entries()} == {2499.99, 2499.98, 2499.97}


def test_cancel_when_the_gate_fails_again_or_the_spread_passes_its_cap():
    desk = Scripted()
    entries = quoted(desk)
    desk.step(z_pi=2.5, exhausted=False)
    assert set(desk.broker.cancels) == {o.id for o in entries}
    desk.step(z_pi=2.5, exhausted=False)  # the cancels are still on their way: not sent twice
    assert len(desk.broker.cancels) == 3
    for o in entries:
        desk.cancelled(o.id)
    desk.step(z_pi=0.1, exhausted=False)  # the gate is open again inside the entry window: new quotes
    assert len(desk.entries()) == 3
    desk2 = Scripted()
    entries = quoted(desk2)
    desk2.step(spread=10.0, exhausted=False)  # 40 bps > the 20 bps cap
    assert set(desk2.broker.cancels) == {o.id for o in entries}


def test_stale_quotes_are_replaced_at_the_new_touch():
    desk = Scripted()
    entries = quoted(desk)
    desk.step(exhausted=False, dt=1.0)
    assert desk.broker.cancels == []
    desk.step(exhausted=False, dt=2.1, mid=2501.0)  # older than quote_ttl_s = 3 s
    assert set(desk.broker.cancels) == {o.id for o in entries}
    for o in entries:
        desk.cancelled(o.id)
    desk.step(exhausted=False, mid=2501.0)
    fresh = desk.entries()
    assert len(fresh) == 3 and fresh[0].price == 2500.99


def test_entry_window_ends_without_a_fill():
    desk = Scripted()
    entries = quoted(desk)
    desk.step(exhausted=False, dt=10.0)  # entry_window_s = 10
    assert set(desk.broker.cancels) == {o.id for o in entries}
    assert desk.strategy.trades["ETHUSDT"].mode == ""


def _filled(desk: Scripted):
    entries = quoted(desk)
    desk.fill(entries[0])
    return entries


def test_signal_exit_rests_post_only_then_goes_to_market():
    desk = Scripted()
    _filled(desk)
    assert desk.engine.portfolio.positions["ETHUSDT"].qty > 0
    desk.step(exhausted=False, lpi=1.0)  # LPI below LPI_exit = 1.2
    tp = [o for o in desk.engine.open_orders.values() if o.purpose is Purpose.TAKE_PROFIT]
    assert len(tp) == 1 and tp[0].post_only and tp[0].reduce_only and tp[0].side == "sell"
    assert tp[0].price == 2500.01  # the ask
    desk.step(exhausted=False, lpi=1.0, dt=3.1)  # exit_maker_s = 3
    market = [o for o in desk.broker.sent if o.order_type is OrderType.MARKET]
    assert len(market) == 1 and market[0].reduce_only and market[0].side == "sell"


def test_stop_at_two_and_a_half_sigma_and_time_stop():
    desk = Scripted()
    _filled(desk)
    entry = desk.engine.portfolio.positions["ETHUSDT"].entry_price
    desk.step(exhausted=False, mid=entry * (1 - 0.0049))  # sigma 20 bps: 2.5 sigma is 50 bps
    assert not [o for o in desk.broker.sent if o.order_type is OrderType.MARKET]
    desk.step(exhausted=False, mid=entry * (1 - 0.0051))
    market = [o for o in desk.broker.sent if o.order_type is OrderType.MARKET]
    assert len(market) == 1 and desk.engine.order_exit_reason[market[0].id] == "sl"

    desk2 = Scripted()
    _filled(desk2)
    desk2.step(exhausted=False, dt=119.0)
    assert not [o for o in desk2.broker.sent if o.order_type is OrderType.MARKET]
    desk2.step(exhausted=False, dt=1.1)
    market = [o for o in desk2.broker.sent if o.order_type is OrderType.MARKET]
    assert len(market) == 1 and desk2.engine.order_exit_reason[market[0].id] == "timeout"


def test_btc_crash_blocks_alt_fades_and_reduces_alt_longs():
    desk = Scripted(("BTCUSDT", "ETHUSDT"))
    desk.step("BTCUSDT", mid=100_000.0, lpi=0.0, exhausted=False, state=INFORMED)
    desk.step("ETHUSDT", dt=0.0)  # an ETH fade while BTC is calm: quoted
    assert len(desk.entries()) == 3
    for o in desk.entries():
        desk.ack(o)
    desk.fill(desk.entries()[0])
    desk.step("BTCUSDT", dt=30.0, mid=99_400.0, lpi=0.0, exhausted=False, state=INFORMED)  # -60 bps in 30 s
    desk.step("ETHUSDT", dt=0.0, exhausted=False)
    reduce = [o for o in desk.broker.sent if o.order_type is OrderType.MARKET]
    pos = desk.engine.portfolio.positions["ETHUSDT"]
    assert len(reduce) == 1 and reduce[0].reduce_only and reduce[0].qty == round(pos.qty * 0.5, 2)
    desk3 = Scripted(("BTCUSDT", "ETHUSDT"))
    desk3.step("BTCUSDT", mid=100_000.0, lpi=0.0, exhausted=False, state=INFORMED)
    desk3.step("BTCUSDT", dt=20.0, mid=99_400.0, lpi=0.0, exhausted=False, state=INFORMED)
    desk3.step("ETHUSDT", dt=0.0)  # E_t on ETH during the BTC crash: not faded
    assert desk3.broker.sent == []
    assert desk3.strategy.decisions.get("skipped: BTC filter") == 1


def test_mode_b_is_off_by_default_and_follows_informed_pressure_when_on():
    desk = Scripted()
    for k in range(30):  # an informed slide of 1 USD per tick: 80 bps in 5 s
        desk.step(mid=2500.0 - k, lpi=20.0, state=INFORMED, exhausted=False)
    assert desk.broker.sent == []
    on = Scripted(mode_b=True)
    for k in range(30):
        on.step(mid=2500.0 - k, lpi=20.0, state=INFORMED, exhausted=False)
    sent = on.broker.sent
    assert len(sent) == 1
    o = sent[0]
    assert o.order_type is OrderType.MARKET and o.side == "sell" and o.purpose is Purpose.ENTRY
    # beta 0.3 x 76 bps = 23 bps > 2 x 5.5 bps taker fees + the spread + the 2 bps minimum edge
    assert o.ts == T0 + 20 * STEP  # the first tick with (5 s - one tick) of history behind it
    assert abs(o.qty - 0.12) < 1e-9  # 300 USD at about 2480 USD, on the 0.01 step
    slow = Scripted(mode_b=True)
    for k in range(30):  # 20 bps in 5 s: 0.3 x 20 = 6 bps does not cover the costs
        slow.step(mid=2500.0 - 0.25 * k, lpi=20.0, state=INFORMED, exhausted=False)
    assert slow.broker.sent == []


def test_gauges_and_snapshot():
    desk = Scripted()
    quoted(desk)
    g = {x.name: x for x in desk.strategy.gauges()["ETHUSDT"]}
    assert set(g) == {"LPI", "z FSI", "z LDR", "z Pi", "z dOI", "state", "exhaustion", "toxicity"}
    assert g["LPI"].marks == {"hi": 3.0, "exit": 1.2} and g["LPI"].value == 20.0
    assert g["state"].text == FORCED and g["state"].active
    assert g["exhaustion"].value == 5.0 and g["exhaustion"].active
    assert g["toxicity"].active and g["toxicity"].text == "gate open"
    snap = desk.strategy.snapshot()
    other = LpiStrategy(desk.settings, ["ETHUSDT"])
    other.restore(snap)
    assert other.trades["ETHUSDT"] == desk.strategy.trades["ETHUSDT"]
    assert other.trades["ETHUSDT"].mode == "A"
