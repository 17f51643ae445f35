"""The feed interface. A feed yields typed market events in timestamp order.

Historical and synthetic feeds are synchronous iterators (`live = False`); the
engine merges them by (ts, feed index, sequence). Live feeds (`live = True`)
push events from their own asyncio task through `run(emit)`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Feed(Protocol):
    name: str
    live: bool

    def events(self) -> Iterator[Any]:
        """Events in non-decreasing `ts` order (historical and synthetic feeds)."""
        ...


class LiveFeed(Protocol):
    name: str
    live: bool

    async def run(self, emit: Callable[[Any], Awaitable[None] | None]) -> None:
        """Connect and call `emit(event)` for every event until cancelled."""
        ...
