"""Approved parameters for synthetic runs: the chaos canary and the test suite.

The canary trades a synthetic venue with a fast SMA that no review would pass, so it writes the
risk report (a PASS) itself and approves it through the real ``approve``/``check`` -- the
executor trusts exactly what ``check`` accepts, here as in production. It signs with a key made
for the run, trusted only by a trusted-keys file made for the run (:func:`synthetic_trusted`):
an executor started with the operator's trusted keys refuses these approvals, and
``params check`` (which re-runs the review) refuses the hand-written PASS. Never for real
parameters: those are reviewed by ``spark-ray params review`` (tune's review, tested there).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from spark_ray.approval.approved import approve, check, sha256_file
from spark_ray.approval.signing import Signer, TrustedKeys, run_signer

TRUSTED = "trusted_keys"  # the run's own trusted-keys file, beside its approval

FAST_SMA = {"fast": 2, "slow": 3}  # SMA(2)/SMA(3) on 1 s bars trades within seconds


def synthetic_approval(folder: Path, strategy: str = "sma_cross",
                       params: dict[str, Any] | None = None, interval: str = "1s",
                       by: str = "chaos-canary", note: str = "synthetic run",
                       signer: Signer | None = None) -> Path:
    """best.json + a hand-written PASS risk report + approved.json in ``folder``; checked.

    Signed by ``signer`` when given (checked against the default trusted keys), else by a key
    made for the run whose only trust is ``folder``'s own file (:func:`synthetic_trusted`)."""
    params = dict(params or FAST_SMA)
    folder.mkdir(parents=True, exist_ok=True)
    best = folder / "best.json"
    best.write_text(json.dumps({
        "strategy": strategy, "overall": {"params": params, "objective": 1.0},
        "objective": {"folds": 2, "holdout": 0.2, "drawdown_penalty": 0.5},
        "scenarios": [{"name": "live", "symbol": "BTCUSDT", "interval": interval}]}, indent=2))
    report = folder / "risk-report.json"
    report.write_text(json.dumps({"verdict": "PASS", "candidate": str(best),
                                  "candidate_sha256": sha256_file(best), "strategy": strategy,
                                  "params": params, "checks": {}}, indent=2))
    trusted = None
    if signer is None:
        signer = run_signer(by, folder / TRUSTED)
        trusted = TrustedKeys.load(folder / TRUSTED)
    approved = folder / "approved.json"
    approved.write_text(json.dumps(approve(best, report, signer, note), indent=2))
    check(approved, trusted)
    return approved


def synthetic_trusted(approved: Path) -> Path:
    """The trusted-keys file that accepts :func:`synthetic_approval`'s signature."""
    return approved.parent / TRUSTED


def load_synthetic(folder: Path, *args: Any, **kwargs: Any) -> Any:
    """:func:`synthetic_approval`, loaded as the executor loads it (``ApprovedParams``, whose
    ``trusted_keys`` goes into the executor's spec)."""
    from spark_ray.execution.params import load_approved

    approved = synthetic_approval(folder, *args, **kwargs)
    return load_approved(approved, synthetic_trusted(approved))
