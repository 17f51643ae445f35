"""The LPI state classifier and each exhaustion condition on crafted sequences, then the whole
signal on crafted forced and informed episodes (tests/lpi_helpers.py)."""

from __future__ import annotations

import pytest
from lpi_helpers import CraftedMarket

from engine.config import Settings
from engine.events import NS
from engine.lpi_features import SidePressure
from engine.strategies.lpi import FORCED, INFORMED, ExhaustionDetector, LpiSignal, StateClassifier

T = 1_736_121_600 * NS
STEP = 250_000_000


def params(**kw):
    return Settings().lpi.for_symbol("ETHUSDT").model_copy(update={"robust_min_samples": 10, **kw})


def side(lpi: float = 0.0, z_fsi: float = 0.0, z_ldr: float = 0.0, name: str = "sell") -> SidePressure:
    return SidePressure(name, 0.0, 0.0, 1.0, 1.0, z_fsi, z_ldr, lpi, 0.0)


# -- state classifier ------------------------------------------------------------------------------
def test_forced_needs_both_fsi_and_oi_flush_and_holds_for_a_while():
    c = StateClassifier(params(c_fsi=2.0, state_hold_s=15.0))
    assert c.update(T, side(z_fsi=2.5), oi_flush=False) == INFORMED  # impact without an OI flush
    assert c.update(T, side(z_fsi=1.9), oi_flush=True) == INFORMED  # a flush without impact selling
    assert c.update(T, side(z_fsi=2.5), oi_flush=True) == FORCED
    assert c.update(T + 15 * NS, side(), oi_flush=False) == FORCED  # held 15 s
    assert c.update(T + 15 * NS + 1, side(), oi_flush=False) == INFORMED


def test_classifier_without_hold_is_instantaneous():
    c = StateClassifier(params(state_hold_s=0.0))
    assert c.update(T, side(z_fsi=3.0), oi_flush=True) == FORCED
    assert c.update(T + STEP, side(z_fsi=3.0), oi_flush=False) == INFORMED


def test_signal_uses_a_liquidation_spike_when_oi_is_sparse():
    p = params(oi_sparse_after_s=30.0, liq_spike_mult=1.0)
    sig = LpiSignal("ETHUSDT", p)
    from engine.lpi_features import LpiTick

    def tick(liq_usd: float, z_oi: float) -> LpiTick:
        s = SidePressure("sell", 0.0, 0.0, 1.0, 1.0, 5.0, 0.0, 2.5, liq_usd)
        b = SidePressure("buy", 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0)
        return LpiTick(T, 100.0, 100.0, 0.1, 100.0, 99.95, 100.05, 0.0, 0.001, 0.0, 0.0, 0.0, 0.0, 0.0, z_oi,
                       True, True, None, s, b)

    _, sell, _ = sig._judge(tick(liq_usd=20_000.0, z_oi=0.0), liq_p95=10_000.0)
    assert sell.state == FORCED  # the spike stands in for the OI test
    sig2 = LpiSignal("ETHUSDT", p)
    _, sell, _ = sig2._judge(tick(liq_usd=5_000.0, z_oi=9.0), liq_p95=10_000.0)
    assert sell.state == INFORMED  # sparse OI: its z is not trusted, and no spike


# -- exhaustion conditions -------------------------------------------------------------------------
BASE_LPI = [20.0] * 9 + [19.0, 18.0, 17.0, 16.0]  # high, then rolling over for 4 ticks
BASE_PRICE = [100.0] * 9 + [99.5, 99.6, 99.8, 100.1]  # a dip, then above every level 1-3 s ago


def run(lpis=BASE_LPI, prices=BASE_PRICE, z_ldr_last=(5.0, 4.0), flush=True, name="sell", **kw):
    d = ExhaustionDetector(params(**kw), name)
    zl = [5.0] * (len(lpis) - 2) + list(z_ldr_last)
    out = False
    for lpi, px, z in zip(lpis, prices, zl):
        out = d.update(px, side(lpi=lpi, z_ldr=z, name=name), flush)
    return out, d.conditions


def test_all_five_conditions_hold_on_the_base_sequence():
    assert run() == (True, (True, True, True, True, True))


def test_panic_condition_lpi_above_hi():
    ok, c = run(lpis=[x / 10 for x in BASE_LPI])  # last LPI 1.6 < 3
    assert not ok and c == (False, True, True, True, True)


def test_rollover_needs_k_consecutive_declines():
    lpis = BASE_LPI[:-3] + [19.0, 19.5, 16.0]  # a rise inside the last three steps
    ok, c = run(lpis=lpis)
    assert not ok and c[1] is False and c[0] and c[4]
    ok, c = run(lpis=lpis, rollover_ticks=1)
    assert ok


def test_oi_flush_condition():
    ok, c = run(flush=False)
    assert not ok and c == (True, True, False, True, True)


def test_liquidity_reformation_needs_ldr_z_to_fall():
    ok, c = run(z_ldr_last=(4.0, 4.5))
    assert not ok and c == (True, True, True, False, True)


def test_divergence_price_stalled_while_lpi_lower():
    prices = BASE_PRICE[:-1] + [99.9]  # still below the levels 1-3 s ago: a new low
    ok, c = run(prices=prices)
    assert not ok and c == (True, True, True, True, False)
    ok, _ = run(prices=prices, divergence_price="new_low")  # the document's other reading
    assert ok
    lpis = BASE_LPI[:4] + [15.0] + BASE_LPI[5:]  # LPI 2 s ago was lower than now
    ok, c = run(lpis=lpis)
    assert not ok and c[4] is False
    ok, c = run(lpis=lpis, divergence_rule="any")  # some tau in [1 s, 3 s] is enough
    assert ok


def test_buy_side_mirrors_the_price_test():
    prices = [100.0] * 9 + [100.5, 100.4, 100.2, 99.9]  # a spike that stopped making new highs
    assert run(prices=prices, name="buy") == (True, (True, True, True, True, True))
    ok, c = run(prices=[100.0] * 12 + [100.2], name="buy")  # still making new highs
    assert not ok and c[4] is False


# -- the whole signal on crafted events ------------------------------------------------------------
def _judged(kind: str) -> list:
    m = CraftedMarket().calm(300)
    sig = LpiSignal("ETHUSDT", params())
    for ev in m.take():
        sig.on_event(ev, None, 1e12)
    out = []
    for ev in m.episode(2, kind).recovery(15).take():
        out += sig.on_event(ev, None, 1e12)
    return out


def test_crafted_forced_episode_is_forced_and_exhausts_after_it():
    judged = _judged("forced")
    states = [s.state for _, s, _ in judged]
    assert FORCED in states[:10]  # forced while it happens (impact sells and an OI flush)
    fired = [t.ts for t, s, _ in judged if s.exhausted and s.state == FORCED]
    assert fired, "no exhaustion"
    end = judged[0][0].ts + 2 * NS
    assert all(ts > end + 2 * NS for ts in fired)  # not while the price is still falling
    assert all(b.state == INFORMED for _, _, b in judged)  # no impact buys: the buy side is never forced


def test_crafted_informed_episode_is_not_forced():
    judged = _judged("informed")
    assert all(s.state == INFORMED for _, s, _ in judged)
    assert not any(s.exhausted for _, s, _ in judged)  # no OI flush: condition 3 fails too
    assert max(t.sell.lpi for t, _, _ in judged) > 100  # the pressure itself was just as violent


@pytest.mark.parametrize("tick_ms", [100, 250])
def test_tick_options_close_ticks_on_their_grid(tick_ms):
    sig = LpiSignal("ETHUSDT", params(tick_ms=tick_ms))
    m = CraftedMarket().calm(5)
    ticks = [t for ev in m.take() for t, _, _ in sig.on_event(ev, None, 1e12)]
    assert all(t.ts % (tick_ms * 1_000_000) == 0 for t in ticks)
    assert len(ticks) >= 5 * 1000 // tick_ms - 3  # all but the first and the still open one
