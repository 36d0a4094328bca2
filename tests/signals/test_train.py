"""Signal models: purged k-fold, leak-free baselines, metric worked examples, a learnable
relation found and noise not, and the honest report on the real XRP/ETH trades."""

from __future__ import annotations

import numpy as np
import pytest

from spark_ray.signals.features import Trades
from spark_ray.signals.inventory import TRADE_SIGNALS
from spark_ray.signals.train import TrainingSet, build, out_of_fold, purged_kfold, report, scores


def _set(X: np.ndarray, y: np.ndarray, span: int = 1) -> TrainingSet:
    n = len(y)
    time = np.arange(n) * 1000
    return TrainingSet(X, y, time, time + span * 1000, np.where(y > 0, 0.01, -0.01),
                       [f"x{i}" for i in range(X.shape[1])], "test")


def test_purged_kfold_drops_overlapping_labels_and_the_embargo() -> None:
    n = 100
    time = np.arange(n) * 10
    t1 = time + 25  # each label spans the next ~2.5 samples
    splits = purged_kfold(time, t1, k=5, embargo=0.05)
    assert sorted(np.concatenate([te for _, te in splits]).tolist()) == list(range(n))
    for train, test in splits:
        lo, hi = time[test[0]], t1[test].max()
        assert not ((time[train] <= hi) & (t1[train] >= lo)).any()  # purged
        after = set(range(test[-1] + 1, min(n, test[-1] + 6)))
        assert not after & set(train.tolist())  # embargoed: 5% of 100 after the fold
    train, test = splits[2]  # samples 40..59; labels of 38, 39 reach into it
    assert 37 in train and 38 not in train and 39 not in train and 65 in train


def test_persistence_uses_only_labels_resolved_by_then() -> None:
    y = np.random.default_rng(2).integers(0, 2, 80)
    ts = _set(np.zeros((80, 1)), y, span=15)  # label i is known 15 samples later
    prob = out_of_fold(ts, "persistence", k=4, embargo=0.0)
    assert prob[15:].tolist() == y[:-15].astype(float).tolist()  # the label resolved at i
    assert set(prob[:15].tolist()) <= {float(ts.y[tr].mean())
                                       for tr, _ in purged_kfold(ts.time, ts.t1, 4, 0.0)}


def test_a_fold_left_without_training_data_is_a_clear_error() -> None:
    ts = _set(np.zeros((80, 1)), np.tile([0, 1], 40), span=1000)  # every label spans it all
    with pytest.raises(ValueError, match="no training samples left"):
        out_of_fold(ts, "gbm", k=4)


def test_metrics_reproduce_scikit_learns_documented_examples() -> None:
    # log_loss(["spam", "ham", "ham", "spam"], [[.1, .9], [.9, .1], [.8, .2], [.35, .65]])
    # = 0.21616... and brier_score_loss([0, 1, 1, 0], [0.1, 0.9, 0.8, 0.3]) = 0.0375
    s = scores(np.array([1, 0, 0, 1]), np.array([0.9, 0.1, 0.2, 0.65]), np.zeros(4), 10)
    assert s.log_loss == pytest.approx(0.21616, abs=1e-5)
    assert scores(np.array([0, 1, 1, 0]), np.array([0.1, 0.9, 0.8, 0.3]), np.zeros(4),
                  10).brier == pytest.approx(0.0375)


def test_a_learnable_relation_is_found_and_noise_is_not() -> None:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(1500, 3))
    y = (X[:, 0] + 0.5 * rng.normal(size=1500) > 0).astype(np.int64)
    for model in ("gbm", "linear"):
        s = scores(y, out_of_fold(_set(X, y), model), np.where(y > 0, 1.0, -1.0), 100)
        assert s.auc > 0.85 and s.p_value <= 0.01, (model, s)
    noise = rng.normal(size=(1500, 3))
    s = scores(y, out_of_fold(_set(noise, y), "gbm"), np.where(y > 0, 1.0, -1.0), 100)
    assert s.auc < 0.6 and s.p_value > 0.05, s


def test_report_on_real_trades_states_baselines_and_the_85pct_claim(trades: Trades) -> None:
    ts = build(trades, list(TRADE_SIGNALS), every_ms=60_000, horizon=5)
    assert len(ts) > 2000 and 0.3 < ts.y.mean() < 0.7
    assert (ts.t1 >= ts.time).all()
    rep = report(ts, permutations=50)
    assert set(rep["models"]) == {"majority", "persistence", "gbm", "linear"}
    assert rep["models"]["majority"]["balanced_accuracy"] == pytest.approx(0.5)
    gbm = rep["models"]["gbm"]
    best = max(rep["models"][b]["auc"] for b in ("majority", "persistence", "linear"))
    assert rep["beats_baselines"] == (gbm["auc"] > best and gbm["p_value"] <= 0.05)
    assert ("does NOT beat" in rep["verdict"]) != rep["beats_baselines"]
    assert rep["accuracy_claim_85pct"] == {"reached": gbm["accuracy"],
                                           "met": gbm["accuracy"] >= 0.85}
