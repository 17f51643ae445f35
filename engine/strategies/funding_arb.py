"""Funding-rate arbitrage client (docs/strategies/funding-arb.md).

The engine's funding service (engine/funding/service.py) finds and ranks opportunities; this
client decides which to take, how much, and when to leave:

* **Decisions**, each check (`check_interval_seconds`): candidates are the service's ranked
  opportunities with the config's filters (min_profit, max_oi_usd, prioritize_dexes), on venues
  that can trade. The first that passes the client's own limits is opened (one opening per check);
  when it is not the best, or none passes, the best's skip reason is logged (once per change).
  Limits: engine halted, max_positions, one pair per symbol, max_per_venue, a cooldown after a
  pair on the same symbol and venues closed, free capital, and a rule that would fire at once.
* **Sizing**: `position_pct` of the free capital (capital_usd, or the engine's equity, minus the
  open pairs' size), capped at max_position_usd; below min_position_usd: no pair.
* **Legging**: both legs are sent together. One rejected: the other is unwound (closed) as soon
  as it fills, with an alert. A leg still unanswered `leg_timeout_s` after sending: the pair is
  abandoned and every filled leg unwound, a late fill too. A refused close is sent again every
  5 s. So no pair stays one-legged longer than leg_timeout_s plus one close.
* **Monitor**: each check re-reads the pair's two rates and asks `should_rebalance(position,
  rates)` (engine/funding/rules.py). A firing rule closes both legs together (reason kept);
  BETTER_OPPORTUNITY closes and then opens the better pair (counted as a rebalance).
* **Funding** is booked per leg at each of its venue's settlements, on the rate that applied,
  written to the store's funding table as SYMBOL@venue; pairs persist in the strategy state.

Legs are not engine orders: a pair spans venues the single-venue portfolio cannot hold, so
they go through the venue leg executors (paper, or Bybit REST), and the client enforces its
own limits. The engine's kill switch reaches the pairs through the strategy hooks: `halt` = no
new risk (no new pair, and no BETTER_OPPORTUNITY switch, which is a close then an open; the
other rules still close pairs, as TP/SL still work under a halt); `flatten` = close everything
(`on_flatten`: every pair closed with reason FLATTEN, both legs together; a pair still legging
is abandoned as FLATTEN_UNWIND), and the engine says "flat" only once `external_positions()`
is empty, i.e. every leg's close is confirmed by its venue.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..events import NS, Ticker
from ..funding.rules import PairRates, RebalanceStrategy, RuleParams
from ..funding.types import Leg, Opportunity, PairPosition
from ..orders import Alert, LogLine
from ..venues.legs import LegOrder, LegResult
from .base import Gauge, Strategy

if TYPE_CHECKING:
    from ..config import Settings
    from ..engine import StrategyContext
    from ..funding.service import FundingService
    from ..orders import Intent

RETRY_NS = 5 * NS
CLOSED_KEPT = 50


def _d(x: float) -> Decimal:
    return Decimal(repr(x))


class FundingArbStrategy(Strategy):
    name = "funding_arb"
    subscriptions = (Ticker,)

    def __init__(self, settings: Settings, symbols: list[str]):
        super().__init__(settings, symbols)
        self.cfg = settings.funding_arb
        self.rules = RebalanceStrategy(RuleParams.from_config(self.cfg))
        self.interval_ns = int(self.cfg.check_interval_seconds * NS)
        self.pairs: dict[str, PairPosition] = {}  # open and in-flight pairs, by id
        self.closed: deque[PairPosition] = deque(maxlen=CLOSED_KEPT)
        self.counts = {"opened": 0, "closed": 0, "rebalanced": 0, "leg_failures": 0, "unwound": 0,
                       "checks": 0, "funding_payments": 0}
        self.close_reasons: dict[str, int] = {}
        self.skip_reasons: dict[str, int] = {}
        self.realized = {"net_pnl_usd": 0.0, "funding_usd": 0.0, "fees_usd": 0.0}
        self.cooldowns: dict[str, int] = {}  # "symbol|long|short" -> until ns
        self.rebalance_into: dict[str, str] = {}  # symbol -> "long|short" wanted after a BETTER_OPPORTUNITY exit
        self.last_skip = ""
        self.svc: FundingService | None = None
        self._ctx: StrategyContext | None = None
        self._armed = False
        self._results: list[LegResult] = []

    # -- lifecycle ---------------------------------------------------------------------------------
    def on_start(self, ctx: StrategyContext) -> list[Intent]:
        self._ctx = ctx
        self.svc = ctx.funding()
        self.svc.positions = self.api_positions
        return self._arm(ctx) if ctx.now > 0 else []

    def on_event(self, ev: Any, ctx: StrategyContext) -> list[Intent]:
        return [] if self._armed else self._arm(ctx)

    def _arm(self, ctx: StrategyContext) -> list[Intent]:
        self._armed = True
        assert self.svc is not None
        self.svc.ensure_started(ctx.now)
        ctx.set_timer(self.svc.next_due(ctx.now), "check", while_paused=True)
        out: list[Intent] = []
        for p in list(self.pairs.values()):  # restored mid-flight: no answer will come for those legs
            if p.status not in ("pending_open", "pending_close"):
                continue
            for side, leg in p.legs.items():
                if leg.state in ("working", "abandoned"):  # its answer died with the old process
                    leg.state = "rejected"
                    out.append(LogLine(f"funding_arb: {p.symbol} {side} leg on {leg.venue} was in flight at the "
                                       "restart; its outcome is unknown here: check the venue", "warn"))
            if p.status == "pending_open":
                out += self._abandon(p, ctx.now, "RESTART_UNWIND")
            else:
                out += self._close_legs(p, ctx.now)
        return out

    def on_timer(self, now: int, key: str, ctx: StrategyContext) -> list[Intent]:
        if key == "check":
            ctx.set_timer(now + self.interval_ns, "check", while_paused=True)  # stays on the service's grid
            return self.check(now, ctx)
        if key == "legs":
            results, self._results = self._results, []
            out: list[Intent] = []
            for r in results:
                out += self._on_leg(r, now)
            return out
        kind, _, rest = key.partition(":")
        if kind == "deadline":
            p = self.pairs.get(rest)
            if p is not None and p.status == "pending_open":
                return self._abandon(p, now, "LEG_TIMEOUT")
        elif kind == "retry":
            pid, _, side = rest.partition(":")
            p = self.pairs.get(pid)
            if p is not None and p.legs[side].state == "closing":
                self._send(p, side, close=True)
        return []

    # -- the check ---------------------------------------------------------------------------------
    def check(self, now: int, ctx: StrategyContext) -> list[Intent]:
        svc = self.svc
        assert svc is not None
        svc.ensure_fresh(now)
        self.counts["checks"] += 1
        out: list[Intent] = self.on_flatten(ctx) if ctx.flattening else []  # e.g. restored mid-flatten
        for p in list(self.pairs.values()):
            if p.status == "open":
                self._book_funding(p, now)
                out += self._monitor(p, now, switch=not ctx.halted)
        if not self.paused:
            out += self._decide(now, ctx)
        return out

    def _untradable(self) -> set[str]:
        assert self.svc is not None
        return {v for v in self.svc.venues if v not in self.svc.legs}

    def _monitor(self, p: PairPosition, now: int, switch: bool = True) -> list[Intent]:
        """`switch` False (halted): no BETTER_OPPORTUNITY, whose close is followed by a new pair."""
        svc = self.svc
        assert svc is not None
        p.last_check = now
        long, short = svc.snapshot(p.long_dex, p.symbol), svc.snapshot(p.short_dex, p.symbol)
        if long is None or short is None:
            return []  # a venue without a fresh rate: nothing to decide on (the pair is kept)
        best = self._best_switch(p, now) if switch else None
        fire, reason = self.rules.should_rebalance(p, PairRates(long, short, now, best))
        if not fire:
            return []
        if reason == "BETTER_OPPORTUNITY" and best is not None:
            self.rebalance_into[p.symbol] = f"{best.long_dex}|{best.short_dex}"
        return self._close(p, now, reason or "")

    def _best_switch(self, p: PairPosition, now: int) -> Opportunity | None:
        """The best pair `p` could switch to (the document's get_best_opportunity(symbol)): on tradable
        venues, within max_per_venue once `p` is gone, and not one a rule would close at once."""
        assert self.svc is not None
        others = [q for q in self.pairs.values() if q.status != "closed" and q is not p]
        for o in self.svc.opportunities(symbol=p.symbol, exclude=self._untradable()):
            if o.key == (p.symbol, p.long_dex, p.short_dex):
                return o
            if any(sum(1 for q in others if v in (q.long_dex, q.short_dex)) >= self.cfg.max_per_venue
                   for v in (o.long_dex, o.short_dex)):
                continue
            if not self._fires_at_once(o, now, float(p.size_usd)):
                return o
        return None

    def _fires_at_once(self, o: Opportunity, now: int, size: float) -> str:
        probe = PairPosition(o.symbol, o.long_dex, o.short_dex, _d(size), _d(o.long.rate_h), _d(o.short.rate_h),
                             _d(o.divergence_h), now, now)
        fire, reason = self.rules.should_rebalance(probe, PairRates(o.long, o.short, now, None))
        return (reason or "") if fire else ""

    def _decide(self, now: int, ctx: StrategyContext) -> list[Intent]:
        svc = self.svc
        assert svc is not None
        cfg = self.cfg
        cands = svc.opportunities(min_profit=cfg.min_profit, max_oi_usd=cfg.max_oi_usd or None,
                                  prioritize_dexes=cfg.prioritize_dexes, exclude=self._untradable())
        wanted = self.rebalance_into
        if wanted:  # a BETTER_OPPORTUNITY exit: its target first
            cands.sort(key=lambda o: f"{o.long_dex}|{o.short_dex}" != wanted.get(o.symbol))
        if not cands:
            return []
        skipped_best = ""
        for i, opp in enumerate(cands):
            why = self._skip_reason(opp, now, ctx)
            if not why:
                out = self._open(opp, now, ctx)
                if i > 0 and skipped_best:
                    out.insert(0, LogLine(f"funding_arb: best {self._label(cands[0])} not taken ({skipped_best}); "
                                          f"took #{i + 1} {self._label(opp)}"))
                self.last_skip = ""
                return out
            if i == 0:
                skipped_best = why
                self.skip_reasons[why.split(" (")[0]] = self.skip_reasons.get(why.split(" (")[0], 0) + 1
            if why.startswith(("max positions", "halted", "free capital")):
                break  # nothing else can pass either
        line = f"funding_arb: best {self._label(cands[0])} not taken: {skipped_best}"
        if skipped_best != self.last_skip:
            self.last_skip = skipped_best
            return [LogLine(line)]
        return []

    @staticmethod
    def _label(o: Opportunity) -> str:
        return (f"{o.symbol} long {o.long_dex} / short {o.short_dex} "
                f"({o.divergence_h * 100:.4f}%/h, {o.divergence_h * 876000:.1f}% APR, "
                f"exp {o.expected_profit * 100:+.3f}%)")

    def _skip_reason(self, o: Opportunity, now: int, ctx: StrategyContext) -> str:
        cfg = self.cfg
        live = [p for p in self.pairs.values() if p.status != "closed"]
        if ctx.halted:
            return "halted: no new pairs"
        if len(live) >= cfg.max_positions:
            return f"max positions ({cfg.max_positions}) reached"
        if any(p.symbol == o.symbol for p in live):
            return f"a pair in {o.symbol} is already open"
        for venue in (o.long_dex, o.short_dex):
            n = sum(1 for p in live if venue in (p.long_dex, p.short_dex))
            if n >= cfg.max_per_venue:
                return f"max per venue ({cfg.max_per_venue}) reached on {venue}"
        until = self.cooldowns.get(f"{o.symbol}|{o.long_dex}|{o.short_dex}", 0)
        if now < until:
            return f"cooldown after a close ({(until - now) / NS:.0f} s left)"
        size = self._size(live, ctx)
        if size < cfg.min_position_usd:
            return f"free capital too small (pair size {size:.0f} < {cfg.min_position_usd:.0f} USD)"
        reason = self._fires_at_once(o, now, size)
        return f"rule {reason} would close it at once" if reason else ""

    def _size(self, live: list[PairPosition], ctx: StrategyContext) -> float:
        capital = self.cfg.capital_usd or ctx.equity
        free = capital - sum(float(p.size_usd) for p in live)
        return min(self.cfg.max_position_usd, max(0.0, free) * self.cfg.position_pct / 100.0)

    # -- legging -----------------------------------------------------------------------------------
    def _open(self, o: Opportunity, now: int, ctx: StrategyContext) -> list[Intent]:
        live = [p for p in self.pairs.values() if p.status != "closed"]
        size = _d(round(self._size(live, ctx), 2))
        p = PairPosition(o.symbol, o.long_dex, o.short_dex, size, _d(o.long.rate_h), _d(o.short.rate_h),
                         _d(o.divergence_h), now, now)
        p.legs = {"long": Leg(o.long_dex, "buy"), "short": Leg(o.short_dex, "sell")}
        self.pairs[str(p.id)] = p
        if self.rebalance_into.get(o.symbol) == f"{o.long_dex}|{o.short_dex}":
            self.counts["rebalanced"] += 1
        self.rebalance_into.pop(o.symbol, None)
        self._send(p, "long")
        self._send(p, "short")
        ctx.set_timer(now + int(self.cfg.leg_timeout_s * NS), f"deadline:{p.id}", while_paused=True)
        return [LogLine(f"funding_arb: OPEN {self._label(o)} size {size} USD per leg; "
                        f"OI long {o.long.oi_usd / 1e6:,.1f}M / short {o.short.oi_usd / 1e6:,.1f}M USD")]

    def _send(self, p: PairPosition, side: str, close: bool = False) -> None:
        assert self.svc is not None
        leg = p.legs[side]
        order_side = leg.side if not close else ("sell" if leg.side == "buy" else "buy")
        order = LegOrder(str(p.id), leg.venue, p.symbol, order_side, float(p.size_usd), leg.qty, close)
        leg.state = "closing" if close else "working"
        self.svc.legs[leg.venue].submit(order, self._done)

    def _done(self, r: LegResult) -> None:
        """Leg answers come from the venue executors; they are handled on an engine timer."""
        self._results.append(r)
        if self._ctx is not None:
            self._ctx.set_timer(self._ctx.now, "legs", while_paused=True)

    def _on_leg(self, r: LegResult, now: int) -> list[Intent]:
        p = self.pairs.get(r.order.pair_id)
        if p is None:
            return []
        side = "long" if (r.order.side == "buy") != r.order.close else "short"
        leg = p.legs[side]
        if r.order.close:
            return self._on_close_leg(p, side, leg, r, now)
        if r.ok:
            leg.qty, leg.entry_price, leg.fees_usd = r.qty, r.price, leg.fees_usd + r.fee_usd
        if leg.state == "abandoned":  # the pair was given up before this answer came
            leg.state = "filled" if r.ok else "rejected"
            if r.ok:
                self.counts["unwound"] += 1
                self._send(p, side, close=True)
                return [LogLine(f"funding_arb: late {side} fill on {leg.venue} for abandoned pair {p.id}: unwinding")]
            return self._maybe_finish(p, now)
        leg.state = "filled" if r.ok else "rejected"
        other = p.legs["short" if side == "long" else "long"]
        if not r.ok:
            self.counts["leg_failures"] += 1
            out: list[Intent] = [Alert(p.symbol, "funding_leg", f"FUNDING LEG FAILED {p.symbol} {side} on {leg.venue}: "
                                       f"{r.reason}; unwinding the other leg", self.name,
                                       {"pair": str(p.id), "leg": side, "venue": leg.venue, "reason": r.reason})]
            return out + self._abandon(p, now, f"LEG_FAILED: {r.reason}")
        if other.state == "filled":
            p.status, p.opened_at, p.last_check, p.legging_since = "open", now, now, 0
            self.counts["opened"] += 1
            return [Alert(p.symbol, "funding_pair", f"PAIR OPEN {p.symbol} long {p.long_dex} @ "
                          f"{p.legs['long'].entry_price:g} / short {p.short_dex} @ {p.legs['short'].entry_price:g}, "
                          f"{p.size_usd} USD per leg", self.name,
                          {"pair": str(p.id), "long_dex": p.long_dex, "short_dex": p.short_dex,
                           "size_usd": str(p.size_usd), "entry_divergence": str(p.entry_divergence)})]
        p.legging_since = now
        return []

    def _abandon(self, p: PairPosition, now: int, reason: str) -> list[Intent]:
        """Give a pair up before it opened: unwind each filled leg; answers still due are unwound on arrival."""
        p.status, p.close_reason = "pending_close", reason
        for side, leg in p.legs.items():
            if leg.state == "filled":
                self.counts["unwound"] += 1
                self._send(p, side, close=True)
            elif leg.state == "working":
                leg.state = "abandoned"
        out: list[Intent] = [LogLine(f"funding_arb: pair {p.symbol} {p.long_dex}/{p.short_dex} not opened "
                                     f"({reason}); filled legs unwound")]
        return out + self._maybe_finish(p, now)

    def _close(self, p: PairPosition, now: int, reason: str) -> list[Intent]:
        p.status, p.close_reason = "pending_close", reason
        return [LogLine(f"funding_arb: CLOSE {p.symbol} long {p.long_dex} / short {p.short_dex}: {reason} "
                        f"(held {p.hours_held:.1f} h, funding {p.funding_usd:+.2f} USD)")] + self._close_legs(p, now)

    def _close_legs(self, p: PairPosition, now: int) -> list[Intent]:
        for side, leg in p.legs.items():
            if leg.state in ("filled", "closing"):
                self._send(p, side, close=True)
        return self._maybe_finish(p, now)

    def _on_close_leg(self, p: PairPosition, side: str, leg: Leg, r: LegResult, now: int) -> list[Intent]:
        if not r.ok:
            assert self._ctx is not None
            self._ctx.set_timer(now + RETRY_NS, f"retry:{p.id}:{side}", while_paused=True)
            return [LogLine(f"funding_arb: close of {p.symbol} {side} on {leg.venue} refused ({r.reason}); "
                            "retrying in 5 s", "warn")]
        leg.state, leg.exit_price, leg.fees_usd = "closed", r.price, leg.fees_usd + r.fee_usd
        return self._maybe_finish(p, now)

    def _maybe_finish(self, p: PairPosition, now: int) -> list[Intent]:
        if p.status != "pending_close" or any(leg.state in ("filled", "closing", "working", "abandoned")
                                               for leg in p.legs.values()):
            return []
        p.status, p.closed_at = "closed", now
        price = sum(leg.price_pnl(leg.exit_price) for leg in p.legs.values() if leg.state == "closed")
        p.net_pnl_usd = round(price + p.funding_usd - p.fees_usd, 6)
        del self.pairs[str(p.id)]
        self.closed.append(p)
        self.cooldowns[f"{p.symbol}|{p.long_dex}|{p.short_dex}"] = now + int(self.cfg.reopen_cooldown_s * NS)
        self.realized["net_pnl_usd"] += p.net_pnl_usd
        self.realized["funding_usd"] += p.funding_usd
        self.realized["fees_usd"] += p.fees_usd
        if p.opened_at and p.close_reason and not p.close_reason.startswith(("LEG_", "RESTART", "FLATTEN_UNWIND")):
            self.counts["closed"] += 1
            self.close_reasons[p.close_reason] = self.close_reasons.get(p.close_reason, 0) + 1
            return [Alert(p.symbol, "funding_pair", f"PAIR CLOSED {p.symbol} {p.long_dex}/{p.short_dex} by "
                          f"{p.close_reason}: net {p.net_pnl_usd:+.2f} USD (funding {p.funding_usd:+.2f}, fees "
                          f"{p.fees_usd:.2f})", self.name,
                          {"pair": str(p.id), "reason": p.close_reason, "net_pnl_usd": p.net_pnl_usd})]
        self.close_reasons[p.close_reason.split(":")[0]] = self.close_reasons.get(p.close_reason.split(":")[0], 0) + 1
        return []

    # -- the kill switch -----------------------------------------------------------------------------
    def on_flatten(self, ctx: StrategyContext) -> list[Intent]:
        """Close every pair, both legs together, through the usual close path (reason FLATTEN). A pair
        still legging is abandoned (FLATTEN_UNWIND: filled legs closed, late fills unwound); a pair
        already closing goes on (a refused close is retried every 5 s). No switch target is kept."""
        if self.svc is None:  # not started yet: its first check, still flattening, closes them
            return []
        now = ctx.now
        self.rebalance_into.clear()
        out: list[Intent] = []
        n = 0
        for p in list(self.pairs.values()):
            if p.status == "open":
                self._book_funding(p, now)  # a settlement since the last check is still the pair's
                out += self._close(p, now, "FLATTEN")
            elif p.status == "pending_open":
                out += self._abandon(p, now, "FLATTEN_UNWIND")
            else:
                continue
            n += 1
        if n:
            out.insert(0, LogLine(f"funding_arb: FLATTEN: closing {n} pair{'s' * (n != 1)}, both legs each"))
        return out

    def external_positions(self) -> list[dict]:
        """Every pair not yet closed on both venues: counted in the engine's status and flat check."""
        out = []
        for p in self.open_pairs():
            legs = {side: leg.state for side, leg in p.legs.items()}
            text = (f"{p.symbol} long {p.long_dex} / short {p.short_dex} {float(p.size_usd):,.0f} USD per leg "
                    f"{p.status}" + (f" ({p.close_reason})" if p.close_reason else "")
                    + f" legs {legs.get('long', '-')}/{legs.get('short', '-')}")
            out.append({"kind": "funding pair", "id": str(p.id), "symbol": p.symbol, "long_dex": p.long_dex,
                        "short_dex": p.short_dex, "size_usd": float(p.size_usd), "status": p.status,
                        "close_reason": p.close_reason, "legs": legs, "text": text})
        return out

    # -- funding -----------------------------------------------------------------------------------
    def _book_funding(self, p: PairPosition, now: int) -> None:
        svc = self.svc
        assert svc is not None
        for leg in p.legs.values():
            snap = svc.snapshot(leg.venue, p.symbol)
            if snap is None:
                continue
            if leg.next_funding_ts and now >= leg.next_funding_ts:
                notional = leg.qty * snap.mark
                amount = (-1.0 if leg.side == "buy" else 1.0) * leg.last_rate * notional
                leg.funding_usd += amount
                leg.payments += 1
                self.counts["funding_payments"] += 1
                store = svc.store_of() if svc.store_of else None
                if store is not None:
                    store.record_funding(leg.next_funding_ts, f"{p.symbol}@{leg.venue}", leg.last_rate, snap.mark,
                                         amount)
            if snap.next_funding_ts > leg.next_funding_ts or not leg.next_funding_ts:
                leg.next_funding_ts = snap.next_funding_ts
            leg.last_rate = snap.rate

    # -- views -------------------------------------------------------------------------------------
    def api_positions(self) -> list[dict]:
        now = self._ctx.now if self._ctx is not None else 0
        return [p.api_dict(now) for p in list(self.pairs.values()) + list(self.closed)[::-1]]

    def open_pairs(self) -> list[PairPosition]:
        return [p for p in self.pairs.values() if p.status != "closed"]

    def run_summary(self) -> dict:
        return {"pairs_opened": self.counts["opened"], "pairs_closed": self.counts["closed"],
                "pairs_rebalanced": self.counts["rebalanced"], "leg_failures": self.counts["leg_failures"],
                "legs_unwound": self.counts["unwound"], "checks": self.counts["checks"],
                "funding_payments": self.counts["funding_payments"],
                "close_reasons": dict(sorted(self.close_reasons.items())),
                "best_skipped": dict(sorted(self.skip_reasons.items())), "open_pairs": len(self.open_pairs()),
                **{k: round(v, 6) for k, v in self.realized.items()}}

    def summary_line(self) -> str:
        s = self.run_summary()
        reasons = ", ".join(f"{k} {v}" for k, v in s["close_reasons"].items()) or "none"
        return (f"funding_arb: {s['pairs_opened']} pairs opened, {s['pairs_closed']} closed ({reasons}), "
                f"{s['pairs_rebalanced']} rebalanced, {s['leg_failures']} leg failures ({s['legs_unwound']} legs "
                f"unwound), {s['open_pairs']} open; funding {s['funding_usd']:+.2f}, fees {s['fees_usd']:.2f}, "
                f"net {s['net_pnl_usd']:+.2f} USD")

    def gauges(self) -> dict[str, list[Gauge]]:
        return {}

    # -- persistence -------------------------------------------------------------------------------
    def snapshot(self) -> dict:
        return {"pairs": [p.to_dict() for p in self.pairs.values()],
                "closed": [p.to_dict() for p in self.closed], "counts": dict(self.counts),
                "close_reasons": dict(self.close_reasons), "skip_reasons": dict(self.skip_reasons),
                "realized": dict(self.realized), "cooldowns": dict(self.cooldowns)}

    def restore(self, state: dict) -> None:
        self.pairs = {d["id"]: PairPosition.from_dict(d) for d in state.get("pairs", [])}
        self.closed = deque((PairPosition.from_dict(d) for d in state.get("closed", [])), maxlen=CLOSED_KEPT)
        self.counts.update(state.get("counts", {}))
        self.close_reasons = dict(state.get("close_reasons", {}))
        self.skip_reasons = dict(state.get("skip_reasons", {}))
        self.realized.update(state.get("realized", {}))
        self.cooldowns = {k: int(v) for k, v in state.get("cooldowns", {}).items()}
