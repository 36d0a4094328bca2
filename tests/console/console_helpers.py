"""A runs folder as an operator's looks after months: real backtest and evidence runs, a
passed review waiting for approval, a failed one, and many optimisation runs (100 runs,
1,000 trials in all), so the console's pages are tested at the size the issue names."""

from __future__ import annotations

import json
import random
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from spark_ray.chaos.approval import synthetic_approval
from spark_ray.data.importer import import_files
from spark_ray.evidence import create_run
from spark_ray.lake import DataStore
from spark_ray.samples import sample

from helpers import signer

TOKEN = "console-test-token-0123456789"
SCENARIOS = ["eth", "ltc", "ada"]


def make_lake(root: Path) -> Path:
    lake = root / "lake"
    import_files(DataStore(lake), [sample("ETH_BTC-5m.feather")], "freqtrade")
    return lake


def backtest_run(runs: Path, lake: Path) -> str:
    """A real ``spark-ray backtest`` run folder; returns its id."""
    from spark_ray.app.cli import main

    before = set(p.name for p in runs.iterdir()) if runs.is_dir() else set()
    code = main(["backtest", "--store", str(lake), "--symbol", "ETHBTC", "--interval", "5m",
                 "--strategy", "sma_cross", "--param", "fast=10", "--param", "slow=30",
                 "--fee-bps", "10", "--out", str(runs)])
    assert code == 0
    (new,) = set(p.name for p in runs.iterdir()) - before
    return new


def review_run(runs: Path, run_id: str, verdict: str = "PASS") -> Path:
    """best.json + risk-report.json (verdict as given) + a leaderboard, not yet approved."""
    folder = runs / run_id
    approved = synthetic_approval(folder, "sma_cross", {"fast": 2, "slow": 3}, "1m",
                                  note="console tests", signer=signer("ci"))
    approved.unlink()
    if verdict != "PASS":
        report = folder / "risk-report.json"
        doc = json.loads(report.read_text())
        doc["verdict"] = verdict
        doc["checks"] = {"min_trades": {"status": "FAIL", "value": 1, "limit": 5,
                                        "why": "hold-out trades over all scenarios"}}
        report.write_text(json.dumps(doc, indent=2))
    leaderboard(folder, 10, seed=len(run_id))
    return folder


def leaderboard(folder: Path, trials: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for i in range(trials):
        scen = {s: {"oos_sharpe": rng.gauss(0.5, 2), "oos_return": rng.gauss(0, 0.05),
                    "oos_max_drawdown": -abs(rng.gauss(0.1, 0.05)),
                    "oos_trades": rng.randint(1, 30),
                    "is_sharpe": rng.gauss(1, 2)} for s in SCENARIOS}
        rows.append({"trial_id": f"t{seed:03d}_{i:05d}", "objective": rng.gauss(0.5, 1),
                     "params": {"period": rng.randint(5, 30),
                                "oversold": rng.choice([20, 25, 30]),
                                "overbought": rng.choice([70, 75, 80])},
                     "scenarios": scen, "folds_done": 4, "invalid": "", "stopped_early": False,
                     "oos_sharpe_ann": rng.gauss(0.5, 2), "dsr": rng.random()})
    rows.sort(key=lambda r: -r["objective"])
    for rank, r in enumerate(rows, 1):
        r["rank"] = rank
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "leaderboard.json").write_text(json.dumps(
        {"strategy": "rsi_reversion", "scenarios": SCENARIOS, "trials": rows,
         "overfitting": {"pbo": {"pbo": 0.25, "splits": 16}}}))


def evidence_run(runs: Path) -> str:
    """A sealed evidence bundle (manifest + INDEX) with a chaos table."""
    run = create_run(runs, ["spark-ray", "chaos", "run"])
    run.write_json("chaos/chaos-table.json", {
        "columns": ["experiment", "alert", "detection s", "lost", "status"],
        "rows": [{"experiment": "lag_spike", "alert": "StreamsIngestLagHigh",
                  "detection_s": 18.1, "lost": 0, "status": "PASS"}]}, "chaos table")
    run.write_json("summary.json", {"ok": True}, "summary")
    run.finish()
    return run.path.name


def make_runs(root: Path, lake: Path, optimisations: int = 96,
              trials_each: int = 10) -> dict[str, str]:
    """The runs folder: returns the ids the tests use."""
    runs = root / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    ids = {"backtest": backtest_run(runs, lake)}
    ids["review_pass"] = "20260101000000-pass01"
    review_run(runs, ids["review_pass"], "PASS")
    ids["review_fail"] = "20260101000000-fail01"
    review_run(runs, ids["review_fail"], "FAIL")
    for i in range(optimisations):  # the first holds 1,000 trials by itself
        leaderboard(runs / f"20251101{i:06d}-opt{i:03d}", 1000 if i == 0 else trials_each,
                    seed=i)
    ids["big_leaderboard"] = "20251101000000-opt000"
    ids["evidence"] = evidence_run(runs)
    return ids


def copy_tree(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst)


def call(url: str, method: str = "GET", body: Any = None, token: str | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw[:1] in (b"{", b"[") else raw
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")
