"""Strategy registry: name -> class, imported lazily so a broken optional strategy
cannot stop the others from loading."""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Settings
    from .base import Strategy

REGISTRY: dict[str, str] = {
    "cascade": "engine.strategies.cascade:CascadeStrategy",
    "lpi": "engine.strategies.lpi:LpiStrategy",
    "lit": "engine.strategies.lit:LitStrategy",
    "lta": "engine.strategies.lta:LtaStrategy",
    "funding_arb": "engine.strategies.funding_arb:FundingArbStrategy",
    "maker-probe": "engine.strategies.maker_probe:MakerProbeStrategy",
}


class UnknownStrategy(ValueError):
    pass


def strategy_class(name: str) -> type[Strategy]:
    target = REGISTRY.get(name)
    if target is None:
        raise UnknownStrategy(f"unknown strategy '{name}'; available: {', '.join(available())}")
    module, _, cls = target.partition(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError):
        raise UnknownStrategy(f"strategy '{name}' is not built yet; available: {', '.join(available())}") from None


def available() -> list[str]:
    """Names whose implementation is present."""
    out = []
    for name, target in REGISTRY.items():
        module = target.partition(":")[0]
        if importlib.util.find_spec(module) is not None:
            out.append(name)
    return out


def create(name: str, settings: Settings, symbols: list[str]) -> Strategy:
    return strategy_class(name)(settings, symbols)
