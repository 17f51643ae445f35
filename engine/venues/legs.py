"""Placing and closing the legs of a pair, one executor per venue.

`submit(order, done)` never blocks: `done(LegResult)` is called later, on the engine's clock
(paper) or when the venue answers (Bybit). Paper legs fill at the venue's current mark after
`latency` and pay `leg_fee_bps`; a venue can be set to reject a share of them (seeded), and a
venue without a fresh price rejects. Bybit legs are market orders through the Bybit REST client
(demo, testnet, live); their fill price is the mark at the answer (the private stream is the
single-venue broker's; see docs/strategies/funding-arb.md).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..funding.types import FundingSnapshot


@dataclass(frozen=True, slots=True)
class LegOrder:
    pair_id: str
    venue: str
    symbol: str
    side: str  # buy | sell
    size_usd: float = 0.0  # opening: notional
    qty: float = 0.0  # closing: the leg's quantity
    close: bool = False


@dataclass(frozen=True, slots=True)
class LegResult:
    order: LegOrder
    ok: bool
    ts: int
    qty: float = 0.0
    price: float = 0.0
    fee_usd: float = 0.0
    reason: str = ""


Done = Callable[[LegResult], None]


class _Legs:
    """What every executor knows: its venue, the clock, the venue's current snapshot, the fee."""

    def __init__(self, venue: str, clock: Any, price_of: Callable[[str, str], FundingSnapshot | None],
                 fee_bps: float):
        self.venue = venue
        self.clock = clock
        self.price_of = price_of
        self.fee_bps = fee_bps


class PaperLegs(_Legs):
    def __init__(self, venue: str, clock: Any, price_of: Callable[[str, str], FundingSnapshot | None],
                 latency_ns: int, fee_bps: float, reject_rate: float = 0.0, seed: int = 0):
        super().__init__(venue, clock, price_of, fee_bps)
        self.latency_ns = latency_ns
        self.reject_rate = reject_rate
        self.rng = random.Random(f"legs|{seed}|{venue}")
        self.submitted = 0
        self.rejected = 0

    def submit(self, order: LegOrder, done: Done) -> None:
        self.submitted += 1
        self.clock.call_at(self.clock.now() + self.latency_ns, lambda now: done(self._fill(order, now)))

    def _fill(self, order: LegOrder, now: int) -> LegResult:
        snap = self.price_of(self.venue, order.symbol)
        if snap is None or snap.mark <= 0:
            self.rejected += 1
            return LegResult(order, False, now, reason=f"{self.venue}: no price for {order.symbol}")
        if not order.close and self.reject_rate and self.rng.random() < self.reject_rate:
            self.rejected += 1
            return LegResult(order, False, now, reason=f"{self.venue}: order rejected by the venue (paper)")
        qty = order.qty if order.close else order.size_usd / snap.mark
        fee = qty * snap.mark * self.fee_bps / 1e4
        return LegResult(order, True, now, qty, snap.mark, fee)


class BybitLegs(_Legs):
    """Market orders on Bybit for the legs on the Bybit venue (modes demo, testnet, live)."""

    def __init__(self, venue: str, rest: Any, clock: Any, price_of: Callable[[str, str], FundingSnapshot | None],
                 fee_bps: float, qty_step: Callable[[str], float]):
        super().__init__(venue, clock, price_of, fee_bps)
        self.rest = rest
        self.qty_step = qty_step
        self.tasks: set[asyncio.Task] = set()

    def submit(self, order: LegOrder, done: Done) -> None:
        task = asyncio.get_running_loop().create_task(self._place(order, done))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _place(self, order: LegOrder, done: Done) -> None:
        from ..bybit_rest import BybitRestError
        snap = self.price_of(self.venue, order.symbol)
        if snap is None:
            done(LegResult(order, False, self.clock.now(), reason=f"{self.venue}: no price for {order.symbol}"))
            return
        step = self.qty_step(order.symbol) or 0.001
        qty = order.qty if order.close else order.size_usd / snap.mark
        qty = round(int(qty / step + 1e-9) * step, 10)
        if qty <= 0:
            done(LegResult(order, False, self.clock.now(), reason="size rounds to zero"))
            return
        try:
            await self.rest.place_order(symbol=order.symbol, side="Buy" if order.side == "buy" else "Sell",
                                        orderType="Market", qty=f"{qty:g}", reduceOnly=order.close,
                                        orderLinkId=f"fa-{order.pair_id[:8]}-{order.side[0]}{int(order.close)}")
        except BybitRestError as exc:
            done(LegResult(order, False, self.clock.now(), reason=f"{self.venue}: {exc}"))
            return
        done(LegResult(order, True, self.clock.now(), qty, snap.mark, qty * snap.mark * self.fee_bps / 1e4))
