"""A hand-driven market for the cascade, risk, approval and paper-exchange tests.

`World` wires a real Engine (SimClock, Risk, Approval, PaperExchange, CascadeStrategy)
and feeds it hand-built events: no randomness, every price and size chosen by the test.
Time starts on Monday 2025-0106 00:00 UTC so that day and week boundaries are easy to
place.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from engine.clock import SimClock
from engine.config import Settings
from engine.engine import Engine
from engine.events import NS, BookSnapshot, Liquidation, Ticker, Trade
from engine.execution.approval import Approval
from engine.execution.paper import PaperExchange
from engine.execution.risk import Risk
from engine.orders import Purpose
from engine.strategies.cascade import CascadeStrategy

T0 = int(datetime(2025, 1, 6, tzinfo=UTC).timestamp()) * NS  # a Monday, 00:00 UTC
MS = 1_000_000

# A price and tick per symbol, for books built around a mid.
SPECS = {"BTCUSDT": (100_000.0, 0.1), "ETHUSDT": (2_500.0, 0.01), "SOLUSDT": (180.0, 0.01),
         "XRPUSDT": (2.0, 0.0001), "DOGEUSDT": (0.3, 0.00001)}


def settings(**sections: dict) -> Settings:
    """Settings with per-section overrides, e.g. settings(approval={"mode": "manual"})."""
    base = Settings()
    data = base.model_dump()
    for name, values in sections.items():
        data[name] = {**data[name], **values}
    return Settings(**data)


class World:
    def __init__(self, symbols: list[str] | None = None, start_ns: int = T0, broker: Any = None,
                 **sections: dict):
        sections.setdefault("engine", {})
        sections["engine"] = {"symbols": symbols or ["ETHUSDT"], "log_file": "", **sections["engine"]}
        self.settings = settings(**sections)
        self.lines: list[str] = []
        self.clock = SimClock(start_ns)
        self.strategy = CascadeStrategy(self.settings, self.settings.engine.symbols)
        self.paper = PaperExchange(self.settings)
        self.risk = Risk(self.settings)
        self.approval = Approval(self.settings)
        self.engine = Engine(self.settings, clock=self.clock, strategies=[self.strategy],
                             broker=broker if broker is not None else self.paper,
                             risk=self.risk, approval=self.approval, output=self.lines.append)
        self.notes = self.engine.notifier.subscribe(100_000)
        self.engine.start()

    # -- time ---------------------------------------------------------------------------------
    @property
    def now(self) -> int:
        return self.clock.now()

    def wait(self, seconds: float) -> None:
        """Let simulated time pass with no market events (timers fire)."""
        self.clock.advance_to(self.now + int(seconds * NS))

    def _ts(self, dt: float | None) -> int:
        return self.now if dt is None else self.now + int(dt * NS)

    # -- events -------------------------------------------------------------------------------
    def send(self, ev: Any) -> Any:
        self.engine.dispatch(ev)
        return ev

    def book(self, sym: str, bid: float, ask: float, size: float = 10.0, levels: int = 5,
             dt: float | None = None, sizes: dict[float, float] | None = None) -> BookSnapshot:
        """A snapshot with `levels` levels a tick apart from bid/ask; `sizes` overrides some levels."""
        tick = SPECS[sym][1]
        bids = {round(bid - i * tick, 10): size for i in range(levels)}
        asks = {round(ask + i * tick, 10): size for i in range(levels)}
        for p, q in (sizes or {}).items():
            (bids if p <= bid else asks)[p] = q
        return self.send(BookSnapshot(self._ts(dt), sym, sorted(bids.items(), reverse=True),
                                      sorted(asks.items())))

    def around(self, sym: str, mid: float, size: float = 10.0, dt: float | None = None) -> BookSnapshot:
        tick = SPECS[sym][1]
        return self.book(sym, round(mid - tick, 10), round(mid + tick, 10), size, dt=dt)

    def trade(self, sym: str, side: str, price: float, qty: float = 1.0, dt: float | None = None) -> Trade:
        return self.send(Trade(self._ts(dt), sym, side, price, qty))

    def liq(self, sym: str, side: str, notional: float, price: float | None = None,
            dt: float | None = None) -> Liquidation:
        """A liquidation of `notional` USD; side is the liquidated position (long/short)."""
        px = price or self.engine.market(sym).price or SPECS[sym][0]
        return self.send(Liquidation(self._ts(dt), sym, side, px, notional / px))

    def ticker(self, sym: str, dt: float | None = None, **fields: Any) -> Ticker:
        return self.send(Ticker(self._ts(dt), sym, **fields))

    def cascade(self, sym: str, side: str = "long", notional: float | None = None,
                gap_s: float = 2.0) -> None:
        """Two liquidations above the symbol's seed threshold, `gap_s` apart."""
        n = notional or self.strategy.params[sym].seed_threshold_usd * 1.5
        self.liq(sym, side, n, dt=1.0)
        self.liq(sym, side, n, dt=gap_s)

    # -- looking --------------------------------------------------------------------------------
    def orders(self, sym: str | None = None, purpose: Purpose | None = None) -> list:
        return [o for o in self.engine.open_orders.values()
                if (sym is None or o.symbol == sym) and (purpose is None or o.purpose is purpose)]

    def entry(self, sym: str = "ETHUSDT"):
        found = self.orders(sym, Purpose.ENTRY)
        return found[0] if found else None

    def position(self, sym: str = "ETHUSDT") -> float:
        p = self.engine.portfolio.positions.get(sym)
        return p.qty if p is not None else 0.0

    def alerts(self) -> list:
        return [p for k, p in self._notes() if k == "alert"]

    def _notes(self) -> list[tuple[str, Any]]:
        self._seen = getattr(self, "_seen", []) + self.notes.drain()
        return self._seen

    def closed(self) -> list:
        return list(self.engine.portfolio.closed)

    def summary(self, sym: str = "ETHUSDT") -> dict:
        return self.engine.summary()["per_symbol"][sym]

    def log_has(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def tp(self, sym: str = "ETHUSDT"):
        return next(iter(self.orders(sym, Purpose.TAKE_PROFIT)), None)

    def sl(self, sym: str = "ETHUSDT"):
        return next(iter(self.orders(sym, Purpose.STOP_LOSS)), None)

    def fill_entry(self, sym: str = "ETHUSDT") -> None:
        """The market comes to the working entry (the opposite best reaches its price) so that it
        fills, and the fill report arrives; TP and SL are then on their way."""
        self.wait(0.1)  # the order reaches the exchange
        o = self.entry(sym)
        assert o is not None, "no working entry"
        tick = SPECS[sym][1]
        if o.side == "buy":
            self.book(sym, round(o.price - tick, 10), o.price)
        else:
            self.book(sym, o.price, round(o.price + tick, 10))
        self.wait(0.1)  # the fill report reaches the engine, which sends TP and SL
        assert self.position(sym) != 0.0, "the entry did not fill"
        self.wait(0.2)  # TP and SL reach the exchange and their acknowledgements come back


class ScriptedBroker:
    """A broker whose every report the test writes by hand (for paths a paper venue never takes)."""

    name = "scripted"

    def __init__(self) -> None:
        self.sent: list = []
        self.cancels: list[str] = []
        self.engine: Engine | None = None

    def attach(self, engine: Engine) -> None:
        self.engine = engine

    def submit(self, order) -> None:
        self.sent.append(order)

    def cancel(self, order_id: str) -> None:
        self.cancels.append(order_id)

    def on_market(self, ev: Any) -> None:
        return None
