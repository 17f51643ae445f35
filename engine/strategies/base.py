"""The Strategy interface: strategies decide, they never act.

Each callback returns a list of intents (PlaceOrder, CancelOrder, ClosePosition,
LogLine, Alert). The engine sends them through risk and approval. Strategies
read the world only through the `StrategyContext` the engine passes in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from ..config import Settings
    from ..engine import StrategyContext
    from ..orders import Fill, Intent, Order


@dataclass(slots=True)
class Gauge:
    """One live value for the gauges pane, drawn as a bar between lo and hi with marks."""

    name: str
    value: float
    lo: float = 0.0
    hi: float = 1.0
    marks: dict[str, float] = field(default_factory=dict)  # label -> threshold value
    text: str = ""  # preformatted value, if a plain number would mislead
    active: bool = False  # highlighted when a condition holds


class Strategy:
    """Base class. Subclasses set `name` and `subscriptions` (event types they want)."""

    name: ClassVar[str] = "base"
    subscriptions: ClassVar[tuple[type, ...]] = ()

    def __init__(self, settings: Settings, symbols: list[str]):
        self.settings = settings
        self.symbols = list(symbols)
        self.paused = False

    def on_start(self, ctx: StrategyContext) -> list[Intent]:
        return []

    def on_event(self, ev: Any, ctx: StrategyContext) -> list[Intent]:
        return []

    def on_order_update(self, order: Order, fill: Fill | None, ctx: StrategyContext) -> list[Intent]:
        return []

    def on_timer(self, now: int, key: str, ctx: StrategyContext) -> list[Intent]:
        return []

    def on_flatten(self, ctx: StrategyContext) -> list[Intent]:
        """The kill switch (`flatten`): close whatever this strategy holds outside the engine's own
        orders and portfolio (funding_arb: its cross-venue pairs), through its usual close path. The
        engine cancels its orders and closes its positions itself. Called even while paused."""
        return []

    def external_positions(self) -> list[dict]:
        """What this strategy holds outside the engine's portfolio, still open or closing: one dict
        each with at least "kind" (e.g. "funding pair"), "symbol", "status" and "text" (one line for
        status views). Counted in the engine's status; a flatten is "flat" only once all are gone."""
        return []

    def snapshot(self) -> dict:
        return {}

    def restore(self, state: dict) -> None:
        return None

    def gauges(self) -> dict[str, list[Gauge]]:
        """symbol -> gauges, read by views at their own rate."""
        return {}
