"""Random sequences of market events and commands against the whole cascade stack (strategy, risk,
approval, paper exchange), checking the invariants that must hold whatever happens:

* never two positions (or two working entries) in one symbol;
* never an order beyond the caps;
* never an entry sent while halted or past a loss limit;
* every position ends by TP, SL, timeout or flatten;
* no order price, trigger or qty off the instrument grid.
"""

from __future__ import annotations

from cascade_helpers import SPECS, World
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.orders import Purpose

SYMS = ["ETHUSDT", "SOLUSDT", "DOGEUSDT"]
EXIT_REASONS = {"tp", "sl", "timeout", "flatten"}

market_step = st.one_of(
    st.tuples(st.just("move"), st.sampled_from(SYMS), st.integers(-40, 40)),  # mid moves, in bps
    st.tuples(st.just("trade"), st.sampled_from(SYMS), st.sampled_from(["buy", "sell"]),
              st.integers(-40, 40)),
    st.tuples(st.just("liq"), st.sampled_from(SYMS), st.sampled_from(["long", "short"]),
              st.sampled_from([0.5, 1.0, 1.5, 3.0])),
    st.tuples(st.just("burst"), st.sampled_from(SYMS), st.sampled_from(["long", "short"]), st.integers(2, 3)),
    st.tuples(st.just("swing"), st.sampled_from(SYMS), st.sampled_from([-12, -6, 6, 12]), st.integers(1, 6)),
    st.tuples(st.just("wait"), st.sampled_from([0.05, 0.1, 0.3, 2.0, 30.0, 61.0, 400.0, 1900.0])),
)
command_step = st.one_of(
    st.just(("halt",)), st.just(("resume",)), st.just(("flatten",)), st.just(("cancel_all",)),
    st.tuples(st.just("approve"), st.integers(1, 6)), st.tuples(st.just("reject"), st.integers(1, 6)),
    st.just(("approve_all",)),
)
# One step in ten is a command (a flat one_of would weigh each of its 14 branches alike).
step = st.integers(0, 9).flatmap(lambda k: command_step if k == 0 else market_step)
steps = st.lists(step, min_size=10, max_size=80)
config = st.fixed_dictionaries({
    "approval": st.sampled_from(["auto", "manual"]),
    "cooldown_s": st.sampled_from([0.0, 300.0]),
    "max_open_symbols": st.sampled_from([1, 2, 4]),
    "daily_loss_limit_pct": st.sampled_from([0.05, 0.2, 1.0]),
    "weekly_loss_limit_pct": st.sampled_from([0.1, 2.0]),
})


class Checked:
    """A World whose broker checks every order it receives."""

    def __init__(self, cfg: dict):
        self.w = w = World(symbols=SYMS, approval={"mode": cfg["approval"]},
                           cascade={"cooldown_s": cfg["cooldown_s"]},
                           risk={"max_open_symbols": cfg["max_open_symbols"],
                                 "daily_loss_limit_pct": cfg["daily_loss_limit_pct"],
                                 "weekly_loss_limit_pct": cfg["weekly_loss_limit_pct"]})
        self.mid = {s: SPECS[s][0] for s in SYMS}
        self.entry_qty: dict[str, float] = {}
        submit = w.paper.submit

        def checked_submit(order):
            self.check_order(order)
            submit(order)
        w.paper.submit = checked_submit
        for s in SYMS:
            self.book(s)

    def book(self, sym: str) -> None:
        tick = SPECS[sym][1]
        m = round(round(self.mid[sym] / tick) * tick, 10)
        self.w.book(sym, round(m - tick, 10), round(m + tick, 10), size=50.0)

    def check_order(self, o) -> None:
        w, cfg = self.w, self.w.settings.risk
        inst = w.engine.instrument(o.symbol)
        assert inst.on_qty_grid(o.qty) and o.qty > 0, f"qty off grid: {o}"
        for p in (o.price, o.trigger_price):
            assert p is None or inst.on_price_grid(p), f"price off grid: {o}"
        if o.purpose is not Purpose.ENTRY:
            return
        now = w.now
        assert not w.engine.halted and not w.engine.flattening, f"entry while halted: {o}"
        assert w.risk.entries_blocked(now) == "", f"entry past a loss limit: {o}"
        assert now >= w.risk.state.cooldowns.get(o.symbol, 0), f"entry in cooldown: {o}"
        assert o.notional <= cfg.max_order_notional_usd and o.leverage <= min(cfg.max_leverage, 10.0)
        others = [x for x in w.engine.open_orders.values()
                  if x.purpose is Purpose.ENTRY and x.symbol == o.symbol and x.id != o.id]
        assert not others, f"second entry in {o.symbol}"
        pos = w.engine.portfolio.positions.get(o.symbol)
        assert pos is None or pos.qty == 0.0, f"entry on top of a position in {o.symbol}"
        busy = {p.symbol for p in w.engine.portfolio.open_positions()} | {
            x.symbol for x in w.engine.open_orders.values() if x.purpose is Purpose.ENTRY}
        assert len(busy) <= cfg.max_open_symbols, f"too many symbols: {busy}"
        self.entry_qty[o.symbol] = o.qty

    def check_state(self) -> None:
        w = self.w
        for s in SYMS:
            pos = w.engine.portfolio.positions.get(s)
            if pos is not None and pos.qty:
                assert abs(pos.qty) <= self.entry_qty.get(s, 0.0) + 1e-9, f"stacked position in {s}"
            assert abs(w.paper.positions.get(s, 0.0)) <= self.entry_qty.get(s, 0.0) + 1e-9
            entries = [o for o in w.orders(s, Purpose.ENTRY)]
            assert len(entries) <= 1
        for t in w.engine.portfolio.closed:
            assert t.exit_reason in EXIT_REASONS, t

    def run(self, step: tuple) -> None:
        w, kind = self.w, step[0]
        if kind == "move":
            _, sym, bps = step
            self.mid[sym] *= 1 + bps / 1e4
            self.book(sym)
        elif kind == "trade":
            _, sym, side, bps = step
            tick = SPECS[sym][1]
            w.trade(sym, side, round(round(self.mid[sym] * (1 + bps / 1e4) / tick) * tick, 10), 5.0)
        elif kind == "liq":
            _, sym, side, factor = step
            w.liq(sym, side, w.strategy.params[sym].seed_threshold_usd * factor, dt=0.5)
        elif kind == "swing":  # a run of moves, each with a print at the new price
            _, sym, bps, n = step
            for _ in range(n):
                self.run(("wait", 0.3))
                self.run(("move", sym, bps))
                self.run(("trade", sym, "sell" if bps < 0 else "buy", 0))
        elif kind == "burst":  # P95+ liquidations 0.5 s apart: a cascade
            _, sym, side, n = step
            for _ in range(n):
                w.liq(sym, side, w.strategy.params[sym].seed_threshold_usd * 1.5, dt=0.5)
        elif kind == "wait":
            w.wait(step[1])
            for s in SYMS:
                self.book(s)  # keep books fresh so that entries are possible
        elif kind in ("approve", "reject"):
            getattr(w.engine, kind)(step[1])
        else:
            getattr(w.engine, kind)()


@settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(config, steps)
def test_invariants_hold_for_any_sequence_of_events_and_commands(cfg, seq):
    c = Checked(cfg)
    for step in seq:
        c.run(step)
        c.check_state()
    # In the end every position must be closed by one of the four exits: flatten what is left.
    c.w.engine.flatten()
    c.w.wait(1.0)
    c.check_state()
    assert c.w.engine.flat_confirmed and c.w.engine.is_flat and c.w.paper.is_flat()
    assert all(t.exit_reason in EXIT_REASONS for t in c.w.engine.portfolio.closed)
