"""Forward-return and triple-barrier labels (López de Prado 2018, section 3.4), on paths worked
out by hand: the book gives the method as code (getEvents/getBins), not a numeric example."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spark_ray.signals.labels import forward_return, triple_barrier


def test_forward_return_is_future_log_return_and_nan_at_the_end() -> None:
    r = forward_return(np.array([100.0, 110.0, 99.0]), 1)
    assert r[0] == pytest.approx(math.log(1.1)) and r[1] == pytest.approx(math.log(0.9))
    assert math.isnan(r[2])


def test_first_touched_horizontal_barrier_sets_the_label() -> None:
    close = np.array([100.0, 101.0, 103.0, 98.5, 98.0, 100.0])
    b = triple_barrier(close, np.full(6, 0.02), horizon=3)
    # bar 0: +0.995% then +2.96% >= 2% -> upper, 2 bars later
    # bar 1: +1.96% (< 2%) then -2.51% <= -2% -> lower, 2 bars later
    # bar 2: -4.47% at once -> lower, 1 bar later
    assert b.label[:3].tolist() == [1.0, -1.0, -1.0]
    assert b.touched_after[:3].tolist() == [2, 2, 1]
    assert b.barrier[:3].tolist() == [1, -1, -1]
    assert np.isnan(b.label[3:]).all()  # no full horizon ahead: no label


def test_vertical_barrier_takes_the_sign_of_the_return_then() -> None:
    up = triple_barrier(np.array([100.0, 100.5, 100.2, 100.8]), np.full(4, 0.05), horizon=3)
    assert (up.label[0], up.barrier[0], up.touched_after[0]) == (1.0, 0, 3)
    flat = triple_barrier(np.array([100.0, 101.0, 100.0]), np.full(3, 0.5), horizon=2)
    assert flat.label[0] == 0.0


def test_asymmetric_barriers_and_missing_volatility() -> None:
    close = np.array([100.0, 101.5, 97.0, 97.0])
    # pt 2 x 1% = 2% not reached by +1.49%; sl 1 x 1% reached by -3.05%
    b = triple_barrier(close, np.array([0.01, np.nan, 0.01, 0.01]), horizon=2, pt=2.0)
    assert b.label[0] == -1.0 and b.barrier[0] == -1
    assert math.isnan(b.label[1])  # no volatility estimate yet: no label


def test_a_label_uses_only_the_horizon_after_its_bar() -> None:
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 500)))
    vol = np.full(500, 0.01)
    full = triple_barrier(close, vol, horizon=10)
    other = close.copy()
    other[300:] *= 1.5  # change everything from bar 300 on
    changed = triple_barrier(other, vol, horizon=10)
    # labels of bars up to 289 look at bars <= 299 only
    np.testing.assert_array_equal(full.label[:290], changed.label[:290])
    assert not np.array_equal(full.label[290:300], changed.label[290:300])


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="horizon"):
        triple_barrier(np.ones(5), np.ones(5), horizon=0)
    with pytest.raises(ValueError, match="pt and sl"):
        triple_barrier(np.ones(5), np.ones(5), horizon=2, sl=0)
