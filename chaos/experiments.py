"""Experiment declarations: what fault to inject, which alert must catch it, how fast, what loss.

One YAML file per experiment under ``chaos/experiments/``; the runner reads them with
:func:`load_experiments`, so a typo in a field fails before any fault is injected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from spark_ray.errors import UserError
from spark_ray.yamlmodels import load_yaml_model

FaultKind = Literal["venue", "chaos_endpoint", "kill_actor", "kill_node"]


class Fault(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    target: str = Field(description="venue knob, /chaos action, actor name or node role")
    params: dict[str, Any] = Field(default_factory=dict)


class Experiment(BaseModel):
    """A fault, its duration, the alert expected and the limits that decide PASS or FAIL."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    description: str = ""
    fault: Fault
    duration_s: float = Field(gt=0, le=3600)
    expect_alert: str = Field(min_length=1)
    max_detect_s: float = Field(gt=0)
    max_recover_s: float = Field(gt=0)
    max_lost: int = Field(0, ge=0)
    quick: bool = Field(False, description="part of the quick subset run inside make test")


def load_experiments(folder: Path, ids: list[str] | None = None) -> list[Experiment]:
    """All experiments in ``folder`` (sorted by file name), or the named ones in that order."""
    if not folder.is_dir():
        raise UserError(f"{folder}: experiments folder not found")
    found: dict[str, Experiment] = {}
    for path in sorted(folder.glob("*.yaml")):
        exp = load_yaml_model(path, Experiment)
        if exp.id in found:
            raise UserError(f"{path}: id: experiment id {exp.id!r} is declared twice")
        found[exp.id] = exp
    if ids is None:
        return list(found.values())
    unknown = [i for i in ids if i not in found]
    if unknown:
        raise UserError(f"--experiments: unknown id(s) {', '.join(unknown)}; "
                        f"known: {', '.join(found) or 'none'}")
    return [found[i] for i in ids]
