"""``Alternate``: a probe strategy that trades on every bar, to exercise and time the order path.

Flat: buy ``burst`` orders of ``size_pct / burst`` of equity each (market orders, or, with
``limit_bps``, limit orders that far below the close, which rest); holding: sell everything. With
resting orders open it waits. It has no edge and must never be approved for real money;
benchmarks and tests use it (``spark_ray.execution.probe:Alternate``) because a real strategy
trades too rarely to measure.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from spark_ray.strategy.bars import Bar
from spark_ray.strategy.base import Strategy
from spark_ray.strategy.context import StrategyContext


class AlternateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    burst: int = Field(1, ge=1, le=100, description="orders per entry")
    size_pct: float = Field(0.5, gt=0, le=1)
    limit_bps: float | None = Field(None, gt=0, lt=10_000, description="buy limits this far "
                                                                        "below the close")


class Alternate(Strategy):
    name = "alternate"
    Params = AlternateParams

    def on_bar(self, ctx: StrategyContext[Any], bar: Bar) -> None:
        if ctx.open_orders:
            return
        if ctx.position:
            ctx.close()
            return
        limit = None if self.p.limit_bps is None else bar.close * (1 - self.p.limit_bps / 1e4)
        for _ in range(self.p.burst):
            ctx.buy(notional=ctx.cash * self.p.size_pct / self.p.burst, limit=limit)
