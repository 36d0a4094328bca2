"""The approval gate between the optimizer and live trading: review, approve, check.

``review`` re-runs the candidate (best.json's overall parameters) on the hold-out tail of every
scenario, which no trial ever saw, and judges it against risk rules. ``approve`` binds a passed
review to a named approver by sha256 of both files. ``check`` is what live trading (and CI)
runs: exit 0 only when nothing changed since approval and the review passed.
"""

from __future__ import annotations

import getpass
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from spark_ray.errors import CheckFailed, UserError


class RiskRules(BaseModel):
    """Thresholds of the review; every rule PASSes or FAILs on its own."""

    model_config = ConfigDict(extra="forbid")

    min_oos_sharpe: float = Field(0.0, description="Median hold-out Sharpe across scenarios.")
    max_drawdown: float = Field(0.25, gt=0, lt=1, description="Worst hold-out drawdown.")
    min_trades: int = Field(5, ge=0, description="Hold-out trades over all scenarios.")
    neighbourhood_tolerance: float = Field(
        1.0, ge=0, description="Neighbours' median objective may trail the candidate by this.")
    min_positive_scenarios: float = Field(
        0.5, ge=0, le=1, description="Share of scenarios with positive hold-out Sharpe.")


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _load_json(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"{path}: {what} not found")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object")
    return data


def review(best_path: Path, store: Any, rules: RiskRules | None = None,
           space_path: Path | None = None) -> dict[str, Any]:
    """Judge best.json's candidate on held-out data; returns the risk report (not written)."""
    from spark_ray.backtest import run_bars
    from spark_ray.backtest.data import bars_from_store
    from spark_ray.fills.costs import CostModel
    from spark_ray.tune.optimize import make_payload, prepare
    from spark_ray.tune.scenarios import Scenario
    from spark_ray.tune.spaces import builtin_space, load_space
    from spark_ray.tune.trainable import evaluate_params

    rules = rules or RiskRules()
    best = _load_json(best_path, "candidate (best.json)")
    try:
        strategy = best["strategy"]
        params = best["overall"]["params"]
        obj_cfg = best["objective"]
        scenarios = [Scenario.model_validate({k: v for k, v in s.items()
                                              if k in Scenario.model_fields})
                     for s in best["scenarios"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{best_path}: not a best.json written by optimize ({exc})") from None
    holdout: dict[str, Any] = {}
    for sc, meta in zip(scenarios, best["scenarios"], strict=True):
        win = meta.get("holdout_window")
        if not win:
            raise UserError(f"{best_path}: scenario {sc.name} has no hold-out window "
                            "(optimize with --holdout > 0)")
        start = datetime.fromisoformat(win["start"])
        end = datetime.fromisoformat(win["end"]) + timedelta(milliseconds=1)  # inclusive end
        data = bars_from_store(store, [sc.symbol], sc.interval, start, end, sc.exchange)
        if data.fingerprint != win["fingerprint"]:
            raise CheckFailed(f"hold-out data of scenario {sc.name} differs from what the "
                              f"optimization set aside ({len(data)} bars now, {win['bars']} "
                              "then): review against the same lake")
        res = run_bars(data, strategy, params, costs=CostModel(fee_bps=sc.fee_bps,
                                                               slippage_bps=sc.slippage_bps))
        m = res.metrics
        holdout[sc.name] = {"sharpe": m["sharpe"] or 0.0, "total_return": m["total_return"],
                            "max_drawdown": m["max_drawdown"], "trades": m["trades"],
                            "window": win}
    sharpes = [h["sharpe"] for h in holdout.values()]
    worst_dd = min(h["max_drawdown"] for h in holdout.values())
    trades = sum(h["trades"] for h in holdout.values())
    positive = float(np.mean([s > 0 for s in sharpes]))

    # Stability in the parameter neighbourhood: neighbours' walk-forward objective.
    space = load_space(space_path or builtin_space(strategy))
    prepared = prepare(store, scenarios, int(obj_cfg["folds"]), float(obj_cfg["holdout"]))
    payload = make_payload(prepared, strategy, int(obj_cfg["folds"]),
                           float(obj_cfg["drawdown_penalty"]))
    neigh = [(n, evaluate_params(payload, n)["objective"]) for n in space.neighbours(params)]
    neigh_valid = [o for _, o in neigh if o > -1e5]
    neigh_median = float(np.median(neigh_valid)) if neigh_valid else None
    cand = float(best["overall"]["objective"])

    def rule(ok: bool, value: Any, limit: Any, why: str) -> dict[str, Any]:
        return {"status": "PASS" if ok else "FAIL", "value": value, "limit": limit, "why": why}

    checks = {
        "min_oos_sharpe": rule(float(np.median(sharpes)) >= rules.min_oos_sharpe,
                               float(np.median(sharpes)), rules.min_oos_sharpe,
                               "median hold-out Sharpe across scenarios"),
        "max_drawdown": rule(abs(worst_dd) <= rules.max_drawdown, abs(worst_dd),
                             rules.max_drawdown, "worst hold-out drawdown"),
        "min_trades": rule(trades >= rules.min_trades, trades, rules.min_trades,
                           "hold-out trades over all scenarios"),
        "neighbourhood_stability": rule(
            neigh_median is not None and cand - neigh_median <= rules.neighbourhood_tolerance,
            neigh_median, f"candidate {cand:.4f} - {rules.neighbourhood_tolerance}",
            "median walk-forward objective of parameter sets one step away"),
        "scenario_stability": rule(positive >= rules.min_positive_scenarios, positive,
                                   rules.min_positive_scenarios,
                                   "share of scenarios with positive hold-out Sharpe"),
    }
    verdict = "PASS" if all(c["status"] == "PASS" for c in checks.values()) else "FAIL"
    return {
        "verdict": verdict, "candidate": str(best_path.resolve()),
        "candidate_sha256": sha256_file(best_path), "strategy": strategy, "params": params,
        "rules": rules.model_dump(), "checks": checks, "holdout": holdout,
        "neighbours": [{"params": n, "objective": o} for n, o in neigh],
        "reviewed": datetime.now(UTC).isoformat(), "store": getattr(store, "uri", str(store)),
    }


def approve(best_path: Path, report_path: Path, by: str, note: str = "") -> dict[str, Any]:
    """approved.json content binding candidate and passed review; CheckFailed refuses."""
    if not by.strip():
        raise UserError("--by: give the approver's name")
    best = _load_json(best_path, "candidate (best.json)")
    report = _load_json(report_path, "risk report")
    if report.get("verdict") != "PASS":
        failed = [k for k, c in report.get("checks", {}).items() if c.get("status") != "PASS"]
        raise CheckFailed(f"refusing to approve: the review FAILED ({', '.join(failed)})")
    if report.get("candidate_sha256") != sha256_file(best_path):
        raise CheckFailed(f"refusing to approve: {best_path} changed since it was reviewed")
    return {
        "candidate": best_path.name, "candidate_sha256": sha256_file(best_path),
        "risk_report": report_path.name, "risk_report_sha256": sha256_file(report_path),
        "strategy": best["strategy"], "params": best["overall"]["params"],
        "approved_by": by, "approved_at": datetime.now(UTC).isoformat(), "note": note,
        "host_user": getpass.getuser(),
    }


def check(approved_path: Path) -> dict[str, Any]:
    """Raise CheckFailed naming every difference; return the approval when all is intact."""
    approved = _load_json(approved_path, "approval (approved.json)")
    base = approved_path.parent
    problems = []
    for key, hkey in (("candidate", "candidate_sha256"), ("risk_report", "risk_report_sha256")):
        name = approved.get(key)
        if not name:
            problems.append(f"{key}: not named in {approved_path.name}")
            continue
        path = base / name
        if not path.is_file():
            problems.append(f"{key}: {path} is missing")
        elif sha256_file(path) != approved.get(hkey):
            problems.append(f"{key}: {path} was modified after approval (sha256 differs)")
    if not problems:
        report = json.loads((base / approved["risk_report"]).read_text())
        if report.get("verdict") != "PASS":
            problems.append("risk_report: the review did not pass")
        best = json.loads((base / approved["candidate"]).read_text())
        if best.get("overall", {}).get("params") != approved.get("params"):
            problems.append("params: approved.json's params differ from the candidate's")
    if problems:
        raise CheckFailed(f"{approved_path}: NOT approved for trading\n  " +
                          "\n  ".join(problems))
    return approved
