"""approved.json: what binds a passed review to a named approver, and the check live trading
runs before it trades a parameter.

``approve`` refuses a failed review and records the sha256 of the candidate (best.json) and of
its risk report beside the approver's name, and the candidate's signal model (``signals_model``:
path and sha256) when it was optimized on one. ``check`` is what the executor, ``spark-ray params
check`` and CI run: it passes only when neither file changed since, the review PASSed and the
approved parameters and signal model are the candidate's. Pure file format and hashing: the
review that writes the risk report re-runs backtests and stays in tune
(``spark_ray.tune.review``).
"""

from __future__ import annotations

import getpass
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from spark_ray.errors import CheckFailed, UserError


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from ``path``; UserError naming the file and ``what`` it should be."""
    if not path.is_file():
        raise UserError(f"{path}: {what} not found")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object")
    return data


def file_problems(base: Path, approved: dict[str, Any], keys: tuple[str, ...],
                  where: str) -> list[str]:
    """Each file an approval binds (``approved[key]`` names it, ``approved[key + "_sha256"]``
    holds its hash) that is unnamed, missing or changed since: one line per problem."""
    problems = []
    for key in keys:
        name = approved.get(key)
        if not name:
            problems.append(f"{key}: not named in {where}")
            continue
        path = base / name
        if not path.is_file():
            problems.append(f"{key}: {path} is missing")
        elif sha256_file(path) != approved.get(f"{key}_sha256"):
            problems.append(f"{key}: {path} was modified after approval (sha256 differs)")
    return problems


def approve(best_path: Path, report_path: Path, by: str, note: str = "") -> dict[str, Any]:
    """approved.json content binding candidate and passed review; CheckFailed refuses."""
    if not by.strip():
        raise UserError("--by: give the approver's name")
    best = load_json(best_path, "candidate (best.json)")
    report = load_json(report_path, "risk report")
    if report.get("verdict") != "PASS":
        failed = [k for k, c in report.get("checks", {}).items() if c.get("status") != "PASS"]
        raise CheckFailed(f"refusing to approve: the review FAILED ({', '.join(failed)})")
    if report.get("candidate_sha256") != sha256_file(best_path):
        raise CheckFailed(f"refusing to approve: {best_path} changed since it was reviewed")
    model = best.get("signals_model")
    if model is not None and (report.get("signals_model") or {}).get("model_sha256") != \
            (model.get("model_sha256") if isinstance(model, dict) else None):
        raise CheckFailed("refusing to approve: the review did not run on the candidate's "
                          "signal model (review it with --signals-model)")
    approved = {
        "candidate": best_path.name, "candidate_sha256": sha256_file(best_path),
        "risk_report": report_path.name, "risk_report_sha256": sha256_file(report_path),
        "strategy": best["strategy"], "params": best["overall"]["params"],
        "approved_by": by, "approved_at": datetime.now(UTC).isoformat(), "note": note,
        "host_user": getpass.getuser(),
    }
    if model is not None:
        # The signal model the parameters were optimized and reviewed on: trading verifies
        # the model it serves against this sha256.
        approved["signals_model"] = model
    return approved


def check(approved_path: Path) -> dict[str, Any]:
    """Raise CheckFailed naming every difference; return the approval when all is intact."""
    approved = load_json(approved_path, "approval (approved.json)")
    base = approved_path.parent
    problems = file_problems(base, approved, ("candidate", "risk_report"), approved_path.name)
    if not problems:
        report = json.loads((base / approved["risk_report"]).read_text())
        if report.get("verdict") != "PASS":
            problems.append("risk_report: the review did not pass")
        best = json.loads((base / approved["candidate"]).read_text())
        if best.get("overall", {}).get("params") != approved.get("params"):
            problems.append("params: approved.json's params differ from the candidate's")
        if best.get("signals_model") != approved.get("signals_model"):
            problems.append("signals_model: approved.json's signal model differs from the "
                            "candidate's")
    if problems:
        raise CheckFailed(f"{approved_path}: NOT approved for trading\n  " +
                          "\n  ".join(problems))
    return approved
