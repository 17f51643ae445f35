"""Intents (what strategies ask for), orders, order updates, fills and positions.

Strategies return intents; the engine turns an approved PlaceOrder into an
Order with an id, which brokers answer with OrderUpdate and Fill events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class OrderType(str, Enum):
    LIMIT = "limit"
    MARKET = "market"
    STOP = "stop"  # stop-market: triggers on trade price, fills as taker


class Purpose(str, Enum):
    """Why an order exists. Only ENTRY orders wait for approval; exits never do."""

    ENTRY = "entry"
    TAKE_PROFIT = "tp"
    STOP_LOSS = "sl"
    EXIT = "exit"  # timeouts, signal exits, manual close, flatten


class OrderStatus(str, Enum):
    PENDING = "pending"  # recorded, not yet acknowledged by the broker
    NEW = "new"  # resting / working
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    UNTRIGGERED = "untriggered"  # stop waiting for its trigger

    @property
    def is_open(self) -> bool:
        return self in (OrderStatus.PENDING, OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED, OrderStatus.UNTRIGGERED)


@dataclass(slots=True)
class PlaceOrder:
    symbol: str
    side: str  # buy | sell
    qty: float
    price: float | None = None
    order_type: OrderType = OrderType.LIMIT
    post_only: bool = False
    reduce_only: bool = False
    trigger_price: float | None = None
    purpose: Purpose = Purpose.ENTRY
    strategy: str = ""
    reason: str = ""
    leverage: float = 1.0
    # Filled in by the engine when the intent is accepted.
    client_id: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def notional(self) -> float:
        return abs(self.qty) * (self.price or self.trigger_price or 0.0)


@dataclass(slots=True)
class CancelOrder:
    order_id: str
    strategy: str = ""
    reason: str = ""


@dataclass(slots=True)
class ClosePosition:
    """Close the whole position in `symbol` at market."""

    symbol: str
    strategy: str = ""
    reason: str = ""


@dataclass(slots=True)
class LogLine:
    """A decision or notable event worth a line of output."""

    message: str
    strategy: str = ""
    level: str = "info"


@dataclass(slots=True)
class Alert:
    """A signal the views show in the alerts pane (e.g. a cascade)."""

    symbol: str
    kind: str
    message: str
    strategy: str = ""
    data: dict = field(default_factory=dict)


Intent = PlaceOrder | CancelOrder | ClosePosition | LogLine | Alert


@dataclass(slots=True)
class Order:
    id: str
    ts: int
    symbol: str
    side: str
    qty: float
    price: float | None
    order_type: OrderType
    purpose: Purpose
    strategy: str
    post_only: bool = False
    reduce_only: bool = False
    trigger_price: float | None = None
    status: OrderStatus = OrderStatus.PENDING
    filled_qty: float = 0.0
    avg_price: float = 0.0
    reason: str = ""
    reject_reason: str = ""
    leverage: float = 1.0
    updated_ts: int = 0
    exchange_id: str = ""

    @property
    def remaining(self) -> float:
        return max(self.qty - self.filled_qty, 0.0)

    @property
    def notional(self) -> float:
        return self.qty * (self.price or self.trigger_price or 0.0)


@dataclass(slots=True)
class OrderUpdate:
    ts: int
    order_id: str
    status: OrderStatus
    reason: str = ""
    filled_qty: float = 0.0
    avg_price: float = 0.0


@dataclass(slots=True)
class Fill:
    ts: int
    order_id: str
    symbol: str
    side: str
    price: float
    qty: float
    fee: float  # in quote currency; negative is a rebate
    liquidity: str  # maker | taker
    queue_ahead: float = 0.0  # displayed qty ahead of us when the order joined
    placed_ts: int = 0
    fill_id: str = ""

    @property
    def time_to_fill_ns(self) -> int:
        return self.ts - self.placed_ts if self.placed_ts else 0


@dataclass(slots=True)
class Position:
    symbol: str
    qty: float = 0.0  # signed: > 0 long, < 0 short
    entry_price: float = 0.0
    opened_ts: int = 0
    strategy: str = ""
    realized_pnl: float = 0.0
    fees: float = 0.0
    funding: float = 0.0
    max_profit: float = 0.0  # best unrealized PnL seen while open, in quote
    take_profit: float | None = None
    stop_loss: float | None = None
    leverage: float = 1.0

    @property
    def side(self) -> str:
        return "long" if self.qty > 0 else "short" if self.qty < 0 else "flat"

    @property
    def is_open(self) -> bool:
        return self.qty != 0.0

    def unrealized(self, mark: float) -> float:
        return (mark - self.entry_price) * self.qty if self.qty else 0.0


def opposite(side: str) -> str:
    return "sell" if side == "buy" else "buy"
