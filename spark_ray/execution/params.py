"""The parameters the executor may trade: an ``approved.json`` that passes the approval check.

``spark-ray params check`` and the executor run the same :func:`spark_ray.approval.approved.check`:
signed by a key of the trusted-keys file, candidate and risk report unchanged since approval
(sha256), the review PASSed, the approved
parameters and signal model (``signals_model``) equal the candidate's. Anything else is refused
with the check's own reasons, and the strategy and its parameters are validated by the
strategy's own model before a bar is traded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spark_ray.approval.approved import check
from spark_ray.approval.signing import TrustedKeys
from spark_ray.errors import CheckFailed, UserError
from spark_ray.strategy.base import Strategy
from spark_ray.strategy.loader import load_strategy, make_strategy


@dataclass(frozen=True)
class ApprovedParams:
    strategy: str
    params: dict[str, Any]
    approval: dict[str, Any]
    path: str
    interval: str | None  # the candidate's scenario interval, when it names one
    # {path, model_sha256} of the signal model the parameters were optimized and reviewed on
    # (approved.json's ``signals_model``), None when they trade without one: the model served
    # beside them must have this sha256.
    signals_model: dict[str, Any] | None = None
    trusted_keys: str | None = None  # the trusted-keys file the approval was checked against

    @property
    def strategy_cls(self) -> type[Strategy]:
        return load_strategy(self.strategy)


def load_approved(path: str | Path, trusted_keys: str | Path | None = None) -> ApprovedParams:
    """Check ``path`` against the approvers of ``trusted_keys`` (default: the trusted-keys file
    of this node, see :mod:`spark_ray.approval.signing`) and return what it approves;
    CheckFailed (exit 1) or UserError (exit 2) with the reason otherwise."""
    p = Path(path)
    trusted = TrustedKeys.load(trusted_keys)
    try:
        approved = check(p, trusted)
    except CheckFailed as exc:
        raise CheckFailed(f"refusing to trade: {exc}") from None
    strategy = approved.get("strategy")
    params = approved.get("params")
    if not isinstance(strategy, str) or not isinstance(params, dict):
        raise CheckFailed(f"refusing to trade: {p}: no strategy/params in the approval")
    try:
        cls = load_strategy(strategy)
        make_strategy(cls, params)
    except UserError as exc:
        raise CheckFailed(f"refusing to trade: {p}: {exc}") from None
    interval = None
    try:
        best = json.loads((p.parent / approved["candidate"]).read_text())
        intervals = {s.get("interval") for s in best.get("scenarios", []) if isinstance(s, dict)}
        if len(intervals) == 1:
            interval = intervals.pop()
    except (OSError, ValueError, KeyError, TypeError):
        interval = None
    model = approved.get("signals_model")
    if model is not None and not (isinstance(model, dict)
                                  and isinstance(model.get("model_sha256"), str)):
        raise CheckFailed(f"refusing to trade: {p}: signals_model is not "
                          "{path, model_sha256}")
    return ApprovedParams(strategy, dict(params), approved, str(p.resolve()), interval,
                          dict(model) if model is not None else None,
                          str(trusted.path.resolve()))
