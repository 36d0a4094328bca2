"""The model's approval gate on a model really trained from the XRP/ETH sample: review judges
the card against the rules and says why, approve binds a passed review to a name, check refuses
anything changed, missing or unpassed, naming it; the CLI's exit codes 0/1/2."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from spark_ray.approval.approved import sha256_file
from spark_ray.approval.model import ModelRules, approve_model, check_model, review_model
from spark_ray.approval.signing import sign
from spark_ray.errors import CheckFailed

from helpers import run_cli, signer

PERMISSIVE = ModelRules(require_beats_baselines=False, min_auc=0, min_samples=1)


@pytest.fixture(scope="module")
def trained(lake: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs = tmp_path_factory.mktemp("gate") / "runs"
    res = run_cli("signals", "train", "--store", str(lake), "--symbol", "XRPETH",
                  "--permutations", "20", "--out", str(runs))
    assert res.code == 0, res.err
    return next(runs.iterdir()) / "model"


@pytest.fixture
def model(trained: Path, tmp_path: Path) -> Path:
    """A fresh copy of the trained model folder: each test may tamper with its own."""
    return Path(shutil.copytree(trained, tmp_path / "model"))


def write(path: Path, data: dict[str, object]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def approved(model: Path) -> Path:
    write(model / "risk-report.json", review_model(model, PERMISSIVE))
    write(model / "approved.json", approve_model(model, signer("alice"), "ticket 7"))
    return model


def test_a_passed_review_is_approved_and_checked_through_the_cli(
        model: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("require_beats_baselines: false\nmin_auc: 0\nmin_samples: 1\n")
    res = run_cli("signals", "review", "--model", str(model), "--rules", str(rules),
                  "--out", str(tmp_path / "runs"))
    assert res.code == 0, res.err
    for name in ("integrity", "beats_baselines", "min_auc", "min_samples"):
        assert f"PASS  {name}" in res.out, res.out
    assert "review PASS" in res.out
    res = run_cli("signals", "approve", "--model", str(model), "--by", "alice",
                  "--note", "ticket 7")
    assert res.code == 0 and "approved and signed by alice" in res.out, res.err
    res = run_cli("signals", "check", "--model", str(model))  # the default rules: not these
    assert res.code == 1 and "judged under other rules" in res.err, res.err
    res = run_cli("signals", "check", "--model", str(model), "--rules", str(rules))
    assert res.code == 0 and "approved for trading by alice" in res.out, res.err
    a = json.loads((model / "approved.json").read_text())
    assert (a["approved_by"], a["note"], a["host_user"] != "") == ("alice", "ticket 7", True)
    for key, name in (("candidate", "model.json"), ("model", "model.txt"),
                      ("risk_report", "risk-report.json")):
        assert a[key] == name and a[f"{key}_sha256"] == sha256_file(model / name)
    with (model / "model.txt").open("a") as f:
        f.write("\n")
    res = run_cli("signals", "check", "--model", str(model), "--rules", str(rules))
    assert res.code == 1 and "NOT approved for trading" in res.err, res.err
    assert "model.txt was modified after approval" in res.err


def test_default_rules_fail_the_real_model_because_linear_beats_it(model: Path) -> None:
    report = review_model(model)
    card = json.loads((model / "model.json").read_text())
    aucs = {n: m["auc"] for n, m in card["report"]["models"].items()}
    assert aucs["gbm"] < aucs["linear"]  # the honest finding on this sample (README)
    assert report["verdict"] == "FAIL"
    assert {n: c["status"] for n, c in report["checks"].items()} == {
        "integrity": "PASS", "beats_baselines": "FAIL", "min_auc": "PASS", "min_samples": "PASS"}
    beats = report["checks"]["beats_baselines"]
    assert beats["value"] == aucs["gbm"] and beats["inputs"]["linear_auc"] == aucs["linear"]
    assert beats["limit"].startswith(f"> linear AUC {aucs['linear']:.4f}") and beats["why"]
    assert report["candidate_sha256"] == sha256_file(model / "model.json")
    assert report["model_sha256"] == card["model_sha256"] == sha256_file(model / "model.txt")
    assert report["rules"] == ModelRules().model_dump()


def test_the_cli_refuses_to_approve_a_failed_review(model: Path, tmp_path: Path) -> None:
    res = run_cli("signals", "review", "--model", str(model), "--out", str(tmp_path / "runs"))
    assert res.code == 1 and "FAIL  beats_baselines" in res.out, res.out
    assert "limit > linear AUC" in res.out and "review FAIL" in res.out
    res = run_cli("signals", "approve", "--model", str(model), "--by", "alice")
    assert res.code == 1 and "the review FAILED (beats_baselines)" in res.err, res.err
    assert not (model / "approved.json").exists()
    res = run_cli("signals", "check", "--model", str(model))
    assert res.code == 1 and "approved.json is missing" in res.err, res.err


@pytest.mark.parametrize(("tamper", "reason"), [
    (lambda d: (d / "model.txt").write_text((d / "model.txt").read_text() + "\n"),
     "refusing to serve"),
    (lambda d: write(d / "model.json", {**json.loads((d / "model.json").read_text()),
                                        "features": [{"name": "ema_deviation_50",
                                                      "definition": "something else"}]}),
     "feature ema_deviation_50: trained as something else"),
], ids=["model.txt", "feature-definition"])
def test_review_fails_integrity_naming_why(model: Path, tamper: Callable[[Path], None],
                                           reason: str) -> None:
    tamper(model)
    integrity = review_model(model, PERMISSIVE)["checks"]["integrity"]
    assert integrity["status"] == "FAIL" and reason in integrity["value"], integrity


def test_approve_refuses_files_changed_since_the_review(model: Path) -> None:
    write(model / "risk-report.json", review_model(model, PERMISSIVE))
    write(model / "model.json", {**json.loads((model / "model.json").read_text()), "x": 1})
    with pytest.raises(CheckFailed, match=r"model\.json in .* changed since it was reviewed"):
        approve_model(model, signer())


@pytest.mark.parametrize(("tamper", "reason"), [
    (lambda d: (d / "model.txt").write_text((d / "model.txt").read_text() + "\n"),
     r"model: .*model\.txt was modified after approval"),
    (lambda d: write(d / "risk-report.json", {
        **json.loads((d / "risk-report.json").read_text()), "verdict": "PASS", "note": "ok"}),
     r"risk_report: .*risk-report\.json was modified after approval"),
    (lambda d: write(d / "model.json", {**json.loads((d / "model.json").read_text()),
                                        "params": {"seed": 1}}),
     r"candidate: .*model\.json was modified after approval"),
    (lambda d: (d / "model.txt").unlink(), r"model: .*model\.txt is missing"),
    (lambda d: (d / "approved.json").unlink(), r"approved\.json is missing"),
], ids=["model.txt-modified", "risk-report-edited", "model.json-edited", "model.txt-missing",
        "approved.json-missing"])
def test_check_refuses_anything_changed_or_missing_naming_it(
        model: Path, tamper: Callable[[Path], None], reason: str) -> None:
    assert check_model(approved(model))["approved_by"] == "alice"
    tamper(model)
    with pytest.raises(CheckFailed, match=reason) as err:
        check_model(model)
    assert "NOT approved for trading" in str(err.value)


def test_check_refuses_a_failed_review_even_if_approved_json_was_forged(model: Path) -> None:
    write(model / "risk-report.json", review_model(model))  # default rules: FAIL
    forged = {**forged_approval(model), "approved_by": "mallory"}
    write(model / "approved.json", forged)
    with pytest.raises(CheckFailed, match="signature: unsigned approval"):
        check_model(model)
    # Even signed by a trusted approver (an insider), a FAILed review is not served.
    write(model / "approved.json", sign(forged_approval(model), signer("bob")))
    with pytest.raises(CheckFailed, match="risk_report: the review did not pass"):
        check_model(model)


def test_a_hand_written_pass_is_caught_by_the_fresh_review_even_when_signed(
        model: Path) -> None:
    real = review_model(model)  # default rules: FAIL (linear beats gbm on this sample)
    hand = {**real, "verdict": "PASS",
            "checks": {k: {**c, "status": "PASS"} for k, c in real["checks"].items()}}
    write(model / "risk-report.json", hand)
    write(model / "approved.json", sign(forged_approval(model), signer("bob")))
    with pytest.raises(CheckFailed, match="review: the stored risk report says PASS, a fresh "
                                          "review says FAIL") as err:
        check_model(model)
    assert "review: check beats_baselines: stored PASS" in str(err.value)


def forged_approval(model: Path) -> dict[str, object]:
    """approved.json written by hand, hashes right, for a review that FAILED."""
    return {name: value for key, file in (("candidate", "model.json"), ("model", "model.txt"),
                                          ("risk_report", "risk-report.json"))
            for name, value in ((key, file), (f"{key}_sha256", sha256_file(model / file)))}


@pytest.mark.parametrize(("args", "named"), [
    (["--rules", "bad-field.yaml"], "min_aucc: Extra inputs are not permitted"),
    (["--rules", "bad-value.yaml"], "min_auc: Input should be less than or equal to 1"),
    (["--rules", "missing.yaml"], "missing.yaml: file not found"),
], ids=["unknown-field", "bad-value", "no-file"])
def test_bad_rules_exit_2_naming_the_field(model: Path, tmp_path: Path, args: list[str],
                                           named: str) -> None:
    (tmp_path / "bad-field.yaml").write_text("min_aucc: 0.5\n")
    (tmp_path / "bad-value.yaml").write_text("min_auc: 2\n")
    res = run_cli("signals", "review", "--model", str(model), "--out", str(tmp_path / "runs"),
                  *[str(tmp_path / a) if a.endswith(".yaml") else a for a in args])
    assert res.code == 2 and named in res.err, res.err
    assert not (model / "risk-report.json").exists()


def test_a_folder_without_a_model_exits_2_naming_the_flag(tmp_path: Path) -> None:
    res = run_cli("signals", "review", "--model", str(tmp_path), "--out", str(tmp_path / "r"))
    assert res.code == 2 and "--model:" in res.err and "no model.json" in res.err, res.err
    res = run_cli("signals", "approve", "--model", str(tmp_path / "nope"), "--by", "alice")
    assert res.code == 2 and "--model:" in res.err, res.err


def test_a_tuned_model_pays_for_its_trials(model: Path) -> None:
    """A model picked as the best of N configurations has its p-value multiplied by N
    (Bonferroni): what passes as one honest try fails as the best of twenty."""
    card = json.loads((model / "model.json").read_text())
    models = card["report"]["models"]
    models["gbm"].update(auc=0.70, p_value=0.02)
    for name in ("linear", "majority", "persistence"):
        models[name]["auc"] = 0.60
    write(model / "model.json", card)
    once = review_model(model)["checks"]["beats_baselines"]
    assert once["status"] == "PASS" and once["inputs"]["gbm_p_value_adjusted"] == 0.02
    card["report"]["trials"] = 20
    write(model / "model.json", card)
    tuned = review_model(model)["checks"]["beats_baselines"]
    assert tuned["status"] == "FAIL"
    assert tuned["inputs"]["trials"] == 20
    assert tuned["inputs"]["gbm_p_value_adjusted"] == pytest.approx(0.4)
