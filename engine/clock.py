"""Clocks with timers. Engine logic asks the clock for time, never time.time().

SimClock only moves when told to (`advance_to`), firing due timers in time
order (ties by registration order), which makes runs deterministic.
WallClock follows real time for live feeds.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

TimerCallback = Callable[[int], None]


@dataclass(order=True, slots=True)
class Timer:
    due_ns: int
    seq: int
    callback: TimerCallback = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class _TimerQueue:
    def __init__(self) -> None:
        self._heap: list[Timer] = []
        self._seq = itertools.count()

    def call_at(self, due_ns: int, callback: TimerCallback) -> Timer:
        t = Timer(int(due_ns), next(self._seq), callback)
        heapq.heappush(self._heap, t)
        return t

    def next_due(self) -> int | None:
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0].due_ns if self._heap else None

    def pop_due(self, now_ns: int) -> Timer | None:
        while self._heap and (self._heap[0].cancelled or self._heap[0].due_ns <= now_ns):
            t = heapq.heappop(self._heap)
            if not t.cancelled:
                return t
        return None

    def __len__(self) -> int:
        return sum(1 for t in self._heap if not t.cancelled)


class SimClock:
    """Simulated time in int ns. Timers fire in (due, registration) order."""

    def __init__(self, start_ns: int = 0) -> None:
        self._now = int(start_ns)
        self._timers = _TimerQueue()

    def now(self) -> int:
        return self._now

    def call_at(self, due_ns: int, callback: TimerCallback) -> Timer:
        return self._timers.call_at(max(int(due_ns), self._now), callback)

    def call_later(self, delay_ns: int, callback: TimerCallback) -> Timer:
        return self.call_at(self._now + int(delay_ns), callback)

    def next_timer_due(self) -> int | None:
        return self._timers.next_due()

    def advance_to(self, ts_ns: int) -> int:
        """Move time forward to `ts_ns`, firing every timer due at or before it.

        Each timer runs with the clock set to its own due time, so a timer that
        schedules another one inside the interval gets it fired too. Returns the
        number of timers fired. Time never moves backwards.
        """
        heap = self._timers._heap
        if not heap or heap[0].due_ns > ts_ns:  # the common case: nothing due (a cancelled head is popped below)
            if ts_ns > self._now:
                self._now = int(ts_ns)
            return 0
        fired = 0
        while True:
            t = self._timers.pop_due(ts_ns)
            if t is None:
                break
            if t.due_ns > self._now:
                self._now = t.due_ns
            t.callback(self._now)
            fired += 1
        if ts_ns > self._now:
            self._now = int(ts_ns)
        return fired


class WallClock(SimClock):
    """Real time, for live feeds: it starts at the wall clock's time (so timers set before the
    first event are not due at once) and `sync()` moves it to the wall clock, firing due timers.
    Paced replays (`--speed N`) keep a SimClock: the engine paces them itself."""

    def __init__(self) -> None:
        super().__init__(time.time_ns())

    def sync(self) -> int:
        return self.advance_to(time.time_ns())
