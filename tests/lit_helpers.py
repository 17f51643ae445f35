"""A hand-driven market for the LIT tests: a real Engine (SimClock, Risk, Approval, PaperExchange
or a scripted broker) with LitStrategy, fed hand-built books, tickers and long/short ratios."""

from __future__ import annotations

from typing import Any

from cascade_helpers import SPECS, T0, settings

from engine.clock import SimClock
from engine.engine import Engine
from engine.events import NS, BookSnapshot, LongShortRatio, Ticker
from engine.execution.approval import Approval
from engine.execution.paper import PaperExchange
from engine.execution.risk import Risk
from engine.strategies.lit import LitStrategy

FUNDING_8H = 8 * 3600 * NS


def rate_for_apr(apr_pct: float) -> float:
    """The 8 h funding rate whose annualized value is `apr_pct` percent."""
    return apr_pct / 100.0 / (3 * 365)


class LitWorld:
    def __init__(self, symbols: list[str] | None = None, broker: Any = None, **sections: dict):
        sections.setdefault("engine", {})
        sections["engine"] = {"symbols": symbols or ["SOLUSDT"], "log_file": "", **sections["engine"]}
        sections.setdefault("lit", {})
        sections["lit"] = {"first_eval_s": 60.0, **sections["lit"]}
        self.settings = settings(**sections)
        self.lines: list[str] = []
        self.clock = SimClock(T0)
        self.strategy = LitStrategy(self.settings, self.settings.engine.symbols)
        self.paper = PaperExchange(self.settings)
        self.risk = Risk(self.settings)
        self.engine = Engine(self.settings, clock=self.clock, strategies=[self.strategy],
                             broker=broker if broker is not None else self.paper, risk=self.risk,
                             approval=Approval(self.settings), output=self.lines.append)
        self.engine.start()
        self.mids = {s: SPECS[s][0] for s in self.settings.engine.symbols}
        self.ratios: dict[str, float] = {}

    @property
    def now(self) -> int:
        return self.clock.now()

    def wait(self, seconds: float) -> None:
        self.clock.advance_to(self.now + int(seconds * NS))

    def market(self, sym: str, mid: float | None = None, funding_apr: float = 0.0) -> None:
        """A book around `mid` and a ticker (mark = mid, 8 h funding at `funding_apr`)."""
        mid = self.mids[sym] if mid is None else mid
        self.mids[sym] = mid
        tick = SPECS[sym][1]
        bids = [(round(mid - tick * (i + 1), 10), 1e6) for i in range(3)]
        asks = [(round(mid + tick * (i + 1), 10), 1e6) for i in range(3)]
        now = self.now
        self.engine.dispatch(BookSnapshot(now, sym, bids, asks))
        self.engine.dispatch(Ticker(now, sym, mark=mid, funding_rate=rate_for_apr(funding_apr),
                                    next_funding_ts=(now // FUNDING_8H + 1) * FUNDING_8H, funding_interval_h=8.0))

    def mark(self, sym: str, mid: float) -> None:
        """A price move: new book and mark, funding unchanged."""
        m = self.engine.market(sym)
        apr = (m.funding_rate or 0.0) * 3 * 365 * 100
        self.market(sym, mid, apr)

    def ratio(self, sym: str, ratio: float, source: str = "synthetic") -> None:
        self.ratios[sym] = ratio
        long_share = ratio / (1.0 + ratio)
        self.engine.dispatch(LongShortRatio(self.now, sym, long_share, 1.0 - long_share, source))

    def setup(self, sym: str, ratio: float, funding_apr: float, mid: float | None = None) -> None:
        self.market(sym, mid, funding_apr)
        self.ratio(sym, ratio)

    def evaluate(self) -> None:
        """Let time reach the next scheduled evaluation (and the fills after it)."""
        due = self.strategy.next_eval
        assert due, "no evaluation scheduled (no ratio yet?)"
        self.clock.advance_to(max(due - NS, self.now))
        for sym in self.settings.engine.symbols:  # a fresh book and mark, as a live feed would have
            if self.engine.market(sym).mark is not None:
                self.mark(sym, self.mids[sym])
            if sym in self.ratios:
                self.ratio(sym, self.ratios[sym])
        self.clock.advance_to(max(due, self.now))
        self.wait(1.0)

    def position(self, sym: str) -> float:
        p = self.engine.portfolio.positions.get(sym)
        return p.qty if p is not None else 0.0

    def closed(self) -> list:
        return list(self.engine.portfolio.closed)

    def log_has(self, text: str) -> bool:
        return any(text in line for line in self.lines)
