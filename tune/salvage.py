"""Resume a sweep whose Tune experiment state was torn by the interruption itself.

Tune writes ``experiment_state-*.json`` with a plain ``open(..., "w")`` and then copies it into
the experiment folder; a driver killed during that write or copy leaves the file empty or cut
short. ``Tuner.restore`` then logs "Failed to restore the run state", starts over with an empty
parameter space and reports one default trial as the whole sweep (seen in CI: a 14-trial sweep
resumed into a 1-trial leaderboard, exit 0). Every trial's own folder is intact though: its
``params.json`` and one ``result.json`` line per report. So a torn sweep is resumed from those:
finished trials are kept as they are and only the unfinished ones run again, with their exact
parameters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATE_GLOB = "experiment_state-*.json"


@dataclass(frozen=True)
class KeptResult:
    """A finished trial read back from its folder, shaped like a Tune ``Result``
    (``metrics`` and ``config``) so the leaderboard takes it unchanged."""

    metrics: dict[str, Any]
    config: dict[str, Any]


@dataclass(frozen=True)
class Salvage:
    """What a torn experiment folder still holds."""

    kept: list[KeptResult]  # finished trials, their last report
    rerun: list[dict[str, Any]]  # parameters of trials that had not finished
    state_file: str  # the unreadable state file, named in the notice

    def notice(self) -> str:
        return (f"--resume: Tune's experiment state {self.state_file} is unreadable (the run "
                f"was stopped while Tune was saving it); resuming from the trial folders: "
                f"{len(self.kept)} finished trials kept, {len(self.rerun)} run again with their "
                f"own parameters")


def torn_state(experiment: Path) -> str | None:
    """The newest experiment-state file's name when it does not parse, else None (also None
    when there is none at all: Tune's own check reports that)."""
    states = sorted(experiment.glob(STATE_GLOB))
    if not states:
        return None
    try:
        json.loads(states[-1].read_text())
    except (OSError, ValueError):
        return states[-1].name
    return None


def _last_report(result_file: Path) -> dict[str, Any] | None:
    """The trial's last complete report; a line cut short by the kill is skipped."""
    last = None
    try:
        lines = result_file.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        try:
            last = json.loads(line)
        except ValueError:
            continue
    return last


def salvage(experiment: Path, folds: int, state: str) -> Salvage:
    """Split the trial folders into finished (all ``folds`` reported, or scored invalid) and
    unfinished ones; ``state`` is the torn state file :func:`torn_state` found. Folders without
    parameters are Tune's own restart attempts: skipped."""
    kept: list[KeptResult] = []
    rerun: list[dict[str, Any]] = []
    for trial in sorted(p for p in experiment.iterdir() if p.is_dir()):
        try:
            params = json.loads((trial / "params.json").read_text())
        except (OSError, ValueError):
            continue
        if not params:
            continue
        report = _last_report(trial / "result.json")
        done = report is not None and "objective" in report and (
            int(report.get("fold", 0)) >= folds or bool(report.get("invalid")))
        if done and report is not None:
            kept.append(KeptResult(report, params))
        else:
            rerun.append(params)
    return Salvage(kept, rerun, state)
