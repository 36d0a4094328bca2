"""Strategies that look ahead: the look-ahead detector's fixtures (``peeking:NextClose`` ...).

Each is a sensible strategy on real data with exactly one leak, the kind that slips into
vectorized indicator code: reading the next bar's close, a centered rolling window, a
``shift(-1)``. ``peek=False`` removes the leak and leaves the honest twin, so a test can find
independently the first bar where the leak changes a decision.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from spark_ray.strategy.bars import Bar, BarData
from spark_ray.strategy.base import Strategy
from spark_ray.strategy.context import StrategyContext
from spark_ray.strategy.indicators import cross_above, cross_below, rolling_mean_exact, rsi


def _view(mask: np.ndarray) -> Any:
    return np.ascontiguousarray(mask).data


class _SmaLike(Strategy):
    """sma_cross's ``on_bar``: long on ``up``, flat on ``down``."""

    def _set(self, up: np.ndarray, down: np.ndarray) -> None:
        self.up = _view(up)
        self.down = _view(down)

    def on_bar(self, ctx: StrategyContext[Any], bar: Bar) -> None:
        i = bar.i
        if self.up[i]:
            if not ctx.position:
                ctx.buy(pct=1.0)
        elif self.down[i] and ctx.position:
            ctx.close()


class NextCloseParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fast: int = Field(10, ge=1)
    slow: int = Field(30, ge=2)
    drop: float = Field(0.01, gt=0)
    peek: bool = True


class NextClose(_SmaLike):
    """sma_cross plus a crystal ball: it also sells when the NEXT bar's close (``close[i + 1]``)
    is ``drop`` below this one's. Peeks one bar; ``peek=False`` is plain sma_cross."""

    name = "next_close"
    Params = NextCloseParams

    def init(self, data: BarData) -> None:
        c = data.c
        fast = rolling_mean_exact(c, self.p.fast)
        slow = rolling_mean_exact(c, self.p.slow)
        nxt = np.append(c[1:], np.nan)  # the leak: close[i + 1]
        with np.errstate(invalid="ignore"):
            crash = nxt < c * (1 - self.p.drop) if self.p.peek else np.zeros(len(c), bool)
        up, down = cross_above(fast, slow), cross_below(fast, slow)
        self._set(up, down)
        self.crash = _view(crash)
        self.declare_signals(up, down, crash)

    def on_bar(self, ctx: StrategyContext[Any], bar: Bar) -> None:
        i = bar.i
        if ctx.position and self.crash[i] and not self.down[i]:
            ctx.close(tag="crystal ball")
            return
        super().on_bar(ctx, bar)


class CenteredParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fast: int = Field(5, ge=3)
    slow: int = Field(30, ge=2)
    peek: bool = True


class CenteredSma(_SmaLike):
    """sma_cross whose fast SMA is a centered rolling window (pandas ``center=True``): the
    value on bar i averages bars i-2..i+2 for ``fast=5``, so it peeks ``fast // 2`` bars.
    ``peek=False`` is sma_cross(fast, slow)."""

    name = "centered_sma"
    Params = CenteredParams

    def init(self, data: BarData) -> None:
        close = pd.Series(data.c)
        fast = close.rolling(self.p.fast, center=self.p.peek).mean().to_numpy()
        slow = close.rolling(self.p.slow).mean().to_numpy()
        up, down = cross_above(fast, slow), cross_below(fast, slow)
        self._set(up, down)
        self.declare_signals(up, down)


class NextRsiParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    period: int = Field(14, ge=2)
    oversold: float = 30.0
    overbought: float = 70.0
    peek: bool = True


class NextRsi(Strategy):
    """rsi_reversion entering on the NEXT bar's RSI (``shift(-1)``): it buys the bar before RSI
    crosses up through ``oversold``; exits are honest. ``peek=False`` is rsi_reversion."""

    name = "next_rsi"
    Params = NextRsiParams

    def init(self, data: BarData) -> None:
        r = rsi(data.c, self.p.period)
        seen = pd.Series(r).shift(-1).to_numpy() if self.p.peek else r  # the leak
        enter = cross_above(seen, np.full(len(r), self.p.oversold))
        with np.errstate(invalid="ignore"):
            leave = r >= self.p.overbought
        self.enter = _view(enter)
        self.leave = _view(leave)
        self.declare_signals(enter, leave)

    def on_bar(self, ctx: StrategyContext[Any], bar: Bar) -> None:
        i = bar.i
        if self.enter[i] and not ctx.position:
            ctx.buy(pct=1.0)
        elif self.leave[i] and ctx.position:
            ctx.close()


class PeekIndex(_SmaLike):
    """sma_cross confirming each entry with ``close[i + 1]`` read in ``on_bar``: on the full
    series that bar exists (the entry filter sees the future); on a series cut at an entry
    signal it does not, and the strategy raises IndexError."""

    name = "peek_index"

    def init(self, data: BarData) -> None:
        fast = rolling_mean_exact(data.c, 10)
        slow = rolling_mean_exact(data.c, 30)
        up, down = cross_above(fast, slow), cross_below(fast, slow)
        self._set(up, down)
        self.close = data.c
        self.declare_signals(up, down)

    def on_bar(self, ctx: StrategyContext[Any], bar: Bar) -> None:
        i = bar.i
        if self.up[i]:
            if not ctx.position and self.close[i + 1] > bar.close:  # the leak
                ctx.buy(pct=1.0)
        elif self.down[i] and ctx.position:
            ctx.close()
