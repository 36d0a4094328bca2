"""approved.json: what binds a passed review to a named approver, and the check live trading
runs before it trades a parameter.

``approve`` refuses a failed review and records the sha256 of the candidate (best.json) and of
its risk report, and the candidate's signal model (``signals_model``: path and sha256) when it
was optimized on one, and signs all of it with the approver's key (:mod:`.signing`). ``check``
is what the executor, ``spark-ray params check`` and CI run: it passes only when the signature
verifies with a key of the trusted-keys file, neither file changed since, the review PASSed and
the approved parameters and signal model are the candidate's. ``review_problems`` compares the
stored risk report with a fresh review (``params check`` re-runs it): a hand-written PASS is
caught even when a trusted key signed it. Pure file format, hashing and signatures: the
review itself re-runs backtests and stays in tune (``spark_ray.tune.review``).
"""

from __future__ import annotations

import getpass
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from spark_ray.approval.signing import Signer, TrustedKeys, sign, signature_problems
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


def approve(best_path: Path, report_path: Path, signer: Signer, note: str = ""
            ) -> dict[str, Any]:
    """approved.json content binding candidate and passed review, signed by ``signer``;
    CheckFailed refuses."""
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
        "approved_at": datetime.now(UTC).isoformat(), "note": note,
        "host_user": getpass.getuser(),
    }
    if model is not None:
        # The signal model the parameters were optimized and reviewed on: trading verifies
        # the model it serves against this sha256.
        approved["signals_model"] = model
    return sign(approved, signer)


def check(approved_path: Path, trusted: TrustedKeys | None = None) -> dict[str, Any]:
    """Raise CheckFailed naming every problem; return the approval when all is intact.
    ``trusted``: the approvers' public keys (default: the trusted-keys file, see
    :func:`.signing.trusted_keys_path`)."""
    approved = load_json(approved_path, "approval (approved.json)")
    trusted = trusted if trusted is not None else TrustedKeys.load()
    base = approved_path.parent
    problems = signature_problems(approved, trusted)
    problems += file_problems(base, approved, ("candidate", "risk_report"), approved_path.name)
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


def _json(x: Any) -> str:
    """A value as the report file holds it (NaN equals NaN; numpy and tuples as JSON)."""
    return json.dumps(x, sort_keys=True, default=float)


# Fields of a review that depend on when and where it ran, not on what it judged.
_VOLATILE = {"reviewed", "store", "candidate", "duration_s"}


def review_problems(stored: dict[str, Any], fresh: dict[str, Any]) -> list[str]:
    """How the stored risk report differs from a fresh review of the same files under the
    same rules: its verdict, and each check's status and value. Empty when they agree.

    Values are compared exactly: the review is deterministic (fixed seeds, same data), so any
    difference means the stored report is not what the review writes."""
    problems = []
    if stored.get("rules") != fresh.get("rules"):
        theirs, ours = stored.get("rules") or {}, fresh.get("rules") or {}
        diff = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
        pairs = ", ".join(f"{k}: {theirs.get(k)!r} vs {ours.get(k)!r}" for k in diff)
        problems.append(f"review: the stored risk report was judged under other rules ({pairs}); "
                        "name the rules it was approved under with --rules")
    if stored.get("verdict") != fresh.get("verdict"):
        problems.append(f"review: the stored risk report says {stored.get('verdict')}, a fresh "
                        f"review says {fresh.get('verdict')}")
    s_checks: dict[str, Any] = stored["checks"] if isinstance(stored.get("checks"), dict) else {}
    f_checks: dict[str, Any] = fresh.get("checks") or {}
    for name in sorted(set(s_checks) | set(f_checks)):
        a, b = s_checks.get(name), f_checks.get(name)
        if b is None:
            problems.append(f"review: check {name} of the stored risk report is not one the "
                            "review makes")
            continue
        if not isinstance(a, dict):
            problems.append(f"review: check {name} is missing from the stored risk report")
            continue
        if a.get("status") != b.get("status") or _json(a.get("value")) != _json(b.get("value")):
            problems.append(f"review: check {name}: stored {a.get('status')} "
                            f"(value {a.get('value')!r}), fresh {b.get('status')} "
                            f"(value {b.get('value')!r})")
    for key in sorted(set(fresh) - _VOLATILE - {"rules", "verdict", "checks"}):
        if key.endswith("sha256") and stored.get(key) != fresh.get(key):
            problems.append(f"review: {key} differs from the stored risk report's")
    return problems
