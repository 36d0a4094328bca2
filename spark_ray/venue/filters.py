"""Symbol filters: the order rules published in exchangeInfo, applied to incoming orders.

Read from the very exchangeInfo entry clients download (:func:`exchange_info.symbol_info`), so
what a client is told and what the venue enforces can never drift apart. A violation is Binance's
-1013 with "Filter failure: <FILTER>". Amounts are integer 1e-8 units; a value of 0 disables a
rule, as on Binance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spark_ray.venue.accounts import E8, to_e8
from spark_ray.venue.exchange_info import symbol_info
from spark_ray.venue.params import RestError
from spark_ray.venue.specs import SymbolSpec


def failure(name: str) -> RestError:
    return RestError(-1013, f"Filter failure: {name}")


@dataclass(frozen=True)
class SymbolFilters:
    min_price: int
    max_price: int
    tick: int
    min_qty: int
    max_qty: int
    step: int
    market_min_qty: int
    market_max_qty: int
    market_step: int
    min_notional: int
    max_notional: int
    min_to_market: bool
    max_to_market: bool
    max_num_orders: int

    @classmethod
    def of(cls, spec: SymbolSpec) -> SymbolFilters:
        f: dict[str, dict[str, Any]] = {x["filterType"]: x for x in symbol_info(spec)["filters"]}
        price, lot = f["PRICE_FILTER"], f["LOT_SIZE"]
        market = f.get("MARKET_LOT_SIZE", {"minQty": "0", "maxQty": "0", "stepSize": "0"})
        notional = f.get("NOTIONAL")
        if notional is None:  # the older MIN_NOTIONAL form
            old = f.get("MIN_NOTIONAL", {"minNotional": "0", "applyToMarket": False})
            notional = {"minNotional": old["minNotional"], "maxNotional": "0",
                        "applyMinToMarket": old["applyToMarket"], "applyMaxToMarket": False}
        return cls(
            min_price=to_e8(price["minPrice"]), max_price=to_e8(price["maxPrice"]),
            tick=to_e8(price["tickSize"]),
            min_qty=to_e8(lot["minQty"]), max_qty=to_e8(lot["maxQty"]),
            step=to_e8(lot["stepSize"]),
            market_min_qty=to_e8(market["minQty"]), market_max_qty=to_e8(market["maxQty"]),
            market_step=to_e8(market["stepSize"]),
            min_notional=to_e8(notional["minNotional"]),
            max_notional=to_e8(notional["maxNotional"]),
            min_to_market=bool(notional["applyMinToMarket"]),
            max_to_market=bool(notional["applyMaxToMarket"]),
            max_num_orders=int(f.get("MAX_NUM_ORDERS", {"maxNumOrders": 0})["maxNumOrders"]),
        )

    def check_price(self, price: int) -> None:
        """PRICE_FILTER: price >= minPrice, <= maxPrice, (price - minPrice) % tickSize == 0."""
        if ((self.min_price and price < self.min_price)
                or (self.max_price and price > self.max_price)
                or (self.tick and (price - self.min_price) % self.tick)):
            raise failure("PRICE_FILTER")

    def check_qty(self, qty: int, *, market: bool) -> None:
        """LOT_SIZE for every order, and MARKET_LOT_SIZE on top for market orders."""
        if not _lot_ok(qty, self.min_qty, self.max_qty, self.step):
            raise failure("LOT_SIZE")
        if market and not _lot_ok(qty, self.market_min_qty, self.market_max_qty,
                                  self.market_step):
            raise failure("MARKET_LOT_SIZE")

    def check_notional(self, price: int, qty: int, *, market: bool) -> None:
        """NOTIONAL: price * qty within [minNotional, maxNotional] (market: where applied)."""
        value = price * qty  # 1e-16 units: compare without rounding
        if (not market or self.min_to_market) and value < self.min_notional * E8:
            raise failure("NOTIONAL")
        if self.max_notional and (not market or self.max_to_market) \
                and value > self.max_notional * E8:
            raise failure("NOTIONAL")

    def check_open_orders(self, open_now: int) -> None:
        if self.max_num_orders and open_now >= self.max_num_orders:
            raise failure("MAX_NUM_ORDERS")


def _lot_ok(qty: int, lo: int, hi: int, step: int) -> bool:
    if qty <= 0:
        return False
    if lo and qty < lo:
        return False
    if hi and qty > hi:
        return False
    return not (step and (qty - lo) % step)
