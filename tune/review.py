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
from typing import TYPE_CHECKING, Any

import numpy as np

from spark_ray.approval.approved import load_json, sha256_file
from spark_ray.approval.rules import RiskRules
from spark_ray.errors import CheckFailed, UserError

if TYPE_CHECKING:
    from spark_ray.signals.artifact import LoadedModel


def review(best_path: Path, store: Any, rules: RiskRules | None = None,
           space_path: Path | None = None,
           signals_model: Path | None = None) -> dict[str, Any]:
    """Judge best.json's candidate on held-out data; returns the risk report (not written).

    A candidate optimized on a signal model's signals (best.json's ``signals_model``) is
    re-run only on that model's signals: ``signals_model`` must be that model's folder (same
    sha256), else UserError; the report records the model."""
    from spark_ray.backtest import run_bars
    from spark_ray.backtest.data import bars_from_store, bars_with_signals
    from spark_ray.fills.costs import CostModel
    from spark_ray.tune.cv import CVScheme
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
    model, model_entry = _signals_model(best_path, best, signals_model)
    holdout: dict[str, Any] = {}
    held: dict[str, Any] = {}  # scenario -> hold-out BacktestResult, for the bootstrap
    for sc, meta in zip(scenarios, best["scenarios"], strict=True):
        win = meta.get("holdout_window")
        if not win:
            raise UserError(f"{best_path}: scenario {sc.name} has no hold-out window "
                            "(optimize with --holdout > 0)")
        start = datetime.fromisoformat(win["start"])
        end = datetime.fromisoformat(win["end"]) + timedelta(milliseconds=1)  # inclusive end
        if model is None:
            data = bars_from_store(store, [sc.symbol], sc.interval, start, end, sc.exchange)
        else:
            data = bars_with_signals(store, [sc.symbol], sc.interval, start, end, sc.exchange,
                                     model)
        if data.fingerprint != win["fingerprint"]:
            raise CheckFailed(f"hold-out data of scenario {sc.name} differs from what the "
                              f"optimization set aside ({len(data)} bars now, {win['bars']} "
                              "then): review against the same lake")
        res = run_bars(data, strategy, params, costs=CostModel(fee_bps=sc.fee_bps,
                                                               slippage_bps=sc.slippage_bps))
        m = res.metrics
        held[sc.name] = res
        holdout[sc.name] = {"sharpe": m["sharpe"] or 0.0, "total_return": m["total_return"],
                            "max_drawdown": m["max_drawdown"], "trades": m["trades"],
                            "window": win}
    sharpes = [h["sharpe"] for h in holdout.values()]
    worst_dd = min(h["max_drawdown"] for h in holdout.values())
    trades = sum(h["trades"] for h in holdout.values())
    positive = float(np.mean([s > 0 for s in sharpes]))

    # Stability in the parameter neighbourhood: neighbours' walk-forward objective.
    space = load_space(space_path or builtin_space(strategy))
    cv = CVScheme(**obj_cfg["cv"]) if obj_cfg.get("cv") else int(obj_cfg["folds"])
    prepared = prepare(store, scenarios, cv, float(obj_cfg["holdout"]),
                       model_entry["path"] if model_entry else None)
    payload = make_payload(prepared, strategy, cv, float(obj_cfg["drawdown_penalty"]))
    neigh = [(n, evaluate_params(payload, n)["objective"]) for n in space.neighbours(params)]
    neigh_valid = [o for _, o in neigh if o > -1e5]
    neigh_median = float(np.median(neigh_valid)) if neigh_valid else None
    cand = float(best["overall"]["objective"])

    def rule(ok: bool, value: Any, limit: Any, why: str,
             inputs: dict[str, Any] | None = None) -> dict[str, Any]:
        out = {"status": "PASS" if ok else "FAIL", "value": value, "limit": limit, "why": why}
        return out if inputs is None else {**out, "inputs": inputs}

    overfit = selection_effect(best_path, best, rules)
    dsr = (overfit.get("candidate") or {}).get("dsr")
    pbo = (overfit.get("pbo") or {}).get("pbo")
    looks = {p.scenario.name: lookahead_of(p, strategy, params, rules) for p in prepared}
    boots = {name: bootstrap_of(res, rules) for name, res in held.items()}
    p05 = [b["block"]["sharpe"]["p05"] for b in boots.values() if b.get("block")]
    p05_median = float(np.median(p05)) if p05 else None

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
        "deflated_sharpe": rule(
            dsr is not None and dsr >= rules.min_dsr, dsr, rules.min_dsr,
            "probability that the candidate's out-of-sample Sharpe beats the best expected "
            "among N trials of no skill (deflated Sharpe ratio)",
            overfit.get("candidate") or {"reason": overfit.get("reason")}),
        "backtest_overfitting": rule(
            pbo is not None and pbo <= rules.max_pbo, pbo, rules.max_pbo,
            "probability that the sweep's in-sample winner ranks below the median "
            "out-of-sample (PBO by CSCV)",
            _pbo_inputs(overfit)),
        "lookahead": rule(
            all(v["clean"] for v in looks.values()) or not rules.require_lookahead_clean,
            "clean" if all(v["clean"] for v in looks.values()) else "look-ahead found",
            "clean" if rules.require_lookahead_clean else "not required",
            "decisions identical when the data after each cut is removed or replaced by noise",
            {name: v.get("summary") for name, v in looks.items()}),
        "bootstrap_sharpe_p05": rule(
            p05_median is not None and p05_median > rules.min_bootstrap_sharpe_p05,
            p05_median, f"> {rules.min_bootstrap_sharpe_p05}",
            "5th percentile of the block-bootstrapped hold-out Sharpe, median over scenarios",
            {name: b.get("block", {}).get("sharpe") for name, b in boots.items()}),
    }
    verdict = "PASS" if all(c["status"] == "PASS" for c in checks.values()) else "FAIL"
    report = {
        "verdict": verdict, "candidate": str(best_path.resolve()),
        "candidate_sha256": sha256_file(best_path), "strategy": strategy, "params": params,
        "rules": rules.model_dump(), "checks": checks, "holdout": holdout,
        "neighbours": [{"params": n, "objective": o} for n, o in neigh],
        "overfitting": overfit, "lookahead": looks, "bootstrap": boots,
        "reviewed": datetime.now(UTC).isoformat(), "store": getattr(store, "uri", str(store)),
    }
    if model_entry is not None:  # approve requires it to be the candidate's model
        report["signals_model"] = model_entry
    return report


def _signals_model(best_path: Path, best: dict[str, Any], folder: Path | None
                   ) -> tuple[LoadedModel | None, dict[str, str] | None]:
    """The signal model to review on, (loaded model, {path, model_sha256}), or (None, None).

    The candidate's numbers came from one model's signals; re-running it on another model's
    (or on none) would review a different strategy, so both mismatches are refused (exit 2)
    before any backtest runs."""
    from spark_ray.backtest.data import load_signal_model, signals_model_entry

    named = best.get("signals_model")
    if named is not None and not (isinstance(named, dict)
                                  and isinstance(named.get("model_sha256"), str)):
        raise UserError(f"{best_path}: signals_model is not {{path, model_sha256}}")
    if folder is None:
        if named:
            raise UserError(f"--signals-model: {best_path} was optimized on the signals of the "
                            f"model {named.get('path')} (sha256 {named['model_sha256'][:12]}...); "
                            "give that model folder")
        return None, None
    if not named:
        raise UserError(f"--signals-model: {best_path} was optimized without a signal model; "
                        "review it without --signals-model")
    model = load_signal_model(folder)
    entry = signals_model_entry(folder, model)
    if entry["model_sha256"] != named["model_sha256"]:
        raise UserError(f"--signals-model: {folder} is the model sha256 "
                        f"{entry['model_sha256'][:12]}..., but {best_path} was optimized with "
                        f"{named['model_sha256'][:12]}... ({named.get('path')}); give that "
                        "model folder")
    return model, entry


def selection_effect(best_path: Path, best: dict[str, Any], rules: RiskRules) -> dict[str, Any]:
    """DSR of the candidate and the sweep's PBO, recomputed from the returns matrix the
    optimizer saved beside best.json (its sha256 must match what best.json recorded)."""
    from spark_ray.tune.overfit import candidate, load_matrix, overfitting

    meta = best.get("overfitting") or {}
    name = meta.get("returns_file")
    if not name:
        return {"reason": "best.json records no per-trial returns: re-run optimize"}
    path = best_path.with_name(name)
    if not path.is_file():
        return {"reason": f"{path} is missing"}
    if meta.get("returns_sha256") and sha256_file(path) != meta["returns_sha256"]:
        raise CheckFailed(f"{path} changed since the optimizer wrote it (sha256 differs)")
    matrix, ids, period_ms = load_matrix(path)
    splits = int(best.get("objective", {}).get("pbo_splits", 16))
    out = overfitting(matrix, ids, int(meta.get("n_trials") or len(ids)), period_ms, splits)
    tid = best.get("overall", {}).get("trial_id")
    out["candidate"] = candidate(out, tid) if tid else None
    if out["candidate"] is None and "reason" not in out:
        out["reason"] = f"the candidate (trial {tid}) recorded no out-of-sample returns"
    out.pop("trials", None)  # every trial's DSR is in the leaderboard
    return out


def _pbo_inputs(overfit: dict[str, Any]) -> dict[str, Any]:
    pbo = overfit.get("pbo")
    if not pbo:
        return {"reason": overfit.get("reason")}
    keep = ("splits", "n_combinations", "n_trials", "n_periods", "n_periods_used",
            "logit_median", "prob_oos_loss", "degradation")
    return {k: pbo[k] for k in keep if k in pbo} | {"period": overfit.get("period")}


def lookahead_of(p: Any, strategy: str, params: dict[str, Any],
                 rules: RiskRules) -> dict[str, Any]:
    """The look-ahead check of the candidate on a scenario's optimization window."""
    from spark_ray.research.lookahead import check_lookahead

    rep = check_lookahead(p.bars, strategy, params, costs=p.costs, cuts=rules.lookahead_cuts)
    return {**rep.to_dict(), "summary": rep.summary()}


def bootstrap_of(res: Any, rules: RiskRules) -> dict[str, Any]:
    """Block bootstrap of the hold-out bar returns and trade-order bootstrap of its trades:
    intervals for Sharpe, max drawdown and final equity."""
    from spark_ray.research.bootstrap import block_bootstrap, trade_bootstrap

    eq = np.asarray(res.output.equity, dtype=float)
    out: dict[str, Any] = {}
    rets = np.diff(eq) / eq[:-1] if len(eq) > 1 else np.zeros(0)
    per_year = float(res.metrics.get("periods_per_year") or 1.0)
    if len(rets) >= 2 and np.all(rets == rets[0]):
        # Flat equity (it never traded): Sharpe 0, with nothing to resample.
        flat = {"point": 0.0, "p05": 0.0, "p50": 0.0, "p95": 0.0, "se": 0.0}
        out["block"] = {"method": "none: flat equity, no trade in the hold-out",
                        "sharpe": flat}
    elif len(rets) >= 2:
        out["block"] = block_bootstrap(rets, per_year, n_boot=rules.bootstrap_resamples,
                                       start_equity=float(eq[0])).to_dict()
    trades = np.array([t.ret for t in res.output.trades], dtype=float)
    years = float(res.metrics.get("years") or 0.0)
    if len(trades) >= 2 and years > 0 and not np.all(trades == trades[0]):
        out["trades"] = trade_bootstrap(trades, len(trades) / years,
                                        n_boot=rules.bootstrap_resamples,
                                        start_equity=float(eq[0])).to_dict()
    return out

