"""Orders and fills of the venue's accounts, and their Binance JSON: REST rows and user events.

A :class:`NewOrder` is a validated order request; :class:`Placed` is what placing it did (the
order and this request's fills), answered as ACK, RESULT or FULL.

An :class:`Order` holds integers (price in ticks, quantities in lot units, quote amounts in 1e-8)
and formats itself exactly as Binance spot does: 8-decimal strings, ``orderListId`` -1, field
names and order as in the REST docs (ACK / RESULT / FULL, query, cancel) and the user data
stream's ``executionReport``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from spark_ray.venue.specs import SymbolSpec, fmt8

ZERO = "0.00000000"
OPEN = ("NEW", "PARTIALLY_FILLED")


@dataclass(frozen=True)
class Fill:
    """One execution of an order, which is also one row of the account's myTrades."""

    trade_id: int
    order_id: int
    symbol: str
    price: int  # ticks
    qty: int  # lot units
    quote: int  # 1e-8 of the quote asset
    commission: int  # 1e-8 of commission_asset
    commission_asset: str
    time: int
    is_buyer: bool
    is_maker: bool

    def row(self, spec: SymbolSpec) -> dict[str, Any]:
        """GET /api/v3/myTrades element."""
        return {
            "symbol": self.symbol,
            "id": self.trade_id,
            "orderId": self.order_id,
            "orderListId": -1,
            "price": spec.price_str(self.price),
            "qty": spec.qty_str(self.qty),
            "quoteQty": fmt8(self.quote),
            "commission": fmt8(self.commission),
            "commissionAsset": self.commission_asset,
            "time": self.time,
            "isBuyer": self.is_buyer,
            "isMaker": self.is_maker,
            "isBestMatch": True,
        }


@dataclass(eq=False)
class Order:
    """An order the venue accepted, with its state now."""

    order_id: int
    account: str
    spec: SymbolSpec
    client_order_id: str
    side: str  # BUY | SELL
    type: str  # MARKET | LIMIT | LIMIT_MAKER
    time_in_force: str  # GTC | IOC | FOK (GTC for MARKET, as Binance reports)
    price: int  # ticks; 0 for MARKET
    orig_qty: int  # lot units
    orig_quote: int  # quoteOrderQty in 1e-8; 0 unless a quote-quantity market order
    time: int
    stp: str = "EXPIRE_MAKER"
    status: str = "NEW"
    executed: int = 0
    cum_quote: int = 0
    update_time: int = 0
    working_time: int = -1
    locked: int = 0  # 1e-8 still locked for the unfilled rest (quote if BUY, base if SELL)
    fills: list[Fill] = field(default_factory=list)

    @property
    def symbol(self) -> str:
        return self.spec.symbol

    @property
    def buy(self) -> bool:
        return self.side == "BUY"

    @property
    def remaining(self) -> int:
        return self.orig_qty - self.executed

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    # --- REST bodies ---------------------------------------------------------------------
    def ack(self, transact_time: int) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": self.client_order_id,
            "transactTime": transact_time,
        }

    def _state(self) -> dict[str, Any]:
        s = self.spec
        return {
            "price": s.price_str(self.price),
            "origQty": s.qty_str(self.orig_qty),
            "executedQty": s.qty_str(self.executed),
            "origQuoteOrderQty": fmt8(self.orig_quote),
            "cummulativeQuoteQty": fmt8(self.cum_quote),
            "status": self.status,
            "timeInForce": self.time_in_force,
            "type": self.type,
            "side": self.side,
        }

    def result(self, transact_time: int) -> dict[str, Any]:
        return {**self.ack(transact_time), **self._state(), "workingTime": self.working_time,
                "selfTradePreventionMode": self.stp}

    def full(self, transact_time: int, fills: list[Fill]) -> dict[str, Any]:
        s = self.spec
        return {**self.result(transact_time), "fills": [
            {"price": s.price_str(f.price), "qty": s.qty_str(f.qty),
             "commission": fmt8(f.commission), "commissionAsset": f.commission_asset,
             "tradeId": f.trade_id}
            for f in fills
        ]}

    def query(self) -> dict[str, Any]:
        """GET /api/v3/order, openOrders and allOrders element."""
        st = self._state()
        return {
            "symbol": self.symbol,
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": self.client_order_id,
            "price": st["price"],
            "origQty": st["origQty"],
            "executedQty": st["executedQty"],
            "cummulativeQuoteQty": st["cummulativeQuoteQty"],
            "status": self.status,
            "timeInForce": self.time_in_force,
            "type": self.type,
            "side": self.side,
            "stopPrice": ZERO,
            "icebergQty": ZERO,
            "time": self.time,
            "updateTime": self.update_time,
            "isWorking": True,
            "workingTime": self.working_time,
            "origQuoteOrderQty": st["origQuoteOrderQty"],
            "selfTradePreventionMode": self.stp,
        }

    def canceled(self, transact_time: int, cancel_client_id: str) -> dict[str, Any]:
        """DELETE /api/v3/order body: clientOrderId is the cancel's, origClientOrderId ours."""
        return {
            "symbol": self.symbol,
            "origClientOrderId": self.client_order_id,
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": cancel_client_id,
            "transactTime": transact_time,
            **self._state(),
            "selfTradePreventionMode": self.stp,
        }

    # --- user data stream ----------------------------------------------------------------
    def execution_report(self, exec_type: str, now: int, seq: int, fill: Fill | None = None,
                         cancel_client_id: str = "") -> dict[str, Any]:
        """The ``executionReport`` for one step of this order (x = exec_type, X = status now)."""
        s = self.spec
        canceled = exec_type == "CANCELED"
        report: dict[str, Any] = {
            "e": "executionReport",
            "E": now,
            "s": self.symbol,
            "c": cancel_client_id if canceled else self.client_order_id,
            "S": self.side,
            "o": self.type,
            "f": self.time_in_force,
            "q": s.qty_str(self.orig_qty),
            "p": s.price_str(self.price),
            "P": ZERO,
            "F": ZERO,
            "g": -1,
            "C": self.client_order_id if canceled else "",
            "x": exec_type,
            "X": self.status,
            "r": "NONE",
            "i": self.order_id,
            "l": s.qty_str(fill.qty) if fill else ZERO,
            "z": s.qty_str(self.executed),
            "L": s.price_str(fill.price) if fill else ZERO,
            "n": fmt8(fill.commission) if fill else "0",
            "N": fill.commission_asset if fill else None,
            "T": fill.time if fill else now,
            "t": fill.trade_id if fill else -1,
            "I": seq,
            "w": self.is_open,
            "m": fill.is_maker if fill else False,
            "M": False,
            "O": self.time,
            "Z": fmt8(self.cum_quote),
            "Y": fmt8(fill.quote) if fill else ZERO,
            "Q": fmt8(self.orig_quote),
        }
        if self.working_time >= 0:
            report["W"] = self.working_time
        report["V"] = self.stp
        return report


@dataclass(frozen=True)
class NewOrder:
    """A validated POST /api/v3/order request; amounts in 1e-8 units as sent."""

    symbol: str
    side: str
    type: str
    time_in_force: str
    qty: int | None = None
    quote_qty: int | None = None
    price: int | None = None
    client_order_id: str | None = None
    resp_type: str = "FULL"
    stp: str = "EXPIRE_MAKER"


@dataclass
class Placed:
    """What placing an order did: the order and the fills of this very request."""

    order: Order
    fills: list[Fill]
    transact_time: int

    def body(self, resp_type: str) -> dict[str, Any]:
        if resp_type == "ACK":
            return self.order.ack(self.transact_time)
        if resp_type == "RESULT":
            return self.order.result(self.transact_time)
        return self.order.full(self.transact_time, self.fills)
