"""signal_fusion in research, end to end through the CLI on the real XRP/ETH trades: the
backtest, a Tune sweep and the review put a real model's signals (trained here by `signals
train`) beside bars built from the lake's trades; best.json, the risk report and approved.json
name the model, and the review refuses any other model (or none)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from spark_ray.app.session import Session
from spark_ray.approval.approved import approve, sha256_file
from spark_ray.backtest import run_bars
from spark_ray.backtest.data import bars_with_signals, load_signal_model
from spark_ray.errors import CheckFailed, UserError
from spark_ray.execution.bars import bars_from_trades
from spark_ray.execution.params import load_approved
from spark_ray.fills.costs import CostModel
from spark_ray.lake import DataStore
from spark_ray.schemas import iso_ms
from spark_ray.signals import artifact
from spark_ray.signals.features import Trades
from spark_ray.signals.live import SCORE, attach
from spark_ray.strategy.bars import SIGNALS

from helpers import run_cli, signer

SYMBOL = "XRPETH"
PARAMS = {"enter": 0.55, "exit": 0.45}
# Relaxed so the tiny sweep can PASS and approve can be tested; tests/tune holds the defaults.
PERMISSIVE = """\
min_oos_sharpe: -1000000
max_drawdown: 0.99
min_trades: 0
neighbourhood_tolerance: 1000000
min_positive_scenarios: 0
min_dsr: 0
max_pbo: 1
min_bootstrap_sharpe_p05: -1000000
bootstrap_resamples: 200
lookahead_cuts: 10
"""


def _train(lake: Path, out: Path, *extra: str) -> Path:
    res = run_cli("signals", "train", "--store", str(lake), "--symbol", SYMBOL,
                  "--permutations", "5", "--folds", "3", "--out", str(out), *extra)
    assert res.code == 0, res.err
    return next(out.iterdir()) / "model"


@pytest.fixture(scope="module")
def model(lake: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train(lake, tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def other_model(lake: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train(lake, tmp_path_factory.mktemp("other"), "--horizon", "3")


def _backtest(lake: Path, out: Path, *extra: str) -> Any:
    return run_cli("backtest", "--store", str(lake), "--symbol", SYMBOL, "--interval", "5m",
                   "--strategy", "signal_fusion", "--no-png", "--out", str(out),
                   *[a for k, v in PARAMS.items() for a in ("--param", f"{k}={v}")], *extra)


def test_backtest_without_a_model_or_trades_exits_2_naming_the_flag(
        lake: Path, model: Path, tmp_path: Path) -> None:
    res = _backtest(lake, tmp_path)
    assert res.code == 2 and "--signals-model" in res.err and "signal_fusion" in res.err, res.err
    res = _backtest(lake, tmp_path, "--signals-model", str(model), "--start", "2020-01-01")
    assert res.code == 2, res.err
    assert "--signals-model" in res.err and SYMBOL in res.err and "2020-01-01" in res.err
    # The flag's folder: no model there is a flag error (exit 2), a model that fails its
    # sha256 a failed check (exit 1), as `spark-ray trade` treats it.
    with pytest.raises(UserError, match=r"--signals-model: .* holds no model\.json"):
        load_signal_model(tmp_path)
    tampered = tmp_path / "tampered"
    shutil.copytree(model, tampered)
    with (tampered / "model.txt").open("a") as f:
        f.write("\n")
    with pytest.raises(CheckFailed, match="--signals-model: refusing"):
        load_signal_model(tampered)


def test_backtest_with_a_model_trades_as_the_engine_on_attached_bars(
        lake: Path, model: Path, tmp_path: Path) -> None:
    res = _backtest(lake, tmp_path / "bt", "--signals-model", str(model))
    assert res.code == 0, res.err
    run = next((tmp_path / "bt").iterdir())
    report = json.loads((run / "report.json").read_text())
    served = artifact.load(model)
    assert report["config"]["signals_model"] == {
        "path": str(model.resolve()), "model_sha256": served.card["model_sha256"]}
    # By hand: the executor's bars from the lake's trades (every bar, the last one too), the
    # model's signals attached, the engine run.
    table = DataStore(lake).trades(SYMBOL)
    data = bars_from_trades(table, SYMBOL, "5m", include_open_bar=True)
    data.exchange = "binance"
    attach(data, SYMBOL, Trades.from_table(table), served.features, served.predict)
    mine = run_bars(data, "signal_fusion", PARAMS, costs=CostModel(fee_bps=10))
    assert report["data"]["fingerprint"] == data.fingerprint
    with (run / "trades.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(mine.output.trades) > 10
    for row, t in zip(rows, mine.output.trades, strict=True):
        assert (row["entry_time"], row["exit_time"]) == (iso_ms(t.entry_time),
                                                         iso_ms(t.exit_time))
        assert (float(row["entry_price"]), float(row["pnl"])) == (t.entry_price, t.pnl)
    # Market orders fill at the next bar's open: each entry was decided on a bar whose p_up
    # reached `enter`, each exit on one whose p_up fell to `exit`.
    p = data.extra[SIGNALS][SYMBOL][SCORE]
    for t in mine.output.trades:
        assert t.entry_i is not None and t.exit_i is not None
        assert p[t.entry_i - 1] >= PARAMS["enter"] and p[t.exit_i - 1] <= PARAMS["exit"]


def test_a_bars_signal_does_not_depend_on_the_window_it_is_read_in(lake: Path,
                                                                  model: Path) -> None:
    """Signals are scored over the lake's trades from its first one, so a window (a backtest's
    --start, a scenario's hold-out re-read by the review) carries the whole series' values."""
    store, served = DataStore(lake), artifact.load(model)
    full = bars_with_signals(store, [SYMBOL], "5m", None, None, "binance", served)
    part = bars_with_signals(store, [SYMBOL], "5m", "2019-10-12T00:02:00",
                             "2019-10-12T12:00:00", "binance", served)
    assert iso_ms(int(part.time[0])) == "2019-10-12T00:05:00Z"  # whole bars opening in range
    assert iso_ms(int(part.time[-1])) == "2019-10-12T11:55:00Z"
    i = int(np.searchsorted(full.time, part.time[0]))
    window = full.window(i, i + len(part))
    assert np.array_equal(window.close[SYMBOL], part.close[SYMBOL])
    for name, values in part.extra[SIGNALS][SYMBOL].items():
        assert np.array_equal(window.extra[SIGNALS][SYMBOL][name], values, equal_nan=True), name
    assert set(part.extra[SIGNALS][SYMBOL]) == {SCORE, *served.features}


def test_sweep_review_approve_carry_the_model(ray_session: Session, lake: Path, model: Path,
                                             other_model: Path, tmp_path: Path) -> None:
    scenarios = tmp_path / "scenarios.yaml"
    scenarios.write_text("scenarios:\n  - {name: xrp, symbol: XRPETH, interval: 5m, "
                         "fee_bps: 10}\n")
    flags = ["--store", str(lake), "--strategy", "signal_fusion", "--scenarios", str(scenarios),
             "--trials", "4", "--folds", "2", "--quiet", "--address", ray_session.address]
    res = run_cli("optimize", *flags, "--out", str(tmp_path / "none"))
    assert res.code == 2 and "--signals-model" in res.err, res.err
    res = run_cli("optimize", *flags, "--signals-model", str(model), "--out",
                  str(tmp_path / "opt"))
    assert res.code == 0, res.err
    best_path = next((tmp_path / "opt").glob("*/best.json"))
    best = json.loads(best_path.read_text())
    sha = artifact.load(model).card["model_sha256"]
    assert best["signals_model"] == {"path": str(model.resolve()), "model_sha256": sha}
    assert best["trials"] == 4
    assert f"--signals-model {model.resolve()}" in best["overall"]["backtests"]["xrp"]["command"]

    review = ["params", "review", str(best_path), "--store", str(lake), "--out",
              str(tmp_path / "e")]
    res = run_cli(*review)
    assert res.code == 2 and "--signals-model" in res.err and sha[:12] in res.err, res.err
    other_sha = artifact.load(other_model).card["model_sha256"]
    assert other_sha != sha
    res = run_cli(*review, "--signals-model", str(other_model))
    assert res.code == 2 and other_sha[:12] in res.err and sha[:12] in res.err, res.err
    assert not best_path.with_name("risk-report.json").exists()

    rules = tmp_path / "rules.yaml"
    rules.write_text(PERMISSIVE)
    res = run_cli(*review, "--signals-model", str(model), "--rules", str(rules))
    assert res.code == 0, res.out + res.err
    report = json.loads(best_path.with_name("risk-report.json").read_text())
    assert report["verdict"] == "PASS" and report["signals_model"]["model_sha256"] == sha
    assert report["checks"]["lookahead"]["value"] == "clean"

    res = run_cli("params", "approve", str(best_path), "--by", "alice")
    assert res.code == 0, res.err
    approved_path = best_path.with_name("approved.json")
    approved = json.loads(approved_path.read_text())
    assert approved["signals_model"] == best["signals_model"]
    res = run_cli("params", "check", str(approved_path), "--store", str(lake), "--rules",
                  str(rules))  # re-runs the review on the approved model: agrees
    assert res.code == 0 and "a fresh review agrees" in res.out, res.out + res.err
    loaded = load_approved(approved_path)
    assert loaded.signals_model == best["signals_model"] and loaded.strategy == "signal_fusion"
    # approved.json naming another model than the candidate's is not approved.
    approved_path.write_text(json.dumps(
        {**approved, "signals_model": {"path": str(other_model), "model_sha256": other_sha}}))
    res = run_cli("params", "check", str(approved_path), "--no-review")
    assert res.code == 1 and "edited after it was signed" in res.err, res.err


def test_approve_refuses_a_review_that_ran_on_another_model(tmp_path: Path) -> None:
    best = tmp_path / "best.json"
    best.write_text(json.dumps({"strategy": "signal_fusion", "overall": {"params": PARAMS},
                                "signals_model": {"path": "m", "model_sha256": "a" * 64}}))
    report = tmp_path / "risk-report.json"
    for reviewed in (None, {"path": "n", "model_sha256": "b" * 64}):
        doc: dict[str, Any] = {"verdict": "PASS", "candidate_sha256": sha256_file(best),
                               "checks": {}}
        if reviewed:
            doc["signals_model"] = reviewed
        report.write_text(json.dumps(doc))
        with pytest.raises(CheckFailed, match="signal model"):
            approve(best, report, signer())
    report.write_text(json.dumps({"verdict": "PASS", "candidate_sha256": sha256_file(best),
                                  "checks": {}, "signals_model": {"path": "m2",
                                                                  "model_sha256": "a" * 64}}))
    assert approve(best, report, signer())["signals_model"] == {"path": "m",
                                                               "model_sha256": "a" * 64}
