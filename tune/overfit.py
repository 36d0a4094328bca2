"""After the sweep: how much of the winner's Sharpe ratio is selection, not skill.

Every trial records the per-period returns of its out-of-sample windows (see
:mod:`spark_ray.tune.trainable`). Here they become one matrix, T periods by N trials, from which
:mod:`spark_ray.research.statistics` computes, without re-running a backtest:

- each trial's deflated Sharpe ratio (DSR): the probability that its true Sharpe ratio beats
  the best one expected among N trials of no skill, given the variance of the trials' Sharpe
  ratios and the skewness and kurtosis of its own returns;
- the probability of backtest overfitting (PBO) by combinatorially symmetric cross-validation.

Rows: each scenario's out-of-sample periods in time order (a period tested by several splits,
as in CPCV, counts once, as the mean of its paths), the scenarios one after the other.
"""

from __future__ import annotations

import hashlib
import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from spark_ray.schemas import INTERVAL_MS
from spark_ray.strategy.bars import BarData

HOUR_MS = 3_600_000
PERIODS_MS = (HOUR_MS, 4 * HOUR_MS, 24 * HOUR_MS, 7 * 24 * HOUR_MS)
MAX_ROWS = 1000  # per scenario: bounds what every trial reports to Tune
YEAR_MS = 365 * 24 * HOUR_MS
RETURNS_FILE = "oos-returns.npz"


def record_period(bars: list[BarData]) -> int:
    """The period trials record returns in, the same for every scenario: the shortest of the
    bar interval, 1h, 4h, 1d, 1w that gives at most ``MAX_ROWS`` periods per scenario."""
    step = max(INTERVAL_MS.get(b.interval) or HOUR_MS for b in bars)
    span = max(int(b.time[-1] - b.time[0]) + step for b in bars if len(b))
    for period in (step, *PERIODS_MS):
        if period >= step and span / period <= MAX_ROWS:
            return period
    return max(step, PERIODS_MS[-1])


def trial_series(oos_returns: dict[str, list[Any]], scenarios: list[str]) -> np.ndarray:
    """One trial's out-of-sample per-period returns as one vector (see the module docstring)."""
    parts = []
    for name in scenarios:
        by_start: dict[int, list[list[float]]] = {}
        for start, values in oos_returns.get(name, []):
            by_start.setdefault(int(start), []).append(values)
        for start in sorted(by_start):
            paths = by_start[start]
            if len({len(p) for p in paths}) != 1:
                raise ValueError(f"scenario {name}: window at bar {start} has paths of "
                                 "different lengths")
            parts.append(np.mean(np.asarray(paths, dtype=float), axis=0))
    return np.concatenate(parts) if parts else np.zeros(0)


def returns_matrix(rows: list[dict[str, Any]], returns: dict[str, dict[str, list[Any]]],
                   scenarios: list[str]) -> tuple[np.ndarray, list[str]]:
    """T x N matrix of the trials that ran every fold, and their trial ids (columns)."""
    cols, ids = [], []
    for r in rows:
        rec = returns.get(r["trial_id"])
        if r["invalid"] or r["stopped_early"] or not rec:
            continue
        cols.append(trial_series(rec, scenarios))
        ids.append(r["trial_id"])
    if not cols:
        return np.zeros((0, 0)), []
    lengths = {len(c) for c in cols}
    if len(lengths) != 1:
        raise ValueError(f"trials recorded different numbers of periods: {sorted(lengths)}")
    return np.column_stack(cols), ids


def pbo_splits(periods: int, wanted: int) -> int:
    """CSCV's S: the wanted even number, lowered so every block holds at least two periods."""
    s = min(wanted, periods // 2)
    return s - s % 2


def overfitting(matrix: np.ndarray, ids: list[str], n_trials: int, period_ms: int,
                splits: int = 16) -> dict[str, Any]:
    """DSR per trial and the experiment's PBO; JSON-safe. ``n_trials``: every parameter set
    tried (the selection happened among all of them, finished or not)."""
    from spark_ray.research.statistics import deflated_sharpe_ratio, moments, pbo_cscv

    t, n = matrix.shape if matrix.size else (0, 0)
    out: dict[str, Any] = {"n_trials": n_trials, "trials_with_returns": n, "periods": t,
                           "period": _period_name(period_ms),
                           "periods_per_year": YEAR_MS / period_ms, "trials": {}}
    if n == 0 or t < 3:
        out["reason"] = "too few trials or periods with returns"
        return out
    # A trial that never traded out of sample has constant (zero) returns: Sharpe 0 among
    # the trials' Sharpe ratios (it was tried), but no DSR of its own.
    stats = [None if np.all(col == col[0]) else moments(col) for col in matrix.T]
    srs = np.array([0.0 if m is None else m.sharpe for m in stats])
    variance = float(np.var(srs, ddof=1)) if n > 1 else 0.0
    out["sr_variance"] = variance
    ann = math.sqrt(YEAR_MS / period_ms)
    for j, (tid, m) in enumerate(zip(ids, stats, strict=True)):
        row: dict[str, Any] = {"sharpe": float(srs[j]), "sharpe_annualized": float(srs[j]) * ann,
                               "dsr": None, "sr0": None, "skew": None, "kurtosis": None, "n": t}
        if m is not None:
            d = deflated_sharpe_ratio(m.sharpe, variance, max(n_trials, 1), m.n, m.skew,
                                      m.kurtosis)
            row.update(dsr=_json_float(d.dsr), sr0=_json_float(d.sr0), skew=m.skew,
                       kurtosis=m.kurtosis)
        out["trials"][tid] = row
    s = pbo_splits(t, splits)
    if n < 2 or s < 2:
        out["pbo"] = None
        out["reason"] = f"PBO needs >= 2 trials and >= 4 periods ({n} trials, {t} periods)"
        return out
    pbo = pbo_cscv(matrix, s)
    out["pbo"] = pbo.to_dict()
    out["pbo_logits"] = [float(x) for x in pbo.logits]
    return out


def candidate(overfit: dict[str, Any], trial_id: str) -> dict[str, Any] | None:
    """The DSR inputs and value of one trial, or None when it recorded no returns."""
    t = overfit.get("trials", {}).get(trial_id)
    if t is None:
        return None
    return {"trial_id": trial_id, "dsr": t["dsr"], "sharpe": t["sharpe"],
            "sharpe_annualized": t["sharpe_annualized"], "sr0": t["sr0"],
            "n_trials": overfit["n_trials"], "sr_variance": overfit.get("sr_variance"),
            "T": t["n"], "skew": t["skew"], "kurtosis": t["kurtosis"],
            "period": overfit["period"]}


def save_matrix(path: Path, matrix: np.ndarray, ids: list[str], period_ms: int,
                scenarios: list[str]) -> str:
    """Write the T x N matrix (what review recomputes PBO and DSR from); its sha256."""
    buf = io.BytesIO()
    np.savez_compressed(buf, returns=matrix, trial_ids=np.array(ids, dtype=str),
                        period_ms=np.array(period_ms), scenarios=np.array(scenarios, dtype=str))
    data = buf.getvalue()
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def load_matrix(path: Path) -> tuple[np.ndarray, list[str], int]:
    with np.load(path, allow_pickle=False) as z:
        return (np.asarray(z["returns"], dtype=float), [str(x) for x in z["trial_ids"]],
                int(z["period_ms"]))


def _period_name(ms: int) -> str:
    for name, step in INTERVAL_MS.items():
        if step == ms:
            return name
    return f"{ms / HOUR_MS:g}h"


def _json_float(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None
