"""The sweep's selection effect, end to end on a real Ray: trials record their out-of-sample
returns, the leaderboard shows every trial's deflated Sharpe beside its raw one, best.json and
the PNG carry the PBO, the purged and combinatorial schemes run, and a strategy chosen on noise
(200 trials of random entries on a random walk) fails the review."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from spark_ray.app.session import Session
from spark_ray.approval.rules import RiskRules
from spark_ray.data.importer import import_files
from spark_ray.data.synth import SynthParams, synth_candles
from spark_ray.lake import DataStore
from spark_ray.samples import sample
from spark_ray.tune.api import optimize
from spark_ray.tune.overfit import load_matrix, overfitting
from spark_ray.tune.review import review
from spark_ray.tune.scenarios import Scenario
from spark_ray.tune.spaces import builtin_space, load_space

JAN_2024 = 1_704_067_200_000
DAY = 86_400_000


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("overfit") / "lake"
    import_files(DataStore(root), [sample(n) for n in ("ETH_BTC-5m.feather",
                                                       "LTC_BTC-5m.feather")], "freqtrade")
    # A pure random walk: constant volatility, no regimes, no jumps, no intraday cycle.
    walk = SynthParams(annual_vol=0.6, turbulent_mult=1.0, p_enter_turbulent=0.0,
                       jump_rate_per_day=0.0, season_amplitude=0.0)
    for i, sym in enumerate(("RWAUSDT", "RWBUSDT")):
        table = synth_candles(sym, "5m", JAN_2024, JAN_2024 + 30 * DAY, seed=11 + i,
                              params=walk)
        DataStore(root).write_candles(table, "binance", sym, "5m")
    yield root


REAL = [Scenario(name="eth", symbol="ETHBTC", interval="5m", fee_bps=10),
        Scenario(name="ltc", symbol="LTCBTC", interval="5m", fee_bps=10)]


def _sweep(lake: Path, tmp: Path, strategy: str, scenarios: list[Scenario],
           **kw: Any) -> Any:
    return optimize(DataStore(lake), strategy, load_space(builtin_space(strategy)), scenarios,
                    storage=tmp / "tune", verbose=0, **kw)


def test_trials_record_returns_and_the_board_deflates_every_sharpe(
        ray_session: Session, lake: Path, tmp_path: Path) -> None:
    board = _sweep(lake, tmp_path, "rsi_reversion", REAL, trials=10, folds=3)
    paths = board.save(tmp_path / "out")
    best = json.loads(paths["best.json"].read_text())
    o = best["overfitting"]
    # 16 days x 0.8 of 5-minute bars in 4 segments; 3 out-of-sample segments, hourly periods
    assert o["period"] == "1h" and o["n_trials"] == 10 == o["trials_with_returns"]
    assert 2 * 3 * 80 < o["periods"] <= 2 * 3 * 96
    pbo = o["pbo"]
    assert pbo["splits"] == 16 and pbo["n_combinations"] == 12_870 and 0 <= pbo["pbo"] <= 1
    cand = o["candidate"]
    assert cand["trial_id"] == best["overall"]["trial_id"] and 0 <= cand["dsr"] <= 1
    assert cand["n_trials"] == 10 and cand["T"] == o["periods"] and cand["sr_variance"] > 0

    # What review recomputes from the saved matrix is what the sweep reported.
    matrix, ids, period = load_matrix(paths["oos-returns.npz"])
    assert matrix.shape == (o["periods"], 10) and period == 3_600_000
    again = overfitting(matrix, ids, 10, period)
    assert again["pbo"]["pbo"] == pbo["pbo"]
    assert again["trials"][cand["trial_id"]]["dsr"] == pytest.approx(cand["dsr"], abs=1e-12)

    # Every trial's deflated Sharpe beside its raw one: JSON, CSV, the printed table.
    rows = json.loads(paths["leaderboard.json"].read_text())["trials"]
    assert all(r["oos_sharpe_ann"] is not None for r in rows), rows
    # (a trial that never traded out of sample has no DSR of its own)
    assert all((r["dsr"] is None) == (r["oos_sharpe_ann"] == 0) for r in rows), rows
    with paths["leaderboard.csv"].open() as fh:
        csv_rows = list(csv.DictReader(fh))
    assert [r["dsr"] for r in csv_rows] == ["" if r["dsr"] is None else repr(r["dsr"])
                                            for r in rows]
    table = board.table(3)
    assert "DSR" in table and "probability of backtest overfitting" in table
    # The raw Sharpe is the annualized Sharpe of the recorded returns.
    j = ids.index(cand["trial_id"])
    col = matrix[:, j]
    expected = col.mean() / col.std(ddof=1) * np.sqrt(365 * 24)
    assert cand["sharpe_annualized"] == pytest.approx(expected)


@pytest.mark.parametrize(("cv", "folds", "splits"), [("purged", 4, 4), ("cpcv", 5, 10)])
def test_purged_and_combinatorial_sweeps(ray_session: Session, lake: Path, tmp_path: Path,
                                         cv: str, folds: int, splits: int) -> None:
    board = _sweep(lake, tmp_path, "sma_cross", REAL[:1], trials=4, folds=folds, cv=cv,
                   test_groups=2)
    assert all(r["folds_done"] == splits for r in board.valid)
    assert board.best["objective"]["cv"]["kind"] == cv
    # Purged k-fold and CPCV test every bar of the optimization window: all 384 hours (an
    # hour split between two groups' windows counts once in each).
    assert 384 <= board.overfit["periods"] <= 384 + folds - 1
    assert board.best["overfitting"]["pbo"]["n_trials"] == len(board.valid)


def test_a_strategy_chosen_on_noise_fails_review(ray_session: Session, lake: Path,
                                                 tmp_path: Path) -> None:
    scenarios = [Scenario(name="a", symbol="RWAUSDT", interval="5m", fee_bps=10),
                 Scenario(name="b", symbol="RWBUSDT", interval="5m", fee_bps=10)]
    board = _sweep(lake, tmp_path, "random_entry", scenarios, trials=200, folds=4)
    assert len(board.valid) == 200
    paths = board.save(tmp_path / "out")
    report = review(paths["best.json"], DataStore(lake))
    checks = report["checks"]
    print(json.dumps({k: (c["status"], c["value"]) for k, c in checks.items()}, default=str))
    assert report["verdict"] == "FAIL"
    dsr = checks["deflated_sharpe"]
    assert dsr["status"] == "FAIL" and dsr["value"] < RiskRules().min_dsr
    assert dsr["inputs"]["n_trials"] == 200 and dsr["inputs"]["T"] > 100
    assert {"sr_variance", "skew", "kurtosis", "sr0"} <= set(dsr["inputs"])
    # PBO is reported with its inputs; on a random walk that happened to trend it can be low
    # (trials with more exposure rank alike in every half), which is why DSR is a rule too.
    pbo = checks["backtest_overfitting"]
    assert pbo["inputs"]["n_trials"] == 200 and pbo["inputs"]["n_combinations"] == 12_870
    assert checks["lookahead"]["status"] == "PASS"
