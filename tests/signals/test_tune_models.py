"""``signals train --tune``: the Ray Tune sweep over the signal models' hyperparameters, on the
real XRP/ETH trades and a real local Ray. A trial's AUC must be the number the report computes
without Ray for the same parameters and seed, or the chosen model is not the one the sweep saw."""

from __future__ import annotations

import json
import math
from pathlib import Path

from spark_ray.app.session import Session
from spark_ray.signals.features import Trades
from spark_ray.signals.inventory import TRADE_SIGNALS
from spark_ray.signals.train import MODELS, build, out_of_fold, report, scores
from spark_ray.tune.signals import tune_models

from helpers import run_cli

K, EMBARGO, SEED = 3, 0.01, 0


def test_sweep_on_ray_picks_the_best_trial_and_reproduces_without_ray(
        ray_session: Session, trades: Trades, tmp_path: Path) -> None:
    ts = build(trades, list(TRADE_SIGNALS), every_ms=60_000, horizon=5)
    said: list[str] = []
    tuned = tune_models(ts, 3, K, EMBARGO, SEED, tmp_path / "tune", said.append)
    table = tuned["table"]
    assert tuned["trials"] == len(table) == 6
    assert sorted(r["model"] for r in table) == sorted(list(MODELS) * 3)
    assert all(r["error"] is None and math.isfinite(r["auc"]) and math.isfinite(r["log_loss"])
               for r in table), table
    assert any("trial 6/6" in line and "best so far" in line for line in said), said
    json.dumps(tuned)  # goes into tune-trials.json as it is: plain Python numbers only
    for kind in MODELS:
        rows = [r for r in table if r["model"] == kind]
        top = max(rows, key=lambda r: r["auc"])
        assert tuned["best"][kind] == top["params"] and tuned["best_auc"][kind] == top["auc"]
        assert len({json.dumps(r["params"], sort_keys=True) for r in rows}) == 3  # drawn anew
        # Recomputed in this process, without Ray: the same number, not merely a close one.
        prob = out_of_fold(ts, kind, K, EMBARGO, SEED, tuned["best"][kind])
        assert scores(ts.y, prob, ts.forward, 0, SEED).auc == tuned["best_auc"][kind]
    rep = report(ts, K, EMBARGO, 5, SEED, params=tuned["best"], trials=tuned["trials"])
    assert rep["trials"] == 6 and rep["params"] == tuned["best"]
    assert "biased upward" in rep["selection"] and "biased upward" in rep["verdict"]
    assert {k: rep["models"][k]["auc"] for k in MODELS} == tuned["best_auc"]


def test_report_without_params_is_the_untuned_report(trades: Trades) -> None:
    ts = build(trades, list(TRADE_SIGNALS), every_ms=60_000, horizon=5)
    plain = report(ts, K, EMBARGO, 5, SEED)
    assert not {"params", "trials", "selection"} & set(plain)
    given = report(ts, K, EMBARGO, 5, SEED, params={"gbm": {}, "linear": {}})
    assert given["models"] == plain["models"]  # empty params are the built-in defaults
    assert given["trials"] is None and "not recorded" in given["selection"]


def test_train_cli_tune_saves_the_trials_and_the_best_params_in_the_card(
        lake: Path, tmp_path: Path) -> None:
    res = run_cli("signals", "train", "--store", str(lake), "--symbol", "XRPETH",
                  "--folds", str(K), "--permutations", "10", "--tune", "2",
                  "--out", str(tmp_path / "runs"))
    assert res.code == 0, res.err
    assert "trial 4/4" in res.err and "best so far" in res.err, res.err
    assert res.out.startswith("MODEL"), res.out  # Tune's own chatter stays off stdout
    assert "chosen among 4 configurations" in res.out
    run = next((tmp_path / "runs").iterdir())
    trials = json.loads((run / "tune-trials.json").read_text())
    assert len(trials["table"]) == trials["trials"] == 4
    assert all(math.isfinite(r["auc"]) for r in trials["table"])
    best_gbm = max((r for r in trials["table"] if r["model"] == "gbm"), key=lambda r: r["auc"])
    card = json.loads((run / "model" / "model.json").read_text())
    assert card["params"] == {"seed": SEED, **best_gbm["params"]}
    assert card["report"]["trials"] == 4
    assert card["report"]["params"]["gbm"] == best_gbm["params"]
    assert card["report"]["models"]["gbm"]["auc"] == best_gbm["auc"]
    assert "tune-trials.json" in (run / "sha256-manifest.json").read_text()


def test_negative_tune_exits_2_naming_the_flag(lake: Path, tmp_path: Path) -> None:
    res = run_cli("signals", "train", "--store", str(lake), "--symbol", "XRPETH",
                  "--tune", "-1", "--out", str(tmp_path))
    assert res.code == 2 and "--tune" in res.err, res.err
    assert not any(tmp_path.iterdir())  # refused before any run folder or Ray
