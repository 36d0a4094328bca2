"""Signed approvals: keys made by the real keygen, signatures by the real Ed25519 (cryptography).

A forged approval (signed by a key that is not trusted, even under a trusted name), an unsigned
one, one edited after signing and one whose risk report was tampered with are each refused,
saying why; a hand-written PASS signed by a trusted key is caught by comparing it with a fresh
review. Through the CLI too: keygen -> approve -> check, exit codes and messages.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from spark_ray.approval.approved import approve, check, review_problems, sha256_file
from spark_ray.approval.signing import (
    Signer,
    TrustedKeys,
    keygen,
    load_signer,
    public_line,
    signed_bytes,
)
from spark_ray.errors import CheckFailed, UserError

from helpers import cli_env, run_cli, signer

PARAMS = {"fast": 2, "slow": 3}


def candidate(folder: Path) -> tuple[Path, Path]:
    best = folder / "best.json"
    best.write_text(json.dumps({"strategy": "sma_cross", "overall": {"params": PARAMS}}))
    report = folder / "risk-report.json"
    report.write_text(json.dumps({"verdict": "PASS", "candidate_sha256": sha256_file(best),
                                  "checks": {"min_trades": {"status": "PASS", "value": 9}}}))
    return best, report


def write(path: Path, doc: dict[str, object]) -> Path:
    path.write_text(json.dumps(doc, indent=2))
    return path


def test_keygen_writes_an_owner_only_key_and_never_overwrites(tmp_path: Path) -> None:
    key, pub, line = keygen("carol", tmp_path / "keys")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert pub.read_text().strip() == line and line.startswith("carol ed25519 ")
    assert load_signer("carol", tmp_path / "keys").name == "carol"
    with pytest.raises(UserError, match="already exists"):
        keygen("carol", tmp_path / "keys")
    with pytest.raises(UserError, match="--name: 'a b' is not a key name"):
        keygen("a b", tmp_path / "keys")
    os.chmod(key, 0o644)  # readable by others: refused, as ssh does
    with pytest.raises(UserError, match=r"readable by others \(mode 644\); run `chmod 600"):
        load_signer("carol", tmp_path / "keys")
    with pytest.raises(UserError, match="no private key for 'dave'"):
        load_signer("dave", tmp_path / "keys")


def test_trusted_keys_file_errors_name_the_line(tmp_path: Path) -> None:
    f = tmp_path / "trusted"
    with pytest.raises(UserError, match="not found"):
        TrustedKeys.load(f)
    f.write_text("# approvers\n\nalice ed25519 AAAA\n")
    with pytest.raises(UserError, match=r"trusted:3: not a base64 Ed25519 public key"):
        TrustedKeys.load(f)
    f.write_text("alice rsa AAAA\n")
    with pytest.raises(UserError, match=r"trusted:1: expected 'NAME ed25519 BASE64'"):
        TrustedKeys.load(f)


def test_a_signed_approval_passes_and_every_forgery_is_refused_saying_why(
        tmp_path: Path) -> None:
    best, report = candidate(tmp_path)
    good = approve(best, report, signer("alice"), "q3")
    assert good["approved_by"] == "alice" and good["signature"]["alg"] == "ed25519"
    path = write(tmp_path / "approved.json", good)
    assert check(path)["params"] == PARAMS

    # Unsigned: the old format, or the signature removed.
    write(path, {k: v for k, v in good.items() if k != "signature"})
    with pytest.raises(CheckFailed, match="signature: unsigned approval"):
        check(path)
    # Forged: an attacker's own key under a trusted name.
    mallory = Signer("alice", Ed25519PrivateKey.generate())
    write(path, approve(best, report, mallory, "q3"))
    with pytest.raises(CheckFailed, match=r"does not verify with 'alice'.s trusted key"):
        check(path)
    # Signed by a key nobody trusts, under its own name.
    write(path, approve(best, report, Signer("mallory", Ed25519PrivateKey.generate())))
    with pytest.raises(CheckFailed, match="signed by 'mallory', which is not in the trusted"):
        check(path)
    # A trusted signature, then the approver's name (or anything) edited.
    write(path, {**good, "approved_by": "bob"})
    with pytest.raises(CheckFailed, match="signed by 'alice' but approved_by says 'bob'"):
        check(path)
    write(path, {**good, "note": "approved by the CEO"})
    with pytest.raises(CheckFailed, match="edited after it was signed"):
        check(path)
    # The risk report tampered with after approval.
    write(path, good)
    report.write_text(report.read_text().replace("9", "19"))
    with pytest.raises(CheckFailed, match=r"risk_report: .* was modified after approval"):
        check(path)


def test_the_signature_covers_every_field_but_itself() -> None:
    doc = {"b": 1, "a": [1, 2], "signature": {"value": "x"}}
    assert signed_bytes(doc) == b'{"a":[1,2],"b":1}'


def test_another_trusted_keys_file_decides(tmp_path: Path) -> None:
    best, report = candidate(tmp_path)
    path = write(tmp_path / "approved.json", approve(best, report, signer("alice")))
    other = tmp_path / "only-bob"
    other.write_text(public_line("bob", load_signer("bob").public) + "\n")
    with pytest.raises(CheckFailed, match="'alice', which is not in the trusted keys"):
        check(path, TrustedKeys.load(other))


def test_a_fresh_review_that_disagrees_is_named_check_by_check() -> None:
    fresh = {"verdict": "FAIL", "rules": {"min_dsr": 0.95},
             "checks": {"dsr": {"status": "FAIL", "value": 0.2},
                        "trades": {"status": "PASS", "value": float("nan")}}}
    assert review_problems(json.loads(json.dumps(fresh)), fresh) == []  # as stored on disk
    hand = {"verdict": "PASS", "rules": {"min_dsr": 0.0},
            "checks": {"dsr": {"status": "PASS", "value": 0.99}}}
    problems = review_problems(hand, fresh)
    assert problems == [
        "review: the stored risk report was judged under other rules (min_dsr: 0.0 vs 0.95); "
        "name the rules it was approved under with --rules",
        "review: the stored risk report says PASS, a fresh review says FAIL",
        "review: check dsr: stored PASS (value 0.99), fresh FAIL (value 0.2)",
        "review: check trades is missing from the stored risk report"]


def test_cli_keygen_approve_check(tmp_path: Path) -> None:
    env = cli_env(SPARK_RAY_KEYS_DIR=str(tmp_path / "keys"),
                  SPARK_RAY_TRUSTED_KEYS=str(tmp_path / "trusted_keys"))
    r = run_cli("params", "keygen", "--name", "erin", "--trust", env=env)
    assert r.code == 0, r.err
    assert "trusted: added erin" in r.out and "BEGIN" not in r.out + r.err  # no key printed
    assert run_cli("params", "keygen", "--name", "erin", env=env).code == 2
    best, _ = candidate(tmp_path)
    r = run_cli("params", "approve", str(best), "--by", "frank", env=env)
    assert r.code == 2 and "no private key for 'frank'" in r.err
    r = run_cli("params", "approve", str(best), "--by", "erin", env=env)
    assert r.code == 0 and "approved and signed by erin (SHA256:" in r.out, r.err
    approved = tmp_path / "approved.json"
    r = run_cli("params", "check", str(approved), "--no-review", env=env)
    assert r.code == 0 and "signature OK (erin" in r.out, r.err
    # The session's trusted keys do not name erin: the same file is refused there.
    r = run_cli("params", "check", str(approved), "--no-review",
                "--trusted-keys", os.environ["SPARK_RAY_TRUSTED_KEYS"], env=env)
    assert r.code == 1 and "'erin', which is not in the trusted keys" in r.err
    r = run_cli("params", "check", str(approved), "--no-review",
                "--trusted-keys", str(tmp_path / "missing"), env=env)
    assert r.code == 2 and "trusted keys: " in r.err and "not found" in r.err
