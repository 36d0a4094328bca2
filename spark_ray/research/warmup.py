"""How much history each of a strategy's indicators needs before its values can be trusted.

An SMA over ``n`` bars is exact once ``n`` bars exist; an RSI or an EMA (recursive smoothing)
carries every earlier bar in its value, fading but never gone, so its value on a given bar
depends on where the series happened to start. A strategy started live with too little history
therefore computes different signals from the backtest's. :func:`indicator_warmup` measures it:
it runs the strategy's ``init`` on the full series and on the series with its first ``k`` bars
dropped, and for every per-bar array the strategy keeps, finds how many bars of the shorter
series pass before its values equal the full series' values on the same bars, for good.

It reports, it never fails a check: a long warm-up is a fact about the indicator (load that much
history before trading), not a look-ahead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from spark_ray.backtest.data import session_bars
from spark_ray.research.lookahead import window
from spark_ray.strategy.bars import BarData
from spark_ray.strategy.base import Strategy
from spark_ray.strategy.loader import load_strategy, make_strategy

# Values count as equal within 1e-9 relative: far below any trading threshold, far above the
# rounding noise of sums computed from a different first bar (pandas' rolling sums, cumsums).
REL_TOL = 1e-9
DEFAULT_OFFSETS = (100, 400, 1600)
# Attributes that are not per-bar indicator values.
SKIP = frozenset({"params", "signal_bars"})


@dataclass(frozen=True)
class WarmupFinding:
    """One indicator (a per-bar array attribute of the strategy) and the history it needs."""

    name: str
    warmup_bars: int
    converged: bool
    max_abs_diff: float
    max_abs_diff_after_warmup: float
    dtype: str
    offsets: tuple[int, ...]

    def describe(self) -> str:
        if not self.converged:
            return (f"{self.name}: does not settle within the data: still differs "
                    f"{self.warmup_bars} bars in (max difference {self.max_abs_diff:.3g})")
        if self.warmup_bars == 0:
            return f"{self.name}: exact from the first bar"
        return f"{self.name}: needs {self.warmup_bars} bars of history"

    def to_dict(self) -> dict[str, Any]:
        def num(v: float) -> float | str:
            return v if math.isfinite(v) else repr(v)

        return {"name": self.name, "warmup_bars": self.warmup_bars, "converged": self.converged,
                "max_abs_diff": num(self.max_abs_diff),
                "max_abs_diff_after_warmup": num(self.max_abs_diff_after_warmup),
                "dtype": self.dtype, "offsets": list(self.offsets)}


def indicator_warmup(data: BarData, strategy: str | type[Strategy], params: dict[str, Any],
                     offsets: Sequence[int] = DEFAULT_OFFSETS) -> list[WarmupFinding]:
    """For every per-bar array the strategy's ``init`` leaves on the instance: the bars after
    the start of a shortened series (first ``k`` bars dropped, for each ``k`` of ``offsets``
    that leaves at least as many bars as it drops) until its values equal the full series' for
    every later bar. ``converged`` is False when that takes more than half the shortened series
    (the values depend on where the series starts, however long it is). Longest first."""
    cls = load_strategy(strategy) if isinstance(strategy, str) else strategy
    model = make_strategy(cls, params).params
    data, _ = session_bars(data)
    n = len(data)
    ks = tuple(sorted({int(k) for k in offsets if 0 < int(k) <= n // 2})) or \
        ((n // 2,) if n >= 2 else ())
    full = _arrays(cls, model, data)
    per_k = {k: _arrays(cls, model, window(data, k, n)) for k in ks}
    found = []
    for name, arr in full.items():
        pairs = [(k, per_k[k][name]) for k in ks if name in per_k[k]]
        if pairs:
            found.append(_finding(name, arr, pairs))
    return sorted(found, key=lambda f: (f.converged, -f.warmup_bars, f.name))


def _arrays(cls: type[Strategy], model: Any, data: BarData) -> dict[str, np.ndarray]:
    """The strategy's per-bar numeric arrays after ``init`` (numpy arrays and memoryviews)."""
    strat = cls(model)
    strat.init(data)
    out = {}
    for name, value in vars(strat).items():
        if name in SKIP or not isinstance(value, np.ndarray | memoryview):
            continue
        arr = np.asarray(value)
        if arr.ndim == 1 and len(arr) == len(data) and arr.dtype.kind in "biuf":
            out[name] = arr
    return out


def _finding(name: str, full: np.ndarray, pairs: list[tuple[int, np.ndarray]]
             ) -> WarmupFinding:
    warmup, converged, worst, after = 0, True, 0.0, 0.0
    for k, short in pairs:
        if len(short) != len(full) - k:
            continue
        ref = full[k:]
        differ = _differs(short, ref)
        bad = np.flatnonzero(differ)
        w = int(bad[-1]) + 1 if len(bad) else 0
        # Agreeing on a short tail only may be chance (sparse boolean signals agree wherever
        # both are False): settling takes at most half the shortened series.
        if w > len(short) // 2:
            converged = False
        warmup = max(warmup, w)
        worst = max(worst, _max_abs(short[:w], ref[:w]))
        after = max(after, _max_abs(short[w:], ref[w:]))
    return WarmupFinding(name, warmup, converged, worst, after, str(full.dtype),
                         tuple(k for k, _ in pairs))


def _differs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per bar: the values differ (numbers beyond :data:`REL_TOL`; NaN equals NaN)."""
    if a.dtype.kind != "f" and b.dtype.kind != "f":
        return np.asarray(a != b)
    x = a.astype(np.float64)
    y = b.astype(np.float64)
    with np.errstate(invalid="ignore"):
        same = (x == y) | (np.isnan(x) & np.isnan(y)) | \
            (np.abs(x - y) <= REL_TOL * np.maximum(np.abs(x), np.abs(y)))
    return np.asarray(~same)


def _max_abs(a: np.ndarray, b: np.ndarray) -> float:
    """Largest difference on bars where both values are numbers (0.0 when none)."""
    x = a.astype(np.float64)
    y = b.astype(np.float64)
    both = np.isfinite(x) & np.isfinite(y)
    return float(np.abs(x[both] - y[both]).max()) if both.any() else 0.0
