"""Quantity rounding: down to the step, but a float sum of fills on the grid stays on it (a position
built from 2 + 1.8 + 0.6 SOL closes 4.4, not 4.3 with 0.1 left open)."""

from __future__ import annotations

from engine.instruments import instrument_for


def test_round_qty_rounds_down_but_keeps_float_sums_of_fills():
    sol = instrument_for("SOLUSDT")
    assert sol.qty_step == 0.1
    assert 2 + 1.8 + 0.6 != 4.4 and sol.round_qty(2 + 1.8 + 0.6) == 4.4
    assert sol.round_qty(4.39) == 4.3 and sol.round_qty(-4.39) == 4.3 and sol.round_qty(0.0999) == 0.0
    btc = instrument_for("BTCUSDT")
    assert btc.round_qty(0.005 + 0.004 + 0.001) == 0.01 and btc.round_qty(0.0019999) == 0.001
