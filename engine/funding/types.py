"""Value types of the funding service and the funding_arb client.

Rates are fractions per funding interval as the venues publish them; everything that is
compared is first normalized to a rate per hour (venues settle every 1, 4 or 8 h), and shown
annualized beside it (per hour x 8,760). Money in a pair position is Decimal.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..events import NS

HOURS_PER_YEAR = 8760.0


def base_of(symbol: str) -> str:
    """BTCUSDT -> BTC (the API accepts either form)."""
    for quote in ("USDT", "USDC", "USD"):
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)]
    return symbol


def symbol_matches(symbol: str, wanted: str) -> bool:
    w = wanted.strip().upper()
    return symbol == w or base_of(symbol) == w


@dataclass(frozen=True, slots=True)
class FundingSnapshot:
    """One venue's funding state for one symbol."""

    venue: str
    symbol: str  # canonical, e.g. BTCUSDT
    rate: float  # per funding interval, fraction (positive: longs pay shorts)
    interval_h: float
    next_funding_ts: int  # ns
    mark: float
    oi_usd: float
    ts: int  # ns, when observed

    @property
    def rate_h(self) -> float:
        return self.rate / self.interval_h

    @property
    def annualized(self) -> float:
        return self.rate_h * HOURS_PER_YEAR

    def as_dict(self) -> dict[str, Any]:
        return {"venue": self.venue, "symbol": self.symbol, "rate": self.rate, "interval_h": self.interval_h,
                "rate_per_hour": self.rate_h, "annualized": self.annualized,
                "next_funding_time_ms": self.next_funding_ts // 1_000_000, "mark_price": self.mark,
                "open_interest_usd": self.oi_usd, "observed_ms": self.ts // 1_000_000}


@dataclass(frozen=True, slots=True)
class Opportunity:
    """Long the lower hourly rate, short the higher one."""

    symbol: str
    long: FundingSnapshot
    short: FundingSnapshot
    divergence_h: float  # short rate per hour - long rate per hour (>= 0 by construction)
    expected_profit: float  # fraction of size over the hold horizon, net of the round-trip cost
    long_is_dex: bool = False
    short_is_dex: bool = False

    @property
    def long_dex(self) -> str:
        return self.long.venue

    @property
    def short_dex(self) -> str:
        return self.short.venue

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.symbol, self.long.venue, self.short.venue)

    def as_dict(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "long_dex": self.long.venue, "short_dex": self.short.venue,
                "long_rate": self.long.rate, "short_rate": self.short.rate,
                "long_interval_h": self.long.interval_h, "short_interval_h": self.short.interval_h,
                "long_rate_per_hour": self.long.rate_h, "short_rate_per_hour": self.short.rate_h,
                "divergence_per_hour": self.divergence_h, "divergence_annualized": self.divergence_h * HOURS_PER_YEAR,
                "expected_profit": self.expected_profit, "long_oi_usd": self.long.oi_usd,
                "short_oi_usd": self.short.oi_usd, "long_mark": self.long.mark, "short_mark": self.short.mark,
                "long_next_funding_ms": self.long.next_funding_ts // 1_000_000,
                "short_next_funding_ms": self.short.next_funding_ts // 1_000_000,
                "long_is_dex": self.long_is_dex, "short_is_dex": self.short_is_dex}


@dataclass(slots=True)
class Leg:
    """One side of a pair on one venue."""

    venue: str
    side: str  # buy (long) | sell (short)
    qty: float = 0.0
    entry_price: float = 0.0
    exit_price: float = 0.0
    fees_usd: float = 0.0
    funding_usd: float = 0.0  # booked per settlement: positive received
    payments: int = 0
    next_funding_ts: int = 0  # the settlement the leg is waiting for (ns)
    last_rate: float = 0.0  # the venue's rate for that settlement, as last seen
    state: str = "new"  # new | working | filled | rejected | closing | closed

    def price_pnl(self, price: float) -> float:
        sign = 1.0 if self.side == "buy" else -1.0
        return sign * self.qty * (price - self.entry_price)


@dataclass(slots=True)
class PairPosition:
    """A delta-neutral pair: long on long_dex, short on short_dex, same symbol and size."""

    symbol: str
    long_dex: str
    short_dex: str
    size_usd: Decimal
    entry_long_rate: Decimal  # per hour
    entry_short_rate: Decimal  # per hour
    entry_divergence: Decimal  # per hour
    opened_at: int  # ns
    last_check: int  # ns
    status: str = "pending_open"  # pending_open | open | pending_close | closed
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    legs: dict[str, Leg] = field(default_factory=dict)  # "long" | "short"
    close_reason: str = ""
    closed_at: int = 0
    net_pnl_usd: float = 0.0
    legging_since: int = 0  # ns: one leg is filled and the other is not (0 = balanced)

    @property
    def hours_held(self) -> float:
        return (self.last_check - self.opened_at) / NS / 3600.0

    @property
    def funding_usd(self) -> float:
        return sum(leg.funding_usd for leg in self.legs.values())

    @property
    def fees_usd(self) -> float:
        return sum(leg.fees_usd for leg in self.legs.values())

    def to_dict(self) -> dict[str, Any]:
        return {"id": str(self.id), "symbol": self.symbol, "long_dex": self.long_dex, "short_dex": self.short_dex,
                "size_usd": str(self.size_usd), "entry_long_rate": str(self.entry_long_rate),
                "entry_short_rate": str(self.entry_short_rate), "entry_divergence": str(self.entry_divergence),
                "opened_at": self.opened_at, "last_check": self.last_check, "status": self.status,
                "close_reason": self.close_reason, "closed_at": self.closed_at, "net_pnl_usd": self.net_pnl_usd,
                "legging_since": self.legging_since,
                "legs": {k: {f: getattr(v, f) for f in v.__slots__} for k, v in self.legs.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PairPosition:
        p = cls(d["symbol"], d["long_dex"], d["short_dex"], Decimal(d["size_usd"]), Decimal(d["entry_long_rate"]),
                Decimal(d["entry_short_rate"]), Decimal(d["entry_divergence"]), int(d["opened_at"]),
                int(d["last_check"]), d["status"], uuid.UUID(d["id"]), {}, d.get("close_reason", ""),
                int(d.get("closed_at", 0)), float(d.get("net_pnl_usd", 0.0)), int(d.get("legging_since", 0)))
        for k, v in d.get("legs", {}).items():
            p.legs[k] = Leg(**v)
        return p

    def api_dict(self, now_ns: int) -> dict[str, Any]:
        return {"id": str(self.id), "symbol": self.symbol, "long_dex": self.long_dex, "short_dex": self.short_dex,
                "size_usd": float(self.size_usd), "entry_long_rate": float(self.entry_long_rate),
                "entry_short_rate": float(self.entry_short_rate),
                "entry_divergence": float(self.entry_divergence), "opened_at_ms": self.opened_at // 1_000_000,
                "last_check_ms": self.last_check // 1_000_000, "status": self.status,
                "hours_held": round((now_ns - self.opened_at) / NS / 3600.0, 4),
                "funding_usd": round(self.funding_usd, 6), "fees_usd": round(self.fees_usd, 6),
                "close_reason": self.close_reason}
