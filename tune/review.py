"""The review, first step of the approval gate between the optimizer and live trading.

``review`` re-runs the candidate (best.json's overall parameters) on the hold-out tail of every
scenario, which no trial ever saw, and judges it against risk rules. It needs the optimizer
(the neighbourhood's walk-forward), so it lives in tune; the steps after it -- approve, check --
are plain file work in :mod:`spark_ray.approval.approved`, which live trading imports without
tune.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from spark_ray.approval.approved import load_json, sha256_file
from spark_ray.approval.rules import RiskRules
from spark_ray.errors import CheckFailed, UserError


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
    best = load_json(best_path, "candidate (best.json)")
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
