"""Liquidity Pressure Index strategy (the LPI design document, sections 2 to 8; docs/strategies/lpi.md).

Per symbol and alpha tick, `LpiSignal` turns the features of `engine.lpi_features` into:

* a state per side, FORCED when z(FSI) > c_FSI and z(ΔOI) > c_OI (a liquidation spike
  stands in for the OI test while OI is sparse), else INFORMED; FORCED holds for
  `state_hold_s` after the last tick that met the test;
* the exhaustion flag E_t, all five of: LPI > LPI_hi; ΔLPI < 0 for K ticks; z(ΔOI) >
  z_OI_hi (same stand-in); Δz(LDR) < 0; and the divergence over τ in [1 s, 3 s]: LPI
  below its level τ ago while the price has stopped making new lows (not below its level
  τ ago; above for the buy side). The document also writes this test as "price makes a
  new low but LPI does not"; `divergence_price = "new_low"` selects that reading.

`LpiStrategy` trades Mode A (a layered PostOnly fade of forced flow once it exhausts,
behind a toxicity gate) and, off by default, Mode B (a small taker trend follower for
INFORMED pressure with its own cost model). `engine/backtest/study.py` runs the same
`LpiSignal` for the event study.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, NamedTuple

from ..events import NS, BookDelta, BookSnapshot, Liquidation, Ticker, Trade
from ..lpi_features import LpiFeatures, LpiTick, SidePressure
from ..orders import Alert, CancelOrder, ClosePosition, LogLine, OrderStatus, OrderType, PlaceOrder, Purpose
from .base import Gauge, Strategy

if TYPE_CHECKING:
    from ..book import OrderBook
    from ..config import LpiParams, Settings
    from ..engine import StrategyContext
    from ..orders import Fill, Intent, Order

FORCED = "FORCED"
INFORMED = "INFORMED"
SIDES = ("sell", "buy")  # sell: pressure down (fade = buy); buy: pressure up (fade = sell)
CONDITIONS = ("LPI>hi", "rollover", "OI flush", "LDR easing", "divergence")


def synthetic_settings(settings: Settings) -> tuple[Settings, str]:
    """Settings for a synthetic feed that LPI reads: at least one book snapshot per alpha tick
    (the market's default of one a second leaves three ticks in four without a new book)."""
    tick_s = min(settings.lpi.for_symbol(s).tick_ms for s in settings.engine.symbols) / 1000.0
    if settings.synthetic.book_interval_s <= tick_s:
        return settings, ""
    out = settings.model_copy(deep=True)
    out.synthetic.book_interval_s = tick_s
    return out, f"synthetic book interval {settings.synthetic.book_interval_s:g} s -> {tick_s:g} s for LPI"


def fade_side(pressure_side: str) -> str:
    """The order side that fades pressure: buy after a sell cascade, sell after a squeeze."""
    return "buy" if pressure_side == "sell" else "sell"


class StateClassifier:
    """FORCED / INFORMED for one side (section 8.3), with a hold after the last forced tick."""

    __slots__ = ("p", "hold_ns", "last_forced_ts", "state", "c_fsi")

    def __init__(self, params: LpiParams):
        self.p = params
        self.hold_ns = int(params.state_hold_s * NS)
        self.c_fsi = params.c_fsi
        self.last_forced_ts: int | None = None
        self.state = INFORMED

    def update(self, ts: int, side: SidePressure, oi_flush: bool) -> str:
        """`oi_flush`: the OI test passes (z(ΔOI) > c_OI, or a liquidation spike when OI is sparse)."""
        if oi_flush and side.z_fsi > self.c_fsi:
            self.last_forced_ts = ts
        last = self.last_forced_ts
        state = self.state = FORCED if last is not None and ts - last <= self.hold_ns else INFORMED
        return state


class ExhaustionDetector:
    """The five conditions of E_t for one side (section 8.4)."""

    __slots__ = ("p", "side", "lpis", "prices", "prev_z_ldr", "tau_lo", "tau_hi", "conditions", "k", "lpi_hi",
                 "all_taus", "new_low", "down", "falling")

    def __init__(self, params: LpiParams, side: str):
        self.p = params
        self.side = side
        tick_s = params.tick_ms / 1000.0
        self.tau_lo = max(1, round(params.divergence_min_s / tick_s))
        self.tau_hi = max(self.tau_lo, round(params.divergence_max_s / tick_s))
        n = max(params.rollover_ticks, self.tau_hi) + 1
        self.lpis: deque[float] = deque(maxlen=n)
        self.prices: deque[float] = deque(maxlen=n)
        self.prev_z_ldr: float | None = None
        self.conditions = (False,) * 5
        self.k = params.rollover_ticks
        self.lpi_hi = params.lpi_hi
        self.all_taus = params.divergence_rule == "all"
        self.new_low = params.divergence_price == "new_low"
        self.down = side == "sell"
        self.falling = 0  # how many ticks in a row LPI has been below the tick before

    def update(self, price: float, side: SidePressure, oi_flush: bool) -> bool:
        """Add a tick; returns E_t (and keeps which conditions held in `conditions`)."""
        lpis, prices = self.lpis, self.prices
        lpi = side.lpi
        # ΔLPI < 0 for each of the last K ticks: a run of falling ticks at least K long
        falling = self.falling = self.falling + 1 if lpis and lpi < lpis[-1] else 0
        c2 = falling >= self.k
        lpis.append(lpi)
        prices.append(price)
        n = len(lpis)
        c1 = lpi > self.lpi_hi
        z_ldr = side.z_ldr
        prev = self.prev_z_ldr
        c4 = prev is not None and z_ldr < prev
        self.prev_z_ldr = z_ldr
        c5 = False
        if n > self.tau_hi:
            # "stalled": not beyond the price τ ago (below it for sell pressure); "new_low": beyond it.
            # Every τ must pass ("all"), or one ("any"): stop at the first τ that decides.
            c5 = self.all_taus
            new_low, down = self.new_low, self.down
            for i in range(n - 1 - self.tau_lo, n - 2 - self.tau_hi, -1):
                past = prices[i]
                hit = ((price < past) if down else (price > past)) == new_low and lpi < lpis[i]
                if hit != c5:
                    c5 = hit
                    break
        self.conditions = (c1, c2, oi_flush, c4, c5)
        return c1 and c2 and oi_flush and c4 and c5


class SideSignal(NamedTuple):
    """One side's verdict at a tick (a named tuple, as `LpiTick`: built twice per tick and symbol)."""

    side: str
    state: str
    exhausted: bool
    conditions: tuple[bool, ...]


Judged = tuple[LpiTick, SideSignal, SideSignal]
_NO_TICKS: tuple = ()  # `on_event` when no tick closed


class LpiSignal:
    """Features, state and exhaustion of one symbol, fed market events in time order.

    `on_event(ev, book, liq_p95)` closes the ticks that ended before the event (each
    returned as (LpiTick, sell SideSignal, buy SideSignal)), then records the event.
    `book` is the symbol's order book *after* the event has been applied (the engine's
    MarketState.book, or the study's own); `liq_p95` the large-liquidation threshold
    used for the liquidation-spike stand-in.
    """

    def __init__(self, symbol: str, params: LpiParams):
        self.symbol = symbol
        self.p = params
        self.features = LpiFeatures(params)
        self.states = {s: StateClassifier(params) for s in SIDES}
        self.detectors = {s: ExhaustionDetector(params, s) for s in SIDES}
        self._pairs = tuple((s, self.states[s], self.detectors[s]) for s in SIDES)  # sell, buy
        self._c_oi, self._z_oi_hi = params.c_oi, params.z_oi_hi
        self.last: Judged | None = None

    def on_event(self, ev, book: OrderBook | None, liq_p95: float) -> list[Judged] | tuple[()]:
        f = self.features
        ts = ev.ts
        if ts <= f.next_tick:  # no tick due (`advance`'s first test, without the call)
            out = _NO_TICKS
        else:
            out = [self._judge(tick, liq_p95) for tick in f.advance(ts)]
        t = type(ev)
        if t is BookSnapshot:  # the most frequent event on an LPI feed (one per alpha tick)
            f.on_levels(ev.bids, ev.asks)
        elif t is Trade:
            f.on_trade(ev.price, ev.qty, ev.side)
        elif t is BookDelta:
            if book is not None:
                f.on_book(book)
        elif t is Ticker:
            f.on_ticker(ev.ts, ev.open_interest, ev.funding_rate)
        elif t is Liquidation:
            f.on_liquidation(ev.ts, ev.side, ev.notional)
        if out:
            self.last = out[-1]
        return out

    def _judge(self, tick: LpiTick, liq_p95: float) -> Judged:
        ts, price, sell, buy = tick.ts, tick.price, tick.sell, tick.buy
        (_, st_s, det_s), (_, st_b, det_b) = self._pairs
        if tick.oi_sparse:  # a liquidation spike on each side stands in for the OI tests
            lim = self.p.liq_spike_mult * liq_p95
            ok_s = liq_p95 > 0 and sell.liq_usd > lim
            ok_b = liq_p95 > 0 and buy.liq_usd > lim
            classify_s = flush_s = ok_s
            classify_b = flush_b = ok_b
        else:
            z_oi = tick.z_oi
            classify_s = classify_b = z_oi > self._c_oi
            flush_s = flush_b = z_oi > self._z_oi_hi
        ex_s = det_s.update(price, sell, flush_s)
        ex_b = det_b.update(price, buy, flush_b)
        return (tick, SideSignal("sell", st_s.update(ts, sell, classify_s), ex_s, det_s.conditions),
                SideSignal("buy", st_b.update(ts, buy, classify_b), ex_b, det_b.conditions))


# ------------------------------------------------------------------------------------------------
# the strategy
# ------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class SymbolTrade:
    """Where one symbol's trade is. Times are ns due times, so a restart can carry on."""

    mode: str = ""  # "" flat | "A" maker fade | "B" trend follower
    pressure: str = ""  # the pressure side traded: sell (fade = buy) or buy (fade = sell)
    side: str = ""  # our entry order side
    quote_until: int = 0  # Mode A keeps quoting until then (entry window after E_t)
    quoted_ts: int = 0  # when the working quotes were placed; 0 = none working
    retry_ts: int = 0  # no new quotes before this (after a refusal)
    target_usd: float = 0.0  # w, after the inventory cap
    entry_ts: int = 0  # first fill
    entry_price: float = 0.0
    sigma: float = 0.0  # σ at the trigger (a fraction): stop and target distances
    exit_reason: str = ""  # set when an exit has been sent
    exit_due: int = 0  # a resting maker exit becomes a market close at this time
    reduced: bool = False  # the BTC filter has cut this position once


class LpiStrategy(Strategy):
    name = "lpi"
    subscriptions = (Trade, BookSnapshot, BookDelta, Ticker, Liquidation)

    def __init__(self, settings: Settings, symbols: list[str]):
        super().__init__(settings, symbols)
        cfg = settings.lpi
        self.params = {s: cfg.for_symbol(s) for s in self.symbols}
        self.signals = {s: LpiSignal(s, self.params[s]) for s in self.symbols}
        self.trades = {s: SymbolTrade() for s in self.symbols}
        self.taker_fee_bps = settings.paper.taker_fee_bps
        self.btc = cfg.btc_symbol
        self.btc_prices: deque[tuple[int, float]] = deque()
        self.recent = {s: deque() for s in self.symbols}  # (ts, price) over mode_b_lookback_s, for Mode B
        self.was_exhausted = {s: {"sell": False, "buy": False} for s in self.symbols}
        self.cancelling: set[str] = set()  # order ids with a cancel on its way
        self.decisions: dict[str, int] = {}

    def _count(self, key: str) -> None:
        self.decisions[key] = self.decisions.get(key, 0) + 1

    # -- events ------------------------------------------------------------------------------------
    def on_event(self, ev, ctx: StrategyContext) -> list[Intent]:
        sig = self.signals.get(ev.symbol)
        if sig is None:
            return []
        m = ctx.market(ev.symbol)
        judged = sig.on_event(ev, m.book, m.liq_threshold.value)
        out: list[Intent] = []
        for tick, sell, buy in judged:
            if ev.symbol == self.btc:
                self._track_btc(tick.ts, tick.price)
            out += self._on_tick(ev.symbol, tick, sell, buy, ctx)
        return out

    def on_timer(self, now: int, key: str, ctx: StrategyContext) -> list[Intent]:
        """Safety net for quiet feeds: exits and quote ages are otherwise checked on ticks."""
        sym = key.partition(":")[2]
        sig = self.signals.get(sym)
        if sig is None or sig.last is None:
            return []
        return self._manage(sym, sig.last[0], ctx)

    def _on_tick(self, sym: str, tick: LpiTick, sell: SideSignal, buy: SideSignal,
                 ctx: StrategyContext) -> list[Intent]:
        st = self.trades[sym]
        p = self.params[sym]
        if p.mode_b:
            q = self.recent[sym]
            q.append((tick.ts, tick.price))
            while q[0][0] < tick.ts - int(p.mode_b_lookback_s * NS):
                q.popleft()
        was = self.was_exhausted[sym]
        rising = [s for s in (sell, buy) if s.exhausted and not was[s.side]]  # act once per exhaustion
        was["sell"], was["buy"] = sell.exhausted, buy.exhausted
        if st.mode:
            return self._manage(sym, tick, ctx)
        fired = [s for s in rising if s.state == FORCED]
        if fired and p.mode_a:
            best = max(fired, key=lambda s: tick.pressure(s.side).lpi)
            return self._start_fade(sym, tick, best, ctx)
        if p.mode_b:
            for s in (sell, buy):
                if s.state == INFORMED and tick.pressure(s.side).lpi > p.lpi_hi:
                    out = self._trend_entry(sym, tick, s, ctx)
                    if out:
                        return out
        return []

    # -- Mode A ------------------------------------------------------------------------------------
    def _start_fade(self, sym: str, tick: LpiTick, sig: SideSignal, ctx: StrategyContext) -> list[Intent]:
        p = self.params[sym]
        side = fade_side(sig.side)
        now = ctx.now
        pos = ctx.position(sym)
        if pos is not None and pos.is_open:
            self._count("skipped: position open")
            return []
        if ctx.halted:
            self._count("skipped: halted")
            return []
        crash = self._btc_move(now, p)
        if sym != self.btc and ((side == "buy" and crash < 0) or (side == "sell" and crash > 0)):
            self._count("skipped: BTC filter")
            return [LogLine(f"{sym} exhaustion ({sig.side} pressure) not faded: BTC moved {crash:+.0f} bps "
                            f"in {p.btc_crash_window_s:g} s", self.name)]
        lpi = tick.pressure(sig.side).lpi
        sigma = max(tick.sigma, 1e-6)
        w = p.w_max_usd * (p.sigma_ref_bps * 1e-4 / sigma) * math.tanh((lpi - p.lpi_hi) / 2.0)
        w = min(w, p.inventory_cap_usd)
        st = self.trades[sym]
        st.mode, st.pressure, st.side = "A", sig.side, side
        st.quote_until = now + int(p.entry_window_s * NS)
        st.target_usd = w
        st.sigma = sigma
        st.quoted_ts = st.retry_ts = 0
        self._count("exhaustion")
        ctx.set_timer(st.quote_until, f"tick:{sym}")
        head = (f"LPI {sym} {sig.side} pressure exhausted (FORCED): LPI {lpi:.3g}, z(dOI) {tick.z_oi:.2f}, "
                f"sigma {sigma * 1e4:.1f} bps -> fade {side.upper()} {w:,.0f} USD")
        data = {"symbol": sym, "pressure": sig.side, "side": side, "lpi": lpi, "z_oi": tick.z_oi,
                "z_pi": tick.z_pi, "sigma_bps": sigma * 1e4, "target_usd": w}
        return [Alert(sym, "lpi", head, self.name, data), *self._quote(sym, tick, ctx)]

    def _gate(self, sym: str, tick: LpiTick) -> str:
        """Why quotes must not rest now ("" = they may): the toxicity gate and the spread cap."""
        p = self.params[sym]
        if tick.z_pi >= p.z_pi_max:
            return f"toxicity gate: z(Pi) {tick.z_pi:.2f} >= {p.z_pi_max:g}"
        if tick.mid > 0 and tick.spread / tick.mid * 1e4 > p.spread_cap_bps:
            return f"spread {tick.spread / tick.mid * 1e4:.1f} bps > cap {p.spread_cap_bps:g}"
        return ""

    def _quote(self, sym: str, tick: LpiTick, ctx: StrategyContext) -> list[Intent]:
        """Layered PostOnly quotes at the touch and `layer_ticks` behind it, within the inventory cap."""
        st, p = self.trades[sym], self.params[sym]
        now = ctx.now
        if now < st.retry_ts or self._gate(sym, tick):
            return []
        book = ctx.market(sym).book
        touch = book.best_bid if st.side == "buy" else book.best_ask
        if touch is None:
            return []
        inst = ctx.instrument(sym)
        pos = ctx.position(sym)
        held = abs(pos.qty) * touch if pos is not None and pos.is_open else 0.0
        budget = min(st.target_usd, p.inventory_cap_usd) - held
        step = -inst.tick_size if st.side == "buy" else inst.tick_size
        out: list[Intent] = []
        for i, (k, wt) in enumerate(zip(p.layer_ticks, p.layer_weights)):
            price = inst.round_price(touch + k * step)  # the touch is on the grid: nearest undoes float error
            qty = inst.round_qty(budget * wt / price)
            if qty < inst.min_qty or qty * price < inst.min_notional:
                continue
            out.append(PlaceOrder(sym, st.side, qty, price, OrderType.LIMIT, post_only=True,
                                  purpose=Purpose.ENTRY, strategy=self.name, leverage=p.leverage,
                                  reason=f"LPI fade layer {i + 1}: {k} ticks behind the touch",
                                  meta={"layer": i + 1, "pressure": st.pressure}))
        if out:
            st.quoted_ts = now
            self._count("quoted")
        return out

    def _manage(self, sym: str, tick: LpiTick, ctx: StrategyContext) -> list[Intent]:
        st = self.trades[sym]
        pos = ctx.position(sym)
        holding = pos is not None and pos.is_open
        entries = [o for o in ctx.orders(sym) if o.purpose is Purpose.ENTRY]
        now = ctx.now
        if st.entry_ts and not holding:  # the position is gone (exit filled, flatten, manual close)
            return self._finish(sym, entries, "position closed")
        if holding and not st.entry_ts:
            st.entry_ts, st.entry_price = now, pos.entry_price
            ctx.set_timer(now + int(self._hold_limit_s(sym) * NS), f"tick:{sym}")
        out: list[Intent] = []
        if st.mode == "A" and not st.exit_reason:
            out += self._manage_quotes(sym, tick, entries, holding, ctx)
            if not self.trades[sym].mode:  # the entry window closed without a fill
                return out
        if holding:
            out += self._exits(sym, tick, pos, entries, ctx)
        return out

    def _manage_quotes(self, sym: str, tick: LpiTick, entries: list, holding: bool,
                       ctx: StrategyContext) -> list[Intent]:
        """Cancel and replace: when the gate fails again, the spread passes its cap, the quotes age
        past `quote_ttl_s`, or the entry window ends."""
        st, p = self.trades[sym], self.params[sym]
        now = ctx.now
        if now >= st.quote_until:
            if not holding:
                return self._finish(sym, entries, "entry window over")
            return self._cancel(entries, "entry window over")
        why = self._gate(sym, tick)
        if entries:
            if why:
                st.quoted_ts = 0
                return self._cancel(entries, why)
            if st.quoted_ts and now - st.quoted_ts >= p.quote_ttl_s * NS:
                st.quoted_ts = 0
                return self._cancel(entries, f"quotes older than {p.quote_ttl_s:g} s: replace")
            return []
        if holding:  # the risk gate allows one position per symbol: no new layers once filled
            return []
        return self._quote(sym, tick, ctx)

    # -- exits ---------------------------------------------------------------------------------------
    def _hold_limit_s(self, sym: str) -> float:
        p = self.params[sym]
        return p.mode_b_hold_s if self.trades[sym].mode == "B" else p.time_stop_s

    def _exits(self, sym: str, tick: LpiTick, pos, entries: list, ctx: StrategyContext) -> list[Intent]:
        st, p = self.trades[sym], self.params[sym]
        now = ctx.now
        long = pos.qty > 0
        move = (tick.price / pos.entry_price - 1.0) * (1 if long else -1) if pos.entry_price else 0.0
        if st.exit_reason:
            if st.exit_due and now >= st.exit_due:  # the maker exit did not fill in time
                st.exit_due = 0
                return [LogLine(f"{sym} maker exit unfilled after {p.exit_maker_s:g} s: close at market",
                                self.name), ClosePosition(sym, self.name, st.exit_reason)]
            return []
        sigma = max(st.sigma, 1e-6)
        if move <= -p.stop_sigma * sigma:
            return self._close(sym, "sl", f"stop: {move * 1e4:+.1f} bps, beyond {p.stop_sigma:g} sigma "
                               f"({sigma * 1e4:.1f} bps)")
        if now - st.entry_ts >= self._hold_limit_s(sym) * NS:
            return self._close(sym, "timeout", f"time stop: {self._hold_limit_s(sym):g} s")
        out: list[Intent] = []
        crash = self._btc_move(now, p)
        if (sym != self.btc and not st.reduced and p.btc_reduce_fraction > 0
                and ((long and crash < 0) or (not long and crash > 0))):
            st.reduced = True
            inst = ctx.instrument(sym)
            qty = inst.round_qty(abs(pos.qty) * p.btc_reduce_fraction)
            out.append(LogLine(f"{sym} BTC moved {crash:+.0f} bps in {p.btc_crash_window_s:g} s: "
                               f"reduce by {p.btc_reduce_fraction:.0%}", self.name, "warn"))
            out += self._cancel(entries, "BTC filter")
            if qty >= inst.min_qty and qty < abs(pos.qty):
                out.append(PlaceOrder(sym, "sell" if long else "buy", qty, None, OrderType.MARKET,
                                      reduce_only=True, purpose=Purpose.EXIT, strategy=self.name,
                                      reason="BTC filter: reduce"))
            elif qty >= abs(pos.qty):
                return out + self._close(sym, "btc_filter", "BTC filter: close")
        if st.mode == "A":
            lpi = tick.pressure(st.pressure).lpi
            if lpi < p.lpi_exit:
                return out + self._maker_exit(sym, pos, f"LPI {lpi:.2f} < {p.lpi_exit:g}", entries, ctx)
            if move >= p.markout_target_sigma * sigma:
                return out + self._maker_exit(sym, pos, f"markout target {move * 1e4:+.1f} bps "
                                              f"({p.markout_target_sigma:g} sigma)", entries, ctx)
        return out

    def _close(self, sym: str, reason: str, text: str) -> list[Intent]:
        st = self.trades[sym]
        st.exit_reason = reason
        st.exit_due = 0
        self._count(f"exit: {reason}")
        return [LogLine(f"{sym} {text}: close at market", self.name), ClosePosition(sym, self.name, reason)]

    def _maker_exit(self, sym: str, pos, why: str, entries: list, ctx: StrategyContext) -> list[Intent]:
        """A signal exit rests PostOnly at the touch for `exit_maker_s`, then closes at market."""
        st, p = self.trades[sym], self.params[sym]
        if p.exit_maker_s <= 0:
            return self._close(sym, "tp", why)
        book = ctx.market(sym).book
        long = pos.qty > 0
        touch = book.best_ask if long else book.best_bid
        if touch is None:
            return self._close(sym, "tp", why)
        st.exit_reason = "tp"
        st.exit_due = ctx.now + int(p.exit_maker_s * NS)
        ctx.set_timer(st.exit_due, f"tick:{sym}")
        self._count("exit: tp")
        inst = ctx.instrument(sym)
        return [*self._cancel(entries, "exiting"),
                LogLine(f"{sym} {why}: PostOnly exit at {touch:g}", self.name),
                PlaceOrder(sym, "sell" if long else "buy", inst.round_qty(abs(pos.qty)), touch,
                           OrderType.LIMIT, post_only=True, reduce_only=True, purpose=Purpose.TAKE_PROFIT,
                           strategy=self.name, reason=why)]

    def _cancel(self, orders: list, why: str) -> list[Intent]:
        """Cancel each order once (a cancel takes a round trip; the order stays open meanwhile)."""
        out: list[Intent] = []
        for o in orders:
            if o.id not in self.cancelling:
                self.cancelling.add(o.id)
                out.append(CancelOrder(o.id, self.name, why))
        return out

    def _finish(self, sym: str, entries: list, why: str) -> list[Intent]:
        self.trades[sym] = SymbolTrade()
        return self._cancel(entries, why)

    # -- Mode B --------------------------------------------------------------------------------------
    def _trend_entry(self, sym: str, tick: LpiTick, sig: SideSignal, ctx: StrategyContext) -> list[Intent]:
        """A small taker entry with the INFORMED move when its expected continuation beats the costs:
        beta x the move over `mode_b_lookback_s` > round-trip taker fees + spread + `mode_b_min_edge_bps`."""
        p = self.params[sym]
        q = self.recent[sym]
        if tick.ts - q[0][0] < int((p.mode_b_lookback_s * 1000 - p.tick_ms) * 1_000_000):
            return []  # less than the lookback seen yet
        move_bps = (tick.price / q[0][1] - 1.0) * 1e4
        down = sig.side == "sell"
        if (move_bps < 0) != down:
            return []
        cost = 2 * self.taker_fee_bps + tick.spread / tick.mid * 1e4
        edge = p.mode_b_beta * abs(move_bps) - cost
        if edge < p.mode_b_min_edge_bps or ctx.halted:
            return []
        pos = ctx.position(sym)
        if pos is not None and pos.is_open:
            return []
        inst = ctx.instrument(sym)
        qty = inst.round_qty(p.mode_b_notional_usd / tick.price)
        if qty < inst.min_qty:
            return []
        st = self.trades[sym]
        st.mode, st.pressure, st.side = "B", sig.side, "sell" if down else "buy"
        st.sigma = max(tick.sigma, 1e-6)
        self._count("mode B")
        return [LogLine(f"{sym} INFORMED {sig.side} pressure: follow {st.side.upper()} {qty:g} "
                        f"(move {move_bps:+.1f} bps, edge {edge:.1f} bps after costs)", self.name),
                PlaceOrder(sym, st.side, qty, None, OrderType.MARKET, purpose=Purpose.ENTRY,
                           strategy=self.name, leverage=p.leverage,
                           reason=f"LPI mode B: informed {sig.side} pressure")]

    # -- BTC filter ----------------------------------------------------------------------------------
    def _track_btc(self, ts: int, price: float) -> None:
        q = self.btc_prices
        q.append((ts, price))
        horizon = ts - int(self.settings.lpi.btc_crash_window_s * NS)
        while len(q) > 1 and q[1][0] <= horizon:
            q.popleft()

    def _btc_move(self, now: int, p: LpiParams) -> float:
        """BTC's move over `btc_crash_window_s` in bps when it passes ±`btc_crash_bps`, else 0."""
        if not p.btc_filter or len(self.btc_prices) < 2:
            return 0.0
        p0, p1 = self.btc_prices[0][1], self.btc_prices[-1][1]
        move = (p1 / p0 - 1.0) * 1e4
        return move if abs(move) >= p.btc_crash_bps else 0.0

    # -- orders --------------------------------------------------------------------------------------
    def on_order_update(self, order: Order, fill: Fill | None, ctx: StrategyContext) -> list[Intent]:
        if not order.status.is_open:
            self.cancelling.discard(order.id)
        st = self.trades.get(order.symbol)
        if st is None or not st.mode:
            return []
        if order.status is OrderStatus.REJECTED and order.purpose is Purpose.ENTRY:
            # e.g. a PostOnly quote that would have crossed, or a limit of the risk gate: no new quotes
            # for a TTL (the layers that did go out keep resting and ageing)
            st.retry_ts = ctx.now + int(self.params[order.symbol].quote_ttl_s * NS)
            if st.mode == "B":
                self.trades[order.symbol] = SymbolTrade()
            return []
        sig = self.signals[order.symbol]
        if sig.last is not None and (fill is not None or not order.status.is_open):
            return self._manage(order.symbol, sig.last[0], ctx)
        return []

    # -- views and state -----------------------------------------------------------------------------
    def gauges(self) -> dict[str, list[Gauge]]:
        out: dict[str, list[Gauge]] = {}
        for sym in self.symbols:
            sig, p = self.signals[sym], self.params[sym]
            if sig.last is None:
                continue
            tick, sell, buy = sig.last
            side = sell if tick.sell.lpi >= tick.buy.lpi else buy
            sp = tick.pressure(side.side)
            arrow = "v" if side.side == "sell" else "^"
            span = max(2 * p.lpi_hi, 1.0)
            out[sym] = [
                Gauge("LPI", sp.lpi, 0.0, span, {"hi": p.lpi_hi, "exit": p.lpi_exit},
                      text=f"{arrow} {sp.lpi:.3g}", active=sp.lpi > p.lpi_hi),
                Gauge("z FSI", sp.z_fsi, 0.0, 2 * p.c_fsi, {"c": p.c_fsi}, text=f"{sp.z_fsi:.3g}"),
                Gauge("z LDR", sp.z_ldr, 0.0, 6.0, text=f"{sp.z_ldr:.3g}"),
                Gauge("z Pi", tick.z_pi, 0.0, 2 * p.z_pi_max, {"max": p.z_pi_max}, text=f"{tick.z_pi:.3g}"),
                Gauge("z dOI", tick.z_oi, 0.0, 2 * p.c_oi, {"c": p.c_oi}, text=f"{tick.z_oi:.3g}"),
                Gauge("state", 1.0 if side.state == FORCED else 0.0, text=side.state,
                      active=side.state == FORCED),
                Gauge("exhaustion", float(sum(side.conditions)), 0.0, 5.0,
                      text=" ".join(f"{n}{'+' if c else '-'}" for n, c in zip(CONDITIONS, side.conditions)),
                      active=side.exhausted),
                Gauge("toxicity", tick.z_pi, 0.0, 2 * p.z_pi_max, {"max": p.z_pi_max},
                      text="gate open" if tick.z_pi < p.z_pi_max else "gate shut",
                      active=tick.z_pi < p.z_pi_max),
            ]
        return out

    def snapshot(self) -> dict:
        return {"symbols": {s: asdict(t) for s, t in self.trades.items()}, "decisions": dict(self.decisions)}

    def restore(self, state: dict) -> None:
        """Trade states come back; the feature windows warm up again from the live feed."""
        known = {f.name for f in fields(SymbolTrade)}
        for s, d in state.get("symbols", {}).items():
            if s in self.trades and isinstance(d, dict):
                self.trades[s] = SymbolTrade(**{k: v for k, v in d.items() if k in known})
        self.decisions = {str(k): int(v) for k, v in state.get("decisions", {}).items()}
