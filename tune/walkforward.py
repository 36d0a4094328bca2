"""Walk-forward evaluation of one parameter set on one scenario.

A scenario's bars (after the hold-out tail is cut off) are split into ``folds + 1`` equal
segments; fold k trains on segment k and tests on segment k+1 (rolling). Each window is its own
backtest with the same engine and strategy class as everything else, so in-sample and
out-of-sample numbers never share a position. The strategy has no fitted state: "train" here is
the in-sample performance the optimizer sees, "test" the out-of-sample performance it must hold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from spark_ray.backtest import run_bars
from spark_ray.fills.costs import CostModel
from spark_ray.strategy.bars import BarData

METRIC_KEYS = ("sharpe", "total_return", "max_drawdown", "trades")


@dataclass(frozen=True)
class Window:
    start: int  # bar index, inclusive
    end: int  # bar index, exclusive


@dataclass(frozen=True)
class Fold:
    """One split: the windows a trial is scored on in-sample and out-of-sample (one each for
    the walk-forward; several for the purged schemes of :mod:`spark_ray.tune.cv`)."""

    train: tuple[Window, ...]
    test: tuple[Window, ...]


def split(n: int, folds: int) -> list[tuple[Window, Window]]:
    """(train, test) windows of ``folds`` rolling walk-forward folds over n bars."""
    seg = n // (folds + 1)
    if seg < 2:
        raise ValueError(f"{n} bars are too few for {folds} walk-forward folds")
    return [(Window(k * seg, (k + 1) * seg), Window((k + 1) * seg, (k + 2) * seg))
            for k in range(folds)]


def holdout_cut(n: int, holdout: float) -> int:
    """Index where the hold-out tail (never seen by the optimizer) begins."""
    return n - round(n * holdout)


def slice_bars(data: BarData, w: Window) -> BarData:
    return data.window(w.start, w.end)


def _clean(metrics: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for k in METRIC_KEYS:
        v = metrics.get(k)
        # A window with no trades has no Sharpe: score it 0, not NaN (NaN would poison ranks).
        out[k] = 0.0 if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
    return out


def evaluate_window(data: BarData, w: Window, strategy: str, params: dict[str, Any],
                    costs: CostModel) -> dict[str, float]:
    res = run_bars(slice_bars(data, w), strategy, params, costs=costs, benchmark=False)
    return _clean(res.metrics)


def period_returns(times: np.ndarray, equity: np.ndarray, period_ms: int) -> np.ndarray:
    """Compounded returns per ``period_ms`` period (UTC-aligned) of an equity curve: what a
    trial records for the overfitting statistics, in a size that does not grow with the bars."""
    if len(equity) < 2:
        return np.zeros(0)
    r = np.diff(equity) / equity[:-1]
    _, inv = np.unique(np.asarray(times[1:]) // period_ms, return_inverse=True)
    return np.expm1(np.bincount(inv, weights=np.log1p(r)))


def _combined(results: list[Any]) -> dict[str, float]:
    """Metrics of several windows' backtests taken as one series: their bar returns
    concatenated (Sharpe annualized as the engine does, drawdown on the compounded curve)."""
    rets = np.concatenate([np.diff(r.output.equity) / r.output.equity[:-1] for r in results])
    per_year = float(results[0].metrics.get("periods_per_year") or 1.0)
    sd = float(np.std(rets, ddof=1)) if len(rets) > 1 else 0.0
    curve = np.concatenate([[1.0], np.cumprod(1 + rets)])
    return {"sharpe": float(np.mean(rets)) / sd * math.sqrt(per_year) if sd > 0 else 0.0,
            "total_return": float(curve[-1] - 1),
            "max_drawdown": float(np.min(curve / np.maximum.accumulate(curve) - 1)),
            "trades": float(sum(r.metrics.get("trades", 0) for r in results))}


def evaluate_windows(data: BarData, windows: tuple[Window, ...], strategy: str,
                     params: dict[str, Any], costs: CostModel, period_ms: int | None = None
                     ) -> tuple[dict[str, float], list[tuple[int, list[float]]]]:
    """Backtest each window on its own; metrics over all of them, and (with ``period_ms``)
    each window's per-period returns keyed by its first bar."""
    results = [run_bars(slice_bars(data, w), strategy, params, costs=costs, benchmark=False)
               for w in windows]
    metrics = _clean(results[0].metrics) if len(results) == 1 else _combined(results)
    returns = [] if period_ms is None else [
        (w.start, period_returns(r.times, r.output.equity, period_ms).tolist())
        for w, r in zip(windows, results, strict=True)]
    return metrics, returns


def evaluate_fold(data: BarData, fold: Fold, strategy: str, params: dict[str, Any],
                  costs: CostModel, period_ms: int | None = None) -> dict[str, Any]:
    """In-sample and out-of-sample metrics of one fold; ``returns``: the out-of-sample
    windows' per-period returns."""
    is_m, _ = evaluate_windows(data, fold.train, strategy, params, costs)
    oos_m, returns = evaluate_windows(data, fold.test, strategy, params, costs, period_ms)
    return {"is": is_m, "oos": oos_m, "returns": returns}


def summarize(folds: list[dict[str, Any]]) -> dict[str, float]:
    """Per-scenario summary over the folds done so far: means, worst drawdown, trade counts."""
    out: dict[str, float] = {}
    for side in ("is", "oos"):
        vals = [f[side] for f in folds]
        out[f"{side}_sharpe"] = float(np.mean([v["sharpe"] for v in vals]))
        out[f"{side}_return"] = float(np.mean([v["total_return"] for v in vals]))
        out[f"{side}_max_drawdown"] = float(min(v["max_drawdown"] for v in vals))
        out[f"{side}_trades"] = float(sum(v["trades"] for v in vals))
    return out


@dataclass(frozen=True)
class Objective:
    """Aggregate over scenarios: median OOS Sharpe minus a drawdown penalty (configurable)."""

    drawdown_penalty: float = 2.0

    def __call__(self, per_scenario: dict[str, dict[str, float]]) -> float:
        sharpe = float(np.median([s["oos_sharpe"] for s in per_scenario.values()]))
        dd = float(np.median([abs(s["oos_max_drawdown"]) for s in per_scenario.values()]))
        return sharpe - self.drawdown_penalty * dd
