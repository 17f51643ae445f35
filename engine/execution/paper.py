"""The paper exchange: a simulated venue fed by the same market events as the strategies.

Matching follows hftbacktest's L2 rules (../shared/reference/quant.md section 4):

* Our orders never change the displayed book (no market impact).
* Latency: an order or cancel reaches the exchange `latency_ms` after it is sent,
  and every acknowledgement, rejection and fill reaches the engine `latency_ms`
  after the exchange produced it. Both legs are clock timers.
* A resting limit joins the back of its level: queue ahead = the displayed size at
  its price. The queue model moves that estimate (risk-averse by default: trades at
  our price reduce it, a shrinking level caps it at the new size; the probabilistic
  models of section 4.1 are available too). The order fills in full, at its own
  price as a maker, once volume trades through its position (more than half a lot
  past it), when a trade prints through its price, or when the opposite best price
  reaches it.
* PostOnly: an order that would cross is accepted, then rejected with a reason,
  as Bybit does. Any other crossing limit fills at once as a taker at the best price.
* Stops trigger on the trade price and fill as a taker walking the book; market
  orders walk the book too.
* Reduce-only orders never open or flip a position: they are clipped to the
  position at fill time, refused when there is nothing to reduce, and cancelled
  when the position closes (how Bybit treats reduce-only orders).
* Within one event, triggered stops are matched before resting limits: when a
  take profit and a stop loss are both due in the same update, the stop wins (the
  pessimistic choice) and the take profit is cancelled by the reduce-only rule.
* Fees: maker and taker basis points of the fill notional. Funding is paid on the
  exchange's position at each funding time (`settle_funding`, called by the engine).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..config import Settings
from ..events import BookDelta, BookSnapshot, Trade
from ..orders import Fill, Order, OrderStatus, OrderType, OrderUpdate

if TYPE_CHECKING:
    from ..book import OrderBook
    from ..engine import Engine, MarketState


# --------------------------------------------------------------------------------------------
# queue position models (quant.md section 4.1)
# --------------------------------------------------------------------------------------------
def _prob_function(model: str, n: float) -> Callable[[float, float], float] | None:
    """P(a decrease of the level happens behind us), a = qty ahead, b = qty behind."""
    def power(a: float, b: float) -> float:
        fa, fb = a ** n, b ** n
        return fb / (fa + fb)

    def power2(a: float, b: float) -> float:
        return b ** n / (a + b) ** n

    def power3(a: float, b: float) -> float:
        return 1.0 - (a / (a + b)) ** n

    def log(a: float, b: float) -> float:
        fa, fb = math.log1p(a), math.log1p(b)
        return fb / (fa + fb)

    def log2(a: float, b: float) -> float:
        return math.log1p(b) / math.log1p(a + b)

    return {"riskaverse": None, "power": power, "power2": power2, "power3": power3, "log": log,
            "log2": log2}[model]


@dataclass(slots=True)
class PaperOrder:
    id: str
    symbol: str
    side: str  # buy | sell
    qty: float
    price: float | None
    order_type: str  # limit | market | stop
    post_only: bool
    reduce_only: bool
    trigger_price: float | None
    placed_ts: int  # when the engine sent it
    accepted_ts: int = 0  # when it reached the exchange
    queue_ahead: float = 0.0  # displayed qty ahead when it joined (reported on the fill)
    front: float = 0.0  # current estimate of the qty ahead
    level_qty: float = 0.0  # the level's displayed size when last seen
    cum_trade: float = 0.0  # traded at our price since the last depth change (probabilistic models)

    @classmethod
    def from_order(cls, o: Order) -> PaperOrder:
        return cls(o.id, o.symbol, o.side, o.qty, o.price, o.order_type.value, o.post_only, o.reduce_only,
                   o.trigger_price, o.ts)


@dataclass(slots=True)
class PaperStats:
    orders: int = 0
    fills: int = 0
    maker_fills: int = 0
    taker_fills: int = 0
    rejects: int = 0
    cancels: int = 0
    fees: float = 0.0
    funding: float = 0.0


class PaperExchange:
    """The paper broker (engine.Broker)."""

    name = "paper"

    def __init__(self, settings: Settings):
        p = settings.paper
        self.latency_ns = int(round(p.latency_ms * 1_000_000))
        self.maker_fee = p.maker_fee_bps / 1e4
        self.taker_fee = p.taker_fee_bps / 1e4
        self.queue_model = p.queue_model
        self._prob = _prob_function(p.queue_model, p.queue_power)
        self.engine: Engine | None = None
        self.working: dict[str, dict[str, PaperOrder]] = {}  # symbol -> id -> order; only symbols with orders
        self.positions: dict[str, float] = {}  # the exchange's signed position per symbol
        self.stats = PaperStats()
        self._inflight: dict[int, tuple[int, str, Any]] = {}  # seq -> (due, kind, payload), for snapshots
        self._seq = itertools.count(1)
        self._fill_seq = 0

    # -- the broker interface ------------------------------------------------------------------
    def attach(self, engine: Engine) -> None:
        self.engine = engine
        for seq, (due, _kind, _payload) in sorted(self._inflight.items()):  # restored before attach
            engine.clock.call_at(due, lambda now, s=seq: self._deliver(s))

    def submit(self, order: Order) -> None:
        self.stats.orders += 1
        self._schedule("arrive", PaperOrder.from_order(order))

    def cancel(self, order_id: str) -> None:
        self._schedule("cancel", order_id)

    def on_market(self, ev: Any) -> None:
        orders = self.working.get(ev.symbol)
        if not orders:
            return
        t = type(ev)
        if t is Trade:
            self._on_trade(ev, orders)
        elif t is BookSnapshot or t is BookDelta:
            self._on_book(ev.symbol, orders)

    def settle_funding(self, symbol: str, mark: float, rate: float, funding_ts: int) -> float:
        """Pay funding on a position open at the exchange at a funding time; returns the amount
        booked in the portfolio (positive = received). The portfolio books it on its own copy of
        the position, which differs from the exchange's only while a fill report is in flight."""
        qty = self.positions.get(symbol, 0.0)
        if qty == 0.0 or self.engine is None:
            return 0.0
        self.stats.funding += -qty * mark * rate  # longs pay a positive rate
        booked = self.engine.portfolio.apply_funding(symbol, mark, rate)
        self.engine.log(f"{symbol} funding {booked:+.2f} USD at rate {rate * 100:.4f}% on "
                        f"{qty:+g} @ mark {mark:g}")
        return booked

    def is_flat(self) -> bool:
        """The exchange's own confirmation: no positions, no working or in-flight orders."""
        return (not any(self.working.values()) and not any(self.positions.values())
                and not any(k == "arrive" for _, k, _ in self._inflight.values()))

    def open_orders(self) -> list[PaperOrder]:
        return [o for orders in self.working.values() for o in orders.values()]

    # -- latency -----------------------------------------------------------------------------------
    def _schedule(self, kind: str, payload: Any) -> None:
        assert self.engine is not None, "PaperExchange used before attach()"
        seq = next(self._seq)
        due = self.engine.clock.now() + self.latency_ns
        self._inflight[seq] = (due, kind, payload)
        self.engine.clock.call_at(due, lambda now, s=seq: self._deliver(s))

    def _deliver(self, seq: int) -> None:
        item = self._inflight.pop(seq, None)
        if item is None or self.engine is None:
            return
        _due, kind, payload = item
        if kind == "arrive":
            self._arrive(payload)
        elif kind == "cancel":
            self._cancel_at_exchange(payload)
        elif kind == "update":
            self.engine.on_order_update(payload)
        elif kind == "fill":
            self.engine.on_fill(payload)

    def _report(self, order_id: str, status: OrderStatus, reason: str = "") -> None:
        self._schedule("update", OrderUpdate(self._now(), order_id, status, reason))

    def _now(self) -> int:
        assert self.engine is not None
        return self.engine.clock.now()

    # -- at the exchange ---------------------------------------------------------------------------
    def _book_market(self, symbol: str) -> MarketState:
        assert self.engine is not None
        return self.engine.market(symbol)

    def _reject(self, o: PaperOrder, reason: str, acknowledged: bool = False) -> None:
        self.stats.rejects += 1
        if acknowledged:
            self._report(o.id, OrderStatus.NEW)
        self._report(o.id, OrderStatus.REJECTED, reason)

    def _arrive(self, o: PaperOrder) -> None:
        o.accepted_ts = self._now()
        pos = self.positions.get(o.symbol, 0.0)
        if o.reduce_only and not _reduces(o.side, pos):
            self._reject(o, f"reduce-only {o.side} would not reduce the position ({pos:+g})")
            return
        if o.order_type == OrderType.MARKET.value:
            self._execute(o, "taker")
        elif o.order_type == OrderType.STOP.value:
            self._rest(o)
            self._report(o.id, OrderStatus.UNTRIGGERED)
            last = self._book_market(o.symbol).last_trade
            if last is not None and _stop_triggered(o, last.price):  # already through: trigger now
                self._execute(o, "taker")
        else:
            self._arrive_limit(o, self._book_market(o.symbol).book)

    def _tolerance(self, symbol: str) -> float:
        """Prices within a millionth of a tick are the same price (feeds carry float noise)."""
        return self.engine.instrument(symbol).tick_size * 1e-6 if self.engine is not None else 1e-12

    def _arrive_limit(self, o: PaperOrder, book: OrderBook) -> None:
        assert o.price is not None
        tol = self._tolerance(o.symbol)
        if o.side == "buy":
            best = book.best_ask
            crosses = best is not None and o.price >= best - tol
        else:
            best = book.best_bid
            crosses = best is not None and o.price <= best + tol
        if crosses:
            if o.post_only:
                self._reject(o, f"PostOnly {o.side} {o.price:g} would take liquidity (best "
                                f"{'ask' if o.side == 'buy' else 'bid'} {best:g})", acknowledged=True)
            else:  # hftbacktest: a crossing GTC limit fills in full at the best price
                self._execute(o, "taker", best)
            return
        o.front = o.queue_ahead = o.level_qty = _level_size(book, o.side, o.price)
        self._rest(o)
        self._report(o.id, OrderStatus.NEW)

    def _rest(self, o: PaperOrder) -> None:
        self.working.setdefault(o.symbol, {})[o.id] = o

    def _unrest(self, o: PaperOrder) -> None:
        orders = self.working.get(o.symbol)
        if orders is not None:
            orders.pop(o.id, None)
            if not orders:
                del self.working[o.symbol]

    def _cancel_at_exchange(self, order_id: str) -> None:
        for orders in self.working.values():
            o = orders.get(order_id)
            if o is not None:
                self._unrest(o)
                self.stats.cancels += 1
                self._report(o.id, OrderStatus.CANCELLED, "cancelled")
                return
        # Already filled, rejected or cancelled: the venue says "too late to cancel"; the
        # engine learns the order's fate from the report that is already on its way.

    def _execute(self, o: PaperOrder, liquidity: str, price: float | None = None) -> None:
        """Fill the whole order (reduce-only: up to the position) at `price`, or as a taker
        walking the book when no price is given."""
        self._unrest(o)
        pos = self.positions.get(o.symbol, 0.0)
        qty = o.qty
        if o.reduce_only:
            qty = min(qty, abs(pos)) if _reduces(o.side, pos) else 0.0
            if qty <= 0.0:
                self.stats.cancels += 1
                self._report(o.id, OrderStatus.CANCELLED, "reduce-only: no position left to reduce")
                return
        if price is None:
            price = self._walk(o.symbol, o.side, qty)
            if price is None:
                self._reject(o, f"no liquidity or price for {o.symbol}")
                return
        now = self._now()
        fee = price * qty * (self.maker_fee if liquidity == "maker" else self.taker_fee)
        st = self.stats
        st.fills += 1
        st.fees += fee
        if liquidity == "maker":
            st.maker_fills += 1
        else:
            st.taker_fills += 1
        self._fill_seq += 1
        after = pos + (qty if o.side == "buy" else -qty)
        after = 0.0 if abs(after) < 1e-12 else after
        self.positions[o.symbol] = after
        fill = Fill(now, o.id, o.symbol, o.side, price, qty, fee, liquidity, queue_ahead=o.queue_ahead,
                    placed_ts=o.placed_ts, fill_id=f"P{self._fill_seq}")
        self._schedule("fill", fill)
        if qty < o.qty:
            self._report(o.id, OrderStatus.CANCELLED, f"reduce-only: clipped to the position ({qty:g} of "
                                                      f"{o.qty:g})")
        if after == 0.0 and pos != 0.0:
            for other in [x for x in self.working.get(o.symbol, {}).values() if x.reduce_only]:
                self._unrest(other)
                self.stats.cancels += 1
                self._report(other.id, OrderStatus.CANCELLED, "reduce-only: position closed")

    def _walk(self, symbol: str, side: str, qty: float) -> float | None:
        """Average price for `qty` taken from the book; a book too thin for the whole qty
        fills the rest at its last level. With no book, the last trade or mark price."""
        m = self.engine.market(symbol) if self.engine else None
        if m is None:
            return None
        levels = m.book.levels("ask" if side == "buy" else "bid")
        if not levels:  # no book: the last trade, the mark, else the last bar's close (kline-only data)
            if m.last_trade is not None:
                return m.last_trade.price
            return m.mark or (m.last_bar.close if m.last_bar is not None else None)
        left, cost = qty, 0.0
        for price, size in levels:
            take = min(left, size)
            cost += take * price
            left -= take
            if left <= 0.0:
                break
        if left > 0.0:
            cost += left * levels[-1][0]
        return cost / qty

    # -- market events -----------------------------------------------------------------------------
    def _on_trade(self, ev: Trade, orders: dict[str, PaperOrder]) -> None:
        p = ev.price
        stops: list[PaperOrder] = []
        makers: list[PaperOrder] = []
        lot = self.engine.instrument(ev.symbol).qty_step if self.engine else 1.0
        tol = self._tolerance(ev.symbol)
        for o in orders.values():
            if o.order_type == "stop":
                if _stop_triggered(o, p):
                    stops.append(o)
                continue
            if o.order_type != "limit":
                continue
            price = o.price
            through = p < price - tol if o.side == "buy" else p > price + tol
            if through:
                makers.append(o)
            elif abs(p - price) <= tol and ev.side != o.side:  # an aggressor hitting our side of the book
                o.front -= ev.qty
                o.cum_trade += ev.qty
                if math.floor(-o.front / lot + 0.5) > 0:  # traded through our queue position
                    makers.append(o)
        if not stops and not makers:
            return
        for o in stops:  # the tie rule: stops before limits
            self._execute(o, "taker")
        for o in makers:
            if o.id in orders:
                self._execute(o, "maker", o.price)

    def _on_book(self, symbol: str, orders: dict[str, PaperOrder]) -> None:
        book = self._book_market(symbol).book
        best_bid, best_ask = book.best_bid, book.best_ask
        tol = self._tolerance(symbol)
        crossed: list[PaperOrder] = []
        for o in orders.values():
            if o.order_type != "limit":
                continue
            if o.side == "buy":
                if best_ask is not None and best_ask <= o.price + tol:
                    crossed.append(o)
                    continue
            elif best_bid is not None and best_bid >= o.price - tol:
                crossed.append(o)
                continue
            new = _level_size(book, o.side, o.price)
            if new != o.level_qty:
                self._depth(o, new)
        for o in crossed:
            if o.id in orders:
                self._execute(o, "maker", o.price)

    def _depth(self, o: PaperOrder, new: float) -> None:
        """The displayed size at our price changed from `o.level_qty` to `new`."""
        prev = o.level_qty
        o.level_qty = new
        prob = self._prob
        if prob is None:  # risk-averse: cancellations come from behind us
            o.front = min(o.front, new)
            return
        chg = prev - new - o.cum_trade
        o.cum_trade = 0.0
        if chg < 0:
            o.front = min(o.front, new)
            return
        front = max(o.front, 0.0)
        back = prev - front
        try:
            p = prob(front, back)
        except ZeroDivisionError:
            p = 1.0
        if not math.isfinite(p):
            p = 1.0
        est = front - (1.0 - p) * chg + min(back - p * chg, 0.0)
        o.front = min(est, new)

    # -- state ------------------------------------------------------------------------------------
    def snapshot(self) -> dict:
        def enc(kind: str, payload: Any) -> Any:
            if kind == "cancel":
                return payload
            d = asdict(payload)
            if kind == "update":
                d["status"] = payload.status.value
            return d

        return {
            "positions": {s: q for s, q in self.positions.items() if q},
            "working": [asdict(o) for orders in self.working.values() for o in orders.values()],
            "inflight": [[seq, due, kind, enc(kind, payload)]
                         for seq, (due, kind, payload) in sorted(self._inflight.items())],
            "stats": asdict(self.stats),
            "fill_seq": self._fill_seq,
        }

    def restore(self, state: dict) -> None:
        """Resting orders keep their queue position; messages in flight are delivered on schedule."""
        def dec(kind: str, d: Any) -> Any:
            if kind == "cancel":
                return str(d)
            if kind == "arrive":
                return PaperOrder(**d)
            if kind == "fill":
                return Fill(**d)
            return OrderUpdate(**{**d, "status": OrderStatus(d["status"])})

        self.positions = {str(s): float(q) for s, q in state.get("positions", {}).items()}
        self.working = {}
        for d in state.get("working", []):
            self._rest(PaperOrder(**d))
        self.stats = PaperStats(**state.get("stats", {}))
        self._fill_seq = int(state.get("fill_seq", 0))
        self._inflight = {}
        top = 0
        for seq, due, kind, payload in state.get("inflight", []):
            self._inflight[int(seq)] = (int(due), kind, dec(kind, payload))
            top = max(top, int(seq))
        self._seq = itertools.count(top + 1)
        if self.engine is not None:
            self.attach(self.engine)


def _reduces(side: str, position: float) -> bool:
    return (position > 0 and side == "sell") or (position < 0 and side == "buy")


def _stop_triggered(o: PaperOrder, trade_price: float) -> bool:
    trig = o.trigger_price
    if trig is None:
        return False
    return trade_price <= trig if o.side == "sell" else trade_price >= trig


def _level_size(book: OrderBook, side: str, price: float) -> float:
    """Displayed size at `price` on our side (bids for a buy). Feeds may build prices with
    float noise, so a level within a millionth of a tick counts as the same price."""
    levels = book.bids if side == "buy" else book.asks
    q = levels.get(price)
    if q is not None:
        return q
    tol = abs(price) * 1e-12 + 1e-12
    for p, q in levels.items():
        if abs(p - price) <= tol:
            return q
    return 0.0
