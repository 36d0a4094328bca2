"""What a strategy sees live: the backtest :class:`~spark_ray.backtest.context.Context`'s surface
(``position``, ``cash``, ``equity``, ``open_orders``, ``buy``, ``sell``, ``close``,
``target_pct``, ``cancel``, ``cancel_all``) over the executor's positions and order manager.

Orders placed in ``on_bar`` are collected as intents and sent after it returns (the backtest's
"decided on bar t, acts from bar t+1"); cancels likewise. A strategy never knows whether it runs
in a backtest or live.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from spark_ray.execution.orders import ManagedOrder
from spark_ray.fills.orders import BUY, LIMIT, MARKET, SELL, STOP

if TYPE_CHECKING:
    from spark_ray.execution.runner import SymbolRunner


class ExecContext:
    __slots__ = ("_r",)

    def __init__(self, runner: SymbolRunner) -> None:
        self._r = runner

    # --- state ------------------------------------------------------------------------------
    @property
    def position(self) -> float:
        """The quantity held that the venue lets you trade (dust below the lot step, e.g. left
        by commissions paid in the base asset, counts as flat; it stays in the equity)."""
        return self._r.tradeable(self._r.sleeve.qty)

    def position_of(self, symbol: str) -> float:
        return self._r.tradeable(self._r.positions[symbol].qty)

    @property
    def cash(self) -> float:
        return self._r.sleeve.cash

    @property
    def equity(self) -> float:
        """Cash plus the position at the current bar's close."""
        return self._r.sleeve.equity(self._r.last_close)

    @property
    def open_orders(self) -> list[ManagedOrder]:
        return self._r.visible_open_orders()

    # --- orders -----------------------------------------------------------------------------
    def _place(self, side: int, qty: float | None, notional: float | None, pct: float | None,
               limit: float | None, stop: float | None, symbol: str | None,
               tag: str) -> ManagedOrder:
        given = (qty is not None) + (notional is not None) + (pct is not None)
        if given > 1:
            raise ValueError("give one of qty, notional, pct")
        if limit is not None and stop is not None:
            raise ValueError("an order is a limit or a stop, not both")
        if symbol is not None and symbol != self._r.symbol:
            raise ValueError(f"this strategy instance trades {self._r.symbol} only (the executor "
                             "runs one instance per symbol)")
        kind = MARKET if limit is None and stop is None else LIMIT if limit is not None else STOP
        if given == 0:
            pct = 1.0
        return self._r.place(side, kind, qty, notional, pct, limit, stop, tag)

    def buy(self, qty: float | None = None, *, notional: float | None = None,
            pct: float | None = None, limit: float | None = None, stop: float | None = None,
            symbol: str | None = None, tag: str = "") -> ManagedOrder:
        """Buy by quantity, notional, or ``pct`` of equity (default: all available cash)."""
        return self._place(BUY, qty, notional, pct, limit, stop, symbol, tag)

    def sell(self, qty: float | None = None, *, notional: float | None = None,
             pct: float | None = None, limit: float | None = None, stop: float | None = None,
             symbol: str | None = None, tag: str = "") -> ManagedOrder:
        """Sell by quantity, notional, or ``pct`` of the position (default: all of it)."""
        return self._place(SELL, qty, notional, pct, limit, stop, symbol, tag)

    def close(self, symbol: str | None = None, tag: str = "close") -> ManagedOrder | None:
        """Market-sell the whole position; None when flat."""
        qty = self.position
        if qty <= 0:
            return None
        return self.sell(qty, symbol=symbol, tag=tag)

    def target_pct(self, pct: float, symbol: str | None = None,
                   tag: str = "") -> ManagedOrder | None:
        """Trade towards holding ``pct`` of equity (at the current close)."""
        price = self._r.last_close
        if price is None:
            return None
        target_qty = pct * self.equity / price
        delta = target_qty - self.position
        if abs(delta) * price < 1e-12:
            return None
        if delta > 0:
            return self.buy(notional=delta * price, symbol=symbol, tag=tag)
        return self.sell(-delta, symbol=symbol, tag=tag)

    def cancel(self, order: ManagedOrder) -> bool:
        return self._r.request_cancel(order)

    def cancel_all(self, symbol: str | None = None) -> int:
        return sum(self.cancel(o) for o in list(self.open_orders)
                   if symbol is None or o.symbol == symbol)
