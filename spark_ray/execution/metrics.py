"""Executor metric names (Ray exports them with a ``ray_`` prefix) and their tags."""

from __future__ import annotations

ORDERS = "executor_orders_total"  # counter: orders reaching a status; tags executor, symbol, status
FILLS = "executor_fills_total"  # counter: fills applied; tags executor, symbol
POSITION = "executor_position"  # gauge: base quantity held; tags executor, symbol
PNL = "executor_pnl"  # gauge: quote PnL; tags executor, symbol, kind (realized|unrealized|total)
TICK_TO_ORDER = "executor_tick_to_order_ms"  # histogram: tick arrival -> order acknowledged
MS_BOUNDARIES: list[float] = [0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000]
