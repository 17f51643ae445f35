"""Honesty checks of the fill model on a seeded hand-built market (issue 7).

The market is a random walk of the touch on a 0.1 tick, a fresh two-level book every 10 ms and
aggressive trades at the touch. The order policy does not depend on fills: every 0.5 s the
working order is cancelled and one PostOnly lot is bid at the touch. So the same orders meet
the same data under every latency and queue model, and only the fill model decides.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from cascade_helpers import settings

from engine.backtest.metrics import execution_metrics
from engine.clock import SimClock
from engine.engine import Engine
from engine.events import NS, BookSnapshot, Trade
from engine.execution.paper import PaperExchange
from engine.instruments import Instrument
from engine.orders import OrderType, PlaceOrder, Purpose

SYM = "TESTUSDT"
INST = Instrument(SYM, 0.1, 1.0, 1.0, 0.0, 100.0)  # tick 0.1, lot 1
MS = 1_000_000
BASE = 1_736_121_600 * NS
STEPS = 6000  # 60 s of 10 ms steps
ORDER_EVERY = 50  # steps: one order per 0.5 s


@cache  # the risk-averse run is the baseline of several tests
def run_market(
    latency_ms: float, queue_model: str = "riskaverse", seed: int = 5
) -> tuple[dict, frozenset[str]]:
    """Execution metrics and the ids of the orders that filled."""
    s = settings(
        engine={"symbols": [SYM], "log_file": ""},
        paper={"latency_ms": latency_ms, "queue_model": queue_model, "queue_power": 2.0},
    )
    engine = Engine(s, clock=SimClock(BASE), broker=PaperExchange(s), instruments={SYM: INST})
    notes = engine.notifier.subscribe(1 << 20)
    rng = np.random.default_rng(seed)
    bid = 10_000  # in ticks
    for i in range(STEPS):
        t = BASE + i * 10 * MS
        if rng.random() < 0.05:
            bid += int(rng.choice((-1, 1)))
        size = rng.integers(1, 20, 4).astype(float)
        engine.dispatch(
            BookSnapshot(
                t,
                SYM,
                [(bid / 10, size[0]), ((bid - 1) / 10, size[1])],
                [((bid + 1) / 10, size[2]), ((bid + 2) / 10, size[3])],
            )
        )
        if rng.random() < 0.3:
            side = str(rng.choice(("buy", "sell")))
            engine.dispatch(
                Trade(
                    t + MS,
                    SYM,
                    side,
                    (bid + 1) / 10 if side == "buy" else bid / 10,
                    float(rng.integers(1, 6)),
                )
            )
        if i % ORDER_EVERY == 0:
            for o in list(engine.open_orders.values()):
                engine.cancel_order(o.id)
            engine.place(
                PlaceOrder(SYM, "buy", 1, bid / 10, OrderType.LIMIT, post_only=True, purpose=Purpose.EXIT)
            )
    engine.clock.advance_to(BASE + (STEPS + 200) * 10 * MS)
    fills = [p for k, p in notes.drain() if k == "fill"]
    return execution_metrics(engine.orders.values(), fills), frozenset(f.order_id for f in fills)


def test_raising_latency_lowers_the_fill_rate():
    rates = [run_market(latency)[0]["fill_rate"] for latency in (0, 50, 200, 1000)]
    assert all(0 < r <= 1 for r in rates)
    assert rates == sorted(rates, reverse=True) and len(set(rates)) == len(rates), rates
    assert rates[0] - rates[-1] > 0.2  # not a rounding effect: a second of latency costs a lot of fills


@pytest.mark.parametrize("model", ["power", "power2", "power3", "log", "log2"])
def test_risk_averse_queue_never_fills_an_order_the_probabilistic_model_does_not(model):
    averse, averse_filled = run_market(100, "riskaverse")
    prob, prob_filled = run_market(100, model)
    assert averse["orders"] == prob["orders"]  # the same orders met the same data
    assert averse_filled <= prob_filled  # every risk-averse fill is also a fill under the optimistic model
    assert averse["fills"] <= prob["fills"]
