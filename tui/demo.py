"""A scripted, seeded market session for screenshots, snapshot tests and the docs.

Three minutes of books, tickers, trades and liquidations for the five default
symbols on a fixed simulated clock, with three scripted cascades that the real
cascade strategy, risk gate, approval gate and paper exchange act on:

- 00:30 SOL shorts liquidated: a SELL entry fills, then its take profit (a closed trade);
- 01:30 BTC longs liquidated: a BUY entry fills and stays open with its TP and SL;
- 02:30 ETH shorts liquidated: a SELL entry that is still working (auto approval) or
  waiting in the approval queue (manual approval) when the script ends.

In manual mode the script plays the operator and approves the SOL and BTC entries.
Same seed, same screen, to the character: nothing reads the wall clock.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from engine.config import Settings
from engine.engine import Engine
from engine.events import NS, BookSnapshot, Liquidation, Ticker, Trade
from engine.orders import Purpose
from engine.runtime import RunOptions, build_engine

DEMO_START_NS = 1_736_173_800 * NS  # 2025-01-06 14:30:00 UTC
DEMO_SECONDS = 160
BASE_PRICES = {"BTCUSDT": 97_250.0, "ETHUSDT": 3_420.5, "SOLUSDT": 201.35, "XRPUSDT": 2.4512,
               "DOGEUSDT": 0.38215}
LIQ_PROBABILITY = 0.18  # per symbol and second, for background liquidations


@dataclass(frozen=True, slots=True)
class ScriptedCascade:
    at_s: int
    symbol: str
    liquidated: str  # long | short
    notionals: tuple[float, float]
    move: float  # how far the cascade pushes the price (a fraction), short of the strategy's entry


CASCADES = (
    ScriptedCascade(30, "SOLUSDT", "short", (21_500.0, 18_200.0), +0.0011),
    ScriptedCascade(90, "BTCUSDT", "long", (452_000.0, 381_000.0), -0.0008),
    ScriptedCascade(150, "ETHUSDT", "short", (124_000.0, 96_500.0), +0.0011),
)


def demo_settings(approval: str = "auto") -> Settings:
    """Defaults (never the local config.toml, so the pictures do not depend on the machine)."""
    s = Settings()
    s.approval.mode = approval  # type: ignore[assignment]
    s.engine.log_file = ""
    return s


class DemoSession:
    """Builds the engine (paper broker, cascade strategy) and plays the script into it."""

    def __init__(self, approval: str = "auto", seed: int = 7):
        self.settings = demo_settings(approval)
        self.engine, _feeds = build_engine(self.settings, RunOptions(seed=seed, strategies=["cascade"]))
        self.engine.clock.advance_to(DEMO_START_NS)
        self.rng = random.Random(seed)
        self.mid = dict(BASE_PRICES)
        self.target = dict(BASE_PRICES)
        self.manual = approval == "manual"
        self.sec = 0  # the next second of the script to play

    # -- the market ----------------------------------------------------------------------------
    def _tick(self, symbol: str) -> float:
        return self.engine.instrument(symbol).tick_size

    def _round(self, symbol: str, price: float) -> float:
        return self.engine.instrument(symbol).round_price(price)

    def _seed_threshold(self, symbol: str) -> float:
        c = self.settings.cascade
        return c.seed_thresholds_usd.get(symbol, c.default_seed_threshold_usd)

    def _book(self, ts: int, symbol: str) -> BookSnapshot:
        mid, tick = self.mid[symbol], self._tick(symbol)
        step = max(tick, self._round(symbol, mid * 0.00005))
        bid0 = self._round(symbol, mid - step / 2)
        ask0 = bid0 + step
        unit = 20_000.0 / mid
        bids = [(self._round(symbol, bid0 - i * step), round(unit * self.rng.uniform(0.5, 3.0), 6)) for i in range(8)]
        asks = [(self._round(symbol, ask0 + i * step), round(unit * self.rng.uniform(0.5, 3.0), 6)) for i in range(8)]
        return BookSnapshot(ts, symbol, bids, asks)

    def _second(self, sec: int) -> Iterator:
        ts = DEMO_START_NS + sec * NS
        for sym in BASE_PRICES:
            # A small random walk pulled towards the scripted target, so scripted moves happen.
            self.mid[sym] += (self.target[sym] - self.mid[sym]) * 0.5 + self.mid[sym] * self.rng.gauss(0, 0.00004)
            book = self._book(ts, sym)
            yield book
            yield Ticker(ts, sym, mark=self._round(sym, self.mid[sym]))
            for k in range(self.rng.randint(1, 3)):
                buy = self.rng.random() < 0.5
                price = book.asks[0][0] if buy else book.bids[0][0]
                qty = round(self.rng.lognormvariate(0, 1) * 3_000 / price, 6)
                yield Trade(ts + (k + 1) * NS // 10, sym, "buy" if buy else "sell", price, qty)
            if self.rng.random() < LIQ_PROBABILITY:
                yield self._liquidation(ts + NS // 2, sym, self.rng.choice(("long", "short")),
                                        min(self.rng.lognormvariate(0, 1.1) * self._seed_threshold(sym) / 12,
                                            0.8 * self._seed_threshold(sym)))

    def _liquidation(self, ts: int, symbol: str, side: str, notional: float) -> Liquidation:
        # A long is liquidated by a sell below the market, a short by a buy above it.
        price = self._round(symbol, self.mid[symbol] * (0.9995 if side == "long" else 1.0005))
        return Liquidation(ts, symbol, side, price, round(notional / price, 6))

    # -- the script ----------------------------------------------------------------------------
    def _entry(self, symbol: str):
        return next((o for o in self.engine.open_orders.values()
                     if o.symbol == symbol and o.purpose is Purpose.ENTRY), None)

    def _exit_order(self, symbol: str, purpose: Purpose):
        return next((o for o in self.engine.open_orders.values() if o.symbol == symbol and o.purpose is purpose),
                    None)

    def _trade_through(self, ts: int, symbol: str, price: float, side: str) -> Trade:
        """A print one tick through `price` (a sell below a bid, a buy above an ask): it fills it."""
        tick = self._tick(symbol)
        return Trade(ts, symbol, side, self._round(symbol, price - tick if side == "sell" else price + tick), 0.5)

    def _scripted(self, sec: int, ts: int) -> list:
        """The script's events due at `sec` (it may also act as the operator)."""
        out: list = []
        for c in CASCADES:
            if sec == c.at_s:
                self.target[c.symbol] = self.mid[c.symbol] * (1.0 + c.move)
                out += [self._liquidation(ts + NS // 4 + i * NS // 3, c.symbol, c.liquidated, n)
                        for i, n in enumerate(c.notionals)]
            if self.manual and sec == c.at_s + 1 and c.symbol != "ETHUSDT":
                self.engine.approve_all()  # the operator presses A; ETH is left waiting
        if sec == 70:  # a lone P95+ liquidation: highlighted on the tape, but no cascade
            out.append(self._liquidation(ts, "XRPUSDT", "long", 1.3 * self._seed_threshold("XRPUSDT")))
        if sec == 33:  # SOL: the short entry gets filled by a buy printing through it
            out += self._fill_entry(ts, "SOLUSDT", "buy")
        if sec == 45:  # SOL: the price falls back and the take profit fills
            out += self._fill_exit(ts, "SOLUSDT", Purpose.TAKE_PROFIT, "sell")
        if sec == 93:  # BTC: the long entry fills; the market recovers part of the drop
            out += self._fill_entry(ts, "BTCUSDT", "sell")
        return out

    def _fill_entry(self, ts: int, symbol: str, side: str) -> list:
        o = self._entry(symbol)
        if o is None or o.price is None:
            return []
        self.target[symbol] = o.price * (1.0006 if o.side == "buy" else 0.9994)  # the bounce
        return [self._trade_through(ts, symbol, o.price, side)]

    def _fill_exit(self, ts: int, symbol: str, purpose: Purpose, side: str) -> list:
        o = self._exit_order(symbol, purpose)
        if o is None or o.price is None:
            return []
        self.target[symbol] = o.price
        return [self._trade_through(ts, symbol, o.price, side)]

    def play(self, until_s: int = DEMO_SECONDS) -> Engine:
        """Dispatch the script up to `until_s` seconds into the session (the engine is not
        running: this is its feed). Call again with a later time to let the market go on."""
        eng = self.engine
        if self.sec == 0:
            eng.feed_states["demo"] = "LIVE"
            eng.start()
        for sec in range(self.sec, until_s):
            ts = DEMO_START_NS + sec * NS
            events = self._scripted(sec, ts + NS // 2) + list(self._second(sec))
            for ev in sorted(events, key=lambda e: e.ts):  # stable: ties keep the order above
                eng.dispatch(ev)
        self.sec = max(self.sec, until_s)
        eng.clock.advance_to(DEMO_START_NS + self.sec * NS)
        return eng

    def cascade_now(self, symbol: str, liquidated: str = "long") -> None:
        """Two liquidations at 1.5x the symbol's seed P95, 0.2 s apart: a cascade right now."""
        now = self.engine.clock.now()
        for i in (1, 2):
            self.engine.dispatch(self._liquidation(now + i * NS // 5, symbol, liquidated,
                                                   1.5 * self._seed_threshold(symbol)))
