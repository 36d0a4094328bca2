"""Cross-validation schemes: walk-forward, purged k-fold with embargo, CPCV (López de Prado,
Advances in Financial Machine Learning, 2018, ch. 7 and 12), and the per-period returns trials
record for the overfitting statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spark_ray.errors import UserError
from spark_ray.tune.cv import CVScheme
from spark_ray.tune.overfit import record_period, trial_series
from spark_ray.tune.walkforward import Window, period_returns, split


def _bars(fold_windows: tuple[Window, ...]) -> set[int]:
    return {i for w in fold_windows for i in range(w.start, w.end)}


def test_walkforward_is_the_original_rolling_split() -> None:
    folds = CVScheme("walkforward", 4).splits(1000)
    assert [(f.train, f.test) for f in folds] == [((tr,), (te,)) for tr, te in split(1000, 4)]
    assert CVScheme().n_splits == 4 and CVScheme().paths == 1


def test_purged_kfold_tests_every_bar_once_and_purges_around_the_test_block() -> None:
    cv = CVScheme("purged", 5, purge=0.02, embargo=0.03)
    folds = cv.splits(1000)
    assert len(folds) == 5 == cv.n_splits
    tested = [i for f in folds for w in f.test for i in range(w.start, w.end)]
    assert sorted(tested) == list(range(1000))  # a partition: each bar tested exactly once
    for f in folds:
        (test,) = f.test
        train = _bars(f.train)
        assert not train & _bars(f.test)
        # purge: 20 bars before the test block; embargo: 30 bars after it
        assert not train & set(range(max(0, test.start - 20), test.start))
        assert not train & set(range(test.end, min(1000, test.end + 30)))
        if test.start >= 20:
            assert test.start - 21 in train
        if test.end + 30 < 1000:
            assert test.end + 30 in train
    middle = folds[2]
    assert middle.train == (Window(0, 380), Window(630, 1000))


def test_cpcv_has_c_n_k_splits_and_each_group_is_tested_on_every_path() -> None:
    cv = CVScheme("cpcv", 6, test_groups=2, purge=0.01, embargo=0.01)
    folds = cv.splits(600)
    assert len(folds) == math.comb(6, 2) == cv.n_splits == 15
    assert cv.paths == math.comb(5, 1) == 5
    counts: dict[int, int] = {}
    for f in folds:
        assert len(f.test) == 2
        assert not _bars(f.train) & _bars(f.test)
        for w in f.test:
            counts[w.start] = counts.get(w.start, 0) + 1
    # 6 groups, each in the test set of C(5, 1) = 5 splits: 5 complete backtest paths
    assert sorted(counts) == [0, 100, 200, 300, 400, 500] and set(counts.values()) == {5}


@pytest.mark.parametrize(("kwargs", "flag"), [
    ({"kind": "kfold"}, "--cv"),
    ({"kind": "purged", "folds": 1}, "--folds"),
    ({"kind": "cpcv", "folds": 6, "test_groups": 6}, "--test-groups"),
    ({"kind": "cpcv", "folds": 30, "test_groups": 5}, "splits"),
    ({"kind": "purged", "purge": 0.5}, "--purge"),
    ({"kind": "purged", "embargo": -0.1}, "--embargo"),
])
def test_bad_schemes_name_the_flag(kwargs: dict[str, object], flag: str) -> None:
    with pytest.raises(UserError, match=flag):
        CVScheme(**kwargs)  # type: ignore[arg-type]


def test_too_few_bars_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="too few"):
        CVScheme("cpcv", 6).splits(20)


def test_period_returns_compound_the_bars_of_each_period() -> None:
    hour = 3_600_000
    times = np.arange(0, 4 * hour, 30 * 60_000)  # 8 half-hour bars: 4 hours
    equity = np.array([100, 110, 99, 99, 120, 60, 60, 66], dtype=float)
    r = period_returns(times, equity, hour)
    # hour 0: bar 1 (110/100); hour 1: 99/110, 99/99; hour 2: 120/99, 60/120; hour 3: 60/60, 66/60
    assert r == pytest.approx([0.10, 99 / 110 - 1, 60 / 99 - 1, 0.10])


def test_a_cpcv_period_counts_once_as_the_mean_of_its_paths() -> None:
    rec = {"a": [[0, [0.01, 0.02]], [100, [0.03]], [0, [0.03, 0.04]]],
           "b": [[50, [-0.01]]]}
    assert trial_series(rec, ["a", "b"]) == pytest.approx([0.02, 0.03, 0.03, -0.01])


def test_record_period_keeps_every_trial_report_small() -> None:
    from spark_ray.strategy.bars import BarData

    def bars(interval: str, n: int, step: int) -> BarData:
        t = np.arange(n, dtype=np.int64) * step
        z = {"X": np.ones(n)}
        return BarData(time=t, open=z, high=z, low=z, close=z, volume=z, symbols=["X"],
                       interval=interval, fingerprint="", exchange="binance")

    assert record_period([bars("5m", 4608, 300_000)]) == 3_600_000  # 16 days: 384 hours
    assert record_period([bars("5m", 105_120, 300_000)]) == 86_400_000  # a year: 365 days
    assert record_period([bars("1d", 900, 86_400_000)]) == 86_400_000
