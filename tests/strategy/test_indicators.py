"""Indicators: NaN until enough bars exist, no look-ahead (a value never changes when later bars
arrive), and crosses as backtesting.py defines them."""

from __future__ import annotations

import numpy as np
import pytest

from spark_ray.strategy import indicators as ind


def _walk(n: int = 300) -> np.ndarray:
    return 100 + np.cumsum(np.random.default_rng(7).normal(0, 1, n))


def test_sma_and_rolling_windows() -> None:
    x = np.arange(1.0, 7.0)
    assert np.isnan(ind.sma(x, 3)[:2]).all() and ind.sma(x, 3)[2:].tolist() == [2.0, 3.0, 4.0, 5.0]
    assert np.allclose(ind.rolling_mean_exact(x, 3)[2:], [2, 3, 4, 5])
    assert ind.rolling_max(x, 2)[1:].tolist() == [2, 3, 4, 5, 6]
    assert ind.rolling_min(x, 2)[1:].tolist() == [1, 2, 3, 4, 5]
    assert np.isnan(ind.sma(x, 10)).all()


@pytest.mark.parametrize("fn", [lambda c: ind.sma(c, 10), lambda c: ind.rsi(c, 14),
                                lambda c: ind.rolling_mean_exact(c, 10),
                                lambda c: ind.atr(c + 1, c - 1, c, 14)])
def test_no_lookahead(fn: object) -> None:
    c = _walk()
    full = fn(c)  # type: ignore[operator]
    for cut in (50, 120, 299):
        part = fn(c[:cut])  # type: ignore[operator]
        assert np.allclose(part, full[:cut], equal_nan=True)


def test_rsi_bounds_and_crosses() -> None:
    r = ind.rsi(_walk(), 14)
    assert np.isnan(r[:14]).all() and ((r[14:] >= 0) & (r[14:] <= 100)).all()
    two = np.full(5, 2.0)
    touch = np.array([1.0, 2.0, 3.0, 2.0, 1.0])
    assert not ind.cross_above(touch, two).any()  # a touch is no cross
    assert ind.cross_above(np.array([1.0, 3.0, 1.0]), two[:3]).tolist() == [False, True, False]
    assert ind.cross_below(np.array([3.0, 1.0, 3.0]), two[:3]).tolist() == [False, True, False]
