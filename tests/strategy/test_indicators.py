"""Indicators: NaN until enough bars exist, no look-ahead (a value never changes when later bars
arrive), and crosses as backtesting.py defines them."""

from __future__ import annotations

import numpy as np
import pytest

from spark_ray.strategy.indicators import (
    atr,
    cross_above,
    cross_below,
    rolling_max,
    rolling_mean_exact,
    rolling_min,
    rsi,
    sma,
)


def _walk(n: int = 300) -> np.ndarray:
    return 100 + np.cumsum(np.random.default_rng(7).normal(0, 1, n))


def test_sma_and_rolling_windows() -> None:
    x = np.arange(1.0, 7.0)
    assert np.isnan(sma(x, 3)[:2]).all() and sma(x, 3)[2:].tolist() == [2.0, 3.0, 4.0, 5.0]
    assert np.allclose(rolling_mean_exact(x, 3)[2:], [2, 3, 4, 5])
    assert rolling_max(x, 2)[1:].tolist() == [2, 3, 4, 5, 6]
    assert rolling_min(x, 2)[1:].tolist() == [1, 2, 3, 4, 5]
    assert np.isnan(sma(x, 10)).all()


@pytest.mark.parametrize("fn", [lambda c: sma(c, 10), lambda c: rsi(c, 14),
                                lambda c: rolling_mean_exact(c, 10),
                                lambda c: atr(c + 1, c - 1, c, 14)])
def test_no_lookahead(fn: object) -> None:
    c = _walk()
    full = fn(c)  # type: ignore[operator]
    for cut in (50, 120, 299):
        part = fn(c[:cut])  # type: ignore[operator]
        assert np.allclose(part, full[:cut], equal_nan=True)


def test_rsi_bounds_and_crosses() -> None:
    r = rsi(_walk(), 14)
    assert np.isnan(r[:14]).all() and ((r[14:] >= 0) & (r[14:] <= 100)).all()
    a = np.array([1.0, 2.0, 3.0, 2.0, 1.0])
    b = np.full(5, 2.0)
    assert cross_above(a, b).tolist() == [False, False, False, False, False]  # a touch is no cross
    assert cross_above(np.array([1.0, 3.0, 1.0]), np.full(3, 2.0)).tolist() == [False, True, False]
    assert cross_below(np.array([3.0, 1.0, 3.0]), np.full(3, 2.0)).tolist() == [False, True, False]
