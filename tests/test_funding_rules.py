"""The seven rebalancing rules and the two presets (engine/funding/rules.py), as scenarios."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.config import ConfigError, load_config
from engine.events import NS
from engine.funding import rules as R
from engine.funding.types import FundingSnapshot, Opportunity, PairPosition

H = 3600 * NS
T0 = 1_736_121_600 * NS  # 2025-01-06 00:00 UTC


def snap(venue: str, rate_h: float, interval_h: float = 8.0, oi: float = 1e9, next_ts: int = T0 + 8 * H,
         symbol: str = "BTCUSDT") -> FundingSnapshot:
    return FundingSnapshot(venue, symbol, rate_h * interval_h, interval_h, next_ts, 100_000.0, oi, T0)


def pair(entry_div: float = 4e-5, size: float = 10_000.0, opened: int = T0) -> PairPosition:
    return PairPosition("BTCUSDT", "a", "b", Decimal(str(size)), Decimal("0"), Decimal(str(entry_div)),
                        Decimal(str(entry_div)), opened, opened, "open")


def rates(div: float, now: int = T0 + H, best_div: float | None = None, long_oi: float = 1e9,
          short_oi: float = 1e9, long_next: int = T0 + 8 * H, short_next: int | None = None,
          long_rate_h: float = 0.0) -> R.PairRates:
    long = snap("a", long_rate_h, oi=long_oi, next_ts=long_next)
    short = snap("b", long_rate_h + div, oi=short_oi, next_ts=long_next if short_next is None else short_next)
    best = None
    if best_div is not None:
        best = Opportunity("BTCUSDT", snap("c", 0.0), snap("d", best_div), best_div, 0.0)
    return R.PairRates(long, short, now, best)


# -- 1. profit erosion -------------------------------------------------------------------------------
def test_profit_erosion_fires_below_three_tenths_of_entry():
    assert R.profit_erosion(1e-4, 0.31e-4) == (False, None)
    assert R.profit_erosion(1e-4, 0.29e-4) == (True, "PROFIT_EROSION")
    assert R.profit_erosion(1e-4, 0.49e-4, threshold=0.5) == (True, "PROFIT_EROSION")  # conservative
    assert R.profit_erosion(0.0, -1.0) == (False, None)  # no entry edge: the rule has nothing to measure


# -- 2. divergence flip -------------------------------------------------------------------------------
def test_divergence_flip_is_any_negative_divergence():
    assert R.divergence_flipped(0.0) == (False, None)
    assert R.divergence_flipped(-1e-9) == (True, "DIVERGENCE_FLIPPED")


# -- 3. better opportunity, cost-aware ----------------------------------------------------------------
def test_better_opportunity_needs_gain_over_cost_above_a_tenth_of_a_percent():
    size = 10_000.0
    # 24 h x (best - current) x size - 8 bps x size > 0.1% x size  <=>  best - current > 0.0018 / 24 = 7.5e-5 /h
    assert R.better_opportunity(size, 1e-5, 1e-5 + 7.4e-5) == (False, None)
    assert R.better_opportunity(size, 1e-5, 1e-5 + 7.6e-5) == (True, "BETTER_OPPORTUNITY")
    assert R.better_opportunity(size, 1e-5, None) == (False, None)
    # without the 8 bps cost the same gap would be plenty: the cost is what holds it back
    assert R.better_opportunity(size, 1e-5, 1e-5 + 4.5e-5, cost_bps=0.0) == (True, "BETTER_OPPORTUNITY")
    assert R.better_opportunity(size, 1e-5, 1e-5 + 4.5e-5) == (False, None)


# -- 4. time limit ----------------------------------------------------------------------------------------
def test_time_limit_at_72_hours():
    assert R.time_limit(T0, T0 + 72 * H - NS) == (False, None)
    assert R.time_limit(T0, T0 + 72 * H) == (True, "TIME_LIMIT")


# -- 5. pre-funding exit, both readings -------------------------------------------------------------------
def test_pre_funding_exit_window_and_readings():
    nxt = T0 + 8 * H
    assert R.pre_funding_exit(nxt, nxt - 901 * NS, mode="exit") == (False, None)
    assert R.pre_funding_exit(nxt, nxt - 899 * NS, mode="exit") == (True, "PRE_FUNDING_EXIT")
    assert R.pre_funding_exit(nxt, nxt, mode="exit") == (False, None)  # 0 < time_until, strictly
    # "collect": hold through a settlement that pays the pair, leave before one that costs it
    assert R.pre_funding_exit(nxt, nxt - 600 * NS, mode="collect", pair_payment=1e-4) == (False, None)
    assert R.pre_funding_exit(nxt, nxt - 600 * NS, mode="collect", pair_payment=-1e-4) == (True, "PRE_FUNDING_EXIT")


def test_pair_payment_at_the_long_venues_settlement():
    # long venue 8 h at +0.01% pays; the short venue settles at the same instant at +0.03%: the pair receives
    r = rates(div=2.5e-5, long_rate_h=1.25e-5)
    assert r.payment_at_long_funding() == pytest.approx(-1e-4 + 3e-4)
    # the short venue settles elsewhere in time: only the long leg's payment is due
    r = rates(div=2.5e-5, long_rate_h=1.25e-5, short_next=T0 + 4 * H)
    assert r.payment_at_long_funding() == pytest.approx(-1e-4)


# -- 6. OI imbalance ----------------------------------------------------------------------------------------
def test_oi_imbalance_beyond_three_or_below_a_third():
    assert R.oi_imbalance(3e9, 1e9) == (False, None)
    assert R.oi_imbalance(3.01e9, 1e9) == (True, "OI_IMBALANCE")
    assert R.oi_imbalance(0.34e9, 1e9) == (False, None)
    assert R.oi_imbalance(0.32e9, 1e9) == (True, "OI_IMBALANCE")


# -- 7. combined, in the document's order ---------------------------------------------------------------------
def test_combined_rule_order():
    kw = dict(size_usd=10_000.0, opened_at=T0)
    # flip beats everything, even an age past a week and a much better pair
    assert R.combined(4e-5, -1e-6, best_divergence=1e-3, now=T0 + 200 * H, **kw) == (True, "DIVERGENCE_FLIPPED")
    # severe erosion (below 0.2x) before better opportunity
    assert R.combined(4e-5, 0.7e-5, best_divergence=1e-3, now=T0 + H, **kw) == (True, "SEVERE_EROSION")
    # 0.25x entry is not severe: the better opportunity comes next
    assert R.combined(4e-5, 1e-5, best_divergence=1e-3, now=T0 + H, **kw) == (True, "BETTER_OPPORTUNITY")
    # no better pair: the weekly age exit
    assert R.combined(4e-5, 1e-5, best_divergence=None, now=T0 + 168 * H, **kw) == (True, "WEEKLY_REBALANCE")
    assert R.combined(4e-5, 1e-5, best_divergence=None, now=T0 + 167 * H, **kw) == (False, None)
    # the better-opportunity step can be switched off
    assert R.combined(4e-5, 1e-5, best_divergence=1e-3, now=T0 + H, enable_better=False, **kw) == (False, None)


def test_should_rebalance_runs_the_configured_rules_in_order():
    strat = R.RebalanceStrategy(R.RuleParams())
    p = pair(entry_div=4e-5)
    assert strat.should_rebalance(p, rates(4e-5)) == (False, None)
    assert strat.should_rebalance(p, rates(1.1e-5)) == (True, "PROFIT_EROSION")  # 0.275x: erosion, not severe
    assert strat.should_rebalance(p, rates(0.5e-5)) == (True, "SEVERE_EROSION")  # combined comes first
    assert strat.should_rebalance(p, rates(4e-5, long_oi=4e9)) == (True, "OI_IMBALANCE")
    # the best opportunity being the pair itself is not a better one
    same = R.PairRates(snap("a", 0.0), snap("b", 4e-5), T0 + H,
                       Opportunity("BTCUSDT", snap("a", 0.0), snap("b", 4e-5), 4e-5, 0.0))
    assert strat.should_rebalance(p, same) == (False, None)
    only_time = R.RebalanceStrategy(R.RuleParams(rules=("TIME_LIMIT", "PRE_FUNDING_EXIT"), pre_funding_mode="exit"))
    assert only_time.should_rebalance(p, rates(-1e-4, now=T0 + 73 * H)) == (True, "TIME_LIMIT")
    assert only_time.should_rebalance(p, rates(4e-5, now=T0 + 8 * H - 60 * NS)) == (True, "PRE_FUNDING_EXIT")


# -- presets -------------------------------------------------------------------------------------------------------
def test_presets_are_the_documents_exactly():
    assert R.PRESETS == {
        "conservative": {"min_erosion_threshold": 0.5, "rebalance_cost_bps": 8, "min_profit_improvement": 0.002,
                         "max_position_age_hours": 168, "enable_better_opportunity": True,
                         "check_interval_seconds": 60},
        "aggressive": {"min_erosion_threshold": 0.7, "rebalance_cost_bps": 8, "min_profit_improvement": 0.0005,
                       "max_position_age_hours": 48, "enable_better_opportunity": True,
                       "check_interval_seconds": 60}}


@pytest.mark.parametrize("name,erosion,improve,age", [("conservative", 0.5, 0.002, 168),
                                                       ("aggressive", 0.7, 0.0005, 48), ("none", 0.3, 0.001, 168)])
def test_preset_selected_by_name_drives_the_rules(name, erosion, improve, age):
    cfg = load_config(None, {"funding_arb": {"preset": name}}).funding_arb
    got = (cfg.min_erosion_threshold, cfg.min_profit_improvement, cfg.max_position_age_hours)
    assert got == (erosion, improve, age)
    strat = R.RebalanceStrategy(R.RuleParams.from_config(cfg))
    p = pair(entry_div=4e-5)
    # divergence at 0.6x entry: only the aggressive preset (exit at 30% profit loss) leaves
    assert strat.should_rebalance(p, rates(2.4e-5))[0] is (name == "aggressive")
    # 50 h old: only the aggressive preset's 48 h age limit fires (as the combined rule's age exit)
    assert strat.should_rebalance(p, rates(4e-5, now=T0 + 50 * H)) == (
        (True, "WEEKLY_REBALANCE") if name == "aggressive" else (False, None))
    # a pair better by 6e-5/h for 24 h on 10k: gain 14.4 - cost 8 = 6.4 USD = 0.064% of size
    better = strat.should_rebalance(p, rates(4e-5, best_div=10e-5))
    assert better == ((True, "BETTER_OPPORTUNITY") if name == "aggressive" else (False, None))


def test_an_explicit_key_wins_over_the_preset_and_bad_values_are_one_line_errors():
    cfg = load_config(None, {"funding_arb": {"preset": "aggressive", "max_position_age_hours": 24}}).funding_arb
    assert cfg.max_position_age_hours == 24 and cfg.min_erosion_threshold == 0.7
    with pytest.raises(ConfigError, match="funding_arb.preset"):
        load_config(None, {"funding_arb": {"preset": "yolo"}})
    with pytest.raises(ConfigError, match="prioritize_dexes"):
        load_config(None, {"funding_arb": {"prioritize_dexes": ["nosuch"]}})
