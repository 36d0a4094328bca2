"""Tune's walk-forward windows keep the bars' exchange, so trials on BIST data annualize with
XIST trading days (not 365 x 24/7) and never trade outside a session."""

from __future__ import annotations

import math

import numpy as np

from spark_ray.backtest import run_bars
from spark_ray.backtest.data import bars_from_arrays
from spark_ray.fills.costs import CostModel
from spark_ray.sessions import periods_per_year
from spark_ray.tune.walkforward import Window, evaluate_window, slice_bars

DAY = 86_400_000
MON = 1_735_516_800_000  # Monday 30 December 2024, 00:00 UTC


def test_windows_carry_the_exchange_into_the_metrics() -> None:
    days = MON + np.arange(40, dtype=np.int64) * DAY  # weekends included: XIST closes then
    rng = np.random.default_rng(5)
    close = 300 * np.exp(np.cumsum(rng.normal(0, 0.02, len(days))))
    data = bars_from_arrays("THYAO", "1d", days, close, close * 1.01, close * 0.99, close,
                            exchange="bist")
    w = Window(0, 40)
    part = slice_bars(data, w)
    assert part.exchange == "bist"
    res = run_bars(part, "sma_cross", {"fast": 2, "slow": 3}, benchmark=False)
    assert res.metrics["periods_per_year"] == periods_per_year("bist", "1d")[0] < 260
    assert res.config["bars_outside_sessions"] >= 10  # the weekends and New Year's Day
    assert all((int(t) // DAY + 3) % 7 < 5 for t in res.times)  # Monday..Friday only
    scored = evaluate_window(data, w, "sma_cross", {"fast": 2, "slow": 3}, CostModel())
    assert math.isclose(scored["sharpe"], res.metrics["sharpe"] or 0.0)
