"""The funding_arb client on a real Engine (simulated clock) over venues with rates set by the
test: decisions, legging (and its failures), the monitor, funding booked per leg, persistence."""

from __future__ import annotations

from decimal import Decimal

from funding_helpers import T0, StaticVenue, make_service

from engine.clock import SimClock
from engine.config import load_config
from engine.engine import Engine
from engine.events import NS, Ticker
from engine.orders import Alert
from engine.strategies.funding_arb import FundingArbStrategy
from engine.venues.legs import LegResult, PaperLegs

MIN = 60 * NS


class Silent:
    """A venue that never answers an opening leg (closes fill like paper)."""

    def __init__(self, paper: PaperLegs):
        self.paper = paper
        self.pending: list = []

    def submit(self, order, done):
        if order.close:
            self.paper.submit(order, done)
        else:
            self.pending.append((order, done))

    def answer_late(self, now: int):
        for order, done in self.pending:
            snap = self.paper.price_of(order.venue, order.symbol)
            done(LegResult(order, True, now, order.size_usd / snap.mark, snap.mark, 0.0))
        self.pending.clear()


class World:
    def __init__(self, rates: dict[str, tuple[float, float, float]], symbols=("BTCUSDT",), reject: str = "",
                 **cfg):
        """rates: venue -> (interval h, rate per interval, OI USD), the same for every symbol."""
        cfg = {"preset": "none", "min_profit": 0.0, "leg_latency_ms": 100, **cfg}
        self.settings = load_config(None, {"engine": {"symbols": list(symbols), "log_file": ""},
                                           "funding_arb": cfg})
        self.clock = SimClock(T0)
        self.venues = {n: StaticVenue(n, i, {s: (r, oi) for s in symbols}) for n, (i, r, oi) in rates.items()}
        self.svc = make_service(list(self.venues.values()), list(symbols), self.clock, **cfg)
        self.lines: list[str] = []
        self.strategy = FundingArbStrategy(self.settings, list(symbols))
        self.engine = Engine(self.settings, clock=self.clock, strategies=[self.strategy], output=self.lines.append)
        self.engine.funding = self.svc
        self.notes = self.engine.notifier.subscribe(100_000)
        for n in rates:
            legs = PaperLegs(n, self.clock, self.svc.snapshot, 100 * 1_000_000, 2.0,
                             reject_rate=1.0 if n == reject else 0.0)
            self.svc.legs[n] = legs
        self.engine.start()
        for s in symbols:
            self.engine.dispatch(Ticker(T0, s, mark=100.0))

    def at(self, seconds: float) -> None:
        self.clock.advance_to(T0 + int(seconds * NS))

    def set_rate(self, venue: str, rate: float, oi: float | None = None) -> None:
        v = self.venues[venue]
        for s, (_r, o) in v.rates.items():
            v.rates[s] = (rate, o if oi is None else oi)

    def alerts(self) -> list[Alert]:
        return [p for k, p in self.notes.items if k == "alert"]

    @property
    def open(self):
        return [p for p in self.strategy.pairs.values() if p.status == "open"]


# rates per hour: a 1e-5 (8 h venue), b 6e-5 (1 h venue), c 2e-5 (4 h venue)
RATES = {"a": (8.0, 8e-5, 1e9), "b": (1.0, 6e-5, 1e9), "c": (4.0, 8e-5, 1e9)}


def test_opens_the_best_pair_with_both_legs_and_closes_on_erosion_with_funding_booked():
    w = World(RATES)
    w.at(60)  # first check
    assert len(w.strategy.pairs) == 1
    p = next(iter(w.strategy.pairs.values()))
    assert (p.symbol, p.long_dex, p.short_dex, p.status) == ("BTCUSDT", "a", "b", "pending_open")
    w.at(61)  # both legs answered after 100 ms
    assert p.status == "open" and p.legs["long"].state == p.legs["short"].state == "filled"
    assert p.size_usd == Decimal("2500.0")  # 25% of the 10,000 equity
    assert p.entry_divergence == Decimal(repr(5e-5)) and p.entry_long_rate == Decimal(repr(1e-5))
    assert p.legs["long"].qty == 25.0 and p.legs["long"].fees_usd == 0.5  # 2 bps of 2,500
    assert any("PAIR OPEN BTCUSDT long a" in a.message for a in w.alerts())
    # two hourly settlements on b: the short leg receives 6e-5 x 2,500 each time; a (8 h) has not settled
    w.at(2 * 3600 + 120)
    assert p.legs["short"].payments == 2 and abs(p.legs["short"].funding_usd - 2 * 6e-5 * 2500) < 1e-9
    assert p.legs["long"].payments == 0
    # b falls to 2.4e-5/h: divergence 1.4e-5 is 0.28x entry: PROFIT_EROSION (0.3), not yet SEVERE (0.2)
    w.set_rate("b", 2.4e-5)
    w.at(2 * 3600 + 180)
    assert p.status == "pending_close" and p.close_reason == "PROFIT_EROSION"
    w.at(2 * 3600 + 181)
    assert p.status == "closed" and not w.strategy.pairs
    assert w.strategy.run_summary()["close_reasons"] == {"PROFIT_EROSION": 1}
    assert abs(p.net_pnl_usd - (2 * 6e-5 * 2500 - 4 * 0.5)) < 1e-9  # flat marks: funding minus four leg fees
    assert any("by PROFIT_EROSION" in a.message for a in w.alerts())
    # the same pair waits out the cooldown (and the eroded a/b would fail the rule at once anyway)
    w.at(2 * 3600 + 240)
    assert all((pp.long_dex, pp.short_dex) != ("a", "b") for pp in w.strategy.pairs.values())


def test_one_leg_rejected_means_the_other_is_unwound_at_once():
    w = World(RATES, reject="b")
    w.at(60)
    p = next(iter(w.strategy.pairs.values()))
    w.at(60.1)  # both answers: long filled, short rejected -> the long leg is closed at once
    assert p.status == "pending_close" and p.close_reason.startswith("LEG_FAILED")
    assert p.legs["long"].state == "closing" and p.legs["short"].state == "rejected"
    w.at(60.2)
    assert p.status == "closed" and p.legs["long"].state == "closed" and not w.strategy.pairs
    s = w.strategy.run_summary()
    assert (s["leg_failures"], s["legs_unwound"], s["pairs_opened"], s["open_pairs"]) == (1, 1, 0, 0)
    assert any(a.kind == "funding_leg" and "unwinding" in a.message for a in w.alerts())


def test_a_silent_leg_is_abandoned_after_the_timeout_and_a_late_fill_unwound():
    w = World(RATES, leg_timeout_s=10)
    silent = Silent(w.svc.legs["b"])
    w.svc.legs["b"] = silent
    w.at(60)
    p = next(iter(w.strategy.pairs.values()))
    w.at(61)
    assert p.status == "pending_open" and p.legging_since == T0 + int(60.1 * NS)  # one-legged now
    w.at(70.2)  # leg_timeout_s after sending: abandoned, the filled long leg closed
    assert p.status == "pending_close" and p.close_reason == "LEG_TIMEOUT"
    assert p.legs["long"].state == "closed" and p.legs["short"].state == "abandoned"
    silent.answer_late(w.clock.now())  # the short fills after all: it is unwound as soon as heard
    w.at(70.4)
    assert p.status == "closed" and p.legs["short"].state == "closed"
    assert w.strategy.counts["unwound"] == 2 and not w.strategy.pairs


def test_limits_and_the_reason_the_best_is_not_taken():
    rates = {"a": (8.0, 8e-5, 1e9), "b": (1.0, 6e-5, 1e9), "c": (4.0, 8e-5, 1e9), "d": (1.0, 5e-5, 2e9),
             "e": (1.0, 9e-5, 5e9)}
    w = World(rates, symbols=("BTCUSDT", "ETHUSDT", "SOLUSDT"), max_per_venue=1, max_positions=2)
    w.at(60)
    w.at(61)
    w.at(120)
    w.at(121)
    pairs = list(w.strategy.pairs.values())
    # the best, long a / short e, has an OI ratio of 0.2: OI_IMBALANCE would close it at once
    assert any("best BTCUSDT long a / short e" in ln and "OI_IMBALANCE would close it at once" in ln for ln in w.lines)
    assert len(pairs) == 2  # max_per_venue 1: BTC a/b, then ETH d/e (a and b are taken)
    assert {(p.symbol, p.long_dex, p.short_dex) for p in pairs} == {("BTCUSDT", "a", "b"), ("ETHUSDT", "d", "e")}
    w.at(180)
    assert any("not taken: max positions (2) reached" in ln for ln in w.lines)
    assert w.strategy.run_summary()["best_skipped"]
    # halted: no new pairs, and the log says so
    for p in list(w.strategy.pairs.values()):
        w.strategy._close(p, w.clock.now(), "manual")
    w.at(181)
    w.engine.halt("test")
    w.at(600)
    assert not w.strategy.pairs and any("halted: no new pairs" in ln for ln in w.lines)


def test_better_opportunity_rebalances_into_the_better_pair():
    w = World(RATES, rules=["combined"])
    w.at(60)
    w.at(61)
    p = next(iter(w.strategy.pairs.values()))
    assert (p.long_dex, p.short_dex) == ("a", "b")
    w.set_rate("c", -40e-5)  # c now -1e-4/h: long c / short b earns 1.6e-4/h, 1.1e-4 more than the pair
    w.at(120)
    assert p.close_reason == "BETTER_OPPORTUNITY"
    w.at(121)
    w.at(180)
    w.at(181)
    new = next(iter(w.strategy.pairs.values()))
    assert (new.long_dex, new.short_dex, new.status) == ("c", "b", "open")
    assert w.strategy.run_summary()["pairs_rebalanced"] == 1


def test_pairs_survive_a_snapshot_and_restore():
    w = World(RATES)
    w.at(60)
    w.at(2 * 3600)
    state = w.strategy.snapshot()
    again = FundingArbStrategy(w.settings, ["BTCUSDT"])
    again.restore(state)
    a, b = next(iter(w.strategy.pairs.values())), next(iter(again.pairs.values()))
    assert a.to_dict() == b.to_dict() and isinstance(b.size_usd, Decimal) and b.id == a.id
    assert again.run_summary() == w.strategy.run_summary()


async def test_console_funding_pane_shows_opportunities_and_pairs():
    """Pilot: the funding pane appears with the funding_arb strategy and follows engine state."""
    from tui.app import LiqdeskApp
    from tui.screenshots import settle
    from tui.widgets.funding import FundingView

    w = World(RATES)
    w.at(60)
    w.at(61)
    app = LiqdeskApp(w.engine, None, settings=w.settings)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        view = app.query_one(FundingView)
        texts = [t for t, _c in view.rows]
        assert texts[0] == "Opportunities (3, 2 collections)"  # at the first event and 60 s later
        assert texts[1] == "BTCUSDT long a short b"
        assert "0.0050%/h 43.8% APR" in texts[2]
        assert "Pairs (1/3 open)" in texts and any(t.startswith("BTCUSDT a/b 2,500 USD") for t in texts)
        screen = "\n".join(strip.text for strip in app.screen._compositor.render_strips())
        assert "BTCUSDT long a short b" in screen
        w.set_rate("b", 0.5e-5)  # flips: the pair closes, the pane follows
        w.at(120)
        w.at(121)
        await settle(pilot)
        texts = [t for t, _c in view.rows]
        assert "Pairs (0/3 open)" in texts and any("DIVERGENCE_FLIPPED 1" in t for t in texts)


def test_a_pair_restored_while_legging_is_unwound_at_start():
    w = World(RATES)
    w.at(60)  # legs sent, no answer yet: the process "dies" here
    state = w.strategy.snapshot()
    w2 = World(RATES)
    w2.strategy.restore(state)
    p = next(iter(w2.strategy.pairs.values()))
    assert p.status == "pending_open"
    w2.strategy._armed = False
    w2.engine.dispatch(Ticker(T0 + 61 * NS, "BTCUSDT", mark=100.0))  # re-armed: the restored pair is dealt with
    assert p.status == "closed" and p.close_reason == "RESTART_UNWIND"
    assert any("in flight at the restart" in ln for ln in w2.lines)
