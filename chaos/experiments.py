"""Experiment declarations: what fault to inject, which alert must catch it, how fast, what loss.

One YAML file per experiment under ``chaos/experiments/``; the runner reads them with
:func:`load_experiments` and checks every fault's parameters with :func:`preflight` before Ray
starts, so a typo in a field fails (naming the file and the field) before any fault is injected.

A fault is one of:

- ``venue``: a venue simulator knob (``target`` a fault kind of :mod:`spark_ray.venue.faults`:
  latency, drop, gap, duplicate, malformed, disconnect, stall, ...; ``params`` its fields);
- ``chaos_endpoint``: ``POST /chaos`` on the fabric's control plane (``target`` its kind);
- ``kill_actor``: ``ray.kill`` of a named actor, which Ray restarts (``target`` its role);
- ``kill_node``: a node removed from a local multi-node cluster (``ray.cluster_utils``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from spark_ray.errors import UserError
from spark_ray.yamlmodels import load_yaml_model

FaultKind = Literal["venue", "chaos_endpoint", "kill_actor", "kill_node"]
EXPERIMENTS_DIR = Path(__file__).resolve().parent / "experiments"

# What each non-venue fault accepts (venue faults are checked against the venue's FaultSpec).
CHAOS_ENDPOINT_KINDS = ("lag", "gap", "drop", "duplicate", "disconnect")
CHAOS_ENDPOINT_PARAMS = {"count", "delay_ms"}
ACTOR_ROLES = ("connector", "normalizer", "sink", "breaker", "executor")
ACTOR_PARAMS: dict[str, set[str]] = {
    "connector": set(), "normalizer": set(),
    "sink": {"mid_write"},  # kill while acknowledged rows sit only in its write-ahead log
    "breaker": {"trip_first"},  # trip it first: the TRIPPED state must survive the restart
    "executor": {"mid_order"},
}
NODE_TARGETS = ("worker",)
NODE_PARAMS = {"workers"}


class Fault(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    target: str = Field(description="venue knob, /chaos action, actor role or node role")
    params: dict[str, Any] = Field(default_factory=dict)


class Experiment(BaseModel):
    """A fault, its duration, the alert expected and the limits that decide PASS or FAIL."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    description: str = ""
    fault: Fault
    duration_s: float = Field(0.0, ge=0, le=3600,
                              description="how long the fault lasts (0: instant or count-based)")
    expect_alert: str = Field(min_length=1)
    expect_labels: dict[str, str] = Field(default_factory=dict,
                                          description="labels the firing alert must carry")
    max_detect_s: float = Field(gt=0, description="injection to the alert firing")
    max_recover_s: float = Field(gt=0, description="end of the fault to the alert resolved")
    max_lost: int = Field(0, ge=0)
    max_duplicates: int = Field(0, ge=0)
    settle_s: float = Field(150.0, gt=0, description="longest wait for quiet alerts before")
    requires: str | None = Field(None, description="module that must exist, else PENDING")
    quick: bool = Field(False, description="part of the quick subset run inside make test")
    _source: Path | None = PrivateAttr(None)

    @property
    def source(self) -> str:
        return str(self._source) if self._source else self.id

    def missing_requirement(self) -> str | None:
        """Why the experiment cannot run yet (its component is not built), or None."""
        if self.requires is None:
            return None
        try:
            found = importlib.util.find_spec(self.requires) is not None
        except ModuleNotFoundError:
            found = False
        return None if found else f"{self.requires} is not built yet"


def load_experiments(folder: Path, ids: list[str] | None = None) -> list[Experiment]:
    """All experiments in ``folder`` (sorted by file name), or the named ones in that order."""
    if not folder.is_dir():
        raise UserError(f"{folder}: experiments folder not found")
    found: dict[str, Experiment] = {}
    for path in sorted(folder.glob("*.yaml")):
        exp = load_yaml_model(path, Experiment)
        exp._source = path
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


def ordered(experiments: list[Experiment], order: list[str]) -> list[Experiment]:
    """``experiments`` in the canonical ``order`` (ids not in it last, by id)."""
    rank = {eid: i for i, eid in enumerate(order)}
    return sorted(experiments, key=lambda e: (rank.get(e.id, len(rank)), e.id))


def preflight(experiments: list[Experiment]) -> None:
    """Check every fault's target and parameters; UserError naming file and field."""
    problems = [p for e in experiments if (p := fault_problem(e))]
    if problems:
        raise UserError("\n".join(problems))


def fault_problem(exp: Experiment) -> str | None:
    """``"<file>: fault.<field>: <reason>"`` for an unusable fault, else None."""
    f = exp.fault
    where = exp.source
    if f.kind == "venue":
        from spark_ray.venue.faults import FaultKind as VenueKind
        from spark_ray.venue.faults import FaultSpec

        kinds = [k.value for k in VenueKind]
        if f.target not in kinds:
            return f"{where}: fault.target: {f.target!r} is not a venue fault; one of {kinds}"
        if "duration_s" in f.params or "kind" in f.params:
            return f"{where}: fault.params: set the duration with duration_s, the kind with target"
        params = dict(f.params)
        if exp.duration_s > 0:
            params["duration_s"] = exp.duration_s
        try:
            FaultSpec.from_dict({"kind": f.target, **params})
        except (ValueError, TypeError) as e:
            return f"{where}: fault.params: {e}"
        if exp.duration_s == 0 and "count" not in params:
            return (f"{where}: duration_s: a venue {f.target} fault without a count needs "
                    "duration_s > 0")
        if f.target == "gap" and "symbol" not in params:
            return f"{where}: fault.params.symbol: a gap needs the symbol it skips ids of"
        return None
    if f.kind == "chaos_endpoint":
        if f.target not in CHAOS_ENDPOINT_KINDS:
            return (f"{where}: fault.target: {f.target!r} is not a /chaos kind; one of "
                    f"{list(CHAOS_ENDPOINT_KINDS)}")
        return _unknown_params(where, f.params, CHAOS_ENDPOINT_PARAMS)
    if f.kind == "kill_actor":
        if f.target not in ACTOR_ROLES:
            return (f"{where}: fault.target: {f.target!r} is not an actor role; one of "
                    f"{list(ACTOR_ROLES)}")
        return _unknown_params(where, f.params, ACTOR_PARAMS[f.target])
    if f.target not in NODE_TARGETS:
        return f"{where}: fault.target: {f.target!r}: a node kill removes a 'worker' node"
    return _unknown_params(where, f.params, NODE_PARAMS)


def _unknown_params(where: str, params: dict[str, Any], allowed: set[str]) -> str | None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        return (f"{where}: fault.params.{unknown[0]}: not a parameter of this fault "
                f"(allowed: {', '.join(sorted(allowed)) or 'none'})")
    return None
