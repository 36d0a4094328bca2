"""What a strategy sees and uses in ``on_bar``: orders, position, cash, equity, open orders."""

from __future__ import annotations

from typing import TYPE_CHECKING

from spark_ray.fills.orders import BUY, LIMIT, MARKET, SELL, STOP, Order

if TYPE_CHECKING:
    from spark_ray.backtest.engine import Engine


class Context:
    """The order API. Orders placed on bar t act from bar t+1."""

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

    # --- orders -----------------------------------------------------------------------------
    def _place(self, side: int, qty: float | None, notional: float | None, pct: float | None,
               limit: float | None, stop: float | None, symbol: str | None, tag: str) -> Order:
        given = (qty is not None) + (notional is not None) + (pct is not None)
        if given > 1:
            raise ValueError("give one of qty, notional, pct")
        if limit is not None and stop is not None:
            raise ValueError("an order is a limit or a stop, not both")
        kind = MARKET if limit is None and stop is None else LIMIT if limit is not None else STOP
        if given == 0:
            pct = 1.0  # all-in buy / sell everything
        return self._e.submit(Order(self._e.next_id(), symbol or self._e.primary, side, kind,
                                    self._e.i, qty, notional, pct, limit, stop, tag))

    def buy(self, qty: float | None = None, *, notional: float | None = None,
            pct: float | None = None, limit: float | None = None, stop: float | None = None,
            symbol: str | None = None, tag: str = "") -> Order:
        """Buy by quantity, notional, or ``pct`` of equity (default: all available cash)."""
        return self._place(BUY, qty, notional, pct, limit, stop, symbol, tag)

    def sell(self, qty: float | None = None, *, notional: float | None = None,
             pct: float | None = None, limit: float | None = None, stop: float | None = None,
             symbol: str | None = None, tag: str = "") -> Order:
        """Sell by quantity, notional, or ``pct`` of the position (default: all of it)."""
        return self._place(SELL, qty, notional, pct, limit, stop, symbol, tag)

    def close(self, symbol: str | None = None, tag: str = "close") -> Order | None:
        """Market-sell the whole position; None when flat."""
        sym = symbol or self._e.primary
        if self._e.qty[sym] <= 0:
            return None
        return self.sell(self._e.qty[sym], symbol=sym, tag=tag)

    def target_pct(self, pct: float, symbol: str | None = None, tag: str = "") -> Order | None:
        """Trade towards holding ``pct`` of equity in ``symbol`` (at the current close)."""
        sym = symbol or self._e.primary
        price = self._e.last_close(sym)
        target_qty = pct * self._e.equity_now() / price
        delta = target_qty - self._e.qty[sym]
        if abs(delta) * price < 1e-12:
            return None
        if delta > 0:
            return self.buy(notional=delta * price, symbol=sym, tag=tag)
        return self.sell(-delta, symbol=sym, tag=tag)

    def cancel(self, order: Order) -> bool:
        return self._e.cancel(order)

    def cancel_all(self, symbol: str | None = None) -> int:
        return sum(self._e.cancel(o) for o in list(self._e.open_orders)
                   if symbol is None or o.symbol == symbol)
