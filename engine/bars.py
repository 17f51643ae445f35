"""Trades -> OHLCV bars on a fixed UTC grid, for bar strategies (LTA) on live and synthetic feeds.

A bar covers [k*interval, (k+1)*interval) in exchange time and is emitted as an `events.Bar`
stamped with its close time, when the first trade at or after that close arrives, or when
`flush(now)` is called with a clock at or past the close (a quiet market still closes its bars).
Intervals with no trade produce no bar unless `fill_gaps=True`, which emits flat zero-volume
bars at the last close. Any interval from 1 second to 1 day works (LTA itself allows 1 min..1 day).
Turnover is the sum of price x qty, so dollar volume is exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .events import NS, Bar


class BarBuilder:
    def __init__(self, symbol: str, interval_s: int, fill_gaps: bool = False):
        if not 1 <= int(interval_s) <= 86_400:
            raise ValueError(f"bar interval must be 1 s .. 1 day, got {interval_s} s")
        self.symbol = symbol
        self.interval_s = int(interval_s)
        self.step = self.interval_s * NS
        self.fill_gaps = fill_gaps
        self._end = 0  # close time of the bar being built; 0 = none
        self._o = self._h = self._l = self._c = 0.0
        self._v = self._q = 0.0
        self._last_close = 0.0

    @property
    def open_bar_end(self) -> int:
        return self._end

    def add(self, ts: int, price: float, qty: float) -> list[Bar]:
        """Add one trade; returns the bars it closes (usually none, one at a boundary)."""
        out = self.flush(ts) if self._end and ts >= self._end else []
        if not self._end:
            self._end = (ts // self.step + 1) * self.step
            self._o = self._h = self._l = self._c = price
            self._v = self._q = 0.0
        else:
            self._c = price
            if price > self._h:
                self._h = price
            if price < self._l:
                self._l = price
        self._v += qty
        self._q += qty * price
        return out

    def flush(self, now: int) -> list[Bar]:
        """Close the bar under construction if `now` is at or past its end (and gap bars, if enabled)."""
        if not self._end or now < self._end:
            return []
        out = [Bar(self._end, self.symbol, self.interval_s, self._o, self._h, self._l, self._c, self._v, self._q)]
        self._last_close = self._c
        if self.fill_gaps:
            t = self._end + self.step
            while t <= now:
                c = self._last_close
                out.append(Bar(t, self.symbol, self.interval_s, c, c, c, c, 0.0, 0.0))
                t += self.step
        self._end = 0
        return out

    def snapshot(self) -> dict:
        return {"end": self._end, "ohlc": [self._o, self._h, self._l, self._c], "v": self._v, "q": self._q,
                "last_close": self._last_close}

    def restore(self, d: dict) -> None:
        self._end = int(d.get("end", 0))
        self._o, self._h, self._l, self._c = (float(x) for x in d.get("ohlc", [0.0] * 4))
        self._v, self._q = float(d.get("v", 0.0)), float(d.get("q", 0.0))
        self._last_close = float(d.get("last_close", 0.0))


def bars_from_trades(trades: Iterable, interval_s: int, symbols: Iterable[str] | None = None) -> Iterator[Bar]:
    """Bars of every symbol from a time-ordered stream of events; non-trade events are ignored.
    The last, incomplete bar of each symbol is emitted at the end of the stream."""
    from .events import Trade

    wanted = set(symbols) if symbols is not None else None
    builders: dict[str, BarBuilder] = {}
    for ev in trades:
        if type(ev) is not Trade or (wanted is not None and ev.symbol not in wanted):
            continue
        b = builders.get(ev.symbol)
        if b is None:
            b = builders[ev.symbol] = BarBuilder(ev.symbol, interval_s)
        yield from b.add(ev.ts, ev.price, ev.qty)
    for b in builders.values():
        if b.open_bar_end:
            yield from b.flush(b.open_bar_end)


def resample(bars: Iterable[Bar], interval_s: int) -> Iterator[Bar]:
    """Coarser bars (`interval_s` a multiple of the input's) on the UTC grid, per symbol; a group is
    emitted when the next one starts (and at the end), stamped with its grid close time."""
    step = int(interval_s) * NS
    acc: dict[str, list] = {}
    for b in bars:
        if b.interval_s > interval_s or interval_s % b.interval_s:
            raise ValueError(f"cannot resample {b.interval_s} s bars to {interval_s} s")
        key = (b.ts - 1) // step  # the bar [ts - interval, ts) lies in grid slot (ts - 1) // step
        cur = acc.get(b.symbol)
        if cur is not None and cur[0] != key:
            yield _acc_bar(b.symbol, interval_s, step, cur)
            cur = None
        if cur is None:
            acc[b.symbol] = [key, b.open, b.high, b.low, b.close, b.volume, b.turnover]
        else:
            cur[2] = max(cur[2], b.high)
            cur[3] = min(cur[3], b.low)
            cur[4] = b.close
            cur[5] += b.volume
            cur[6] += b.turnover
    for sym, cur in acc.items():
        yield _acc_bar(sym, interval_s, step, cur)


def _acc_bar(symbol: str, interval_s: int, step: int, cur: list) -> Bar:
    key, o, h, low, c, v, q = cur
    return Bar((key + 1) * step, symbol, interval_s, o, h, low, c, v, q)
