"""Working orders and the approval queue in one pane: pending approvals first (with their
countdown), then the working orders. Row keys say which is which."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.events import NS

from .approvals import QueuedEntry, approvals_view
from .fmt import fmt_duration, fmt_price, fmt_qty, fmt_usd_short, price_decimals
from .tables import CellValue, KeyedTable

if TYPE_CHECKING:
    from engine.engine import Engine

APPROVAL = "approval:"
ORDER = "order:"
URGENT_S = 5.0  # countdowns under this are shown as urgent


class OrdersTable(KeyedTable):
    COLUMNS = (("symbol", "Symbol"), ("side", "Side"), ("status", "Status"), ("purpose", "Purpose"),
               ("qty", "Qty"), ("price", "Price"), ("type", "Type"), ("notional", "Notional"),
               ("age", "Age"), ("id", "ID"), ("reason", "Reason"))

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id)
        self.approvals: list[QueuedEntry] = []

    def refresh_from(self, engine: Engine) -> bool:
        now = engine.clock.now()
        rows: dict[str, tuple[CellValue, ...]] = {}
        self.approvals = approvals_view(engine)
        for a in self.approvals:
            d = price_decimals(engine.instrument(a.symbol).tick_size)
            rows[APPROVAL + a.id] = (
                a.symbol, self.styled(a.side.upper(), a.side == "buy"),
                self.styled(f"APPROVE? {a.seconds_left:.0f}s", a.seconds_left > URGENT_S), "entry", fmt_qty(a.qty),
                fmt_price(a.price, d), "limit", fmt_usd_short(a.notional), "", f"#{a.id}", a.reason)
        for o in sorted(engine.open_orders.values(), key=lambda o: o.ts):
            d = price_decimals(engine.instrument(o.symbol).tick_size)
            price = o.price if o.price is not None else o.trigger_price
            rows[ORDER + o.id] = (
                o.symbol, self.styled(o.side.upper(), o.side == "buy"), o.status.value, o.purpose.value,
                fmt_qty(o.remaining), fmt_price(price, d), o.order_type.value,
                fmt_usd_short(o.remaining * (price or 0.0)), fmt_duration((now - o.ts) / NS), o.id, o.reason)
        return self.sync(rows)

    @property
    def has_approvals(self) -> bool:
        return bool(self.approvals)

    @property
    def has_orders(self) -> bool:
        return any(k.startswith(ORDER) for k in self._rows)

    def selected_approval(self) -> str | None:
        """The approval under the cursor, else the first in the queue (the one expiring first)."""
        key = self.selected_key
        if key is not None and key.startswith(APPROVAL):
            return key.removeprefix(APPROVAL)
        return self.approvals[0].id if self.approvals else None

    def selected_order(self) -> str | None:
        key = self.selected_key
        return key.removeprefix(ORDER) if key is not None and key.startswith(ORDER) else None

    def selected_strategy(self, engine: Engine) -> str | None:
        key = self.selected_key or ""
        if key.startswith(ORDER):
            o = engine.open_orders.get(key.removeprefix(ORDER))
            return o.strategy if o is not None and o.strategy else None
        aid = key.removeprefix(APPROVAL)
        return next((a.strategy for a in self.approvals if a.id == aid and a.strategy), None)
