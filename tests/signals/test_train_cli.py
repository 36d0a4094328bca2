"""``spark-ray signals train`` end to end on the real XRP/ETH trades: the report with its
baselines, the model files, loading with the sha256 check, and bad flags."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spark_ray.lake import DataStore
from spark_ray.signals import artifact
from spark_ray.signals.features import Trades
from spark_ray.signals.inventory import TRADE_SIGNALS
from spark_ray.signals.train import build, fit

from helpers import run_cli


def test_train_writes_a_verifiable_model_that_scores_like_the_trained_one(
        lake: Path, tmp_path: Path) -> None:
    res = run_cli("signals", "train", "--store", str(lake), "--symbol", "XRPETH",
                  "--permutations", "20", "--out", str(tmp_path / "runs"))
    assert res.code == 0, res.err
    for name in ("majority", "persistence", "gbm", "linear"):
        assert any(line.startswith(name) for line in res.out.splitlines()), res.out
    assert "the 85% target is" in res.out and "baselines significantly" in res.out
    folder = next((tmp_path / "runs").iterdir()) / "model"
    card = json.loads((folder / "model.json").read_text())
    assert [f["name"] for f in card["features"]] == [s.name for s in TRADE_SIGNALS]
    assert card["training"]["samples"] == card["report"]["samples"] > 2000
    assert set(card["versions"]) >= {"lightgbm", "scikit_learn", "spark_ray"}
    served = artifact.load(folder)
    trades = Trades.from_table(DataStore(lake).trades("XRPETH"))
    ts = build(trades, list(TRADE_SIGNALS), every_ms=60_000, horizon=5)
    assert card["training"]["trades_sha256"] == ts.fingerprint
    mine = fit("gbm", ts.X, ts.y, 0).predict_proba(ts.X)[:, 1]
    np.testing.assert_allclose(served.predict(ts.X), mine, rtol=0, atol=1e-12)
    with (folder / "model.txt").open("a") as f:
        f.write("\n")
    with pytest.raises(artifact.TamperedModel, match="refusing to serve"):
        artifact.load(folder)


@pytest.mark.parametrize(("args", "named"), [
    (["--every", "0s"], "--every"), (["--folds", "1"], "--folds"),
    (["--embargo", "0.7"], "--embargo"), (["--signals", "nope"], "--signals")])
def test_bad_train_flags_exit_2_naming_the_flag(lake: Path, tmp_path: Path, args: list[str],
                                                named: str) -> None:
    res = run_cli("signals", "train", "--store", str(lake), "--symbol", "XRPETH",
                  "--out", str(tmp_path), *args)
    assert res.code == 2 and named in res.err, res.err
