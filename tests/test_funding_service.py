"""The funding service: per-hour normalization, ranking across venues with different funding
intervals, the API's filters, and the seeded synthetic venues."""

from __future__ import annotations

import pytest
from funding_helpers import T0, H, make_service, three_venues

from engine.clock import SimClock
from engine.config import load_config
from engine.funding.service import FundingService, build_venues


def test_ranking_compares_rates_per_hour_not_per_interval():
    svc = make_service(three_venues())
    ranked = svc.collect(T0)
    btc = [o for o in ranked if o.symbol == "BTCUSDT"]
    # per hour: a 1e-5, c 2e-5, b 5e-5 -> best: long a, short b (4e-5/h), then long c short b, then long a short c
    assert [(o.long_dex, o.short_dex) for o in btc] == [("a", "b"), ("c", "b"), ("a", "c")]
    best = btc[0]
    assert best.divergence_h == pytest.approx(4e-5)
    assert best.as_dict()["divergence_annualized"] == pytest.approx(4e-5 * 8760)
    # expected profit: 24 h of divergence minus the 8 bps round trip
    assert best.expected_profit == pytest.approx(4e-5 * 24 - 8e-4)
    assert (best.long.oi_usd, best.short.oi_usd) == (2e9, 4e8)
    # every opportunity is long the lower rate per hour
    assert all(o.long.rate_h <= o.short.rate_h for o in ranked)
    # ranked across symbols by expected profit
    profits = [o.expected_profit for o in ranked]
    assert profits == sorted(profits, reverse=True)


def test_filters_symbol_min_profit_max_oi_and_prioritized_dexes():
    svc = make_service(three_venues())
    svc.collect(T0)
    assert {o.symbol for o in svc.opportunities(symbol="ETH")} == {"ETHUSDT"}
    assert {o.symbol for o in svc.opportunities(symbol="btcusdt")} == {"BTCUSDT"}
    assert svc.opportunities(symbol="DOGE") == []
    assert all(o.expected_profit >= 1e-4 for o in svc.opportunities(min_profit=1e-4))
    assert len(svc.opportunities(min_profit=1e-4)) == 1  # only BTC long a / short b: 4e-5 x 24 - 8e-4 = 1.6e-4
    # OI cap: both legs at or below it
    capped = svc.opportunities(max_oi_usd=5e8)
    assert capped and all(max(o.long.oi_usd, o.short.oi_usd) <= 5e8 for o in capped)
    assert {(o.symbol, o.long_dex, o.short_dex) for o in capped} == {("BTCUSDT", "c", "b"), ("ETHUSDT", "b", "c")}
    # prioritized venues first (both legs, then one), profit order kept inside each group
    pri = svc.opportunities(prioritize_dexes=["b", "c"])
    assert [(o.long_dex, o.short_dex) for o in pri[:2]] == [("c", "b"), ("b", "c")]
    assert svc.best(prioritize_dexes=["b", "c"]).key == ("BTCUSDT", "c", "b")
    assert svc.best(symbol="BTC", max_oi_usd=1.0) is None


def test_compare_and_stale_rates():
    svc = make_service(three_venues(), stale_after_s=120)
    svc.collect(T0)
    cmp = svc.compare("BTC", "a", "b")
    assert cmp["divergence_per_hour"] == pytest.approx(4e-5)
    assert (cmp["long_dex"], cmp["short_dex"]) == ("a", "b")
    assert svc.compare("BTC", "b", "a")["long_dex"] == "a"
    assert svc.compare("BTC", "a", "nosuch") is None and svc.compare("DOGE", "a", "b") is None

    class Frozen(type(svc.venues["a"])):
        def poll(self, now):
            return super().poll(T0)  # stuck at T0

    svc2 = make_service([Frozen("a", 8.0, {"BTCUSDT": (8e-5, 1e9)}), *three_venues()[1:]], stale_after_s=120)
    svc2.collect(T0 + 3 * 60 * 10**9)
    assert ("a", "BTCUSDT") not in svc2.rates and ("b", "BTCUSDT") in svc2.rates


def test_collection_runs_on_the_clock_every_check_interval():
    clock = SimClock(T0)
    svc = make_service(three_venues(), clock=clock, check_interval_seconds=60)
    svc.ensure_started(clock.now())
    clock.advance_to(T0 + 10 * 60 * 10**9)
    assert svc.collections == 11 and svc.last_collect == T0 + 600 * 10**9


def _synthetic(seed: int, hours: int) -> list[tuple]:
    settings = load_config(None, {"engine": {"seed": seed}})
    clock = SimClock(T0)
    symbols = ["BTCUSDT", "ETHUSDT"]
    venues = build_venues(settings, clock, symbols, lambda s: 50_000.0, seed)
    svc = FundingService(settings.funding_arb, venues, clock, symbols)
    out = []
    for i in range(hours):  # the paths step on their own 60 s grid, however often they are read
        svc.collect(T0 + i * H)
        out.append(tuple((k, round(s.rate_h, 12), s.interval_h) for k, s in sorted(svc.rates.items())))
    return out, svc


def test_synthetic_venues_are_seeded_and_diverge_then_converge():
    a, svc = _synthetic(3, 72)
    b, _ = _synthetic(3, 72)
    c, _ = _synthetic(4, 72)
    assert a == b and a != c
    # every configured venue, with its own interval (1, 4 and 8 h)
    assert {v.name: v.interval_h for v in svc.venues.values()} == {
        "bybit": 8.0, "binance": 8.0, "okx": 8.0, "hyperliquid": 1.0, "lighter": 1.0, "grvt": 4.0}
    # the widest BTC divergence moves: it widens and narrows over three days, inside a realistic band
    spreads = []
    for row in a:
        btc = [r for (v, s), r, _i in row if s == "BTCUSDT"]
        spreads.append(max(btc) - min(btc))
    assert max(spreads) > 2 * min(spreads)
    assert 1e-6 < sum(spreads) / len(spreads) < 5e-4  # per hour: 0.0001% .. 0.05% (0.9% .. 438% APR)


def test_synthetic_rates_do_not_depend_on_a_restart():
    """The paths step from the synthetic market's start: venues built fresh after a restart
    (nothing of theirs is saved) give the same rates as the ones that ran all along."""
    settings = load_config(None, {"engine": {"seed": 9}})
    later = T0 + 5 * H + 17 * 60 * 10**9

    def rates(polls: list[int]) -> dict:
        venues = build_venues(settings, SimClock(T0), ["BTCUSDT"], lambda s: 50_000.0, 9)
        for t in polls:
            out = {v.name: v.poll(t) for v in venues}
        return {n: [(s.rate, s.oi_usd, s.mark) for s in snaps] for n, snaps in out.items()}

    assert rates([T0, T0 + H, later]) == rates([later])
