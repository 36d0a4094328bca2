"""The approval gate for a trained signal model: review, approve, check.

The same three steps as strategy parameters (:mod:`spark_ray.approval.approved`), for a model
folder (``model.txt`` + ``model.json``, :mod:`spark_ray.signals.artifact`). ``review_model``
judges what the training already measured out of fold against :class:`ModelRules` -- no
retraining, so the review is cheap and reproducible -- and checks the files are intact;
``approve_model`` binds a passed review and the exact files it judged to an approver, signed
with the approver's key (:mod:`.signing`); ``check_model`` is what anything that serves the
model runs first: a trusted signature, the files unchanged, and a fresh review (cheap here)
that agrees with the stored one, so a hand-written PASS is refused even when signed. Files live
in the model folder under the params gate's names (``risk-report.json``, ``approved.json``),
so an operator reads one format for both.
"""

from __future__ import annotations

import getpass
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from spark_ray.approval.approved import file_problems, load_json, review_problems, sha256_file
from spark_ray.approval.signing import Signer, TrustedKeys, sign, signature_problems
from spark_ray.errors import CheckFailed
from spark_ray.signals.artifact import CARD_FILE, MODEL_FILE

REPORT_FILE = "risk-report.json"
APPROVED_FILE = "approved.json"
REVIEW_KIND = "spark-ray model review"
APPROVAL_KIND = "spark-ray model approval"


class ModelRules(BaseModel):
    """Thresholds a model's out-of-fold report must meet; each rule PASSes or FAILs alone."""

    model_config = ConfigDict(extra="forbid")

    require_beats_baselines: bool = Field(
        True, description="gbm's AUC above every baseline's (linear included), with its "
                          "permutation p-value at most max_p_value: a model no better than a "
                          "logistic regression is not worth serving.")
    max_p_value: float = Field(0.05, ge=0, le=1,
                               description="Largest permutation p-value of gbm's AUC.")
    min_auc: float = Field(0.55, ge=0, le=1, description="Smallest out-of-fold AUC of gbm.")
    min_samples: int = Field(500, ge=0, description="Fewest training events behind the CV.")


def _rule(ok: bool, value: Any, limit: Any, why: str,
          inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """One check in the params review's shape, so both reports print and read alike."""
    out = {"status": "PASS" if ok else "FAIL", "value": value, "limit": limit, "why": why}
    return out if inputs is None else {**out, "inputs": inputs}


def _number(x: Any) -> float | None:
    """A finite float, or None for a missing or non-numeric metric (which then FAILs)."""
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        return None
    return float(x)


def _object(x: Any) -> dict[str, Any]:
    """``x`` if it is a JSON object, else empty: a malformed card FAILs checks, not the CLI."""
    return x if isinstance(x, dict) else {}


def _integrity(folder: Path) -> dict[str, Any]:
    """The model loads as served: sha256 of model.txt as recorded, features defined the same."""
    from spark_ray.signals.artifact import load

    try:
        load(folder)
    except (ValueError, KeyError, OSError) as exc:  # TamperedModel is a ValueError
        msg = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        return _rule(False, msg, "intact", "model.txt matches the card's sha256 and every "
                     "feature is still defined as when it was trained")
    return _rule(True, "intact", "intact", "model.txt matches the card's sha256 and every "
                 "feature is still defined as when it was trained")


def _beats_baselines(models: dict[str, Any], rules: ModelRules,
                     trials: int = 1) -> dict[str, Any]:
    """gbm's AUC against the best of every other model in the report, and its p-value. When
    the model was picked as the best of ``trials`` configurations (``signals train --tune``),
    its p-value is Bonferroni-adjusted (times ``trials``, at most 1: Dunn 1961), since the best
    of many out-of-fold AUCs is biased upward by the selection."""
    gbm = _object(models.get("gbm"))
    auc, raw = _number(gbm.get("auc")), _number(gbm.get("p_value"))
    p = None if raw is None else min(1.0, raw * max(1, trials))
    bases = {n: _number(m.get("auc")) for n, m in models.items()
             if n != "gbm" and isinstance(m, dict)}
    known = {n: a for n, a in bases.items() if a is not None}
    best = max(known, key=lambda n: known[n]) if known else None
    beats = (auc is not None and p is not None and best is not None
             and len(known) == len(bases) and auc > known[best] and p <= rules.max_p_value)
    limit = (f"> {best} AUC {known[best]:.4f} with p <= {rules.max_p_value}" if best else
             "baselines in the report") if rules.require_beats_baselines else "not required"
    return _rule(beats or not rules.require_beats_baselines, auc, limit,
                 "out-of-fold AUC of gbm above every baseline's (majority, persistence, "
                 "linear), significant by the rotation-permutation test",
                 {"gbm_p_value": raw, "trials": trials, "gbm_p_value_adjusted": p,
                  **{f"{n}_auc": a for n, a in bases.items()}})


def _trials(x: Any) -> int:
    """Configurations tried before this model was chosen (1 when it was not tuned)."""
    return x if isinstance(x, int) and not isinstance(x, bool) and x > 1 else 1


def review_model(folder: Path, rules: ModelRules | None = None) -> dict[str, Any]:
    """Judge the model folder's card against ``rules``; returns the risk report (not written).

    UserError when there is no readable model.json (nothing to review); any other problem,
    tampering included, is a FAILed check in the report, so the report says why.
    """
    rules = rules or ModelRules()
    card_path = folder / CARD_FILE
    card = load_json(card_path, "model card (model.json)")
    report = _object(card.get("report"))
    models = _object(report.get("models"))
    auc = _number(_object(models.get("gbm")).get("auc"))
    samples = report.get("samples")
    samples = samples if isinstance(samples, int) and not isinstance(samples, bool) else None
    checks = {
        "integrity": _integrity(folder),
        "beats_baselines": _beats_baselines(models, rules, _trials(report.get("trials"))),
        "min_auc": _rule(auc is not None and auc >= rules.min_auc, auc, rules.min_auc,
                         "out-of-fold AUC of gbm under purged k-fold"),
        "min_samples": _rule(samples is not None and samples >= rules.min_samples, samples,
                             rules.min_samples, "training events behind the CV report"),
    }
    model_path = folder / MODEL_FILE
    passed = all(c["status"] == "PASS" for c in checks.values())
    return {
        "kind": REVIEW_KIND, "verdict": "PASS" if passed else "FAIL",
        "candidate": CARD_FILE, "candidate_sha256": sha256_file(card_path),
        "model": MODEL_FILE,
        "model_sha256": sha256_file(model_path) if model_path.is_file() else None,
        "symbol": _object(card.get("training")).get("symbol"),
        "rules": rules.model_dump(), "checks": checks,
        "reviewed": datetime.now(UTC).isoformat(),
    }


def approve_model(folder: Path, signer: Signer, note: str = "") -> dict[str, Any]:
    """approved.json content binding model.json, model.txt and their passed review, signed by
    ``signer``; CheckFailed refuses a failed review or files changed since it."""
    report_path = folder / REPORT_FILE
    report = load_json(report_path, "risk report (run `spark-ray signals review` first)")
    if report.get("verdict") != "PASS":
        failed = [k for k, c in report.get("checks", {}).items() if c.get("status") != "PASS"]
        raise CheckFailed(f"refusing to approve: the review FAILED ({', '.join(failed)})")
    changed = [name for name, key in ((CARD_FILE, "candidate_sha256"),
                                      (MODEL_FILE, "model_sha256"))
               if not (folder / name).is_file() or sha256_file(folder / name) != report.get(key)]
    if changed:
        raise CheckFailed(f"refusing to approve: {', '.join(changed)} in {folder} changed since "
                          "it was reviewed")
    approved = {
        "kind": APPROVAL_KIND,
        "candidate": CARD_FILE, "candidate_sha256": report["candidate_sha256"],
        "model": MODEL_FILE, "model_sha256": report["model_sha256"],
        "risk_report": REPORT_FILE, "risk_report_sha256": sha256_file(report_path),
        "symbol": report.get("symbol"),
        "approved_at": datetime.now(UTC).isoformat(), "note": note,
        "host_user": getpass.getuser(),
    }
    return sign(approved, signer)


def _rereview(folder: Path, stored: dict[str, Any], rules: ModelRules | None) -> list[str]:
    """How the stored risk report differs from a fresh review of the same folder."""
    if rules is None:
        try:
            rules = ModelRules.model_validate(stored.get("rules") or {})
        except ValueError as exc:
            return [f"review: the stored risk report's rules are not model rules ({exc})"]
    return review_problems(stored, review_model(folder, rules))


def _served_problems(folder: Path) -> list[str]:
    """Why the approved files would not load as served now: the code's feature definitions
    can change after approval even when no file does."""
    from spark_ray.signals.artifact import load

    try:
        load(folder)
    except (ValueError, KeyError, OSError) as exc:
        return [f"model: {exc}"]
    return []


def check_model(folder: Path, trusted: TrustedKeys | None = None,
                rules: ModelRules | None = None) -> dict[str, Any]:
    """Raise CheckFailed naming every problem; return the approval when all is intact.

    ``trusted``: the approvers' keys (default: the trusted-keys file). The review is re-run
    under ``rules`` (default: the rules the stored report names, so what is checked is that
    the report is the review's own output; ``signals check`` passes the operator's rules)."""
    approved_path = folder / APPROVED_FILE
    if not approved_path.is_file():
        raise CheckFailed(f"{folder}: NOT approved for trading\n  approval: {approved_path} is "
                          "missing (run `spark-ray signals approve`)")
    approved = load_json(approved_path, "approval (approved.json)")
    trusted = trusted if trusted is not None else TrustedKeys.load()
    problems = signature_problems(approved, trusted)
    problems += file_problems(folder, approved, ("candidate", "model", "risk_report"),
                              APPROVED_FILE)
    if not problems:
        report = json.loads((folder / approved["risk_report"]).read_text())
        if report.get("verdict") != "PASS":
            problems.append("risk_report: the review did not pass")
        problems += _served_problems(folder)
    if not problems:
        problems += _rereview(folder, report, rules)
    if problems:
        raise CheckFailed(f"{folder}: NOT approved for trading\n  " + "\n  ".join(problems))
    return approved
