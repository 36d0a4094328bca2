"""The one strategy interface shared by backtest, optimization and live trading.

A strategy has a pydantic ``Params`` model, an ``init(data)`` hook that precomputes indicators
vectorized, and ``on_bar(ctx, bar)`` that decides. It never knows whether it runs in a backtest
or live: orders go through ``ctx`` (a :class:`~spark_ray.strategy.context.StrategyContext`: the
backtest engine's context or the executor's).

A strategy may also *declare its signals* in ``init`` (``self.declare_signals(...)``): boolean
arrays of the bars where ``on_bar`` can act. The engine then calls ``on_bar`` only on those bars
and on bars where a resting order can fill, finding them vectorized; ``on_bar`` is unchanged.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from spark_ray.strategy.bars import Bar, BarData
from spark_ray.strategy.context import StrategyContext


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Strategy:
    """Base class. Subclasses set ``Params`` and override ``init`` and ``on_bar``."""

    name: ClassVar[str] = "strategy"
    Params: ClassVar[type[BaseModel]] = NoParams

    def __init__(self, params: BaseModel | dict[str, Any] | None = None) -> None:
        if isinstance(params, BaseModel):
            self.params = self.Params.model_validate(params.model_dump())
        else:
            self.params = self.Params.model_validate(params or {})
        self.signal_bars: np.ndarray | None = None

    @property
    def p(self) -> Any:
        """Shorthand for the validated parameters."""
        return self.params

    def init(self, data: BarData) -> None:
        """Precompute indicators (vectorized). Optional."""

    def on_bar(self, ctx: StrategyContext[Any], bar: Bar) -> None:
        """Decide on bar ``bar.i`` after its close; orders act from the next bar."""

    def declare_signals(self, *masks: np.ndarray) -> None:
        """Promise that ``on_bar`` acts only where one of ``masks`` is true (besides fills).

        Lets the engine skip every other bar, vectorized, with the same results.
        """
        active = np.zeros(len(masks[0]), dtype=bool)
        for m in masks:
            active |= np.asarray(m, dtype=bool)
        self.signal_bars = np.flatnonzero(active)
