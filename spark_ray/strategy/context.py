"""What ``on_bar`` may call: :class:`StrategyContext`, the surface the backtest engine's context
and the executor's share, so a strategy never knows where it runs.

:class:`OrderMethods` writes the order API (``buy``, ``sell``, ``close``, ``target_pct``,
``cancel_all``) once over three primitives each context supplies -- submit an order, the held
quantity, the current close -- so the backtest and live trading cannot drift apart in what an
order means.
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

from spark_ray.fills.orders import BUY, LIMIT, MARKET, SELL, STOP, OrderTerms


class OrderHandle(OrderTerms, Protocol):
    """What a strategy may read of an order it placed (``ctx.buy`` returns one): its terms and
    how it ended."""

    @property
    def symbol(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def fill_price(self) -> float: ...
    @property
    def fill_qty(self) -> float: ...
    @property
    def fee(self) -> float: ...
    @property
    def tag(self) -> str: ...
    @property
    def reason(self) -> str: ...


OrderT = TypeVar("OrderT", bound=OrderHandle)


class StrategyContext(Protocol[OrderT]):
    """The context ``on_bar`` receives. Orders placed on bar t act from bar t+1."""

    @property
    def position(self) -> float:
        """Quantity held of the primary symbol."""
        ...

    def position_of(self, symbol: str) -> float: ...
    @property
    def cash(self) -> float: ...
    @property
    def equity(self) -> float:
        """Cash plus positions at the current bar's close."""
        ...

    @property
    def open_orders(self) -> list[OrderT]: ...
    def buy(self, qty: float | None = None, *, notional: float | None = None,
            pct: float | None = None, limit: float | None = None, stop: float | None = None,
            symbol: str | None = None, tag: str = "") -> OrderT: ...
    def sell(self, qty: float | None = None, *, notional: float | None = None,
             pct: float | None = None, limit: float | None = None, stop: float | None = None,
             symbol: str | None = None, tag: str = "") -> OrderT: ...
    def close(self, symbol: str | None = None, tag: str = "close") -> OrderT | None: ...
    def target_pct(self, pct: float, symbol: str | None = None, tag: str = "") -> OrderT | None: ...
    def cancel(self, order: OrderT) -> bool: ...
    def cancel_all(self, symbol: str | None = None) -> int: ...


class OrderMethods(Generic[OrderT]):
    """The order API over ``_submit``, ``_held`` and ``_mark``; subclasses add the state
    (``position``, ``cash``, ``equity``, ``open_orders``) and ``cancel``."""

    __slots__ = ()

    # --- what a context supplies --------------------------------------------------------------
    def _submit(self, side: int, kind: str, qty: float | None, notional: float | None,
                pct: float | None, limit: float | None, stop: float | None, symbol: str | None,
                tag: str) -> OrderT:
        raise NotImplementedError

    def _held(self, symbol: str | None) -> float:
        """The quantity ``close`` sells and ``target_pct`` starts from."""
        raise NotImplementedError

    def _mark(self, symbol: str | None) -> float | None:
        """The current close (None before the first bar)."""
        raise NotImplementedError

    @property
    def equity(self) -> float:
        raise NotImplementedError

    @property
    def open_orders(self) -> list[OrderT]:
        raise NotImplementedError

    def cancel(self, order: OrderT) -> bool:
        raise NotImplementedError

    # --- the order API --------------------------------------------------------------------------
    def _place(self, side: int, qty: float | None, notional: float | None, pct: float | None,
               limit: float | None, stop: float | None, symbol: str | None, tag: str) -> OrderT:
        given = (qty is not None) + (notional is not None) + (pct is not None)
        if given > 1:
            raise ValueError("give one of qty, notional, pct")
        if limit is not None and stop is not None:
            raise ValueError("an order is a limit or a stop, not both")
        kind = MARKET if limit is None and stop is None else LIMIT if limit is not None else STOP
        if given == 0:
            pct = 1.0  # all-in buy / sell everything
        return self._submit(side, kind, qty, notional, pct, limit, stop, symbol, tag)

    def buy(self, qty: float | None = None, *, notional: float | None = None,
            pct: float | None = None, limit: float | None = None, stop: float | None = None,
            symbol: str | None = None, tag: str = "") -> OrderT:
        """Buy by quantity, notional, or ``pct`` of equity (default: all available cash)."""
        return self._place(BUY, qty, notional, pct, limit, stop, symbol, tag)

    def sell(self, qty: float | None = None, *, notional: float | None = None,
             pct: float | None = None, limit: float | None = None, stop: float | None = None,
             symbol: str | None = None, tag: str = "") -> OrderT:
        """Sell by quantity, notional, or ``pct`` of the position (default: all of it)."""
        return self._place(SELL, qty, notional, pct, limit, stop, symbol, tag)

    def close(self, symbol: str | None = None, tag: str = "close") -> OrderT | None:
        """Market-sell the whole position; None when flat."""
        qty = self._held(symbol)
        if qty <= 0:
            return None
        return self.sell(qty, symbol=symbol, tag=tag)

    def target_pct(self, pct: float, symbol: str | None = None, tag: str = "") -> OrderT | None:
        """Trade towards holding ``pct`` of equity in ``symbol`` (at the current close)."""
        price = self._mark(symbol)
        if price is None:
            return None
        target_qty = pct * self.equity / price
        delta = target_qty - self._held(symbol)
        if abs(delta) * price < 1e-12:
            return None
        if delta > 0:
            return self.buy(notional=delta * price, symbol=symbol, tag=tag)
        return self.sell(-delta, symbol=symbol, tag=tag)

    def cancel_all(self, symbol: str | None = None) -> int:
        return sum(self.cancel(o) for o in list(self.open_orders)
                   if symbol is None or o.symbol == symbol)

