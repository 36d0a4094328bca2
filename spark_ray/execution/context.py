"""What a strategy sees live: the position, cash, equity and open orders of the executor's
sleeve; the order API itself is :class:`~spark_ray.strategy.context.OrderMethods`, the very code
the backtest's context runs, so a strategy never knows whether it runs in a backtest or live.

Orders placed in ``on_bar`` are collected as intents and sent after it returns (the backtest's
"decided on bar t, acts from bar t+1"); cancels likewise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from spark_ray.execution.orders import ManagedOrder
from spark_ray.strategy.context import OrderMethods

if TYPE_CHECKING:
    from spark_ray.execution.runner import SymbolRunner


class ExecContext(OrderMethods[ManagedOrder]):
    __slots__ = ("_r",)

    def __init__(self, runner: SymbolRunner) -> None:
        self._r = runner

    # --- the primitives OrderMethods builds on (one instance trades one symbol) ---------------
    def _submit(self, side: int, kind: str, qty: float | None, notional: float | None,
                pct: float | None, limit: float | None, stop: float | None, symbol: str | None,
                tag: str) -> ManagedOrder:
        if symbol is not None and symbol != self._r.symbol:
            raise ValueError(f"this strategy instance trades {self._r.symbol} only (the executor "
                             "runs one instance per symbol)")
        return self._r.place(side, kind, qty, notional, pct, limit, stop, tag)

    def _held(self, symbol: str | None) -> float:
        return self.position

    def _mark(self, symbol: str | None) -> float | None:
        return self._r.last_close

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

    def cancel(self, order: ManagedOrder) -> bool:
        return self._r.request_cancel(order)
