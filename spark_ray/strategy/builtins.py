"""Built-in strategies. Each declares its signal bars in ``init`` so the engine can skip the
rest; ``on_bar`` holds the decisions and is the same code that runs live."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from spark_ray.strategy.bars import SIGNALS, Bar, BarData
from spark_ray.strategy.base import Strategy
from spark_ray.strategy.context import StrategyContext
from spark_ray.strategy.indicators import (
    atr,
    cross_above,
    cross_below,
    rolling_max,
    rolling_mean_exact,
    rolling_min,
    rsi,
)


class SmaCrossParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fast: int = Field(10, ge=1, le=10_000)
    slow: int = Field(30, ge=2, le=10_000)
    size_pct: float = Field(1.0, gt=0, le=1)

    @model_validator(mode="after")
    def _order(self) -> SmaCrossParams:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be below slow ({self.slow})")
        return self


class SmaCross(Strategy):
    """Long when the fast SMA crosses above the slow one; flat when it crosses below."""

    name = "sma_cross"
    Params = SmaCrossParams

    def init(self, data: BarData) -> None:
        fast = rolling_mean_exact(data.c, self.p.fast)
        slow = rolling_mean_exact(data.c, self.p.slow)
        up = cross_above(fast, slow)
        down = cross_below(fast, slow)
        self.up = np.ascontiguousarray(up).data
        self.down = np.ascontiguousarray(down).data
        self.declare_signals(up, down)

    def on_bar(self, ctx: StrategyContext[Any], bar: Bar) -> None:
        i = bar.i
        if self.up[i]:
            if not ctx.position:
                ctx.buy(pct=self.p.size_pct)
        elif self.down[i] and ctx.position:
            ctx.close()


class RsiParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    period: int = Field(14, ge=2, le=1000)
    oversold: float = Field(30.0, gt=0, lt=100)
    overbought: float = Field(70.0, gt=0, lt=100)
    size_pct: float = Field(1.0, gt=0, le=1)

    @model_validator(mode="after")
    def _band(self) -> RsiParams:
        if self.oversold >= self.overbought:
            raise ValueError("oversold must be below overbought")
        return self


class RsiReversion(Strategy):
    """Buy when RSI crosses up through the oversold level; sell when it reaches overbought."""

    name = "rsi_reversion"
    Params = RsiParams

    def init(self, data: BarData) -> None:
        r = rsi(data.c, self.p.period)
        level_lo = np.full(len(r), self.p.oversold)
        enter = cross_above(r, level_lo)
        with np.errstate(invalid="ignore"):
            leave = r >= self.p.overbought
        self.enter = np.ascontiguousarray(enter).data
        self.leave = np.ascontiguousarray(leave).data
        self.declare_signals(enter, leave)

    def on_bar(self, ctx: StrategyContext[Any], bar: Bar) -> None:
        i = bar.i
        if self.enter[i] and not ctx.position:
            ctx.buy(pct=self.p.size_pct)
        elif self.leave[i] and ctx.position:
            ctx.close()


class DonchianParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entry: int = Field(20, ge=2, le=10_000)
    exit: int = Field(10, ge=2, le=10_000)
    atr_period: int = Field(14, ge=2, le=1000)
    atr_stop: float = Field(2.0, gt=0, le=50)
    size_pct: float = Field(1.0, gt=0, le=1)


class DonchianBreakout(Strategy):
    """Buy a close above the prior ``entry``-bar high; exit below the prior ``exit``-bar low,
    with a protective stop ``atr_stop`` ATRs under the entry close."""

    name = "donchian_breakout"
    Params = DonchianParams

    def init(self, data: BarData) -> None:
        hi = np.concatenate([[np.nan], rolling_max(data.h, self.p.entry)[:-1]])
        lo = np.concatenate([[np.nan], rolling_min(data.lo, self.p.exit)[:-1]])
        with np.errstate(invalid="ignore"):
            breakout = data.c > hi
            breakdown = data.c < lo
        self.atr = atr(data.h, data.lo, data.c, self.p.atr_period).data
        self.breakout = np.ascontiguousarray(breakout).data
        self.breakdown = np.ascontiguousarray(breakdown).data
        self.stop_order: Any = None
        self.declare_signals(breakout, breakdown)

    def on_bar(self, ctx: StrategyContext[Any], bar: Bar) -> None:
        i = bar.i
        if ctx.position:
            if self.breakdown[i]:
                if self.stop_order is not None:
                    ctx.cancel(self.stop_order)
                    self.stop_order = None
                ctx.close(tag="channel exit")
            elif self.stop_order is None or self.stop_order.status != "NEW":
                a = self.atr[i]
                if a == a:  # ATR known: protect the position just entered
                    self.stop_order = ctx.sell(ctx.position, stop=bar.close - self.p.atr_stop * a,
                                               tag="atr stop")
        elif self.breakout[i]:
            self.stop_order = None
            ctx.buy(pct=self.p.size_pct)


class BuyAndHoldParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size_pct: float = Field(1.0, gt=0, le=1)


class BuyAndHold(Strategy):
    """The benchmark: buy ``size_pct`` of equity on the first bar, never sell."""

    name = "buy_and_hold"
    Params = BuyAndHoldParams

    def init(self, data: BarData) -> None:
        first = np.zeros(len(data), dtype=bool)
        if len(first):
            first[0] = True
        self.declare_signals(first)

    def on_bar(self, ctx: StrategyContext[Any], bar: Bar) -> None:
        if bar.i == 0:
            ctx.buy(pct=self.p.size_pct)


class EnterLeave(Strategy):
    """A strategy that holds one position from an ``enter`` bar to a ``leave`` bar (both
    boolean arrays, declared as its signals): ``init`` computes them, ``on_bar`` is shared."""

    def set_signals(self, enter: np.ndarray, leave: np.ndarray) -> None:
        self.enter = np.ascontiguousarray(enter).data
        self.leave = np.ascontiguousarray(leave).data
        self.declare_signals(enter, leave)

    def on_bar(self, ctx: StrategyContext[Any], bar: Bar) -> None:
        i = bar.i
        if ctx.position:
            if self.leave[i]:
                ctx.close()
        elif self.enter[i]:
            ctx.buy(pct=self.p.size_pct)


class RandomEntryParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    entry_prob: float = Field(0.01, gt=0, le=0.5)
    hold: int = Field(12, ge=1, le=100_000)
    size_pct: float = Field(1.0, gt=0, le=1)


class RandomEntry(EnterLeave):
    """The null model: enter on random bars (probability ``entry_prob``, fixed by ``seed``),
    exit ``hold`` bars later. It has no edge by construction, so an optimizer that "finds" a
    good seed has found luck; the approval gate must refuse it (the overfitting tests sweep
    it on a random walk)."""

    name = "random_entry"
    Params = RandomEntryParams

    def init(self, data: BarData) -> None:
        # Drawn bar by bar from the seed: the first k draws are the same however long the
        # series, so the decisions never depend on later bars.
        enter = np.random.default_rng(self.p.seed).random(len(data)) < self.p.entry_prob
        leave = np.zeros(len(data), dtype=bool)
        leave[self.p.hold:] = enter[:len(data) - self.p.hold] if self.p.hold < len(data) else []
        self.set_signals(enter, leave)


class SignalFusionParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enter: float = Field(0.55, gt=0, lt=1, description="Go long when the model's p_up >= this.")
    exit: float = Field(0.5, gt=0, lt=1, description="Go flat when p_up <= this.")
    confirm: str = Field("", pattern=r"^[a-z0-9_]{0,64}$",
                         description="A second signal (a feature the model reads) that must "
                                     "also agree before entering; empty: the model alone.")
    confirm_min: float = Field(0.0, description="Enter only when the confirming signal >= this.")
    size_pct: float = Field(1.0, gt=0, le=1)

    @model_validator(mode="after")
    def _band(self) -> SignalFusionParams:
        if self.exit > self.enter:
            raise ValueError("exit must not be above enter")
        return self


class SignalFusion(EnterLeave):
    """Signals fused by a rule into a target position: long while the signal model's
    probability of a rise (``p_up``) is high and the confirming signal agrees, flat when it
    falls. It reads the signals beside the bars (``BarData.extra["signals"]``), which the
    backtest and Tune fill from the lake with the features' batch runtime and the executor
    from the signal actor's live stream: the same code decides in all three."""

    name = "signal_fusion"
    Params = SignalFusionParams

    def init(self, data: BarData) -> None:
        sig = data.extra.get(SIGNALS, {}).get(data.symbol)
        if sig is None or "p_up" not in sig:
            raise ValueError(f"signal_fusion: no signals beside the {data.symbol} bars; give a "
                             "signal model (--signals-model DIR)")
        p = np.asarray(sig["p_up"], dtype=float)
        with np.errstate(invalid="ignore"):
            enter = p >= self.p.enter
            if self.p.confirm:
                if self.p.confirm not in sig:
                    raise ValueError(f"confirm: {self.p.confirm!r} is not a signal beside the "
                                     f"bars; have {', '.join(sorted(sig))}")
                enter &= np.asarray(sig[self.p.confirm], dtype=float) >= self.p.confirm_min
            leave = p <= self.p.exit
        self.set_signals(enter, leave)


BUILTINS: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (SmaCross, RsiReversion, DonchianBreakout, BuyAndHold, RandomEntry,
                               SignalFusion)
}
