"""Fast-forward over the synthetic market: generate only the liquidations while nothing can happen.

`--fast-forward` has two levels (docs/backtest.md, "Fast-forward"):

* **hold** (any feed, any strategy; `runner.run_backtest`): while nothing works, market data no
  strategy listens to (trades, book snapshots, quotes) is held instead of dispatched, and only the
  latest of each kind per symbol is applied before the next event that can matter. Exact, but every
  event is still produced and looked at, so it saves little.
* **jump** (this module; the synthetic feed with strategies that act only when the engine's cascade
  detector fires, i.e. `cascade`): the market is generated in its 10-minute chunks (`CHUNK_S`), each
  symbol on its own (a symbol's stream does not depend on the others). A (symbol, chunk) is
  *thinned* -- only its liquidations are generated and dispatched, so the detector and the rolling
  P95 keep their exact state -- when, at the chunk's start, the symbol is quiet (no open order, no
  position, the strategy's trade state for it at rest, no paper-exchange message in flight) and
  replaying its liquidations of this chunk and the next on copies of its detector and threshold never
  makes a window a cascade. Every other (symbol, chunk) is generated in full and goes through the hold
  path. A chunk that can trigger is therefore always preceded by a full one, so the book, last trade,
  ticker and long/short ratio that the strategy, the risk gate and the paper exchange see at a
  trigger are those of the tick path, provided every kind of market data appears at least once per
  chunk (books and tickers every <= 600 s and the ratio every <= 600 s, which `supported` checks;
  trades at the default rates come every second or so). Leftover timeouts of a finished trade may
  fire inside a thinned chunk: the cascade strategy ignores a timeout whose trade is over.

While every symbol of a chunk is thinned the account is flat and nothing runs, so equity is
constant: the runner stamps that stretch's equity samples at the sampling grid's times (`thinned`).
The tick path stamps a sample with the first event at or after the grid time; the synthetic market
puts a book and a ticker on every whole second from its start, so both agree when the start is a
whole second (tests/test_backtest_fast_forward.py compares the two paths' fills, trades, PnL and
equity curves). Thinned events are never generated, so `events` counts only the events read.
Fill markouts (markouts.py) whose horizon falls in a thinned chunk are missing (stale book).
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..events import Liquidation
from ..feeds.synthetic import ALL_KINDS, CHUNK_S, MAX_EPISODES, Episode, SyntheticMarket, _episode, _gc_paused

# Strategies that act only on the liquidation at which the engine's cascade detector fires (and on
# their own orders and timers): a chunk whose liquidations cannot fire the detector is of no interest.
JUMP_STRATEGIES = frozenset({"cascade"})
MAX_DATA_INTERVAL_S = CHUNK_S  # every market-data kind must appear at least once per chunk
_LIQ_ONLY = frozenset({Liquidation})


def supported(settings: Any, strategies: list[Any], feed: Any) -> bool:
    """Jump mode applies to the built-in synthetic market with detector-driven strategies only."""
    syn = settings.synthetic
    return (
        type(feed) is SyntheticMarket
        and feed.emitted == 0
        and bool(strategies)
        and all(st.name in JUMP_STRATEGIES for st in strategies)
        and max(syn.book_interval_s, syn.ticker_interval_s, syn.ratio_interval_s) <= MAX_DATA_INTERVAL_S
    )


class JumpingSynthetic:
    """The synthetic market's events with quiet (symbol, chunk)s reduced to their liquidations."""

    live = False

    def __init__(self, market: SyntheticMarket, engine: Any, strategies: list[Any]):
        self.market = market
        self.engine = engine
        self.strategies = strategies
        self.name = market.name
        self.start_ns = market.start_ns
        self.thinned = False  # events at the sampling grid's times were not generated before this one
        self.chunks_full = 0  # (symbol, chunk)s generated in full ...
        self.chunks_thinned = 0  # ... and reduced to their liquidations
        self.episodes: list[Episode] = []  # ground truth, as SyntheticMarket.episodes

    def events(self) -> Iterator[Any]:
        gens = self.market._gens
        chunk = 0
        states = [g.initial_state() for g in gens]
        cur = self._liquidations(chunk, states)
        after_thin = False
        while True:
            nxt = self._liquidations(chunk + 1, cur[1])
            objs: list = []
            ts_parts: list[np.ndarray] = []
            thin_all = True
            with _gc_paused():
                for i, gen in enumerate(gens):
                    liq_objs, liq_ts = cur[0][i]
                    if self._quiet(gen.symbol) and not self._may_trigger(gen.symbol, liq_objs + nxt[0][i][0]):
                        self.chunks_thinned += 1
                        objs += liq_objs
                        ts_parts.append(liq_ts)
                    else:
                        self.chunks_full += 1
                        thin_all = False
                        o, ts, _, _ = gen.generate(chunk, states[i], ALL_KINDS)
                        objs += o
                        ts_parts.append(ts)
                # the market's order: time, then symbol, then kind (`generate` groups by kind)
                order = np.argsort(np.concatenate(ts_parts), kind="stable").tolist() if objs else []
            self.thinned = thin_all or after_thin
            for k, j in enumerate(order):
                yield objs[j]
                if k == 0:
                    self.thinned = thin_all
            after_thin = thin_all
            chunk += 1
            states = cur[1]
            cur = nxt

    def _liquidations(self, chunk: int, states: list[dict]) -> tuple[list[tuple[list, np.ndarray]], list[dict]]:
        """Every symbol's liquidations of `chunk` and the next chunk's start states (which do not
        depend on the kinds generated)."""
        parts, nxt = [], []
        for gen, state in zip(self.market._gens, states, strict=True):
            objs, ts, st, closed = gen.generate(chunk, state, _LIQ_ONLY)
            parts.append((objs, ts))
            nxt.append(st)
            self.episodes += [_episode(gen.symbol, e) for e in closed]
        if len(self.episodes) > MAX_EPISODES:
            del self.episodes[: len(self.episodes) - MAX_EPISODES]
        return parts, nxt

    def _quiet(self, symbol: str) -> bool:
        """Nothing works in `symbol`: no order, no position, no exchange message in flight, and every
        strategy's trade state for it is idle (its leftover timeouts fire as no-ops)."""
        engine = self.engine
        if any(o.symbol == symbol for o in engine.open_orders.values()):
            return False
        pos = engine.portfolio.positions.get(symbol)
        if pos is not None and pos.qty != 0.0:
            return False
        if getattr(engine.broker, "_inflight", None):
            return False
        return all(_strategy_idle(st, symbol) for st in self.strategies)

    def _may_trigger(self, symbol: str, liqs: list[Liquidation]) -> bool:
        """Would any of these liquidations make (or extend) a cascade? Replayed on copies of the engine's
        detector and rolling threshold for `symbol`, in the engine's own update order."""
        if not liqs:
            return False
        m = self.engine.markets.get(symbol) or self.engine.market(symbol)
        detector, threshold = copy.deepcopy(m.cascades), copy.copy(m.liq_threshold)
        threshold._values = deque(threshold._values, threshold._values.maxlen)  # the only mutable part
        for ev in liqs:
            detector.on_liquidation(ev, threshold.value)
            threshold.add(ev.notional, ev.ts)
            cur = detector.current
            if cur is not None and cur.is_cascade:
                return True
        return False


def _strategy_idle(strategy: Any, symbol: str) -> bool:
    """The cascade strategy's per-symbol state is back at rest (no entry, no protected position, no close)."""
    st = strategy.state.get(symbol)
    return st is None or not (st.entry_open or st.protected or st.closing or st.entry_due or st.exit_due)
