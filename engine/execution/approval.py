"""The approval gate: `auto` sends every entry at once; `manual` holds each entry in a
queue until a person approves or rejects it, or its countdown runs out (a reject).

Only entries reach this gate: the engine sends exits (take profit, stop loss,
timeouts, flatten) straight to the broker. The countdown is a clock timer, so
it runs on the simulated clock in tests and backtests. Approving runs the risk
gate again, since the world may have changed while the entry waited.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from ..clock import Timer
from ..config import Settings
from ..events import NS
from ..orders import OrderType, PlaceOrder, Purpose

if TYPE_CHECKING:
    from ..engine import Engine


@dataclass(slots=True)
class PendingApproval:
    id: int
    intent: PlaceOrder
    created_ts: int
    expires_ts: int
    timer: Timer | None = None
    now_ns: int = 0  # the clock when last described (views call describe() without a clock)

    def describe(self, now: int | None = None) -> dict:
        """What the approvals pane shows: symbol, side, price, qty, notional, reason, countdown."""
        i = self.intent
        now = self.now_ns if now is None else now
        return {
            "id": self.id, "symbol": i.symbol, "side": i.side, "price": i.price, "qty": i.qty,
            "notional": round(i.notional, 2), "reason": i.reason, "strategy": i.strategy,
            "created_ts": self.created_ts, "expires_ts": self.expires_ts,
            "expires_in_s": round(max(self.expires_ts - now, 0) / NS, 1),
        }


class Approval:
    """The approval gate (engine.ApprovalGate)."""

    def __init__(self, settings: Settings):
        self.mode: str = settings.approval.mode
        self.timeout_ns = int(settings.approval.timeout_s * NS)
        self.engine: Engine | None = None
        self._pending: dict[int, PendingApproval] = {}
        self._next_id = 1

    def attach(self, engine: Engine) -> None:
        self.engine = engine
        for item in self._pending.values():  # restored before the engine existed
            self._arm(item)

    def submit(self, intent: PlaceOrder, engine: Engine) -> bool:
        """True: send now. False: queued for a person."""
        if self.mode == "auto" or intent.purpose is not Purpose.ENTRY:
            return True
        self.engine = engine
        now = engine.clock.now()
        item = PendingApproval(self._next_id, intent, now, now + self.timeout_ns, now_ns=now)
        self._next_id += 1
        self._pending[item.id] = item
        self._arm(item)
        engine.log(f"APPROVAL #{item.id} waiting {self.timeout_ns / NS:g} s: {intent.side.upper()} "
                   f"{intent.symbol} {intent.qty:g} @ {intent.price:g} ({intent.notional:,.0f} USD): "
                   f"{intent.reason}",
                   "info", intent.strategy)
        engine.notify("approvals", self.pending())
        return False

    def _arm(self, item: PendingApproval) -> None:
        if self.engine is None:
            return
        if item.timer is not None:
            item.timer.cancel()
        item.timer = self.engine.clock.call_at(item.expires_ts, lambda now, i=item.id: self._expire(i))

    def _expire(self, approval_id: int) -> None:
        item = self._pending.pop(approval_id, None)
        if item is None or self.engine is None:
            return
        self.engine.reject_pending(item.intent, f"approval #{approval_id} expired after "
                                                f"{(item.expires_ts - item.created_ts) / NS:g} s")
        self.engine.notify("approvals", self.pending())

    def take(self, approval_id: int) -> PendingApproval | None:
        """Remove an item from the queue (to approve or reject it)."""
        item = self._pending.pop(approval_id, None)
        if item is not None and item.timer is not None:
            item.timer.cancel()
        return item

    def pending(self) -> list[PendingApproval]:
        now = self.engine.clock.now() if self.engine is not None else 0
        for item in self._pending.values():
            item.now_ns = now
        return list(self._pending.values())

    def ids(self) -> list[int]:
        return list(self._pending)

    def snapshot(self) -> dict:
        return {
            "mode": self.mode, "next_id": self._next_id,
            "pending": [{"id": p.id, "created_ts": p.created_ts, "expires_ts": p.expires_ts,
                         "intent": {**asdict(p.intent), "order_type": p.intent.order_type.value,
                                    "purpose": p.intent.purpose.value}}
                        for p in self._pending.values()],
        }

    def restore(self, state: dict) -> None:
        """Reload the queue; items whose countdown ran out while stopped expire at once."""
        self.mode = state.get("mode", self.mode)
        self._next_id = int(state.get("next_id", self._next_id))
        for item in self._pending.values():
            if item.timer is not None:
                item.timer.cancel()
        self._pending = {}
        for p in state.get("pending", []):
            d = dict(p["intent"])
            d["order_type"] = OrderType(d["order_type"])
            d["purpose"] = Purpose(d["purpose"])
            item = PendingApproval(int(p["id"]), PlaceOrder(**d), int(p["created_ts"]), int(p["expires_ts"]))
            self._pending[item.id] = item
            self._arm(item)
