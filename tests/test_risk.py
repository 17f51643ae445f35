"""The risk gate: grid rounding, caps, position limits, cooldowns, blacklist and loss limits."""

from __future__ import annotations

import json

import pytest
from cascade_helpers import World

from engine.config import ConfigError, load_config
from engine.events import NS
from engine.orders import Fill, OrderType, PlaceOrder, Purpose

ETH = "ETHUSDT"


def entry(sym: str = ETH, qty: float = 1.0, price: float = 2490.0, side: str = "buy", lev: float = 5.0,
          **kw) -> PlaceOrder:
    kw.setdefault("strategy", "test")
    return PlaceOrder(sym, side, qty, price, OrderType.LIMIT, post_only=True, purpose=Purpose.ENTRY,
                      leverage=lev, **kw)


def world(**sections) -> World:
    w = World(symbols=["BTCUSDT", ETH, "SOLUSDT", "XRPUSDT", "DOGEUSDT"], **sections)
    for sym, mid in (("BTCUSDT", 100_000.0), (ETH, 2500.0), ("SOLUSDT", 180.0), ("XRPUSDT", 2.0),
                     ("DOGEUSDT", 0.3)):
        w.around(sym, mid)
    return w


def reason(w: World, intent: PlaceOrder) -> str:
    d = w.risk.check(intent, w.engine)
    return "" if d.ok else d.reason


def close_trade(w: World, pnl: float, sym: str = ETH) -> None:
    """A round trip of 1 unit at 2500 that makes `pnl` USD (no fees), straight into the engine."""
    n = len(w.engine.portfolio.closed)
    w.engine.on_fill(Fill(w.now, f"b{n}", sym, "buy", 2500.0, 1.0, 0.0, "maker"))
    w.engine.on_fill(Fill(w.now, f"s{n}", sym, "sell", 2500.0 + pnl, 1.0, 0.0, "maker"))
    assert len(w.engine.portfolio.closed) == n + 1


def test_prices_and_quantities_go_on_the_grid_never_more_aggressive():
    w = world()
    buy = entry(qty=1.23456, price=2490.017)
    assert reason(w, buy) == ""
    assert (buy.qty, buy.price) == (1.23, 2490.01)  # qty rounds down; a buy limit rounds down
    sell = entry(side="sell", qty=0.019, price=2510.011)
    sell.qty = 1.019
    assert reason(w, sell) == "" and sell.price == 2510.02  # a sell limit rounds up
    stop = PlaceOrder(ETH, "sell", 1.0, None, OrderType.STOP, trigger_price=2480.004, reduce_only=True,
                      purpose=Purpose.STOP_LOSS)
    assert reason(w, stop) == "" and stop.trigger_price == 2480.0
    assert "rounds to zero" in reason(w, entry(qty=0.004))


@pytest.mark.parametrize("qty,price,trigger", [(0.0, 2490.0, None), (-1.0, 2490.0, None),
                                               (float("nan"), 2490.0, None), (1.0, float("inf"), None),
                                               (1.0, -5.0, None), (1.0, None, float("nan"))])
def test_bad_numbers_are_refused_not_crashed_on(qty, price, trigger):
    w = world()
    bad = PlaceOrder(ETH, "sell", qty, price, OrderType.LIMIT if price else OrderType.STOP,
                     trigger_price=trigger, purpose=Purpose.STOP_LOSS)
    assert reason(w, bad).startswith("invalid order")  # exits too: nothing can put garbage on the wire


def test_exits_are_only_rounded_never_blocked():
    w = world(risk={"blacklist": [ETH]})
    w.risk.state.daily.blocked_until = w.now + NS * 3600
    w.risk.state.cooldowns[ETH] = w.now + NS * 3600
    exit_ = PlaceOrder(ETH, "sell", 50.0, None, OrderType.MARKET, reduce_only=True, purpose=Purpose.EXIT)
    assert reason(w, exit_) == ""  # far above every cap, blacklisted, limit hit: it still passes
    assert reason(w, entry()) != ""


def test_blacklist_from_config_and_at_runtime():
    w = world(risk={"blacklist": ["SOLUSDT"]})
    assert "blacklisted" in reason(w, entry("SOLUSDT", 10, 179.0))
    assert reason(w, entry()) == ""
    w.risk.blacklist_add(ETH)
    assert "blacklisted" in reason(w, entry())
    w.risk.blacklist_remove(ETH)
    assert reason(w, entry()) == ""


def test_leverage_cap_is_hard_at_10x():
    w = world()
    assert reason(w, entry(lev=10.0)) == ""
    assert "above the 10x cap" in reason(w, entry(lev=12.0))
    with pytest.raises(ConfigError, match="max_leverage"):
        load_config(None, {"risk": {"max_leverage": 20}})


def test_min_and_max_order_notional():
    w = world()
    assert "below the minimum" in reason(w, entry("DOGEUSDT", 10, 0.29))  # 2.9 USD < 5 USD
    assert "order cap" in reason(w, entry(qty=2.1, price=2490.0))  # 5,229 USD > 5,000 USD
    assert reason(w, entry(qty=2.0, price=2490.0)) == ""


def test_one_position_and_one_working_entry_per_symbol():
    w = world()
    w.engine.place(entry())
    assert "working entry" in reason(w, entry())
    w.wait(0.2)
    w.trade(ETH, "sell", 2489.0, 1.0)
    w.wait(0.2)
    assert w.position() == 1.0
    assert "already has a position" in reason(w, entry())


def test_layers_of_one_layered_quote_share_the_symbol_slot_but_not_the_caps():
    w = world(risk={"max_total_notional_usd": 6000.0})
    assert w.engine.place(entry(qty=1.0, price=2490.0, strategy="lpi", meta={"layer": 1})) is not None
    assert reason(w, entry(qty=0.5, price=2489.99, strategy="lpi", meta={"layer": 2})) == ""
    assert w.engine.place(entry(qty=0.5, price=2489.99, strategy="lpi", meta={"layer": 2})) is not None
    # not a layer, another strategy, or the other side: still one working entry per symbol
    assert "working entry" in reason(w, entry(qty=0.1, strategy="lpi"))
    assert "working entry" in reason(w, entry(qty=0.1, strategy="cascade", meta={"layer": 3}))
    assert "working entry" in reason(w, entry(qty=0.1, price=2600.0, side="sell", strategy="lpi", meta={"layer": 3}))
    # layers still count against the total notional cap: 3,735 working + 2,490 > 6,000
    assert "total notional" in reason(w, entry(qty=1.0, price=2489.98, strategy="lpi", meta={"layer": 3}))


def test_at_most_four_symbols_with_positions_or_entries():
    w = world()
    for sym, px, q in (("BTCUSDT", 99_000.0, 0.03), (ETH, 2490.0, 1.0), ("SOLUSDT", 179.0, 10.0),
                       ("XRPUSDT", 1.99, 1000.0)):
        assert w.engine.place(entry(sym, q, px)) is not None
    assert "4 symbols already in use (max 4)" in reason(w, entry("DOGEUSDT", 5000, 0.29))


def test_total_notional_and_account_leverage_caps():
    w = world(risk={"max_total_notional_usd": 6000.0})
    w.engine.place(entry(qty=1.6, price=2490.0))  # 3,984 USD working
    assert "total notional" in reason(w, entry("SOLUSDT", 15.0, 179.0))  # + 2,685 > 6,000
    w2 = world(engine={"account_equity_usd": 500.0})
    w2.engine.place(entry(qty=1.0, price=2490.0))
    assert "account leverage" in reason(w2, entry("SOLUSDT", 15.0, 179.0))  # 5,175 / 500 > 10x


def test_stale_book_or_no_price_blocks_entries():
    w = world()
    w.wait(11)
    assert "stale" in reason(w, entry())
    w.around(ETH, 2500.0)
    assert reason(w, entry()) == ""
    assert "no market price" in reason(w, PlaceOrder("NEWUSDT", "buy", 1.0, None, OrderType.MARKET))


def test_a_live_feed_resyncing_the_book_blocks_entries_on_that_symbol_only():
    w = world()
    w.around(ETH, 2500.0)
    w.engine.feed_states[f"book.{ETH}"] = "RECONNECTING"
    assert reason(w, entry()) == f"{ETH} book is RECONNECTING"
    assert reason(w, entry("SOLUSDT", 10, 179.0)) == ""
    w.engine.feed_states[f"book.{ETH}"] = "LIVE"
    assert reason(w, entry()) == ""


def test_cooldown_after_a_closed_trade_uses_the_strategy_setting():
    w = world()
    w.engine.place(entry(strategy="cascade"))
    w.wait(0.2)
    w.trade(ETH, "sell", 2489.0, 1.0)
    w.wait(0.2)
    w.wait(0.5)  # the cascade strategy's take profit is already through the book: closed
    assert w.position() == 0.0 and w.closed()[-1].strategy == "cascade"
    assert "cooldown for 300 s more" in reason(w, entry())
    assert reason(w, entry("SOLUSDT", 10, 179.0)) == ""  # only that symbol
    w.wait(299)
    w.around(ETH, 2500.0)
    assert "cooldown" in reason(w, entry())
    w.wait(1)
    w.around(ETH, 2500.0)
    assert reason(w, entry()) == ""


def test_rejections_reach_the_log_and_the_strategy():
    w = world(risk={"blacklist": [ETH]})
    assert w.engine.place(entry(strategy="cascade")) is None
    assert w.log_has("REJECT ETHUSDT buy 1 @ 2490.0: ETHUSDT is blacklisted")


def test_daily_loss_limit_stops_entries_until_the_next_utc_day():
    w = world()
    w.wait(10 * 3600)
    w.around(ETH, 2500.0)
    close_trade(w, -60.0)
    assert reason(w, entry()) == ""
    close_trade(w, -45.0)  # 105 USD lost today: 1.05% of the 10,000 USD the day started with
    r = reason(w, entry())
    assert "daily loss limit reached (1.05% >= 1%)" in r and "2025-01-07 00:00 UTC" in r
    assert w.log_has("LOSS LIMIT daily: -105.00 USD is 1.05% of 10000.00 USD (limit 1%): no new entries "
                     "until 2025-01-07 00:00 UTC")
    assert w.risk.describe(w.now)["entries_blocked"] == "daily loss limit until 2025-01-07 00:00 UTC"
    assert w.engine.status()["risk"]["daily"]["loss_pct"] == 1.05
    w.wait(14 * 3600 - 1)
    w.around(ETH, 2500.0)
    assert "daily loss limit" in reason(w, entry())
    w.wait(1)  # midnight UTC
    w.around(ETH, 2500.0)
    assert reason(w, entry()) == ""


def test_weekly_loss_limit_stops_entries_until_next_monday():
    w = world()
    for day in range(3):  # Mon, Tue, Wed: 90 + 90 + 30 USD lost, never 1% in a day
        w.wait(3600)
        w.around(ETH, 2500.0)
        close_trade(w, -90.0 if day < 2 else -30.0)
        if day < 2:
            assert reason(w, entry()) == ""
            w.wait(23 * 3600)
    r = reason(w, entry())
    assert "weekly loss limit reached (2.10% >= 2%)" in r and "2025-01-13 00:00 UTC" in r
    assert w.risk.state.daily.blocked_until == 0
    w.wait((4 * 24 + 22) * 3600)  # to Sunday 23:00
    w.around(ETH, 2500.0)
    assert "weekly" in reason(w, entry())
    w.wait(3600)  # Monday 00:00
    w.around(ETH, 2500.0)
    assert reason(w, entry()) == ""


def test_loss_limits_are_configurable():
    w = world(risk={"daily_loss_limit_pct": 0.5})
    close_trade(w, -51.0)
    assert "daily loss limit reached (0.51% >= 0.5%)" in reason(w, entry())


def test_state_snapshot_is_json_and_restores():
    w = world()
    close_trade(w, -150.0)
    w.risk.state.cooldowns[ETH] = w.now + 60 * NS
    w.risk.blacklist_add("XRPUSDT")
    w.engine.halt("test")
    state = json.loads(json.dumps(w.risk.snapshot()))
    assert state["halted"] and state["halt_reason"] == "test"
    w2 = world()
    w2.risk.restore(state)
    assert w2.risk.snapshot() == state
    assert "daily loss limit" in reason(w2, entry())
    assert "blacklisted" in reason(w2, entry("XRPUSDT", 1000, 1.99))
    w2.engine.halted = False
    w2.engine.start()  # a halt restored from the store is back in force
    assert w2.engine.halted and w2.engine.halt_reason == "test"
