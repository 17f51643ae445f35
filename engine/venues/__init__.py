"""Venues of the funding service: one interface, one adapter per venue.

A `Venue` gives, per symbol, a `FundingSnapshot` (funding rate and interval, next funding
time, mark price, open interest in USD). `poll(now)` is synchronous and returns the latest
known snapshots: the synthetic venue computes them at `now` (simulated clock, seeded); network
venues return what their `refresh()` task last fetched. Legs are placed through a
`LegExecutor` per venue (engine/venues/legs.py): paper legs everywhere in paper mode and on the
venues without a live trading adapter; Bybit legs on the Bybit REST client in demo/testnet/live.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..funding.types import FundingSnapshot

if TYPE_CHECKING:
    from ..config import FundingVenueConfig


class VenueError(Exception):
    """A venue answered with an error, bad data or not at all (a typed result, never a crash)."""


class Venue:
    """Base class. `adapter` names the implementation; `name` is the configured venue name."""

    adapter = "none"
    network = False  # True: needs refresh() on the event loop (HTTP)

    def __init__(self, name: str, cfg: FundingVenueConfig, symbols: list[str]):
        self.name = name
        self.cfg = cfg
        self.symbols = list(symbols)
        self.is_dex = cfg.is_dex
        self.latest: dict[str, FundingSnapshot] = {}
        self.status = "waiting"  # waiting | ok | error | no adapter
        self.error = ""
        self.last_ok_ts = 0  # ns, wall or simulated clock of the last good refresh
        self.errors = 0

    def poll(self, now: int) -> list[FundingSnapshot]:
        return list(self.latest.values())

    async def refresh(self, now: int) -> None:
        """Fetch every symbol once (network venues). Errors become `status`/`error`."""
        return None

    async def close(self) -> None:
        return None

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "adapter": self.adapter, "is_dex": self.is_dex, "status": self.status,
                "error": self.error, "symbols": len(self.latest), "errors": self.errors,
                "last_ok_ms": self.last_ok_ts // 1_000_000}


class NoAdapter(Venue):
    """A configured venue name without an adapter yet (e.g. lighter, grvt in live mode)."""

    def __init__(self, name: str, cfg: FundingVenueConfig, symbols: list[str]):
        super().__init__(name, cfg, symbols)
        self.status = "no adapter"
