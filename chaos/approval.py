"""Approved parameters for synthetic runs: the chaos canary and the test suite.

The canary trades a synthetic venue with a fast SMA that no review would pass, so it writes the
risk report (a PASS) itself and approves it through the real ``approve``/``check`` -- the
executor trusts exactly what ``check`` accepts, here as in production. Never for real
parameters: those are reviewed by ``spark-ray params review`` (tune's review, tested there).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from spark_ray.approval.approved import approve, check, sha256_file

FAST_SMA = {"fast": 2, "slow": 3}  # SMA(2)/SMA(3) on 1 s bars trades within seconds


def synthetic_approval(folder: Path, strategy: str = "sma_cross",
                       params: dict[str, Any] | None = None, interval: str = "1s",
                       by: str = "chaos-canary", note: str = "synthetic run") -> Path:
    """best.json + a hand-written PASS risk report + approved.json in ``folder``; checked."""
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
    approved = folder / "approved.json"
    approved.write_text(json.dumps(approve(best, report, by, note), indent=2))
    check(approved)
    return approved
