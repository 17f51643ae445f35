"""Configuration: pydantic-settings from a TOML file plus LIQDESK_* environment overrides.

Precedence (highest first): LIQDESK_SECTION__KEY environment variables, the TOML
file (`--config PATH`, else ./config.toml if present), then the defaults below.
Every model forbids unknown keys, so a typo is an error, not a silent default.
`load_config` turns any problem into a one-line `ConfigError` that names the
key, the value and what is allowed; the CLI prints it and exits with code 2.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT"]


class ConfigError(Exception):
    """A one-line, user-facing configuration error."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class EngineConfig(Section):
    symbols: list[str] = Field(default_factory=lambda: list(SYMBOLS), min_length=1)
    strategies: list[str] = Field(default_factory=lambda: ["cascade"])
    seed: int = Field(default=1, ge=0)
    account_equity_usd: float = Field(default=10_000.0, gt=0)
    log_file: str = "liqdesk.log"
    notification_queue: int = Field(default=10_000, ge=100, le=1_000_000)
    control_socket: str = ""  # empty: <db path>.sock next to the database

    @field_validator("symbols")
    @classmethod
    def _upper(cls, v: list[str]) -> list[str]:
        out = [s.strip().upper() for s in v]
        if any(not s.isalnum() for s in out):
            raise ValueError("symbols must be alphanumeric, e.g. BTCUSDT")
        return out


class CascadeSymbolOverride(Section):
    entry_offset_pct: float | None = Field(default=None, gt=0, le=10)
    take_profit_pct: float | None = Field(default=None, gt=0, le=50)
    stop_loss_pct: float | None = Field(default=None, gt=0, le=50)
    seed_threshold_usd: float | None = Field(default=None, gt=0)


class CascadeConfig(Section):
    quantile: float = Field(default=0.95, gt=0.5, lt=1.0)
    quantile_window: int = Field(default=1000, ge=10, le=1_000_000)  # liquidations
    refresh_s: float = Field(default=3600.0, gt=0)  # seconds between threshold recomputations
    window_s: float = Field(default=60.0, gt=0, le=3600)
    min_count: int = Field(default=2, ge=2, le=100)
    seed_thresholds_usd: dict[str, float] = Field(default_factory=lambda: {
        "BTCUSDT": 200_000.0, "ETHUSDT": 80_000.0, "SOLUSDT": 15_000.0, "DOGEUSDT": 10_000.0,
        "XRPUSDT": 10_000.0})
    default_seed_threshold_usd: float = Field(default=10_000.0, gt=0)
    entry_offset_pct: float = Field(default=0.15, gt=0, le=10)
    take_profit_pct: float = Field(default=0.15, gt=0, le=50)
    stop_loss_pct: float = Field(default=0.25, gt=0, le=50)
    overrides: dict[str, CascadeSymbolOverride] = Field(default_factory=lambda: {
        "BTCUSDT": CascadeSymbolOverride(entry_offset_pct=0.10, take_profit_pct=0.50)})
    entry_timeout_s: float = Field(default=1800.0, gt=0)
    position_timeout_s: float = Field(default=1800.0, gt=0)
    cooldown_s: float = Field(default=300.0, ge=0)
    session_filter: bool = False
    session_start_utc_h: int = Field(default=13, ge=0, le=23)
    session_end_utc_h: int = Field(default=18, ge=1, le=24)
    notional_pct_of_equity: float = Field(default=30.0, gt=0, le=100)  # $10K -> $3K, inside the guide's $2-5K
    leverage: float = Field(default=5.0, ge=1, le=10)


class RiskConfig(Section):
    max_leverage: float = Field(default=10.0, ge=1, le=10)  # hard cap 10x
    max_order_notional_usd: float = Field(default=5_000.0, gt=0)
    max_total_notional_usd: float = Field(default=20_000.0, gt=0)
    max_open_symbols: int = Field(default=4, ge=1, le=100)
    daily_loss_limit_pct: float = Field(default=1.0, gt=0, le=100)
    weekly_loss_limit_pct: float = Field(default=2.0, gt=0, le=100)
    blacklist: list[str] = Field(default_factory=list)
    stale_book_s: float = Field(default=10.0, gt=0)


class ApprovalConfig(Section):
    mode: Literal["auto", "manual"] = "auto"
    timeout_s: float = Field(default=20.0, gt=0, le=3600)


class PaperConfig(Section):
    latency_ms: float = Field(default=100.0, ge=0, le=60_000)  # each way
    maker_fee_bps: float = Field(default=2.0, ge=-10, le=100)
    taker_fee_bps: float = Field(default=5.5, ge=-10, le=100)
    queue_model: Literal["riskaverse", "power", "power2", "power3", "log", "log2"] = "riskaverse"
    queue_power: float = Field(default=2.0, gt=0, le=10)


class StoreConfig(Section):
    batch_ms: float = Field(default=100.0, gt=0, le=10_000)
    log_retention_rows: int = Field(default=200_000, ge=1000)


class SyntheticConfig(Section):
    informed_share: float = Field(default=0.3, ge=0, le=1)  # episodes that do not revert
    reversion_fraction: float = Field(default=0.7, ge=0, le=1)  # share of impact a forced episode gives back
    informed_continuation: float = Field(default=0.2, ge=0, le=1)  # extra move after an informed episode
    book_interval_s: float = Field(default=1.0, gt=0, le=60)
    ticker_interval_s: float = Field(default=1.0, gt=0, le=60)
    ratio_interval_s: float = Field(default=300.0, gt=0, le=86_400)
    book_levels: int = Field(default=50, ge=1, le=500)
    activity: float = Field(default=1.0, gt=0, le=10)  # scales the liquidation and trade rates
    start: str = "2025-01-06T00:00:00Z"  # simulated start time (UTC)
    # LIT's imbalance regime (docs/synthetic-market.md): "off" keeps the calibrated market; "plain" adds
    # frequent crowding episodes (long/short ratio and funding); "edge" also plants a contrarian drift
    imbalance_regime: Literal["off", "plain", "edge"] = "off"
    imbalance_shocks_per_day: float = Field(default=3.0, gt=0, le=100)  # crowding shocks per symbol and day
    imbalance_edge_pct_per_day: float = Field(default=3.0, ge=0, le=50)  # "edge": price drift against the crowd


class TuiConfig(Section):
    refresh_hz: float = Field(default=10.0, gt=0, le=20)
    tape_rows: int = Field(default=500, ge=10, le=100_000)
    log_lines: int = Field(default=5_000, ge=100, le=1_000_000)
    keymap: dict[str, str] = Field(default_factory=dict)  # binding id -> keys, e.g. kill = "ctrl+k"


class BybitConfig(Section):
    public_ws_url: str = ""  # empty: chosen by mode (mainnet/testnet; demo uses mainnet public data)
    private_ws_url: str = ""
    rest_url: str = ""
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    secrets_file: str = ""
    ping_interval_s: float = Field(default=20.0, gt=0, le=300)
    stale_after_s: float = Field(default=30.0, gt=0, le=3600)
    subscribe_batch: int = Field(default=10, ge=1, le=10)
    pong_timeout_s: float = Field(default=10.0, gt=0, le=300)
    topic_stale_s: float = Field(default=10.0, gt=0, le=3600)  # book/ticker silence that marks a topic STALE
    reconnect_min_s: float = Field(default=0.5, gt=0, le=30)
    reconnect_max_s: float = Field(default=30.0, gt=0, le=30)
    recv_window_ms: int = Field(default=5000, ge=1000, le=60_000)
    rest_max_retries: int = Field(default=3, ge=0, le=10)
    ratio_poll_s: float = Field(default=300.0, ge=0, le=86_400)  # account-ratio REST poll; 0 = off
    load_instruments: bool = True
    stop_loss_via: Literal["conditional", "trading_stop"] = "conditional"


class LpiParams(Section):
    """Liquidity Pressure Index parameters (docs/strategies/lpi.md); any of them can differ per bucket."""

    # features, at each alpha tick
    tick_ms: int = Field(default=250, ge=50, le=5000)  # alpha tick; 100 for top pairs
    depth_band_bps: float = Field(default=10.0, gt=0, le=500)  # eta: bid depth within b(1 - eta)
    impact_threshold_bps: float = Field(default=5.0, ge=0, le=500)  # theta: impact trades beyond b(1 - theta)
    adv_window_s: float = Field(default=3600.0, gt=0, le=86_400)  # ADV$ rolling window
    depth_mean_window_s: float = Field(default=600.0, gt=0, le=86_400)  # rolling mean of D(eta)
    oi_lag_s: float = Field(default=30.0, gt=0, le=86_400)  # Delta_OI, rounded to whole OI update intervals
    oi_sparse_after_s: float = Field(default=30.0, gt=0)  # OI updates further apart: sparse mode
    oi_ewma_halflife_updates: float = Field(default=3.0, gt=0)  # smoothed OI in sparse mode
    kappa: float = Field(default=1.0, ge=0, le=10)  # g(dOI) = 1 + kappa tanh(dOI / sigma_dOI)
    impact_eps_adv_ticks: float = Field(default=1.0, gt=0)  # Pi's epsilon, in ticks of ADV$
    robust_window_h: float = Field(default=2.0, ge=2, le=24)  # W of the robust z-scores, hours
    robust_min_samples: int = Field(default=240, ge=10)  # z = 0 until the window has this many
    z_clip: float = Field(default=0.0, ge=0)  # |z| cap; 0 = none (the document's z is unbounded)
    w_fsi: float = 0.5
    w_ldr: float = 0.3
    w_pi: float = 0.2
    use_microprice: bool = False  # price for r, stops and divergence: mid (default) or microprice
    # state classifier and exhaustion
    c_fsi: float = 2.0  # FORCED needs z(FSI) above this ...
    c_oi: float = 1.5  # ... and z(dOI) above this (or a liquidation spike when OI is sparse)
    state_hold_s: float = Field(default=15.0, ge=0)  # FORCED persists this long after the last hit
    liq_spike_window_s: float = Field(default=5.0, gt=0)
    liq_spike_mult: float = Field(default=1.0, gt=0)  # x the P95 liquidation notional
    lpi_hi: float = 3.0
    lpi_exit: float = 1.2
    rollover_ticks: int = Field(default=3, ge=1, le=100)  # K
    z_oi_hi: float = 1.5
    divergence_min_s: float = Field(default=1.0, gt=0)
    divergence_max_s: float = Field(default=3.0, gt=0)
    divergence_rule: Literal["all", "any"] = "all"  # every tau in the range, or some tau
    divergence_price: Literal["stalled", "new_low"] = "stalled"  # price not beyond / beyond its level tau ago
    # Mode A: maker fade
    mode_a: bool = True
    w_max_usd: float = Field(default=2000.0, gt=0)  # notional at sigma = sigma_ref and h(LPI) = 1
    sigma_ref_bps: float = Field(default=20.0, gt=0)
    vol_window_s: float = Field(default=30.0, gt=0)  # realized vol horizon for sizing and stops
    inventory_cap_usd: float = Field(default=3000.0, gt=0)
    layer_ticks: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1, max_length=5)
    layer_weights: list[float] = Field(default_factory=lambda: [0.45, 0.4, 0.15], min_length=1, max_length=5)
    z_pi_max: float = 2.0  # toxicity gate: quote only while z(Pi) is below this
    spread_cap_bps: float = Field(default=20.0, gt=0)
    quote_ttl_s: float = Field(default=3.0, gt=0)
    entry_window_s: float = Field(default=10.0, gt=0)  # keep quoting this long after E_t
    leverage: float = Field(default=2.0, ge=1, le=10)
    markout_target_sigma: float = Field(default=1.0, gt=0)  # take profit at this many sigma
    stop_sigma: float = Field(default=2.5, gt=0)
    time_stop_s: float = Field(default=120.0, gt=0)
    exit_maker_s: float = Field(default=3.0, ge=0)  # a signal exit rests PostOnly this long, then market
    cooldown_s: float = Field(default=30.0, ge=0)
    btc_filter: bool = True
    btc_symbol: str = "BTCUSDT"
    btc_crash_window_s: float = Field(default=60.0, gt=0)
    btc_crash_bps: float = Field(default=50.0, gt=0)
    btc_reduce_fraction: float = Field(default=0.5, ge=0, le=1)
    # Mode B: small trend follower in INFORMED episodes (off by default)
    mode_b: bool = False
    mode_b_notional_usd: float = Field(default=300.0, gt=0)
    mode_b_lookback_s: float = Field(default=5.0, gt=0)
    mode_b_beta: float = Field(default=0.3, ge=0)  # expected continuation, share of the lookback move
    mode_b_min_edge_bps: float = Field(default=2.0, ge=0)  # over round-trip taker fees and the spread
    mode_b_hold_s: float = Field(default=60.0, gt=0)
    # event-study funding regimes (per funding interval, as a fraction)
    funding_high_positive: float = 0.0003
    funding_negative: float = 0.0

    @model_validator(mode="after")
    def _check(self) -> LpiParams:
        if len(self.layer_ticks) != len(self.layer_weights):
            raise ValueError("layer_ticks and layer_weights need the same length")
        if self.divergence_max_s < self.divergence_min_s:
            raise ValueError("divergence_max_s must be >= divergence_min_s")
        return self


LpiOverride = create_model(  # every LpiParams key, all optional: what a bucket changes
    "LpiOverride", __base__=Section,
    **{k: (f.annotation | None, None) for k, f in LpiParams.model_fields.items()})


class LpiConfig(LpiParams):
    buckets: dict[str, LpiOverride] = Field(default_factory=lambda: {  # type: ignore[valid-type]
        "major": LpiOverride(inventory_cap_usd=4000.0), "alt": LpiOverride(inventory_cap_usd=2000.0)})
    symbol_buckets: dict[str, str] = Field(default_factory=lambda: {
        "BTCUSDT": "major", "ETHUSDT": "major", "SOLUSDT": "alt", "XRPUSDT": "alt", "DOGEUSDT": "alt"})

    @model_validator(mode="after")
    def _check_buckets(self) -> LpiConfig:
        for sym, b in self.symbol_buckets.items():
            if b not in self.buckets:
                raise ValueError(f"symbol_buckets.{sym} = {b!r}: no such bucket; have {', '.join(self.buckets)}")
        for name, ov in self.buckets.items():
            try:
                LpiParams(**{**self.model_dump(exclude={"buckets", "symbol_buckets"}),
                             **ov.model_dump(exclude_none=True)})
            except ValidationError as exc:
                raise ValueError(f"buckets.{name}: {exc.errors()[0]['msg']}") from None
        return self

    def for_symbol(self, symbol: str) -> LpiParams:
        """The parameters of `symbol`: defaults, then its bucket's overrides."""
        base = self.model_dump(exclude={"buckets", "symbol_buckets"})
        ov = self.buckets.get(self.symbol_buckets.get(symbol, ""))
        if ov is not None:
            base.update(ov.model_dump(exclude_none=True))
        return LpiParams(**base)


class LitConfig(Section):
    """Liquidity Imbalance Tracker (docs/strategies/lit.md); funding levels are annualized percent."""

    interval_s: float = Field(default=1800.0, ge=1, le=86_400)  # evaluation interval; INTERVAL env overrides
    first_eval_s: float = Field(default=60.0, ge=0, le=86_400)  # first evaluation after the first ratio
    ratio_entry: float = Field(default=2.0, gt=1, le=100)  # one side at least this many times the other
    ratio_exit: float = Field(default=1.5, ge=1, le=100)  # normalization: crowding back under this
    funding_entry_apr: float = Field(default=15.0, ge=0, le=10_000)  # funding paying the contrarian side, %
    funding_exit_apr: float = Field(default=0.0, ge=0, le=10_000)  # normalization: support at or under this
    ratio_max_age_s: float = Field(default=3600.0, gt=0)  # an older ratio is no signal
    ratio_sources: list[str] = Field(default_factory=lambda: [
        "synthetic", "bybit", "binance:global_accounts"], min_length=1)  # accepted LongShortRatio sources
    collateral_usd: float = Field(default=10.1, gt=0)  # margin per position
    base_leverage: float = Field(default=2.5, ge=1, le=10)
    tier1_ratio: float = Field(default=3.0, gt=1)  # multiplier tier1_mult above this ratio ...
    tier1_funding_apr: float = Field(default=25.0, ge=0)  # ... or this funding
    tier1_mult: float = Field(default=1.2, ge=1, le=5)
    tier2_ratio: float = Field(default=5.0, gt=1)
    tier2_funding_apr: float = Field(default=40.0, ge=0)
    tier2_mult: float = Field(default=1.5, ge=1, le=5)
    max_leverage: float = Field(default=5.0, ge=1, le=10)  # safety cap (the instrument's is applied too)
    max_positions: int = Field(default=3, ge=1, le=100)
    take_profit_pct: float = Field(default=3.0, gt=0, le=1000)
    stop_loss_pct: float = Field(default=4.0, gt=0, le=1000)
    pnl_basis: Literal["collateral", "price"] = "collateral"  # TP/SL on PnL over collateral, or on price move
    max_hold_s: float = Field(default=86_400.0, gt=0)
    blacklist_s: float = Field(default=86_400.0, gt=0)
    blacklist_after_sl: int = Field(default=2, ge=1, le=100)  # consecutive stop losses that blacklist
    max_retries: int = Field(default=3, ge=0, le=10)  # entry retries after an exchange error
    retry_backoff_s: float = Field(default=5.0, gt=0, le=3600)  # first retry delay; doubles each time
    score_cap: float = Field(default=5.0, gt=0)  # cap on each of the score's two terms
    once_warmup_s: float = Field(default=120.0, ge=0, le=86_400)  # `lit --once` on a simulated feed
    once_settle_s: float = Field(default=30.0, ge=0, le=3600)  # `lit --once`: time for fills after acting

    @model_validator(mode="after")
    def _check(self) -> LitConfig:
        if self.ratio_exit > self.ratio_entry:
            raise ValueError("ratio_exit must be <= ratio_entry")
        if self.tier2_mult < self.tier1_mult:
            raise ValueError("tier2_mult must be >= tier1_mult")
        return self


class FundingVenueConfig(Section):
    """One venue of the funding service (docs/strategies/funding-arb.md)."""

    adapter: Literal["synthetic", "bybit", "binance", "okx", "hyperliquid", "none"] = "synthetic"
    is_dex: bool = False
    interval_h: float = Field(default=8.0, gt=0, le=24)  # synthetic funding interval (live: from the venue)
    base_url: str = ""  # empty: the adapter's documented public endpoint
    timeout_s: float = Field(default=5.0, gt=0, le=60)
    oi_scale: float = Field(default=1.0, gt=0, le=10)  # synthetic OI, as a share of a large CEX's
    leg_fee_bps: float = Field(default=2.0, ge=0, le=100)  # paper legs: taker fee per leg fill
    leg_reject_rate: float = Field(default=0.0, ge=0, le=1)  # paper legs: share of orders the venue rejects


def _default_funding_venues() -> dict[str, FundingVenueConfig]:
    V = FundingVenueConfig
    return {"bybit": V(adapter="bybit", oi_scale=0.6), "binance": V(adapter="binance"),
            "okx": V(adapter="okx", oi_scale=0.45),
            "hyperliquid": V(adapter="hyperliquid", is_dex=True, interval_h=1.0, oi_scale=0.35),
            "lighter": V(adapter="none", is_dex=True, interval_h=1.0, oi_scale=0.05),
            "grvt": V(adapter="none", is_dex=True, interval_h=4.0, oi_scale=0.02)}


class FundingArbConfig(Section):
    """Funding service + funding_arb client (docs/strategies/funding-arb.md)."""

    source: Literal["synthetic", "live"] = "synthetic"  # synthetic: every venue simulated (seeded)
    venues: dict[str, FundingVenueConfig] = Field(default_factory=_default_funding_venues)
    symbols: list[str] = Field(default_factory=list)  # empty: [engine] symbols
    check_interval_seconds: float = Field(default=60.0, gt=0, le=3600)
    stale_after_s: float = Field(default=300.0, gt=0)  # a venue's rate older than this is left out
    rebalance_cost_bps: float = Field(default=8.0, ge=0, le=1000)  # round trip: exit + entry, both legs
    expected_hold_hours: float = Field(default=24.0, gt=0, le=720)  # horizon of an opportunity's profit
    api_token: SecretStr | None = None  # needed to bind the API to a non-loopback address
    # the client (strategy)
    preset: Literal["conservative", "aggressive", "none"] = "conservative"
    min_profit: float = Field(default=0.0005, ge=-1, le=1)  # open only above this expected profit (fraction)
    max_oi_usd: float = Field(default=0.0, ge=0)  # 0: no OI cap on the legs
    prioritize_dexes: list[str] = Field(default_factory=list)
    max_positions: int = Field(default=3, ge=1, le=100)
    max_per_venue: int = Field(default=2, ge=1, le=100)
    capital_usd: float = Field(default=0.0, ge=0)  # 0: the engine's account equity
    position_pct: float = Field(default=25.0, gt=0, le=100)  # of the free capital, per pair (per leg)
    min_position_usd: float = Field(default=100.0, gt=0)
    max_position_usd: float = Field(default=5_000.0, gt=0)
    leg_timeout_s: float = Field(default=10.0, gt=0, le=600)  # one-legged for longer: unwind
    leg_latency_ms: float = Field(default=150.0, ge=0, le=60_000)  # paper legs: order round trip
    reopen_cooldown_s: float = Field(default=300.0, ge=0)  # a closed pair's symbol+venues wait this long
    rules: list[Literal["combined", "PROFIT_EROSION", "DIVERGENCE_FLIPPED", "BETTER_OPPORTUNITY", "TIME_LIMIT",
                        "PRE_FUNDING_EXIT", "OI_IMBALANCE"]] = Field(
        default_factory=lambda: ["combined", "PROFIT_EROSION", "OI_IMBALANCE"])
    # rule thresholds (the document's defaults; a preset overrides the keys it names unless set here)
    min_erosion_threshold: float = Field(default=0.3, ge=0, le=1)  # PROFIT_EROSION
    severe_erosion_threshold: float = Field(default=0.2, ge=0, le=1)  # combined: SEVERE_EROSION
    min_profit_improvement: float = Field(default=0.001, ge=0, le=1)  # BETTER_OPPORTUNITY, share of size
    better_opportunity_hours: float = Field(default=24.0, gt=0, le=720)  # "next 24 h (3 funding periods)"
    enable_better_opportunity: bool = True
    time_limit_hours: float = Field(default=72.0, gt=0)  # TIME_LIMIT
    max_position_age_hours: float = Field(default=168.0, gt=0)  # combined: WEEKLY_REBALANCE
    pre_funding_exit_s: float = Field(default=900.0, gt=0, le=86_400)
    pre_funding_mode: Literal["exit", "collect"] = "collect"
    oi_ratio_max: float = Field(default=3.0, gt=1)
    oi_ratio_min: float = Field(default=0.33, gt=0, lt=1)

    @model_validator(mode="after")
    def _apply_preset(self) -> FundingArbConfig:
        from .funding.rules import PRESETS
        preset = PRESETS.get(self.preset, {})
        explicit = self.model_fields_set
        for k, v in preset.items():
            if k not in explicit and getattr(self, k) != v:
                object.__setattr__(self, k, v)
        if any(s != s.strip().upper() for s in self.symbols):
            object.__setattr__(self, "symbols", [s.strip().upper() for s in self.symbols])
        for name in self.prioritize_dexes:
            if name not in self.venues:
                raise ValueError(f"prioritize_dexes: no venue {name!r}; have {', '.join(self.venues)}")
        return self


class LtaConfig(Section):
    """Liquidity Trading Algorithm (docs/strategies/lta.md); the manual's settings with its defaults."""

    interval: str = "1h"  # bar interval, 1m .. 1d (live bars; `backtest --interval` overrides)
    style: Literal["aggressive", "balanced", "conservative", "diamond"] = "balanced"
    direction: Literal["both", "long", "short"] = "both"
    impose_wait_bars: int = Field(default=0, ge=0, le=1000)
    wait_mode: Literal["wait", "exit-wait"] = "wait"
    ams: bool = False
    ams_activate: float = Field(default=0.4, gt=0, le=10)  # fast LDPS below -this activates AMS
    ams_deactivate: float = Field(default=0.1, ge=0, le=10)  # ... and above -this deactivates it
    ldps_gate: float = Field(default=0.5, ge=0, le=10)  # entries need LDPS >= -this
    sizing: Literal["fixed-percentage", "fixed-share"] = "fixed-percentage"
    portfolio_allotment_pct: float = Field(default=100.0, gt=0, le=100)
    max_size: float = Field(default=0.0, ge=0, le=100_000)  # units; 0 = no limit (Fixed-Percentage)
    fractional: bool = True
    initial_capital: float = Field(default=10_000.0, gt=0)
    start_date: str = ""  # backtest: trade from this UTC date (earlier bars warm the metrics up)
    take_profit_pct: float = Field(default=0.0, ge=0, le=1000)  # 0 = off
    stop_loss_pct: float = Field(default=0.0, ge=0, le=100)
    trailing_stop_pct: float = Field(default=0.0, ge=0, le=100)
    trailing_activation_pct: float = Field(default=0.0, ge=0, le=1000)
    blank_banner: bool = False

    @model_validator(mode="after")
    def _check(self) -> LtaConfig:
        from .feeds.importers.ohlcv import interval_seconds

        try:
            sec = interval_seconds(self.interval)
        except ValueError as exc:
            raise ValueError(f"interval: {exc}") from None
        if not 60 <= sec <= 86_400:
            raise ValueError(f"interval = {self.interval!r}: must be 1m .. 1d")
        if self.sizing == "fixed-share" and self.max_size <= 0:
            raise ValueError("sizing = 'fixed-share' needs max_size > 0 (the size of every position)")
        if self.ams_deactivate >= self.ams_activate:
            raise ValueError("ams_deactivate must be below ams_activate")
        if self.start_date:
            from .feeds.synthetic import parse_utc

            try:
                parse_utc(self.start_date)
            except ValueError:
                raise ValueError(f"start_date = {self.start_date!r}: use a UTC date, e.g. 2025-01-15") from None
        return self


class _TomlSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]):
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field, field_name):  # pragma: no cover - not used by __call__
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self._data


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIQDESK_", env_nested_delimiter="__", extra="forbid",
                                      validate_assignment=True)

    engine: EngineConfig = Field(default_factory=EngineConfig)
    cascade: CascadeConfig = Field(default_factory=CascadeConfig)
    risk: RiskConfig = Field(default_factory=RiskConfig)
    approval: ApprovalConfig = Field(default_factory=ApprovalConfig)
    paper: PaperConfig = Field(default_factory=PaperConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)
    tui: TuiConfig = Field(default_factory=TuiConfig)
    bybit: BybitConfig = Field(default_factory=BybitConfig)
    lpi: LpiConfig = Field(default_factory=LpiConfig)
    funding_arb: FundingArbConfig = Field(default_factory=FundingArbConfig)
    lit: LitConfig = Field(default_factory=LitConfig)
    lta: LtaConfig = Field(default_factory=LtaConfig)


    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        return (init_settings, env_settings, _TomlSource(settings_cls, _PENDING_TOML.get("data", {})))

    @model_validator(mode="after")
    def _check_session(self) -> Settings:
        c = self.cascade
        if c.session_filter and c.session_end_utc_h <= c.session_start_utc_h:
            raise ValueError("cascade.session_end_utc_h must be after session_start_utc_h")
        return self

    def public_dict(self) -> dict:
        """The config without secrets, for the runs table and logs."""
        d = self.model_dump(mode="json")
        for k in ("api_key", "api_secret"):
            if d["bybit"].get(k):
                d["bybit"][k] = "***"
        if d["funding_arb"].get("api_token"):
            d["funding_arb"]["api_token"] = "***"
        return d


_PENDING_TOML: dict[str, Any] = {}


def _format_error(err: ValidationError) -> str:
    e = err.errors()[0]
    loc = ".".join(str(p) for p in e["loc"]) or "config"
    value = e.get("input")
    if e["type"] == "extra_forbidden":
        section_path = e["loc"][:-1]
        model: Any = Settings
        for part in section_path:
            f = getattr(model, "model_fields", {}).get(part)
            ann = f.annotation if f is not None else None
            model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
            if model is None:
                break
        allowed = ", ".join(model.model_fields) if model is not None else "see config.example.toml"
        return f"config error: unknown key '{loc}' = {value!r}; allowed keys here: {allowed}"
    msg = e["msg"]
    if e["type"] == "value_error":
        msg = msg.removeprefix("Value error, ")
    return f"config error: {loc} = {value!r}: {msg}"


def load_config(path: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Load settings from `path` (or ./config.toml if it exists, else defaults)."""
    data: dict[str, Any] = {}
    if path is None and Path("config.toml").exists():
        path = "config.toml"
    if path is not None:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config error: file not found: {p}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config error: {p} is not valid TOML: {exc}") from None
    _PENDING_TOML["data"] = data
    try:
        settings = Settings(**(overrides or {}))
    except ValidationError as exc:
        raise ConfigError(_format_error(exc)) from None
    finally:
        _PENDING_TOML.pop("data", None)
    return settings
