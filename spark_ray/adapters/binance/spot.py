"""What spot trading reads from Binance's public REST: symbol filters and warm-up bars.

Apart from :mod:`.rest` because it returns the executor's types (exchange filters, closed bars),
which the market-data path (fabric, ETL) has no use for.
"""

from __future__ import annotations

from spark_ray.adapters.binance.rest import BinanceRest
from spark_ray.execution.bars import ClosedBar
from spark_ray.execution.filters import SymbolFilters, parse_exchange_info


class SpotRest(BinanceRest):
    """:class:`BinanceRest` plus ``GET /api/v3/exchangeInfo`` and recent klines as bars."""

    async def closed_bars(self, symbol: str, interval: str, end_open_ms: int,
                          limit: int) -> list[ClosedBar]:
        """Up to ``limit`` klines whose open time is at most ``end_open_ms``, oldest first (the
        executor's warm-up history)."""
        rows = await self.get("/api/v3/klines", {"symbol": symbol, "interval": interval,
                                                 "endTime": end_open_ms,
                                                 "limit": max(1, min(1000, limit))})
        return [ClosedBar(symbol, int(r[0]), float(r[1]), float(r[2]), float(r[3]),
                          float(r[4]), float(r[5]), int(r[8]), -1, 0)
                for r in rows if int(r[0]) <= end_open_ms]

    async def exchange_filters(self, symbols: list[str]) -> dict[str, SymbolFilters]:
        if len(symbols) == 1:
            body = await self.get("/api/v3/exchangeInfo", {"symbol": symbols[0]})
        else:
            body = await self.get("/api/v3/exchangeInfo",
                                  {"symbols": "[" + ",".join(f'"{s}"' for s in symbols) + "]"})
        return parse_exchange_info(body)
