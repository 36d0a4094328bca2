"""Symbol specifications: assets, tick and step sizes, and exact decimal formatting.

Prices and quantities live as integers (ticks and lot units) everywhere in the venue so that
candles, trades and book levels add up exactly; they become Binance's 8-decimal strings only at
the edge, via :func:`fmt8`.
"""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass

# Quote assets tried, longest first, when splitting a symbol such as "ETHBTC" into base/quote.
_QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "BTC", "ETH", "BNB", "TRY", "EUR", "USD")

SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,20}$")

# Known defaults for common symbols: (initial price, price scale, qty scale, min notional).
_KNOWN: dict[str, tuple[float, int, int, str]] = {
    "BTCUSDT": (60000.0, 2, 5, "5.00000000"),
    "ETHUSDT": (3000.0, 2, 4, "5.00000000"),
    "BNBUSDT": (600.0, 2, 3, "5.00000000"),
    "SOLUSDT": (150.0, 2, 3, "5.00000000"),
    "ADAUSDT": (0.5, 4, 1, "5.00000000"),
    "ETHBTC": (0.05, 5, 4, "0.00010000"),
    "ADABTC": (0.0000285, 8, 1, "0.00010000"),
    "BTCTRY": (2000000.0, 0, 5, "10.00000000"),
    "USDTTRY": (33.33, 2, 1, "10.00000000"),  # ~ BTCTRY / BTCUSDT: a sane cross-venue basis
}


def fmt8(value: int) -> str:
    """An integer count of 1e-8 units as Binance's fixed 8-decimal string ("60685.22000000")."""
    if value < 0:
        return "-" + fmt8(-value)
    q, r = divmod(value, 100_000_000)
    return f"{q}.{r:08d}"


def split_symbol(symbol: str) -> tuple[str, str]:
    """Base and quote asset of a Binance symbol (quote matched by known suffixes)."""
    for quote in _QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol[:-3], symbol[-3:]


@dataclass(frozen=True)
class SymbolSpec:
    """What the venue knows about one symbol: assets, grid sizes and its starting price."""

    symbol: str
    base_asset: str
    quote_asset: str
    price_scale: int  # tick size = 10**-price_scale
    qty_scale: int  # lot step = 10**-qty_scale
    initial_price: float
    min_notional: str = "5.00000000"

    @property
    def tick_to8(self) -> int:
        """Multiplier from price ticks to 1e-8 units."""
        return 10 ** (8 - self.price_scale)

    @property
    def unit_to8(self) -> int:
        """Multiplier from quantity units to 1e-8 units."""
        return 10 ** (8 - self.qty_scale)

    @property
    def tick_size(self) -> str:
        return fmt8(self.tick_to8)

    @property
    def step_size(self) -> str:
        return fmt8(self.unit_to8)

    def price_str(self, ticks: int) -> str:
        return fmt8(ticks * self.tick_to8)

    def qty_str(self, units: int) -> str:
        return fmt8(units * self.unit_to8)

    def to_ticks(self, price: float) -> int:
        return round(price * 10**self.price_scale)

    def to_units(self, qty: float) -> int:
        return round(qty * 10**self.qty_scale)

    def price_float(self, ticks: int) -> float:
        return round(ticks / 10**self.price_scale, self.price_scale)

    def quote_str(self, quote_units: int) -> str:
        """Quote volume kept in units of 10**-(price_scale+qty_scale), as an 8-decimal string."""
        scale = self.price_scale + self.qty_scale
        if scale <= 8:
            return fmt8(quote_units * 10 ** (8 - scale))
        return fmt8(quote_units // 10 ** (scale - 8))

    def quote_float(self, quote_units: int) -> float:
        return quote_units / 10 ** (self.price_scale + self.qty_scale)


def _decimals_needed(values: list[float], max_scale: int = 8) -> int:
    """Smallest number of decimals that represents every value exactly (within float noise)."""
    for scale in range(max_scale + 1):
        factor = 10**scale
        if all(
            abs(v * factor - round(v * factor)) <= max(1e-6, abs(v * factor) * 1e-12)
            for v in values
        ):
            return scale
    return max_scale


def default_spec(
    symbol: str,
    initial_price: float | None = None,
    *,
    sample_prices: list[float] | None = None,
    sample_qtys: list[float] | None = None,
) -> SymbolSpec:
    """Spec for a symbol: known defaults, else a grid sized to the price (and to replay data).

    Replay passes sample prices/volumes so the tick and step are fine enough to hold the lake's
    candles exactly; otherwise candles would be rounded and no longer match the store.
    """
    base, quote = split_symbol(symbol)
    known = _KNOWN.get(symbol)
    if known is not None:
        price, pscale, qscale, notional = known
        if initial_price is not None and initial_price > 0:
            price = initial_price
    else:
        seed = zlib.crc32(symbol.encode())
        price = 1.0 + (seed % 50_000) / 100.0  # deterministic 1..500
        if initial_price is not None and initial_price > 0:
            price = initial_price
        notional = "0.00010000" if quote in ("BTC", "ETH", "BNB") else "5.00000000"
        # About 6 significant digits of price, like Binance's grids.
        magnitude = math.floor(math.log10(price))
        pscale = min(8, max(0, 5 - magnitude))
        qscale = min(8, max(0, magnitude + 2))
    if sample_prices:
        pscale = max(pscale, _decimals_needed(sample_prices))
    if sample_qtys:
        qscale = max(qscale, _decimals_needed(sample_qtys))
    return SymbolSpec(symbol, base, quote, pscale, qscale, float(price), notional)
