"""The seed document's seven rebalancing rules, as small pure functions, and its two presets.

Every rule returns `(fire, reason)`: `(True, "REASON")` or `(False, None)`. Divergences are
rates per hour (short minus long); sizes are USD; times are ns. `should_rebalance` runs the
rules named in the config, in this order: the combined rule (flip, severe erosion, better
opportunity, weekly rebalance, exactly the document's order), then the standalone rules in the
order the document numbers them.

Silent choices (see docs/strategies/funding-arb.md):
* the BETTER_OPPORTUNITY horizon "next 24 h (3 funding periods)" is 24 h of hourly divergence,
  whatever the venues' intervals; the cost is `rebalance_cost_bps` (4 bps exit + 4 bps entry);
* the combined rule's age exit is called WEEKLY_REBALANCE whatever `max_position_age_hours` is
  (the Aggressive preset sets 48 h);
* PRE_FUNDING_EXIT has two readings (`pre_funding_mode`): "exit" closes in the window before the
  long venue's funding, as the document's code does; "collect" (default) holds through a
  settlement that pays the pair and exits only before one that would cost it, so the payment
  is collected and the other rules reassess the pair afterwards, as its "use case" line says;
* OI_IMBALANCE compares the open interest (USD) of the long leg's venue to the short leg's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..events import NS
from .types import FundingSnapshot, Opportunity, PairPosition

if TYPE_CHECKING:
    from ..config import FundingArbConfig

Verdict = tuple[bool, str | None]
NO: Verdict = (False, None)

# The document's "Recommended Configuration", verbatim.
PRESETS: dict[str, dict[str, float | bool]] = {
    "conservative": {"min_erosion_threshold": 0.5, "rebalance_cost_bps": 8, "min_profit_improvement": 0.002,
                     "max_position_age_hours": 168, "enable_better_opportunity": True,
                     "check_interval_seconds": 60},
    "aggressive": {"min_erosion_threshold": 0.7, "rebalance_cost_bps": 8, "min_profit_improvement": 0.0005,
                   "max_position_age_hours": 48, "enable_better_opportunity": True,
                   "check_interval_seconds": 60},
}


# -- the rules, on plain numbers ------------------------------------------------------------------
def profit_erosion(entry_divergence: float, divergence: float, threshold: float = 0.3) -> Verdict:
    """1. Divergence below `threshold` x the entry divergence (0.3: 70% of the edge lost)."""
    if entry_divergence <= 0:
        return NO
    return (True, "PROFIT_EROSION") if divergence / entry_divergence < threshold else NO


def divergence_flipped(divergence: float) -> Verdict:
    """2. The pair now pays instead of earning."""
    return (True, "DIVERGENCE_FLIPPED") if divergence < 0 else NO


def better_opportunity(size_usd: float, divergence: float, best_divergence: float | None, *,
                       horizon_h: float = 24.0, cost_bps: float = 8.0, min_improvement: float = 0.001) -> Verdict:
    """3. Switching pays: over the horizon, the best pair's extra funding minus exit+entry cost
    exceeds `min_improvement` x size."""
    if best_divergence is None:
        return NO
    cost = size_usd * cost_bps / 1e4
    gain = (best_divergence - divergence) * horizon_h * size_usd - cost
    return (True, "BETTER_OPPORTUNITY") if gain > size_usd * min_improvement else NO


def time_limit(opened_at: int, now: int, hours: float = 72.0) -> Verdict:
    """4. Held `hours` or longer, profitable or not."""
    return (True, "TIME_LIMIT") if (now - opened_at) / NS / 3600.0 >= hours else NO


def pre_funding_exit(next_funding_ts: int, now: int, *, window_s: float = 900.0, mode: str = "collect",
                     pair_payment: float = 0.0) -> Verdict:
    """5. In the `window_s` before the long venue's next funding. mode "exit": always exit there;
    "collect": exit only if that settlement costs the pair (`pair_payment` < 0), else hold and collect."""
    until = (next_funding_ts - now) / NS
    if not 0 < until < window_s:
        return NO
    if mode == "collect" and pair_payment >= 0:
        return NO
    return True, "PRE_FUNDING_EXIT"


def oi_imbalance(long_oi_usd: float, short_oi_usd: float, hi: float = 3.0, lo: float = 0.33) -> Verdict:
    """6. One side's venue far deeper than the other's: illiquid or crowded."""
    if short_oi_usd <= 0:
        return (True, "OI_IMBALANCE") if long_oi_usd > 0 else NO
    ratio = long_oi_usd / short_oi_usd
    return (True, "OI_IMBALANCE") if ratio > hi or ratio < lo else NO


def combined(entry_divergence: float, divergence: float, size_usd: float, best_divergence: float | None,
             opened_at: int, now: int, *, severe: float = 0.2, horizon_h: float = 24.0, cost_bps: float = 8.0,
             min_improvement: float = 0.001, enable_better: bool = True, max_age_h: float = 168.0) -> Verdict:
    """7. The document's combination, in its order: flip, severe erosion, better opportunity, weekly."""
    if divergence < 0:
        return True, "DIVERGENCE_FLIPPED"
    if divergence < entry_divergence * severe:
        return True, "SEVERE_EROSION"
    if enable_better:
        fire, reason = better_opportunity(size_usd, divergence, best_divergence, horizon_h=horizon_h,
                                          cost_bps=cost_bps, min_improvement=min_improvement)
        if fire:
            return fire, reason
    if (now - opened_at) / NS / 3600.0 >= max_age_h:
        return True, "WEEKLY_REBALANCE"
    return NO


# -- the rebalance strategy -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PairRates:
    """What the monitor re-reads each minute for one pair (the document's `current_rates`)."""

    long: FundingSnapshot
    short: FundingSnapshot
    now: int
    best: Opportunity | None = None  # the best opportunity for the symbol on other venues

    @property
    def divergence(self) -> float:
        return self.short.rate_h - self.long.rate_h

    def payment_at_long_funding(self) -> float:
        """The pair's payment (fraction of size) at the long venue's next settlement: the long leg
        pays its rate; the short leg receives its own if it settles at the same moment."""
        pay = -self.long.rate
        if abs(self.short.next_funding_ts - self.long.next_funding_ts) < 60 * NS:
            pay += self.short.rate
        return pay


@dataclass(frozen=True, slots=True)
class RuleParams:
    rules: tuple[str, ...] = ("combined", "PROFIT_EROSION", "OI_IMBALANCE")
    min_erosion_threshold: float = 0.3
    severe_erosion_threshold: float = 0.2
    rebalance_cost_bps: float = 8.0
    min_profit_improvement: float = 0.001
    better_opportunity_hours: float = 24.0
    enable_better_opportunity: bool = True
    time_limit_hours: float = 72.0
    max_position_age_hours: float = 168.0
    pre_funding_exit_s: float = 900.0
    pre_funding_mode: str = "collect"
    oi_ratio_max: float = 3.0
    oi_ratio_min: float = 0.33

    @classmethod
    def from_config(cls, cfg: FundingArbConfig) -> RuleParams:
        kw = {k: getattr(cfg, k) for k in cls.__dataclass_fields__ if k != "rules"}
        return cls(rules=tuple(cfg.rules), **kw)


class RebalanceStrategy:
    """`should_rebalance(position, rates) -> (bool, reason)` over the configured rules."""

    ORDER = ("combined", "PROFIT_EROSION", "DIVERGENCE_FLIPPED", "BETTER_OPPORTUNITY", "TIME_LIMIT",
             "PRE_FUNDING_EXIT", "OI_IMBALANCE")

    def __init__(self, params: RuleParams):
        self.p = params
        self.active = [r for r in self.ORDER if r in params.rules]

    def should_rebalance(self, position: PairPosition, rates: PairRates) -> tuple[bool, str | None]:
        for rule in self.active:
            fire, reason = self.check(rule, position, rates)
            if fire:
                return fire, reason
        return NO

    def check(self, rule: str, pos: PairPosition, r: PairRates) -> Verdict:
        p = self.p
        div, entry, size = r.divergence, float(pos.entry_divergence), float(pos.size_usd)
        best = r.best.divergence_h if r.best is not None and r.best.key != (pos.symbol, pos.long_dex,
                                                                           pos.short_dex) else None
        if rule == "combined":
            return combined(entry, div, size, best, pos.opened_at, r.now, severe=p.severe_erosion_threshold,
                            horizon_h=p.better_opportunity_hours, cost_bps=p.rebalance_cost_bps,
                            min_improvement=p.min_profit_improvement, enable_better=p.enable_better_opportunity,
                            max_age_h=p.max_position_age_hours)
        if rule == "PROFIT_EROSION":
            return profit_erosion(entry, div, p.min_erosion_threshold)
        if rule == "DIVERGENCE_FLIPPED":
            return divergence_flipped(div)
        if rule == "BETTER_OPPORTUNITY":
            if not p.enable_better_opportunity:
                return NO
            return better_opportunity(size, div, best, horizon_h=p.better_opportunity_hours,
                                      cost_bps=p.rebalance_cost_bps, min_improvement=p.min_profit_improvement)
        if rule == "TIME_LIMIT":
            return time_limit(pos.opened_at, r.now, p.time_limit_hours)
        if rule == "PRE_FUNDING_EXIT":
            return pre_funding_exit(r.long.next_funding_ts, r.now, window_s=p.pre_funding_exit_s,
                                    mode=p.pre_funding_mode, pair_payment=r.payment_at_long_funding())
        if rule == "OI_IMBALANCE":
            return oi_imbalance(r.long.oi_usd, r.short.oi_usd, p.oi_ratio_max, p.oi_ratio_min)
        return NO
