"""LIT's pure rules: funding annualization, score, entry conditions, leverage tiers and caps, exits,
the INTERVAL override and the retry classification (docs/strategies/lit.md)."""

from __future__ import annotations

import math

import pytest

from engine.config import ConfigError, LitConfig
from engine.strategies import lit_rules as r

CFG = LitConfig()


def test_funding_is_annualized_with_the_symbols_own_interval():
    assert r.annualized_funding_pct(0.0001, 8.0) == pytest.approx(10.95)
    assert r.annualized_funding_pct(0.0001, 4.0) == pytest.approx(21.9)
    assert r.annualized_funding_pct(-0.0002, 1.0) == pytest.approx(-175.2)


def test_score_is_two_at_both_thresholds_and_grows_with_each():
    assert r.imbalance_score(2.0, 15.0, CFG) == pytest.approx(2.0)
    assert r.imbalance_score(0.5, -15.0, CFG) == pytest.approx(2.0)  # crowded shorts, longs paid
    assert r.imbalance_score(4.0, 15.0, CFG) == pytest.approx(3.0)  # log: 4x counts one threshold more
    assert r.imbalance_score(2.0, 30.0, CFG) == pytest.approx(3.0)
    assert r.imbalance_score(2.0, -15.0, CFG) == pytest.approx(0.0)  # funding against the contrarian
    assert r.imbalance_score(1e9, 1e9, CFG) == pytest.approx(2 * CFG.score_cap)  # each term capped


@pytest.mark.parametrize(("ratio", "apr", "side", "why"), [
    (2.5, 20.0, "sell", ""),  # crowded longs, positive funding: short is paid
    (0.4, -20.0, "buy", ""),  # crowded shorts, negative funding: long is paid
    (1.9, 50.0, "", "ratio 1.90 below 2"),
    (1 / 1.9, -50.0, "", "ratio 1.90 below 2"),
    (2.5, 15.0, "", "needs > 15%"),  # support must exceed 15%, equal is not enough
    (2.5, -30.0, "", "needs > 15%"),  # crowded longs but longs are paid: no contrarian carry
    (0.4, 30.0, "", "needs > 15%"),
])
def test_entry_conditions(ratio, apr, side, why):
    sig = r.entry_signal(ratio, apr, CFG)
    assert sig.side == side
    assert why in sig.reason


@pytest.mark.parametrize(("crowd", "apr", "lev", "tier"), [
    (2.5, 20.0, 2.5, "base"),
    (3.1, 20.0, 3.0, "tier1"),
    (2.5, 26.0, 3.0, "tier1"),
    (3.0, 25.0, 2.5, "base"),  # "above": the thresholds themselves stay in the lower tier
    (5.1, 20.0, 3.75, "tier2"),
    (2.5, 41.0, 3.75, "tier2"),
])
def test_leverage_tiers(crowd, apr, lev, tier):
    assert r.leverage_for(crowd, apr, CFG, 100.0, 10.0) == (pytest.approx(lev), tier)


def test_leverage_caps_instrument_safety_and_risk():
    assert r.leverage_for(6.0, 50.0, CFG, 3.0, 10.0) == (3.0, "tier2 capped at 3x")  # instrument max
    big = LitConfig(base_leverage=4.0)
    assert r.leverage_for(6.0, 50.0, big, 100.0, 10.0) == (5.0, "tier2 capped at 5x")  # 6x -> 5x safety cap
    assert r.leverage_for(6.0, 50.0, big, 100.0, 4.5)[0] == 4.5  # the risk gate's cap


def exit_of(**kw):
    base = dict(side="short", entry_price=100.0, price=100.0, net_pnl=0.0, collateral=10.0, held_s=60.0,
                crowd=None, support_apr=None, crowd_is_same=True, cfg=CFG)
    return r.exit_reason(**{**base, **kw})


def test_exits_on_collateral_basis():
    assert exit_of(net_pnl=0.30) == "tp"  # 3% of 10 USD
    assert exit_of(net_pnl=0.29) == ""
    assert exit_of(net_pnl=-0.40) == "sl"
    assert exit_of(net_pnl=-0.39) == ""
    assert exit_of(held_s=86_400.0) == "max_hold"
    assert exit_of(held_s=86_399.0) == ""


def test_exits_on_price_basis():
    cfg = LitConfig(pnl_basis="price")
    assert exit_of(price=97.0, net_pnl=-5.0, cfg=cfg) == "tp"  # short, price down 3%: PnL ignored
    assert exit_of(price=104.0, cfg=cfg) == "sl"
    assert exit_of(side="long", price=103.0, cfg=cfg) == "tp"
    assert exit_of(side="long", price=96.5, cfg=cfg) == ""


def test_normalization_exit():
    assert exit_of(crowd=1.6, support_apr=20.0) == ""
    assert exit_of(crowd=1.4, support_apr=20.0) == "normalized"  # ratio back under 1.5
    assert exit_of(crowd=3.0, support_apr=0.0) == "normalized"  # funding no longer pays the contrarian
    assert exit_of(crowd=3.0, support_apr=20.0, crowd_is_same=False) == "normalized"  # the crowd flipped


def test_interval_env_overrides_the_config():
    assert r.interval_s(CFG, {}) == 1800.0
    assert r.interval_s(CFG, {"INTERVAL": "900"}) == 900.0
    for bad in ("abc", "0", "-5", "nan", "100000"):
        with pytest.raises(ConfigError, match="INTERVAL"):
            r.interval_s(CFG, {"INTERVAL": bad})


def test_backoff_doubles_and_retry_classification():
    assert [r.backoff_s(CFG, a) for a in (1, 2, 3)] == [5.0, 10.0, 20.0]
    assert r.retryable("bybit 10016: Service is busy")
    assert r.retryable("no liquidity or price for SOLUSDT")
    assert not r.retryable("bybit 110072: OrderLinkedID is duplicate")
    assert not r.retryable("approval #3 rejected by operator")
    assert not r.retryable("halted (manual): no new entries")


def test_crowding_of_degenerate_ratios():
    assert r.crowding(0.0) == math.inf
    assert r.crowd_side(1.0) == "none"
    assert r.contrarian_support(1.0, 50.0) == 0.0
