"""What a fill costs and which quantities the exchange accepts: fees, slippage, lot step and
minimum notional. One value for the backtest and the paper broker (which adds the venue's own
filters per symbol)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property


@dataclass(frozen=True)
class CostModel:
    """Fees, slippage and exchange filters."""

    fee_bps: float = 10.0  # taker: market and stop orders
    maker_fee_bps: float | None = None  # limit orders; None: same as fee_bps
    slippage_bps: float = 0.0
    slippage_range_frac: float = 0.0  # adverse fraction of the bar's high-low range
    lot_step: float | None = None
    min_notional: float | None = None

    # Rates as fractions, computed once: every fill reads them (the backtest's hot path).
    @cached_property
    def taker(self) -> float:
        return self.fee_bps / 1e4

    @cached_property
    def maker(self) -> float:
        return (self.fee_bps if self.maker_fee_bps is None else self.maker_fee_bps) / 1e4

    @cached_property
    def slippage_rate(self) -> float:
        return self.slippage_bps / 1e4
