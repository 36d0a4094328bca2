"""approved.json on its own: approve binds a passed review to a signed name by sha256, check
refuses anything changed, missing or unpassed, naming it; no tune, no backtest, no Ray involved.
The session's approvers and trusted keys: tests/conftest.py (approver_keys)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spark_ray.approval.approved import approve, check, load_json, sha256_file
from spark_ray.approval.rules import RiskRules
from spark_ray.errors import CheckFailed, UserError

from helpers import signer

PARAMS = {"fast": 2, "slow": 3}


def candidate(folder: Path, verdict: str = "PASS") -> tuple[Path, Path]:
    best = folder / "best.json"
    best.write_text(json.dumps({"strategy": "sma_cross", "overall": {"params": PARAMS}}))
    report = folder / "risk-report.json"
    report.write_text(json.dumps({"verdict": verdict, "candidate_sha256": sha256_file(best),
                                  "checks": {"min_trades": {"status": verdict}}}))
    return best, report


def approved(folder: Path) -> Path:
    best, report = candidate(folder)
    path = folder / "approved.json"
    path.write_text(json.dumps(approve(best, report, signer("alice"), "q3")))
    return path


def test_approve_then_check_passes_and_names_the_approver(tmp_path: Path) -> None:
    a = check(approved(tmp_path))
    assert (a["strategy"], a["params"], a["approved_by"], a["note"]) == \
        ("sma_cross", PARAMS, "alice", "q3")
    assert a["candidate_sha256"] == sha256_file(tmp_path / "best.json")


def test_approve_refuses_a_failed_or_outdated_review(tmp_path: Path) -> None:
    best, report = candidate(tmp_path, verdict="FAIL")
    with pytest.raises(CheckFailed, match=r"the review FAILED \(min_trades\)"):
        approve(best, report, signer())
    best, report = candidate(tmp_path)
    best.write_text(best.read_text() + " ")
    with pytest.raises(CheckFailed, match="changed since it was reviewed"):
        approve(best, report, signer())


@pytest.mark.parametrize(("tamper", "reason"), [
    (lambda d: (d / "best.json").write_text((d / "best.json").read_text() + " "),
     "candidate: .* was modified after approval"),
    (lambda d: (d / "risk-report.json").unlink(), "risk_report: .* is missing"),
    (lambda d: (d / "approved.json").write_text(json.dumps(
        {**json.loads((d / "approved.json").read_text()), "params": {"fast": 3}})),
     "signature: does not verify with 'alice'"),  # any edit of approved.json breaks it
])
def test_check_names_what_changed(tmp_path: Path, tamper: object, reason: str) -> None:
    path = approved(tmp_path)
    tamper(tmp_path)  # type: ignore[operator]
    with pytest.raises(CheckFailed, match=reason):
        check(path)


def test_json_loading_and_rules(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"approval .* not found"):
        load_json(tmp_path / "nope.json", "approval (approved.json)")
    (tmp_path / "bad.json").write_text("[1]")
    with pytest.raises(UserError, match="expected a JSON object"):
        load_json(tmp_path / "bad.json", "x")
    assert RiskRules().max_drawdown == 0.25
    with pytest.raises(ValueError, match="max_drawdown"):
        RiskRules(max_drawdown=2)
