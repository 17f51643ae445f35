"""The approval queue as rows of the orders pane: entries waiting for a human, with a countdown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.events import NS

if TYPE_CHECKING:
    from engine.engine import Engine


@dataclass(slots=True, frozen=True)
class QueuedEntry:
    """One queued entry as the views show it (from the gate's `describe()`)."""

    id: str
    symbol: str
    side: str
    price: float | None
    qty: float
    notional: float
    seconds_left: float
    reason: str
    strategy: str


def pending_approvals(engine: Engine) -> list[Any]:
    """The approval gate's queue (an auto gate has none)."""
    pending = getattr(engine.approval, "pending", None)
    return list(pending()) if callable(pending) else []


def seconds_left(item: dict[str, Any], now_ns: int) -> float:
    """Countdown from the item's expiry time (engine clock), else its own countdown field."""
    expires = item.get("expires_ts")
    if expires is not None:
        return max(0.0, (int(expires) - now_ns) / NS)
    return max(0.0, float(item.get("countdown_s", 0.0)))


def approvals_view(engine: Engine) -> list[QueuedEntry]:
    now = engine.clock.now()
    out = []
    for a in pending_approvals(engine):
        d = a.describe()
        price = d.get("price")
        qty = float(d.get("qty", 0.0))
        out.append(QueuedEntry(
            id=str(a.id), symbol=str(d.get("symbol", "")), side=str(d.get("side", "")),
            price=None if price is None else float(price), qty=qty,
            notional=float(d.get("notional", qty * float(price or 0.0))), seconds_left=seconds_left(d, now),
            reason=str(d.get("reason", "")), strategy=str(d.get("strategy", ""))))
    return out
