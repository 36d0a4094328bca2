"""What a strategy sees and uses in ``on_bar`` in a backtest: the engine's position, cash,
equity and open orders; the order API itself is :class:`~spark_ray.strategy.context.OrderMethods`,
shared with live trading."""

from __future__ import annotations

from typing import TYPE_CHECKING

from spark_ray.fills.orders import Order
from spark_ray.strategy.context import OrderMethods

if TYPE_CHECKING:
    from spark_ray.backtest.engine import Engine


class Context(OrderMethods[Order]):
    """The order API over one engine. Orders placed on bar t act from bar t+1."""

    __slots__ = ("_e",)

    def __init__(self, engine: Engine) -> None:
        self._e = engine

    # --- state ------------------------------------------------------------------------------
    @property
    def position(self) -> float:
        """Quantity held of the primary symbol."""
        return self._e.qty[self._e.primary]

    def position_of(self, symbol: str) -> float:
        return self._e.qty[symbol]

    @property
    def cash(self) -> float:
        return self._e.cash

    @property
    def equity(self) -> float:
        """Cash plus positions at the current bar's close."""
        return self._e.equity_now()

    @property
    def open_orders(self) -> list[Order]:
        return list(self._e.open_orders)

    def cancel(self, order: Order) -> bool:
        return self._e.cancel(order)

    # --- the primitives OrderMethods builds on ------------------------------------------------
    def _submit(self, side: int, kind: str, qty: float | None, notional: float | None,
                pct: float | None, limit: float | None, stop: float | None, symbol: str | None,
                tag: str) -> Order:
        e = self._e
        return e.submit(Order(next(e.order_ids), symbol or e.primary, side, kind, e.i, qty,
                              notional, pct, limit, stop, tag))

    def _held(self, symbol: str | None) -> float:
        return self._e.qty[symbol or self._e.primary]

    def _mark(self, symbol: str | None) -> float:
        return self._e.last_close(symbol or self._e.primary)
