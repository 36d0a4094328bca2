"""The one strategy interface shared by backtest, optimization and live trading.

A strategy has a pydantic ``Params`` model, an ``init(data)`` hook that precomputes indicators
vectorized, and ``on_bar(ctx, bar)`` that decides. It never knows whether it runs in a backtest
or live: orders go through ``ctx`` (:class:`~spark_ray.backtest.context.Context` here, the
executor's context live).

A strategy may also *declare its signals* in ``init`` (``self.declare_signals(...)``): boolean
arrays of the bars where ``on_bar`` can act. The engine then calls ``on_bar`` only on those bars
and on bars where a resting order can fill, finding them vectorized; ``on_bar`` is unchanged.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from spark_ray.errors import UserError


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass
class BarData:
    """Aligned bars of one or more symbols: int64 ms open times and float64 OHLCV per symbol."""

    time: np.ndarray
    open: dict[str, np.ndarray]
    high: dict[str, np.ndarray]
    low: dict[str, np.ndarray]
    close: dict[str, np.ndarray]
    volume: dict[str, np.ndarray]
    symbols: list[str]
    interval: str
    fingerprint: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.time)

    @property
    def symbol(self) -> str:
        """The primary (first) symbol: single-symbol strategies use it implicitly."""
        return self.symbols[0]

    # Single-symbol conveniences for indicator code: data.c is the primary close, etc.
    @property
    def o(self) -> np.ndarray:
        return self.open[self.symbols[0]]

    @property
    def h(self) -> np.ndarray:
        return self.high[self.symbols[0]]

    @property
    def lo(self) -> np.ndarray:
        return self.low[self.symbols[0]]

    @property
    def c(self) -> np.ndarray:
        return self.close[self.symbols[0]]

    @property
    def v(self) -> np.ndarray:
        return self.volume[self.symbols[0]]


class Bar:
    """The bar ``on_bar`` sees; one instance is updated in place per bar (no allocation)."""

    __slots__ = ("close", "high", "i", "low", "open", "symbol", "time", "volume")

    def __init__(self) -> None:
        self.i = 0
        self.time = 0
        self.open = self.high = self.low = self.close = self.volume = 0.0
        self.symbol = ""


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

    def on_bar(self, ctx: Any, bar: Bar) -> None:
        """Decide on bar ``bar.i`` after its close; orders act from the next bar."""

    def declare_signals(self, *masks: np.ndarray) -> None:
        """Promise that ``on_bar`` acts only where one of ``masks`` is true (besides fills).

        Lets the engine skip every other bar, vectorized, with the same results.
        """
        active = np.zeros(len(masks[0]), dtype=bool)
        for m in masks:
            active |= np.asarray(m, dtype=bool)
        self.signal_bars = np.flatnonzero(active)


def parse_param_value(raw: str) -> Any:
    """``--param fast=10``: ints, floats, booleans and strings, as YAML would read them."""
    import yaml

    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def load_strategy(spec: str) -> type[Strategy]:
    """A built-in name (``sma_cross``) or an import path (``pkg.mod:Class``)."""
    from spark_ray.backtest.strategies import BUILTINS

    if spec in BUILTINS:
        return BUILTINS[spec]
    if ":" not in spec:
        raise UserError(f"--strategy: unknown strategy {spec!r}; built-in: "
                        f"{', '.join(sorted(BUILTINS))}, or give pkg.module:Class")
    mod_name, _, cls_name = spec.partition(":")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as exc:
        raise UserError(f"--strategy: cannot import {mod_name!r}: {exc}") from None
    cls = getattr(mod, cls_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise UserError(f"--strategy: {spec!r} is not a spark_ray Strategy subclass")
    return cls


def make_strategy(cls: type[Strategy], params: dict[str, Any]) -> Strategy:
    """Instantiate with validated params; UserError names the bad parameter."""
    from pydantic import ValidationError

    try:
        return cls(params)
    except ValidationError as exc:
        msgs = [f"--param {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise UserError("; ".join(msgs)) from None
