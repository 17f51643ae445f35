"""The Liquidity Imbalance Tracker's pure rules: signal, imbalance score, sizing and exits.

No engine state here: every function takes plain numbers (and the `LitConfig`), so that the
rules are tested one by one and the strategy (`lit.py`) only wires them to the market.
docs/strategies/lit.md explains every rule and every choice the seed document leaves open.

Conventions:
* `ratio` is long share / short share (Bybit buyRatio / sellRatio); the *crowding* is
  max(ratio, 1 / ratio) >= 1, the side holding more accounts is the *crowd*;
* funding is annualized with the symbol's own interval: rate x (24 / interval_h) x 365, in
  percent (an 8 h rate of 0.01% is 10.95%); positive funding means longs pay shorts;
* the contrarian *support* is the annualized funding the contrarian side receives:
  +APR when the crowd is long (the short is paid), -APR when the crowd is short.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config import ConfigError

if TYPE_CHECKING:
    from ..config import LitConfig

INTERVAL_ENV = "INTERVAL"


def annualized_funding_pct(rate: float, interval_h: float) -> float:
    """Funding rate per interval -> annualized percent (8 h: rate x 3 x 365 x 100)."""
    return rate * (24.0 / interval_h) * 365.0 * 100.0


def crowding(ratio: float) -> float:
    """max(ratio, 1/ratio): how many times the crowded side outnumbers the other (>= 1)."""
    if ratio <= 0 or not math.isfinite(ratio):
        return math.inf
    return ratio if ratio >= 1.0 else 1.0 / ratio


def crowd_side(ratio: float) -> str:
    """long | short | none: which side holds more accounts."""
    return "long" if ratio > 1.0 else "short" if ratio < 1.0 else "none"


def contrarian_support(ratio: float, funding_apr: float) -> float:
    """Annualized funding (%) that the side against the crowd receives; negative: it pays."""
    side = crowd_side(ratio)
    return funding_apr if side == "long" else -funding_apr if side == "short" else 0.0


def imbalance_score(ratio: float, funding_apr: float, cfg: LitConfig) -> float:
    """ln(crowding)/ln(ratio_entry) + support/funding_entry_apr, each term capped at `score_cap`.

    Each term is 1 exactly at its entry threshold, so a symbol that just qualifies scores 2 and
    the score says by how many "thresholds" a symbol is past the line on both axes. The log
    makes 2x->4x count as much as 1x->2x (crowding is multiplicative); funding is linear because
    it is paid linearly. Support below zero (funding against the contrarian) lowers the score."""
    c = crowding(ratio)
    t_ratio = min(math.log(c) / math.log(cfg.ratio_entry), cfg.score_cap) if math.isfinite(c) else cfg.score_cap
    denom = cfg.funding_entry_apr if cfg.funding_entry_apr > 0 else 1.0
    t_funding = max(min(contrarian_support(ratio, funding_apr) / denom, cfg.score_cap), -cfg.score_cap)
    return t_ratio + t_funding


@dataclass(frozen=True, slots=True)
class Signal:
    """The entry decision for one symbol: `side` is the order side (buy | sell) or "" with `reason`."""

    side: str
    reason: str
    score: float
    crowding: float
    support_apr: float


def entry_signal(ratio: float, funding_apr: float, cfg: LitConfig) -> Signal:
    """The two market conditions (the strategy adds blacklist, slots and gates)."""
    c = crowding(ratio)
    support = contrarian_support(ratio, funding_apr)
    score = imbalance_score(ratio, funding_apr, cfg)
    if c < cfg.ratio_entry:
        return Signal("", f"ratio {c:.2f} below {cfg.ratio_entry:g}", score, c, support)
    if support <= cfg.funding_entry_apr:
        return Signal("", f"funding {support:+.1f}% APR for the contrarian side, needs > "
                          f"{cfg.funding_entry_apr:g}%", score, c, support)
    side = "sell" if crowd_side(ratio) == "long" else "buy"
    return Signal(side, f"{crowd_side(ratio)}s crowded {c:.2f}x, contrarian paid {support:.1f}% APR",
                  score, c, support)


def leverage_for(crowd: float, support_apr: float, cfg: LitConfig, instrument_max: float,
                 risk_max: float) -> tuple[float, str]:
    """(leverage, tier name): the base, x tier1_mult or x tier2_mult, capped by the safety cap,
    the instrument's maximum and the risk gate's."""
    if crowd > cfg.tier2_ratio or support_apr > cfg.tier2_funding_apr:
        lev, tier = cfg.base_leverage * cfg.tier2_mult, "tier2"
    elif crowd > cfg.tier1_ratio or support_apr > cfg.tier1_funding_apr:
        lev, tier = cfg.base_leverage * cfg.tier1_mult, "tier1"
    else:
        lev, tier = cfg.base_leverage, "base"
    cap = min(cfg.max_leverage, instrument_max, risk_max)
    if lev > cap:
        return cap, f"{tier} capped at {cap:g}x"
    return round(lev, 6), tier


def exit_reason(*, side: str, entry_price: float, price: float, net_pnl: float, collateral: float,
                held_s: float, crowd: float | None, support_apr: float | None, crowd_is_same: bool,
                cfg: LitConfig) -> str:
    """Why to close a position now ("" = hold): tp | sl | max_hold | normalized.

    `net_pnl` is the position's PnL with fees and booked funding; on the collateral basis TP/SL
    compare it with the collateral, on the price basis they compare the price move in the
    position's favour with the entry price. Normalization needs a current signal (`crowd` and
    `support_apr` of the symbol now, `crowd_is_same`: the crowd is still on the side we fade)."""
    if cfg.pnl_basis == "collateral":
        pct = 100.0 * net_pnl / collateral if collateral > 0 else 0.0
    else:
        move = (price - entry_price) / entry_price if entry_price > 0 else 0.0
        pct = 100.0 * (move if side == "long" else -move)
    if pct >= cfg.take_profit_pct:
        return "tp"
    if pct <= -cfg.stop_loss_pct:
        return "sl"
    if held_s >= cfg.max_hold_s:
        return "max_hold"
    if crowd is not None and support_apr is not None and (
            not crowd_is_same or crowd < cfg.ratio_exit or support_apr <= cfg.funding_exit_apr):
        return "normalized"
    return ""


def interval_s(cfg: LitConfig, env: dict[str, str] | None = None) -> float:
    """The evaluation interval: `INTERVAL` (seconds, as in the document's runner) over the config."""
    env = os.environ if env is None else env
    text = env.get(INTERVAL_ENV, "").strip()
    if not text:
        return cfg.interval_s
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not (math.isfinite(v) and 1 <= v <= 86_400):
        raise ConfigError(f"config error: INTERVAL = {text!r}: seconds between LIT evaluations, 1..86400")
    return v


def backoff_s(cfg: LitConfig, attempt: int) -> float:
    """Delay before retry number `attempt` (1, 2, ...): retry_backoff_s, doubling."""
    return cfg.retry_backoff_s * 2.0 ** (attempt - 1)


RETRYABLE_EXCLUDE = ("approval", "halted", "flatten", "blacklisted", "duplicate", "110072", "rejected by operator",
                     "loss limit", "cooldown", "expired")


def retryable(reason: str) -> bool:
    """An exchange or transport error is retried; refusals by our gates or the operator are not, nor
    Bybit's duplicate orderLinkId (110072: the first attempt did reach the exchange)."""
    low = reason.lower()
    return not any(k in low for k in RETRYABLE_EXCLUDE)
