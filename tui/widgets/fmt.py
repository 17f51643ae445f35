"""Number, time and money formatting shared by the panes (pure functions, no widgets)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from engine.events import NS


def price_decimals(tick_size: float) -> int:
    """Decimals needed to show a price on a tick grid (0.1 -> 1, 0.0001 -> 4)."""
    if tick_size <= 0:
        return 2
    return max(0, -math.floor(math.log10(tick_size) + 1e-9))


def fmt_price(value: float | None, decimals: int) -> str:
    return "-" if value is None else f"{value:,.{decimals}f}"


def fmt_qty(value: float) -> str:
    """Quantities in base units: keep 4 significant decimals for small coins, fewer for large counts."""
    a = abs(value)
    if a >= 1000:
        return f"{value:,.0f}"
    if a >= 1:
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    return f"{value:.5f}".rstrip("0").rstrip(".") or "0"


def fmt_usd_short(value: float) -> str:
    """$ with K/M suffix, for notionals in narrow columns."""
    a = abs(value)
    sign = "-" if value < 0 else ""
    if a >= 1e9:
        return f"{sign}${a / 1e9:.2f}B"
    if a >= 1e6:
        return f"{sign}${a / 1e6:.2f}M"
    if a >= 1e3:
        return f"{sign}${a / 1e3:.1f}K"
    return f"{sign}${a:.0f}"


def fmt_usd(value: float, signed: bool = False) -> str:
    if signed:
        return f"{'+' if value >= 0 else '-'}${abs(value):,.2f}"
    return f"{'-' if value < 0 else ''}${abs(value):,.2f}"


def fmt_pct(value: float, signed: bool = True) -> str:
    return f"{value:+.2f}%" if signed else f"{value:.2f}%"


def fmt_duration(seconds: float) -> str:
    """Compact duration: 0.3s, 42s, 3m07s, 2h05m, 3d04h."""
    if 0 <= seconds < 10:
        return f"{seconds:.1f}s"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86_400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86_400}d{s % 86_400 // 3600:02d}h"


def fmt_time(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / NS, UTC).strftime("%H:%M:%S")


def fmt_datetime(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / NS, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_compact(value: float) -> str:
    """A gauge value: 3 significant figures with K/M suffix."""
    a = abs(value)
    if a >= 1e6:
        return f"{value / 1e6:.2f}M"
    if a >= 1e3:
        return f"{value / 1e3:.1f}K"
    if a >= 100 or a == int(a):
        return f"{value:.0f}"
    return f"{value:.3g}"
