"""What one experiment measured, the verdict against its limits, and the table of all of them.

Plain data and pure functions (no Ray, no I/O), so the PASS/FAIL rules are testable and the
table the canary writes is the same whether the experiment ran here or in the multi-node
subprocess (which sends its :class:`Measurement` back as JSON).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from spark_ray.chaos.experiments import Experiment

PASS, FAIL, PENDING = "PASS", "FAIL", "PENDING"
COLUMNS = ("experiment", "injected", "alert", "alert fired at", "resolved at", "detection s",
           "recovery s", "heal s", "lost", "duplicates", "status")


@dataclass
class Measurement:
    """Times are epoch seconds (wall clock, comparable with Prometheus and the venue's log)."""

    experiment: str
    alert: str = ""
    injected_at: float | None = None
    fault_ended_at: float | None = None
    fired_at: float | None = None
    resolved_at: float | None = None
    healed_at: float | None = None  # the lake held every id published up to the fault's end
    lost: int | None = None
    duplicates: int | None = None
    baseline_quiet: bool = True
    checks: dict[str, bool] = field(default_factory=dict)  # experiment-specific invariants
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    status: str = PENDING
    reasons: list[str] = field(default_factory=list)

    @property
    def detection_s(self) -> float | None:
        return _span(self.injected_at, self.fired_at)

    @property
    def recovery_s(self) -> float | None:
        return _span(self.fault_ended_at, self.resolved_at)

    @property
    def heal_s(self) -> float | None:
        return _span(self.fault_ended_at, self.healed_at)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(detection_s=_round(self.detection_s), recovery_s=_round(self.recovery_s),
                 heal_s=_round(self.heal_s))
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Measurement:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


def _span(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else max(0.0, b - a)


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def judge(exp: Experiment, m: Measurement) -> Measurement:
    """Set ``m.status`` and ``m.reasons`` from the experiment's limits (PENDING stays)."""
    if m.status == PENDING and m.injected_at is None:
        return m
    reasons: list[str] = []
    if not m.baseline_quiet:
        reasons.append(f"{exp.expect_alert} was already active before the fault")
    if m.fired_at is None:
        reasons.append(f"{exp.expect_alert} never fired (waited {exp.max_detect_s:g} s)")
    elif (d := m.detection_s) is not None and d > exp.max_detect_s:
        reasons.append(f"detected after {d:.1f} s > {exp.max_detect_s:g} s")
    if m.fired_at is not None:
        if m.resolved_at is None:
            reasons.append(f"{exp.expect_alert} did not resolve within {exp.max_recover_s:g} s "
                           "of the fault's end")
        elif (r := m.recovery_s) is not None and r > exp.max_recover_s:
            reasons.append(f"resolved {r:.1f} s after the fault > {exp.max_recover_s:g} s")
    if m.lost is None:
        reasons.append("loss not measured")
    elif m.lost > exp.max_lost:
        reasons.append(f"{m.lost} trades lost (max {exp.max_lost})")
    if m.duplicates is not None and m.duplicates > exp.max_duplicates:
        reasons.append(f"{m.duplicates} duplicates in the lake (max {exp.max_duplicates})")
    reasons += [f"check failed: {name}" for name, ok in m.checks.items() if not ok]
    m.reasons = reasons
    m.status = FAIL if reasons else PASS
    return m


def pending(exp: Experiment, why: str) -> Measurement:
    m = Measurement(exp.id, alert=exp.expect_alert, status=PENDING, reasons=[why])
    return m


def exit_code(results: list[Measurement]) -> int:
    """1 if any experiment failed, else 0 (a PENDING one is reported, not failed)."""
    return 1 if any(m.status == FAIL for m in results) else 0


def iso(t: float | None) -> str:
    if t is None:
        return "-"
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S.%f")[:-5]


def _num(v: float | int | None) -> str:
    if v is None:
        return "-"
    return str(v) if isinstance(v, int) else f"{v:.1f}"


def row(m: Measurement) -> dict[str, Any]:
    """One table row (JSON: numbers stay numbers, times are ISO-8601 UTC)."""
    def full(t: float | None) -> str | None:
        return datetime.fromtimestamp(t, UTC).isoformat() if t is not None else None

    return {"experiment": m.experiment, "injected": full(m.injected_at), "alert": m.alert,
            "alert_fired_at": full(m.fired_at), "resolved_at": full(m.resolved_at),
            "detection_s": _round(m.detection_s), "recovery_s": _round(m.recovery_s),
            "heal_s": _round(m.heal_s), "lost": m.lost, "duplicates": m.duplicates,
            "status": m.status, "reasons": list(m.reasons)}


def markdown(results: list[Measurement], title: str = "Chaos canary") -> str:
    """The table (times UTC, hh:mm:ss.s) plus one line per experiment that did not pass."""
    lines = [f"# {title}", "", "| " + " | ".join(COLUMNS) + " |",
             "|" + "|".join("---" for _ in COLUMNS) + "|"]
    for m in results:
        cells = [m.experiment, iso(m.injected_at), m.alert, iso(m.fired_at),
                 iso(m.resolved_at), _num(m.detection_s), _num(m.recovery_s), _num(m.heal_s),
                 _num(m.lost), _num(m.duplicates), m.status]
        lines.append("| " + " | ".join(cells) + " |")
    passed = sum(m.status == PASS for m in results)
    lines += ["", f"{passed}/{len(results)} passed; times UTC; detection from injection, "
                  "recovery and heal from the fault's end (heal: the lake holds every trade "
                  "published until then)."]
    for m in results:
        if m.status != PASS:
            lines.append(f"- {m.experiment}: {m.status}: " + "; ".join(m.reasons))
    return "\n".join(lines) + "\n"


def table_json(results: list[Measurement]) -> str:
    return json.dumps({"columns": list(COLUMNS), "rows": [row(m) for m in results],
                       "exit_code": exit_code(results)}, indent=2) + "\n"
