"""Fill markouts of a backtest: how the mid moved after each fill, for `--report DIR`.

The markout of a fill at horizon τ is

    10⁴ · s · (mid(t + τ) − price) / price  bps,   s = +1 for a buy, −1 for a sell,

with `price` the fill price and mid(t + τ) the book's mid in force at t + τ (the state after every
event at or before t + τ: it is read just before the first event after t + τ is dispatched). A
maker fill that is picked off shows a negative curve (adverse selection); a fill ahead of a
reversion a positive one. Horizons are `HORIZONS_S`.

A mid is only used when the book was updated within `[risk] stale_book_s` before t + τ; otherwise the
markout is missing (NaN in markouts.csv, left out of the means). That happens after the end of the
data, and in fast-forward's jump mode when the horizon falls in a chunk reduced to its liquidations
(docs/backtest.md): the curves of a jump-mode run can rest on fewer fills at long horizons.

The report's markouts.png plots the mean curve with a 95% interval (1.96 standard errors) for maker
and taker fills separately, and for entries and exits when the orders carry a purpose.
"""

from __future__ import annotations

import csv
import heapq
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..events import NS
from ..orders import Fill

HORIZONS_S = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0)


class MarkoutTracker:
    """Collects the mids after each fill while the backtest runs (`add` at the fill's notification,
    `sample` before each event whose time is past the earliest pending horizon)."""

    def __init__(self, engine: Any, stale_ns: int, horizons_s: tuple[float, ...] = HORIZONS_S):
        self.engine = engine
        self.stale_ns = stale_ns
        self.horizons_s = horizons_s
        self._horizons_ns = [int(h * NS) for h in horizons_s]
        self.fills: list[Fill] = []
        self.values: list[list[float]] = []  # per fill, per horizon (bps; NaN = not observed)
        self.heap: list[tuple[int, int, int]] = []  # (due ns, fill index, horizon index)

    def add(self, fill: Fill) -> None:
        i = len(self.fills)
        self.fills.append(fill)
        self.values.append([math.nan] * len(self._horizons_ns))
        for k, h in enumerate(self._horizons_ns):
            heapq.heappush(self.heap, (fill.ts + h, i, k))

    def sample(self, ts: int) -> None:
        """Record every horizon due strictly before `ts` (the next event, not yet dispatched)."""
        heap, markets = self.heap, self.engine.markets
        while heap and heap[0][0] < ts:
            due, i, k = heapq.heappop(heap)
            f = self.fills[i]
            m = markets.get(f.symbol)
            if m is None or due - m.book_ts > self.stale_ns:
                continue
            mid = m.book.mid
            if mid is None:
                continue
            s = 1.0 if f.side == "buy" else -1.0
            self.values[i][k] = s * (mid - f.price) / f.price * 1e4

    def flush(self) -> None:
        """At the end of the run: horizons not reached by the data stay missing."""
        self.heap.clear()


def groups(fills: list[Fill], orders: dict[str, Any]) -> dict[str, list[int]]:
    """Fill indices by liquidity and, when orders have a purpose, entry vs exit."""
    out: dict[str, list[int]] = {}
    for i, f in enumerate(fills):
        out.setdefault(f.liquidity, []).append(i)
        o = orders.get(f.order_id)
        purpose = getattr(getattr(o, "purpose", None), "value", None)
        if purpose:
            key = "entry" if purpose == "entry" else "exit"
            out.setdefault(key, []).append(i)
    return dict(sorted(out.items()))


def curve(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, standard error, count) per horizon over the observed markouts."""
    ok = ~np.isnan(values)
    n = ok.sum(axis=0)
    mean = np.array([values[ok[:, k], k].mean() if n[k] else math.nan for k in range(values.shape[1])])
    se = np.array(
        [values[ok[:, k], k].std(ddof=1) / math.sqrt(n[k]) if n[k] > 1 else math.nan for k in range(values.shape[1])]
    )
    return mean, se, n


def write_csv(tracker: MarkoutTracker, path: Path, iso) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        horizons = [f"{h:g}s" for h in tracker.horizons_s]
        w.writerow(["time", "order_id", "symbol", "side", "price", "liquidity", *horizons])
        for fill, vals in zip(tracker.fills, tracker.values, strict=True):
            w.writerow(
                [iso(fill.ts), fill.order_id, fill.symbol, fill.side, fill.price, fill.liquidity,
                 *["" if math.isnan(v) else f"{v:.4f}" for v in vals]]
            )


def plot(tracker: MarkoutTracker, orders: dict[str, Any], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    h = np.asarray(tracker.horizons_s)
    values = np.asarray(tracker.values, dtype=np.float64).reshape(-1, len(h))
    for name, idx in groups(tracker.fills, orders).items():
        mean, se, n = curve(values[idx])
        if not np.any(n):
            continue
        line = ax.plot(h, mean, marker="o", lw=1.2, label=f"{name} ({len(idx)} fills)")[0]
        ax.fill_between(h, mean - 1.96 * se, mean + 1.96 * se, color=line.get_color(), alpha=0.15, lw=0)
    ax.axhline(0.0, color="black", lw=0.6)
    ax.set_xscale("log")
    ax.set_xticks(h, [f"{x:g}s" for x in h])
    ax.set_xlabel("horizon after the fill")
    ax.set_ylabel("markout (bps, in the fill's favour)")
    ax.set_title(f"{title}: fill markouts (mean, 95% interval)")
    ax.grid(alpha=0.3)
    if tracker.fills:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no fills", transform=ax.transAxes, ha="center")
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
