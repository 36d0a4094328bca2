"""GET /api/v3/exchangeInfo: the venue's rate limits and, per symbol, its trading rules.

The same entry is what clients download and what orders are checked against
(:mod:`~spark_ray.venue.filters` reads its filters), so the two never drift apart. The ORDERS
limits published here are enforced per account by :mod:`~spark_ray.venue.signed`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from spark_ray.venue.specs import SymbolSpec, fmt8

ORDER_LIMIT_10S = 100  # exchangeInfo ORDERS limits, enforced per account by the venue
ORDER_LIMIT_DAY = 200_000


def exchange_info(
    specs: Sequence[SymbolSpec], server_time: int, weight_limit: int
) -> dict[str, Any]:
    """GET /api/v3/exchangeInfo body for the given symbols."""
    return {
        "timezone": "UTC",
        "serverTime": server_time,
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
             "limit": weight_limit},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
             "limit": ORDER_LIMIT_10S},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1,
             "limit": ORDER_LIMIT_DAY},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5,
             "limit": 61000},
        ],
        "exchangeFilters": [],
        "symbols": [_symbol_info(s) for s in specs],
    }


def symbol_info(spec: SymbolSpec) -> dict[str, Any]:
    """One symbol's exchangeInfo entry: also the source of the filters orders are checked by."""
    return _symbol_info(spec)


def _symbol_info(spec: SymbolSpec) -> dict[str, Any]:
    max_price = fmt8(1_000_000 * 100_000_000)
    return {
        "symbol": spec.symbol,
        "status": "TRADING",
        "baseAsset": spec.base_asset,
        "baseAssetPrecision": 8,
        "quoteAsset": spec.quote_asset,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT",
                       "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": spec.tick_size, "maxPrice": max_price,
             "tickSize": spec.tick_size},
            {"filterType": "LOT_SIZE", "minQty": spec.step_size,
             "maxQty": fmt8(9_000 * 100_000_000), "stepSize": spec.step_size},
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000",
             "maxQty": fmt8(100 * 100_000_000), "stepSize": "0.00000000"},
            {"filterType": "NOTIONAL", "minNotional": spec.min_notional,
             "applyMinToMarket": True, "maxNotional": "9000000.00000000",
             "applyMaxToMarket": False, "avgPriceMins": 5},
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }
