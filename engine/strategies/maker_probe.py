"""maker-probe: a reference quoter whose only job is to exercise the fill model.

It keeps one lot (the instrument's minimum quantity) PostOnly at the best bid and one at the
best ask. It looks at the book at most once per `REQUOTE_MS` (on the first book update of each
100 ms step of the simulated clock): a side with no working order gets a new one at the touch;
a working order no longer at the touch is cancelled, and its replacement goes in at a later
step, once the cancel is confirmed (so there is never more than one order per side). This is
the loop of hftbacktest's market-making examples, so its fills can be compared one to one.

It is not a trading strategy: it has no signal and builds inventory freely. Its quotes are
sent with purpose EXIT and reason "quote", so the risk gate still rounds and validates them
but does not apply the one-entry-per-symbol limits meant for directional strategies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from ..events import BookDelta, BookSnapshot
from ..orders import CancelOrder, OrderType, PlaceOrder, Purpose
from .base import Strategy

if TYPE_CHECKING:
    from ..config import Settings
    from ..engine import StrategyContext
    from ..orders import Intent

REQUOTE_MS = 100
_STEP_NS = REQUOTE_MS * 1_000_000


class MakerProbeStrategy(Strategy):
    name: ClassVar[str] = "maker-probe"
    subscriptions: ClassVar[tuple[type, ...]] = (BookSnapshot, BookDelta)

    def __init__(self, settings: Settings, symbols: list[str]):
        super().__init__(settings, symbols)
        self.next_step: dict[str, int] = {}  # symbol -> first time of the next 100 ms step
        self.cancelling: set[str] = set()  # order ids whose cancel is in flight

    def on_event(self, ev: Any, ctx: StrategyContext) -> list[Intent]:
        sym = ev.symbol
        now = ctx.now
        if sym not in self.symbols or now < self.next_step.get(sym, 0):
            return []
        self.next_step[sym] = (now // _STEP_NS + 1) * _STEP_NS
        book = ctx.market(sym).book
        touch = {"buy": book.best_bid, "sell": book.best_ask}
        if touch["buy"] is None or touch["sell"] is None:
            return []
        working = ctx.orders(sym)
        self.cancelling &= {o.id for o in working}
        out: list[Intent] = []
        lot = ctx.instrument(sym).min_qty
        for side, price in touch.items():
            mine = [o for o in working if o.side == side]
            if not mine:
                out.append(
                    PlaceOrder(
                        sym,
                        side,
                        lot,
                        price,
                        OrderType.LIMIT,
                        post_only=True,
                        purpose=Purpose.EXIT,
                        strategy=self.name,
                        reason="quote",
                    )
                )
                continue
            for o in mine:
                if o.price != price and o.id not in self.cancelling:
                    self.cancelling.add(o.id)
                    out.append(CancelOrder(o.id, self.name, "no longer at the touch"))
        return out

    def snapshot(self) -> dict:
        return {"next_step": dict(self.next_step), "cancelling": sorted(self.cancelling)}

    def restore(self, state: dict) -> None:
        self.next_step = {str(k): int(v) for k, v in state.get("next_step", {}).items()}
        self.cancelling = set(state.get("cancelling", []))
