"""Instrument specs (tick size, qty step, min notional, max leverage) and grid rounding.

Defaults are Bybit's linear-perpetual specs for the five synthetic symbols
(instruments-info, see ../shared/fixtures/bybit/rest_market_instruments_info_linear.json).
Rounding goes through Decimal so that prices sent to a broker sit exactly on the grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal


@dataclass(frozen=True, slots=True)
class Instrument:
    symbol: str
    tick_size: float
    qty_step: float
    min_qty: float
    min_notional: float
    max_leverage: float
    funding_interval_h: float = 8.0

    def _grid(self, value: float, step: float, rounding: str) -> float:
        d_step = Decimal(repr(step))
        units = (Decimal(repr(value)) / d_step).quantize(Decimal(1), rounding=rounding)
        return float(units * d_step)

    def round_price(self, price: float, mode: str = "nearest") -> float:
        """Round a price to the tick grid: nearest, down (floor) or up (ceil)."""
        rounding = {"nearest": ROUND_HALF_EVEN, "down": ROUND_FLOOR, "up": ROUND_CEILING}[mode]
        return self._grid(price, self.tick_size, rounding)

    def round_qty(self, qty: float) -> float:
        """Round a quantity down to the qty step (never round size up). A quantity within 10⁻⁹ of a
        step below a grid point is that grid point: a position summed from fills (2 + 1.8 + 0.6 =
        4.3999999999999995) must close in full, not leave one step open."""
        return self._grid(abs(qty) + self.qty_step * 1e-9, self.qty_step, ROUND_DOWN)

    def on_price_grid(self, price: float) -> bool:
        return math.isclose(self.round_price(price), price, rel_tol=0, abs_tol=self.tick_size * 1e-6)

    def on_qty_grid(self, qty: float) -> bool:
        return math.isclose(self.round_qty(qty), abs(qty), rel_tol=0, abs_tol=self.qty_step * 1e-6)

    def price_str(self, price: float) -> str:
        """Decimal string on the tick grid, as a broker wants it."""
        return format(Decimal(repr(self.round_price(price))).quantize(Decimal(repr(self.tick_size))), "f")

    def qty_str(self, qty: float) -> str:
        return format(Decimal(repr(self.round_qty(qty))).quantize(Decimal(repr(self.qty_step))), "f")


DEFAULT_INSTRUMENTS: dict[str, Instrument] = {
    "BTCUSDT": Instrument("BTCUSDT", 0.1, 0.001, 0.001, 5.0, 100.0),
    "ETHUSDT": Instrument("ETHUSDT", 0.01, 0.01, 0.01, 5.0, 100.0),
    "SOLUSDT": Instrument("SOLUSDT", 0.01, 0.1, 0.1, 5.0, 100.0),
    "XRPUSDT": Instrument("XRPUSDT", 0.0001, 1.0, 1.0, 5.0, 75.0),
    "DOGEUSDT": Instrument("DOGEUSDT", 0.00001, 1.0, 1.0, 5.0, 75.0),
}


def instrument_for(symbol: str, table: dict[str, Instrument] | None = None) -> Instrument:
    """The spec for `symbol`; unknown symbols get a conservative generic spec."""
    table = table if table is not None else DEFAULT_INSTRUMENTS
    if symbol in table:
        return table[symbol]
    return Instrument(symbol, 0.0001, 0.001, 0.001, 5.0, 10.0)
