"""The Engine: merges feeds, keeps market state, runs strategies, and sends their
intents through risk, approval and a broker; publishes notifications to views.

One engine serves every face (console, headless, backtest). Views read the
notifications and call the command methods (approve, reject, halt, ...).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from .book import OrderBook
from .clock import SimClock
from .config import Settings
from .events import NS, Bar, BookDelta, BookSnapshot, FundingRate, Liquidation, LongShortRatio, Ticker, Trade
from .instruments import DEFAULT_INSTRUMENTS, Instrument, instrument_for
from .orders import (
    Alert,
    CancelOrder,
    ClosePosition,
    Fill,
    LogLine,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PlaceOrder,
    Purpose,
    opposite,
)
from .portfolio import ClosedTrade, Portfolio
from .stats import CascadeDetector, RollingQuantile
from .strategies.base import Strategy


# --------------------------------------------------------------------------------------------
# market state
# --------------------------------------------------------------------------------------------
class MarketState:
    """Everything known about one symbol right now."""

    __slots__ = ("symbol", "book", "last_trade", "mark", "index", "open_interest", "funding_rate",
                 "next_funding_ts", "funding_interval_h", "long_short", "last_bar", "last_ts",
                 "liq_threshold", "cascades", "book_ts")

    def __init__(self, symbol: str, liq_threshold: RollingQuantile, cascades: CascadeDetector):
        self.symbol = symbol
        self.book = OrderBook(symbol)
        self.last_trade: Trade | None = None
        self.mark: float | None = None
        self.index: float | None = None
        self.open_interest: float | None = None
        self.funding_rate: float | None = None
        self.next_funding_ts: int | None = None
        self.funding_interval_h: float | None = None
        self.long_short: LongShortRatio | None = None
        self.last_bar: Bar | None = None
        self.last_ts = 0
        self.book_ts = 0
        self.liq_threshold = liq_threshold
        self.cascades = cascades

    @property
    def price(self) -> float | None:
        """Best current price: mid, else last trade, else mark."""
        m = self.book.mid
        if m is not None:
            return m
        if self.last_trade is not None:
            return self.last_trade.price
        return self.mark


# --------------------------------------------------------------------------------------------
# notifications
# --------------------------------------------------------------------------------------------
class NotificationQueue:
    """A bounded per-subscriber buffer. Full means the oldest item is dropped (counted)."""

    def __init__(self, maxlen: int):
        self.items: deque[tuple[str, Any]] = deque(maxlen=maxlen)
        self.dropped = 0

    def put(self, kind: str, payload: Any) -> None:
        if len(self.items) == self.items.maxlen:
            self.dropped += 1
        self.items.append((kind, payload))

    def drain(self, limit: int | None = None) -> list[tuple[str, Any]]:
        items = self.items
        if limit is None or limit >= len(items):
            out = list(items)
            items.clear()
            return out
        return [items.popleft() for _ in range(limit)]


class Notifier:
    """Fan-out to views. Publishing never blocks and never raises."""

    def __init__(self, maxlen: int = 10_000):
        self.maxlen = maxlen
        self.subscribers: list[NotificationQueue] = []

    def subscribe(self, maxlen: int | None = None) -> NotificationQueue:
        q = NotificationQueue(maxlen or self.maxlen)
        self.subscribers.append(q)
        return q

    def unsubscribe(self, q: NotificationQueue) -> None:
        if q in self.subscribers:
            self.subscribers.remove(q)

    def publish(self, kind: str, payload: Any) -> None:
        for q in self.subscribers:
            q.put(kind, payload)


# --------------------------------------------------------------------------------------------
# gates and broker interfaces (implemented in execution/)
# --------------------------------------------------------------------------------------------
@dataclass(slots=True)
class RiskDecision:
    ok: bool
    reason: str = ""
    intent: PlaceOrder | None = None  # possibly adjusted (rounded) intent


class RiskGate(Protocol):
    def check(self, intent: PlaceOrder, engine: Engine) -> RiskDecision: ...


class ApprovalGate(Protocol):
    def submit(self, intent: PlaceOrder, engine: Engine) -> bool:
        """True: send now. False: held (queued for a human, or refused)."""
        ...


class Broker(Protocol):
    name: str

    def attach(self, engine: Engine) -> None: ...

    def submit(self, order: Order) -> None: ...

    def cancel(self, order_id: str) -> None: ...

    def on_market(self, ev: Any) -> None: ...


class PassRisk:
    """Rounds price and quantity to the instrument grid; enforces nothing else.

    The real gate is `execution.risk.Risk`; this one serves bare engines in tests.
    """

    def check(self, intent: PlaceOrder, engine: Engine) -> RiskDecision:
        inst = engine.instrument(intent.symbol)
        intent.qty = inst.round_qty(intent.qty)
        if intent.price is not None:
            intent.price = inst.round_price(intent.price)
        if intent.trigger_price is not None:
            intent.trigger_price = inst.round_price(intent.trigger_price)
        if intent.qty <= 0:
            return RiskDecision(False, "quantity rounds to zero")
        return RiskDecision(True, intent=intent)


class AutoApproval:
    def submit(self, intent: PlaceOrder, engine: Engine) -> bool:
        return True


# --------------------------------------------------------------------------------------------
# strategy context
# --------------------------------------------------------------------------------------------
class StrategyContext:
    """The read-only view of the world a strategy gets, plus timers."""

    def __init__(self, engine: Engine, strategy: Strategy):
        self._engine = engine
        self._strategy = strategy

    @property
    def now(self) -> int:
        return self._engine.clock.now()

    def market(self, symbol: str) -> MarketState:
        return self._engine.market(symbol)

    def instrument(self, symbol: str) -> Instrument:
        return self._engine.instrument(symbol)

    def position(self, symbol: str):
        return self._engine.portfolio.positions.get(symbol)

    def open_positions(self):
        return self._engine.portfolio.open_positions()

    def orders(self, symbol: str | None = None) -> list[Order]:
        """This strategy's open orders."""
        name = self._strategy.name
        return [o for o in self._engine.open_orders.values()
                if o.strategy == name and (symbol is None or o.symbol == symbol)]

    @property
    def equity(self) -> float:
        return self._engine.portfolio.realized_equity

    @property
    def settings(self) -> Settings:
        return self._engine.settings

    @property
    def risk_state(self) -> Any:
        return getattr(self._engine.risk, "state", None)

    @property
    def halted(self) -> bool:
        return self._engine.halted

    @property
    def flattening(self) -> bool:
        """A flatten is closing every position: strategies should not add exits of their own."""
        return self._engine.flattening

    def set_timer(self, due_ns: int, key: str, while_paused: bool = False) -> None:
        self._engine.set_strategy_timer(self._strategy, due_ns, key, while_paused)

    def funding(self) -> Any:
        """The engine's funding-rate service (engine/funding/service.py), built on first use."""
        from .funding.service import service_for
        return service_for(self._engine)

    def precheck(self, intent: PlaceOrder) -> str:
        """Why the engine would refuse this intent now ("" = it would pass), without sending it.
        Lets a strategy say in its alert why it skipped; the gate still checks at place()."""
        return self._engine.precheck(intent)


# --------------------------------------------------------------------------------------------
# engine
# --------------------------------------------------------------------------------------------
@dataclass(slots=True)
class EngineStats:
    events: int = 0
    liquidations: int = 0
    cascades: int = 0
    per_symbol_events: dict[str, int] = field(default_factory=dict)
    per_symbol_liquidations: dict[str, int] = field(default_factory=dict)
    per_symbol_cascades: dict[str, int] = field(default_factory=dict)
    strategy_errors: int = 0


def fmt_clock(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / NS, UTC).strftime("%H:%M:%S")


class Engine:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: SimClock | None = None,
        strategies: Iterable[Strategy] = (),
        broker: Broker | None = None,
        risk: RiskGate | None = None,
        approval: ApprovalGate | None = None,
        instruments: dict[str, Instrument] | None = None,
        output: Callable[[str], None] | None = None,
        mode: str = "paper",
    ):
        self.settings = settings
        self.mode = mode
        self.clock = clock or SimClock()
        self.instruments = dict(instruments or DEFAULT_INSTRUMENTS)
        self.symbols = list(settings.engine.symbols)
        self.markets: dict[str, MarketState] = {}
        for s in self.symbols:
            self.market(s)
        self.portfolio = Portfolio(settings.engine.account_equity_usd)
        self.notifier = Notifier(settings.engine.notification_queue)
        self.risk: RiskGate = risk or PassRisk()
        self.approval: ApprovalGate = approval or AutoApproval()
        self.broker = broker
        self.store: Any = None  # engine.store.Store, attached by the runner
        self.funding: Any = None  # engine.funding.service.FundingService, built on first use
        self.seed = settings.engine.seed  # the run's seed (--seed overrides it): seeds the funding venues
        self.output = output
        self.stats = EngineStats()
        self.orders: dict[str, Order] = {}  # every order of this run, by id
        self.open_orders: dict[str, Order] = {}
        self.order_exit_reason: dict[str, str] = {}
        self._order_seq = itertools.count(1)
        self.halted = False
        self.halt_reason = ""
        self.flattening = False
        self.flat_confirmed = False
        self.feed_states: dict[str, str] = {}
        self.strategies: list[Strategy] = []
        self._contexts: dict[str, StrategyContext] = {}
        self._by_type: dict[type, list[Strategy]] = {}
        for st in strategies:
            self.add_strategy(st)
        self._stop = False
        self._last_mtm_ts = 0
        self.run_id = ""
        self.resumed = False  # set when the store restored a checkpoint: --duration counts from its clock
        self.unconsumed: Any = None  # the event read from the feeds but not dispatched when run() stopped
        if broker is not None:
            broker.attach(self)
        for gate in (self.risk, self.approval):  # gates that log or keep timers need the engine
            attach = getattr(gate, "attach", None)
            if attach is not None:
                attach(self)

    # -- wiring ---------------------------------------------------------------------------------
    def add_strategy(self, strategy: Strategy) -> None:
        self.strategies.append(strategy)
        self._contexts[strategy.name] = StrategyContext(self, strategy)
        for t in strategy.subscriptions:
            self._by_type.setdefault(t, []).append(strategy)

    def strategy(self, name: str) -> Strategy | None:
        return next((s for s in self.strategies if s.name == name), None)

    def market(self, symbol: str) -> MarketState:
        m = self.markets.get(symbol)
        if m is None:
            c = self.settings.cascade
            seed = c.seed_thresholds_usd.get(symbol, c.default_seed_threshold_usd)
            ov = c.overrides.get(symbol)
            if ov is not None and ov.seed_threshold_usd:
                seed = ov.seed_threshold_usd
            m = MarketState(symbol, RollingQuantile(c.quantile, c.quantile_window, int(c.refresh_s * NS), seed),
                            CascadeDetector(symbol, int(c.window_s * NS), c.min_count))
            self.markets[symbol] = m
        return m

    def instrument(self, symbol: str) -> Instrument:
        return instrument_for(symbol, self.instruments)

    # -- output ---------------------------------------------------------------------------------
    def log(self, message: str, level: str = "info", strategy: str = "") -> None:
        line = f"{fmt_clock(self.clock.now())} >> {message}"
        if self.output is not None:
            self.output(line)
        self.notifier.publish("log", line)
        if self.store is not None:
            self.store.log(self.clock.now(), level, strategy, message)

    def notify(self, kind: str, payload: Any) -> None:
        self.notifier.publish(kind, payload)

    # -- the event loop -------------------------------------------------------------------------
    @staticmethod
    def merge(feeds: list[Any]) -> Iterator[Any]:
        """Merge timestamp-ordered feeds; ties break by feed order, then by arrival order."""
        def keyed(i: int, it: Iterable[Any]):
            for seq, ev in enumerate(it):
                yield (ev.ts, i, seq, ev)
        for _ts, _i, _seq, ev in heapq.merge(*(keyed(i, f.events()) for i, f in enumerate(feeds))):
            yield ev

    def stop(self) -> None:
        self._stop = True

    @property
    def stopping(self) -> bool:
        return self._stop

    async def run(self, feeds: list[Any], duration_s: float | None = None, speed: float | None = None,
                  yield_every: int = 2000) -> None:
        """Run historical/synthetic feeds to the end, `duration_s` of feed time, or stop().

        speed None = as fast as possible on the simulated clock; otherwise paced
        at `speed` times real time.
        """
        self.start()
        end_ts: int | None = None
        n = 0
        wall0 = time.monotonic()
        sim0: int | None = None
        for ev in self.merge(feeds):
            if self._stop:
                self.unconsumed = ev
                break
            if end_ts is None and duration_s is not None:
                end_ts = (self.clock.now() if self.resumed else ev.ts) + int(duration_s * NS)
            if end_ts is not None and ev.ts > end_ts:
                self.clock.advance_to(end_ts)
                self.unconsumed = ev
                break
            if speed is not None:
                if sim0 is None:
                    sim0 = ev.ts
                delay = (ev.ts - sim0) / NS / speed - (time.monotonic() - wall0)
                if delay > 0:
                    self.unconsumed = ev  # read but not yet dispatched: a checkpoint taken meanwhile keeps it
                    await self._sleep_firing_timers(delay, speed, sim0, wall0)
                    self.unconsumed = None
            self.dispatch(ev)
            n += 1
            if n % yield_every == 0:
                await asyncio.sleep(0)
        else:
            if end_ts is not None and speed is None:
                self.clock.advance_to(end_ts)
        self.stopped()

    async def _sleep_firing_timers(self, delay: float, speed: float, sim0: int, wall0: float) -> None:
        """Sleep up to `delay` real seconds, firing clock timers as their time comes."""
        deadline = time.monotonic() + delay
        while not self._stop:
            now = time.monotonic()
            if now >= deadline:
                return
            await asyncio.sleep(min(0.05, deadline - now))
            self.clock.advance_to(sim0 + int((time.monotonic() - wall0) * speed * NS))

    async def run_live(self, feeds: list[Any], duration_s: float | None = None, tick_s: float = 0.05) -> None:
        """Run live feeds: events in arrival order, timers from the wall clock."""
        self.start()
        queue: asyncio.Queue = asyncio.Queue(maxsize=100_000)

        async def emit(ev: Any) -> None:
            await queue.put(ev)

        tasks = [asyncio.create_task(f.run(emit)) for f in feeds]
        t_end = None if duration_s is None else time.monotonic() + duration_s
        try:
            while not self._stop and (t_end is None or time.monotonic() < t_end):
                try:
                    ev = await asyncio.wait_for(queue.get(), timeout=tick_s)
                except TimeoutError:  # a quiet feed: timers still fire on wall time
                    self.clock.advance_to(time.time_ns())
                    continue
                self.dispatch(ev, live=True)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.stopped()

    def start(self) -> None:
        rs = getattr(self.risk, "state", None)
        if rs is not None and getattr(rs, "halted", False) and not self.halted:  # restored by the store
            self.halted = True
            self.halt_reason = rs.halt_reason or "restored"
            self.log(f"HALT restored: no new entries ({self.halt_reason})")
            self.notify("halt", True)
        for st in self.strategies:
            self._emit_intents(st, self._call(st, st.on_start, self._contexts[st.name]))

    def stopped(self) -> None:
        self.notify("stopped", self.clock.now())

    # -- dispatch -------------------------------------------------------------------------------
    def dispatch(self, ev: Any, live: bool = False) -> None:
        """Apply one market event: clock, market state, broker, then strategies."""
        if live:
            self.clock.advance_to(max(ev.ts, self.clock.now()))
        else:
            self.clock.advance_to(ev.ts)
        stats = self.stats
        stats.events += 1
        sym = ev.symbol
        pse = stats.per_symbol_events
        pse[sym] = pse.get(sym, 0) + 1
        m = self.markets.get(sym) or self.market(sym)
        m.last_ts = ev.ts
        t = type(ev)
        if t is Trade:
            m.last_trade = ev
        elif t is BookSnapshot:
            m.book.apply_snapshot(ev.bids, ev.asks, ev.ts, ev.update_id)
            m.book_ts = ev.ts
        elif t is BookDelta:
            m.book.apply_delta(ev.bids, ev.asks, ev.ts, ev.update_id)
            m.book_ts = ev.ts
        elif t is Ticker:
            self._apply_ticker(m, ev)
        elif t is Liquidation:
            self._on_liquidation(m, ev)
        elif t is LongShortRatio:
            m.long_short = ev
        elif t is Bar:
            m.last_bar = ev
        elif t is FundingRate:
            pass
        broker = self.broker
        if broker is not None:
            broker.on_market(ev)
        subs = self._by_type.get(t)
        if subs:
            for st in subs:
                if st.paused:
                    continue
                out = self._call(st, st.on_event, ev, self._contexts[st.name])
                if out:
                    self._emit_intents(st, out)
        if ev.ts - self._last_mtm_ts >= NS:
            self._last_mtm_ts = ev.ts
            self.mark_to_market()

    def _apply_ticker(self, m: MarketState, ev: Ticker) -> None:
        if ev.mark is not None:
            m.mark = ev.mark
        if ev.index is not None:
            m.index = ev.index
        if ev.open_interest is not None:
            m.open_interest = ev.open_interest
        if ev.funding_interval_h is not None:
            m.funding_interval_h = ev.funding_interval_h
        if ev.funding_rate is not None:
            m.funding_rate = ev.funding_rate
        if ev.next_funding_ts is not None:
            prev = m.next_funding_ts
            m.next_funding_ts = ev.next_funding_ts
            # A funding time passed: settle on the rate that applied to it.
            if prev is not None and ev.next_funding_ts > prev and ev.ts >= prev:
                self._settle_funding(m, prev)

    def _settle_funding(self, m: MarketState, funding_ts: int) -> None:
        settle = getattr(self.broker, "settle_funding", None)
        rate = m.funding_rate or 0.0
        mark = m.mark or m.price or (m.last_bar.close if m.last_bar is not None else 0.0)  # bars only: the close
        if settle is not None:
            amount = settle(m.symbol, mark, rate, funding_ts)
        else:
            amount = self.portfolio.apply_funding(m.symbol, mark, rate)
            if amount:
                self.log(f"{m.symbol} funding {amount:+.2f} USD at rate {rate * 100:.4f}%")
        if amount and self.store is not None:
            self.store.record_funding(funding_ts, m.symbol, rate, mark, amount)

    def _on_liquidation(self, m: MarketState, ev: Liquidation) -> None:
        stats = self.stats
        stats.liquidations += 1
        psl = stats.per_symbol_liquidations
        psl[ev.symbol] = psl.get(ev.symbol, 0) + 1
        threshold = m.liq_threshold.value
        finished = m.cascades.expire(ev.ts)
        if finished is not None:
            self.notify("cascade_end", finished)
            if self.store is not None:
                self.store.record_cascade(finished, ended=True)
        fired = m.cascades.on_liquidation(ev, threshold)
        big = ev.notional >= threshold
        m.liq_threshold.add(ev.notional, ev.ts)
        self.notify("liquidation", (ev, big, m.cascades.current is not None and big))
        if fired is not None:
            stats.cascades += 1
            psc = stats.per_symbol_cascades
            psc[ev.symbol] = psc.get(ev.symbol, 0) + 1
            self.notify("cascade", fired)
            if self.store is not None:
                self.store.record_cascade(fired)

    def mark_to_market(self) -> float:
        marks = {s: (m.mark or m.price) for s, m in self.markets.items() if (m.mark or m.price)}
        return self.portfolio.mark_to_market(marks)

    def _call(self, st: Strategy, fn: Callable, *args) -> list:
        try:
            return fn(*args) or []
        except Exception as exc:  # a strategy bug must not take the engine down
            self.stats.strategy_errors += 1
            self.log(f"strategy {st.name} error in {fn.__name__}: {type(exc).__name__}: {exc}", "error", st.name)
            return []

    # -- timers -----------------------------------------------------------------------------------
    def set_strategy_timer(self, strategy: Strategy, due_ns: int, key: str, while_paused: bool = False) -> None:
        """`while_paused` timers still fire when the strategy is paused: they manage orders and
        positions already open (timeouts), which a pause must not orphan."""
        def fire(now: int) -> None:
            if strategy.paused and not while_paused:
                return
            out = self._call(strategy, strategy.on_timer, now, key, self._contexts[strategy.name])
            if out:
                self._emit_intents(strategy, out)
            if self.flattening:  # what a strategy holds elsewhere (funding legs) closes on its timers
                self.check_flat()
        self.clock.call_at(due_ns, fire)

    # -- intents ----------------------------------------------------------------------------------
    def _emit_intents(self, st: Strategy, intents: list) -> None:
        for intent in intents:
            t = type(intent)
            if t is PlaceOrder:
                intent.strategy = intent.strategy or st.name
                self.place(intent)
            elif t is CancelOrder:
                self.cancel_order(intent.order_id, intent.reason)
            elif t is ClosePosition:
                intent.strategy = intent.strategy or st.name
                self.close_position(intent.symbol, intent.reason or "signal")
            elif t is LogLine:
                self.log(intent.message, intent.level, st.name)
            elif t is Alert:
                self.notify("alert", intent)
                if self.store is not None:
                    self.store.record_signal(self.clock.now(), intent.symbol, intent.kind, st.name, intent.message,
                                             intent.data)
                self.log(intent.message, "info", st.name)

    def place(self, intent: PlaceOrder) -> Order | None:
        """Risk, then approval, then the broker. Returns the order if sent now."""
        checked, reason = self._gate(intent)
        if checked is None:
            self._reject_intent(intent, reason)
            return None
        if checked.purpose is not Purpose.ENTRY or self.approval.submit(checked, self):
            return self.send(checked)
        return None

    def _gate(self, intent: PlaceOrder) -> tuple[PlaceOrder | None, str]:
        """The kill switch, then the risk gate: (the rounded intent, "") or (None, why not)."""
        if intent.purpose is Purpose.ENTRY and (self.halted or self.flattening):
            return None, f"halted ({self.halt_reason}): no new entries"
        decision = self.risk.check(intent, self)
        if not decision.ok:
            return None, decision.reason
        return decision.intent or intent, ""

    def precheck(self, intent: PlaceOrder) -> str:
        return self._gate(intent)[1]

    def reject_pending(self, intent: PlaceOrder, reason: str) -> None:
        """Refuse an intent that was held (approval queue): logged and routed to its strategy."""
        self._reject_intent(intent, reason)

    def _reject_intent(self, intent: PlaceOrder, reason: str) -> None:
        self.log(f"REJECT {intent.symbol} {intent.side} {intent.qty:g} @ {intent.price}: {reason}", "warn",
                 intent.strategy)
        order = self._new_order(intent)
        order.status = OrderStatus.REJECTED
        order.reject_reason = reason
        if self.store is not None:
            self.store.record_order(order)
        self.notify("order", order)
        st = self.strategy(intent.strategy)
        if st is not None:
            self._emit_intents(st, self._call(st, st.on_order_update, order, None, self._contexts[st.name]))

    def _next_order_id(self) -> str:
        return f"{self.run_id or 'L'}-{next(self._order_seq)}"

    def _new_order(self, intent: PlaceOrder) -> Order:
        oid = intent.client_id or self._next_order_id()
        intent.client_id = oid
        return Order(
            id=oid, ts=self.clock.now(), symbol=intent.symbol, side=intent.side, qty=intent.qty,
            price=intent.price, order_type=intent.order_type, purpose=intent.purpose, strategy=intent.strategy,
            post_only=intent.post_only, reduce_only=intent.reduce_only, trigger_price=intent.trigger_price,
            reason=intent.reason, leverage=intent.leverage, updated_ts=self.clock.now())

    def send(self, intent: PlaceOrder) -> Order | None:
        """Record the order durably, then hand it to the broker."""
        order = self._new_order(intent)
        if self.broker is None:
            order.status = OrderStatus.REJECTED
            order.reject_reason = "no broker"
            self.log(f"REJECT {order.symbol}: no broker attached", "warn", order.strategy)
            return None
        # Durable before acknowledged: an entry the store cannot commit never reaches the broker.
        if self.store is not None and not self.store.record_order(order, durable=order.purpose is Purpose.ENTRY):
            self._reject_intent(intent, f"store unavailable: {self.store.failure}")
            return None
        self.orders[order.id] = order
        self.open_orders[order.id] = order
        self.portfolio.counter(order.symbol).orders += 1
        self.notify("order", order)
        self.broker.submit(order)
        return order

    def cancel_order(self, order_id: str, reason: str = "") -> bool:
        o = self.open_orders.get(order_id)
        if o is None or self.broker is None:
            return False
        self.broker.cancel(order_id)
        return True

    def close_position(self, symbol: str, reason: str = "manual") -> Order | None:
        """Cancel the symbol's working orders and close its position at market."""
        for o in [o for o in self.open_orders.values() if o.symbol == symbol]:
            self.cancel_order(o.id, reason)
        pos = self.portfolio.positions.get(symbol)
        if pos is None or pos.qty == 0.0:
            return None
        intent = PlaceOrder(symbol=symbol, side="sell" if pos.qty > 0 else "buy", qty=abs(pos.qty),
                            order_type=OrderType.MARKET, reduce_only=True, purpose=Purpose.EXIT,
                            strategy=pos.strategy, reason=reason)
        # The exit reason is known before the broker sees the order, so that even an
        # immediate fill reaches the portfolio with it.
        intent.client_id = self._next_order_id()
        self.order_exit_reason[intent.client_id] = reason
        order = self.place(intent)
        if order is None:
            self.order_exit_reason.pop(intent.client_id, None)
        return order

    # -- broker callbacks -------------------------------------------------------------------------
    def on_order_update(self, upd: OrderUpdate) -> None:
        o = self.orders.get(upd.order_id)
        if o is None:
            self.log(f"update for unknown order {upd.order_id}: {upd.status.value}", "warn")
            return
        if not o.status.is_open:  # a late report about an order already finished changes nothing
            return
        o.status = upd.status
        o.updated_ts = upd.ts
        if upd.filled_qty:
            o.filled_qty = upd.filled_qty
            o.avg_price = upd.avg_price
        if upd.status is OrderStatus.REJECTED:
            o.reject_reason = upd.reason
            self.log(f"{o.symbol} order {o.id} rejected: {upd.reason}", "warn", o.strategy)
        if not upd.status.is_open:
            self.open_orders.pop(o.id, None)
        if self.store is not None:
            self.store.record_order(o)
        self.notify("order", o)
        self._route_update(o, None)
        if self.flattening:
            self.check_flat()

    def on_fill(self, fill: Fill) -> ClosedTrade | None:
        o = self.orders.get(fill.order_id)
        strategy = o.strategy if o else ""
        reason = self.exit_reason_for(o) if o else "exit"
        if self.store is not None:
            self.store.record_fill(fill)
        closed = self.portfolio.apply_fill(fill, reason, strategy, o.leverage if o else 1.0)
        if o is not None:
            prev = o.filled_qty * o.avg_price
            o.filled_qty += fill.qty
            o.avg_price = (prev + fill.qty * fill.price) / o.filled_qty
            o.updated_ts = fill.ts
            if o.filled_qty >= o.qty - 1e-12:
                o.status = OrderStatus.FILLED
                self.open_orders.pop(o.id, None)
            else:
                o.status = OrderStatus.PARTIALLY_FILLED
            if self.store is not None:
                self.store.record_order(o)
        self.log(f"FILL {fill.symbol} {fill.side} {fill.qty:g} @ {fill.price:g} ({fill.liquidity}, "
                 f"fee {fill.fee:.2f})", "info", strategy)
        if closed is not None:
            if self.store is not None:
                self.store.record_closed_trade(closed)
            self.log(f"CLOSED {closed.symbol} {closed.side} by {closed.exit_reason}: net {closed.net_pnl:+.2f} USD "
                     f"({closed.return_pct:+.2f}%)", "info", strategy)
            self.notify("closed_trade", closed)
            on_closed = getattr(self.risk, "on_trade_closed", None)
            if on_closed is not None:  # loss limits and cooldowns, before the strategy hears of it
                on_closed(closed, self)
        self.notify("fill", fill)
        self.notify("position", self.portfolio.positions.get(fill.symbol))
        if o is not None:
            self._route_update(o, fill)
        if self.flattening:
            self._flatten_follow_up(fill.symbol)
        return closed

    def exit_reason_for(self, o: Order) -> str:
        r = self.order_exit_reason.get(o.id)
        if r:
            return r
        return {Purpose.TAKE_PROFIT: "tp", Purpose.STOP_LOSS: "sl"}.get(o.purpose, o.reason or "exit")

    def _route_update(self, o: Order, fill: Fill | None) -> None:
        st = self.strategy(o.strategy)
        if st is not None:
            out = self._call(st, st.on_order_update, o, fill, self._contexts[st.name])
            if out:
                self._emit_intents(st, out)

    # -- commands (views and `liqdesk ctl`) -------------------------------------------------------
    def halt(self, reason: str = "manual") -> None:
        self._set_halt(True, reason)
        self.log(f"HALT: no new entries ({reason})")
        self.notify("halt", True)
        self._reject_all_pending(f"halted ({reason})")

    def resume(self) -> None:
        self._set_halt(False, "")
        self.flattening = False
        self.flat_confirmed = False
        self.log("RESUME: entries allowed")
        self.notify("halt", False)

    def _set_halt(self, halted: bool, reason: str) -> None:
        self.halted = halted
        self.halt_reason = reason
        set_halt = getattr(self.risk, "set_halt", None)
        if set_halt is not None:  # the risk state carries the halt across restarts
            set_halt(halted, reason)

    # -- approvals (manual mode) ----------------------------------------------------------------
    def _take_approval(self, approval_id: int | str):
        take = getattr(self.approval, "take", None)
        try:
            item = take(int(str(approval_id).lstrip("#"))) if take is not None else None
        except ValueError:
            item = None
        if item is None:
            self.log(f"no pending approval #{approval_id}", "warn")
        return item

    def approve(self, approval_id: int | str) -> Order | None:
        """Send a held entry, after the kill switch and the risk gate agree again."""
        item = self._take_approval(approval_id)
        if item is None:
            return None
        intent = item.intent
        self.log(f"APPROVED #{item.id}: {intent.side.upper()} {intent.symbol} {intent.qty:g} "
                 f"@ {intent.price:g}", "info", intent.strategy)
        self.notify("approvals", self.approval.pending())
        checked, reason = self._gate(intent)
        if checked is None:
            self._reject_intent(intent, reason)
            return None
        return self.send(checked)

    def reject(self, approval_id: int | str, reason: str = "rejected by operator") -> bool:
        item = self._take_approval(approval_id)
        if item is None:
            return False
        self._reject_intent(item.intent, f"approval #{item.id} {reason}")
        self.notify("approvals", self.approval.pending())
        return True

    def approve_all(self) -> int:
        ids = [item.id for item in getattr(self.approval, "pending", list)()]
        return sum(1 for i in ids if self.approve(i) is not None)

    def _reject_all_pending(self, reason: str) -> None:
        for item in list(getattr(self.approval, "pending", list)()):
            self.reject(item.id, reason)

    def cancel_all(self) -> int:
        ids = list(self.open_orders)
        for oid in ids:
            self.cancel_order(oid, "cancel_all")
        self.log(f"CANCEL ALL: {len(ids)} working orders")
        return len(ids)

    def cancel_entries(self, reason: str = "shutdown") -> int:
        """Cancel working entry orders only; TP, SL and exits stay to protect open positions (clean stop)."""
        ids = [o.id for o in self.open_orders.values() if o.purpose is Purpose.ENTRY]
        for oid in ids:
            self.cancel_order(oid, reason)
        return len(ids)

    @property
    def working_entries(self) -> int:
        return sum(1 for o in self.open_orders.values() if o.purpose is Purpose.ENTRY)

    def flatten(self) -> None:
        """Kill switch: halt, cancel every order, close every position at market, and ask every
        strategy to close what it holds elsewhere (`on_flatten`: funding pairs). It stays in force
        until resume(); "flat" is reported once the broker confirms nothing is left and no strategy
        holds anything (`external_positions`)."""
        self._set_halt(True, "flatten")
        self.flattening = True
        self.flat_confirmed = False
        self.notify("halt", True)
        self._reject_all_pending("flatten")
        self.log("FLATTEN requested: cancelling orders and closing positions")
        self.cancel_all()
        for pos in list(self.portfolio.open_positions()):
            self.close_position(pos.symbol, "flatten")
        for st in self.strategies:  # and what strategies hold outside the portfolio (funding pairs)
            self._emit_intents(st, self._call(st, st.on_flatten, self._contexts[st.name]))
        self.check_flat()

    def _flatten_follow_up(self, symbol: str) -> None:
        """While flattening, a fill that still leaves a position (an entry filled before its
        cancel arrived) is closed too."""
        pos = self.portfolio.positions.get(symbol)
        if pos is not None and pos.qty != 0.0 and not any(
                o.symbol == symbol and o.purpose is Purpose.EXIT for o in self.open_orders.values()):
            self.close_position(symbol, "flatten")
        self.check_flat()

    def check_flat(self) -> None:
        """Report "flat" once both our books and the broker's own view are empty. Called after
        every broker report while flattening; a broker whose confirmation arrives separately
        (e.g. a position stream) calls it too."""
        if not self.flattening or self.flat_confirmed or not self.is_flat:
            return
        confirm = getattr(self.broker, "is_flat", None)
        if confirm is not None and not confirm():
            return
        self.flat_confirmed = True
        self.log("FLAT: the broker confirms no positions and no working orders (halted until resume)")
        self.notify("flat", True)

    @property
    def is_flat(self) -> bool:
        return not self.open_orders and not self.portfolio.open_positions() and not self.external_positions()

    def external_positions(self) -> list[dict]:
        """What strategies hold outside the portfolio (funding pairs), each tagged with its strategy."""
        return [{**p, "strategy": st.name} for st in self.strategies for p in self._call(st, st.external_positions)]

    def pause_strategy(self, name: str) -> bool:
        st = self.strategy(name)
        if st is None:
            return False
        st.paused = not st.paused
        self.log(f"strategy {name} {'paused' if st.paused else 'resumed'}")
        return True

    def status(self) -> dict:
        marks = {s: (m.mark or m.price) for s, m in self.markets.items()}
        return {
            "time": fmt_clock(self.clock.now()),
            "mode": self.mode,
            "halted": self.halted,
            "halt_reason": self.halt_reason,
            "flattening": self.flattening,
            "flat_confirmed": self.flat_confirmed,
            "external_positions": self.external_positions(),
            "risk": self.risk.describe(self.clock.now()) if hasattr(self.risk, "describe") else {},
            "positions": [
                {"symbol": p.symbol, "side": p.side, "qty": p.qty, "entry": p.entry_price,
                 "mark": marks.get(p.symbol), "upnl": p.unrealized(marks.get(p.symbol) or p.entry_price),
                 "strategy": p.strategy}
                for p in self.portfolio.open_positions()],
            "orders": [
                {"id": o.id, "symbol": o.symbol, "side": o.side, "qty": o.qty, "price": o.price,
                 "trigger": o.trigger_price, "type": o.order_type.value, "purpose": o.purpose.value,
                 "status": o.status.value}
                for o in self.open_orders.values()],
            "pending_approvals": [a.describe() for a in getattr(self.approval, "pending", lambda: [])()]
            if callable(getattr(self.approval, "pending", None)) else [],
            "strategies": {s.name: ("paused" if s.paused else "running") for s in self.strategies},
            "equity": self.portfolio.realized_equity,
        }

    # -- results ----------------------------------------------------------------------------------
    def summary(self) -> dict:
        """The headless run summary: counts are ints, money floats, per symbol too."""
        st = self.stats
        per_symbol: dict[str, dict] = {}
        for sym in sorted(set(self.symbols) | set(self.portfolio.counters)):
            c = self.portfolio.counter(sym)
            per_symbol[sym] = {
                "events": st.per_symbol_events.get(sym, 0),
                "liquidations": st.per_symbol_liquidations.get(sym, 0),
                "cascades": st.per_symbol_cascades.get(sym, 0),
                "orders": c.orders, "fills": c.fills, "closed_trades": c.closed_trades,
                "wins": c.wins, "losses": c.losses, "timeouts": c.timeouts,
                "net_pnl_usd": round(c.net_pnl_usd, 6), "fees_usd": round(c.fees_usd, 6),
                "funding_usd": round(c.funding_usd, 6),
                "exits": dict(sorted(c.exits.items())),
                "mean_cascade_duration_s": round(self.markets[sym].cascades.mean_duration_s, 3)
                if sym in self.markets else 0.0,
            }
        tot = {k: sum(v[k] for v in per_symbol.values())
               for k in ("orders", "fills", "closed_trades", "wins", "losses", "timeouts")}
        exits: dict[str, int] = {}
        for v in per_symbol.values():
            for k, n in v["exits"].items():
                exits[k] = exits.get(k, 0) + n
        return {
            "events": st.events,
            "liquidations": st.liquidations,
            "cascades": st.cascades,
            **tot,
            "net_pnl_usd": round(sum(v["net_pnl_usd"] for v in per_symbol.values()), 6),
            "fees_usd": round(sum(v["fees_usd"] for v in per_symbol.values()), 6),
            "funding_usd": round(self.portfolio.funding, 6),
            "exits": dict(sorted(exits.items())),
            "open_positions": len(self.portfolio.open_positions()),
            "strategy_errors": st.strategy_errors,
            "performance": {k: round(v, 6) if isinstance(v, float) else v
                            for k, v in self.portfolio.performance().items()},
            "per_symbol": per_symbol,
            **{st.name: st.run_summary() for st in self.strategies if hasattr(st, "run_summary")},
        }


__all__ = ["Engine", "MarketState", "StrategyContext", "RiskDecision", "PassRisk", "AutoApproval",
           "NotificationQueue", "Notifier", "fmt_clock", "opposite"]
