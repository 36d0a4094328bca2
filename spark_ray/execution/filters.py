"""Exchange filters (Binance ``exchangeInfo``): round orders to the tick and lot grids and check
minimum quantity and notional before anything is sent.

The venue refuses an off-grid or too-small order with ``-1013 Filter failure``; checking here
turns that into a local REJECTED with the same reason, without a round trip. Quantities and
prices are formatted as exact decimal strings with the grid's number of decimals, because a float
such as ``0.30000000000000004`` would itself fail the filter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any


class FilterReject(ValueError):
    """An order the venue's filters would refuse; the message says which filter and why."""


def _dec(raw: Any) -> Decimal:
    return Decimal(str(raw))


def _decimals(step: Decimal) -> int:
    """Decimals of a grid size: 0.00100000 -> 3, 1.00000000 -> 0."""
    if step <= 0:
        return 8
    return max(0, -step.normalize().as_tuple().exponent)  # type: ignore[operator]


@dataclass(frozen=True)
class SymbolFilters:
    """One symbol's grid and limits; zero means "no such limit" (Binance's convention)."""

    symbol: str
    base_asset: str = ""
    quote_asset: str = ""
    tick_size: Decimal = Decimal(0)
    step_size: Decimal = Decimal(0)
    min_qty: Decimal = Decimal(0)
    max_qty: Decimal = Decimal(0)
    min_notional: Decimal = Decimal(0)
    apply_min_to_market: bool = True
    quote_precision: int = 8

    @classmethod
    def from_exchange_info(cls, info: dict[str, Any]) -> SymbolFilters:
        """From one entry of ``exchangeInfo["symbols"]``."""
        f = {x.get("filterType"): x for x in info.get("filters", [])}
        price = f.get("PRICE_FILTER", {})
        lot = f.get("LOT_SIZE", {})
        notional = f.get("NOTIONAL") or f.get("MIN_NOTIONAL") or {}
        return cls(
            symbol=str(info["symbol"]), base_asset=str(info.get("baseAsset", "")),
            quote_asset=str(info.get("quoteAsset", "")),
            tick_size=_dec(price.get("tickSize", "0")), step_size=_dec(lot.get("stepSize", "0")),
            min_qty=_dec(lot.get("minQty", "0")), max_qty=_dec(lot.get("maxQty", "0")),
            min_notional=_dec(notional.get("minNotional", "0")),
            apply_min_to_market=bool(notional.get("applyMinToMarket", True)),
            quote_precision=int(info.get("quoteAssetPrecision", info.get("quotePrecision", 8))))

    # --- for the backtest's cost model (paper broker) ----------------------------------------
    @property
    def lot_step(self) -> float | None:
        return float(self.step_size) if self.step_size > 0 else None

    @property
    def min_notional_f(self) -> float | None:
        return float(self.min_notional) if self.min_notional > 0 else None

    # --- rounding ------------------------------------------------------------------------------
    def qty(self, qty: float) -> Decimal:
        """Round a quantity down to the lot step (never more than asked)."""
        q = _dec(repr(float(qty)))
        if self.step_size > 0:
            q = (q / self.step_size).to_integral_value(ROUND_DOWN) * self.step_size
        return q.quantize(Decimal(1).scaleb(-_decimals(self.step_size))) \
            if self.step_size > 0 else q

    def price(self, price: float, side: str, kind: str) -> Decimal:
        """Round a price to the tick: a buy limit down and a sell limit up (never a worse price
        than asked); a stop to the nearest tick."""
        p = _dec(repr(float(price)))
        if self.tick_size <= 0:
            return p
        if kind == "limit":
            mode = ROUND_FLOOR if side == "buy" else ROUND_CEILING
        else:
            mode = ROUND_HALF_EVEN
        p = (p / self.tick_size).to_integral_value(mode) * self.tick_size
        return p.quantize(Decimal(1).scaleb(-_decimals(self.tick_size)))

    def quote(self, amount: float) -> Decimal:
        """A quote amount (``quoteOrderQty``) rounded down to the quote precision."""
        q = _dec(repr(float(amount)))
        return q.quantize(Decimal(1).scaleb(-self.quote_precision), rounding=ROUND_DOWN)

    # --- checks --------------------------------------------------------------------------------
    def check(self, qty: Decimal | None, ref_price: float | None, *, market: bool,
              quote_qty: Decimal | None = None) -> None:
        """Raise :class:`FilterReject` the way the venue would (LOT_SIZE, NOTIONAL)."""
        if qty is not None:
            if qty <= 0:
                raise FilterReject("LOT_SIZE: quantity rounds to zero")
            if self.min_qty > 0 and qty < self.min_qty:
                raise FilterReject(f"LOT_SIZE: quantity {qty} below minQty {self.min_qty}")
            if self.max_qty > 0 and qty > self.max_qty:
                raise FilterReject(f"LOT_SIZE: quantity {qty} above maxQty {self.max_qty}")
        if self.min_notional <= 0 or (market and not self.apply_min_to_market):
            return
        if quote_qty is not None:
            notional = quote_qty
        elif qty is not None and ref_price is not None and math.isfinite(ref_price):
            notional = qty * _dec(repr(float(ref_price)))
        else:
            return
        if notional < self.min_notional:
            raise FilterReject(f"NOTIONAL: {notional.normalize():f} below minNotional "
                               f"{self.min_notional.normalize():f}")


def parse_exchange_info(body: dict[str, Any]) -> dict[str, SymbolFilters]:
    """Every symbol's filters from an ``exchangeInfo`` body."""
    return {s["symbol"]: SymbolFilters.from_exchange_info(s) for s in body.get("symbols", [])}


def text(d: Decimal) -> str:
    """A decimal as Binance wants it: fixed point, no exponent."""
    return format(d, "f")

