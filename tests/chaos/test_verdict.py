"""PASS/FAIL from an experiment's limits, the exit code, and the table the canary writes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from spark_ray.chaos.experiments import Experiment
from spark_ray.chaos.verdict import (
    COLUMNS,
    FAIL,
    PASS,
    PENDING,
    Measurement,
    exit_code,
    judge,
    markdown,
    pending,
    table_json,
)

EXP = Experiment.model_validate({
    "id": "drop", "fault": {"kind": "venue", "target": "drop", "params": {"probability": 0.05}},
    "duration_s": 15, "expect_alert": "StreamsFramesMissing", "max_detect_s": 20,
    "max_recover_s": 60})
T0 = 1_795_000_000.0


def good(**kw: object) -> Measurement:
    base: dict[str, Any] = dict(experiment="drop", alert="StreamsFramesMissing",
                                   injected_at=T0, fault_ended_at=T0 + 15, fired_at=T0 + 9,
                                   resolved_at=T0 + 46, healed_at=T0 + 16.2, lost=0,
                                   duplicates=0)
    base.update(kw)
    return Measurement(**base)


def test_a_clean_experiment_passes_with_its_spans() -> None:
    m = judge(EXP, good())
    assert (m.status, m.reasons) == (PASS, [])
    assert (m.detection_s, m.recovery_s, m.heal_s) == (9.0, 31.0, pytest.approx(1.2))


@pytest.mark.parametrize(("change", "reason"), [
    ({"fired_at": None, "resolved_at": None}, "StreamsFramesMissing never fired (waited 20 s)"),
    ({"fired_at": T0 + 25}, "detected after 25.0 s > 20 s"),
    ({"resolved_at": None}, "did not resolve within 60 s of the fault's end"),
    ({"resolved_at": T0 + 15 + 61}, "resolved 61.0 s after the fault > 60 s"),
    ({"lost": 3}, "3 trades lost (max 0)"),
    ({"lost": None}, "loss not measured"),
    ({"duplicates": 2}, "2 duplicates in the lake (max 0)"),
    ({"checks": {"normalizer came back as a new process": False}},
     "check failed: normalizer came back as a new process"),
    ({"baseline_quiet": False}, "StreamsFramesMissing was already active before the fault"),
])
def test_each_limit_fails_the_experiment_with_its_reason(change: dict[str, object],
                                                        reason: str) -> None:
    m = judge(EXP, good(**change))
    assert m.status == FAIL
    assert any(reason in r for r in m.reasons), m.reasons


def test_pending_is_reported_but_does_not_fail_the_run() -> None:
    p = pending(EXP, "spark_ray.x is not built yet")
    assert judge(EXP, p).status == PENDING
    assert exit_code([judge(EXP, good()), p]) == 0
    assert exit_code([judge(EXP, good()), p, judge(EXP, good(lost=1))]) == 1


def test_markdown_and_json_tables() -> None:
    rows = [judge(EXP, good()), judge(EXP, good(experiment="seq_gap", lost=2)),
            pending(EXP, "not built")]
    md = markdown(rows)
    assert "| " + " | ".join(COLUMNS) + " |" in md
    assert "| drop | " in md and "| 9.0 | 31.0 | 1.2 | 0 | 0 | PASS |" in md
    assert "- seq_gap: FAIL: 2 trades lost (max 0)" in md
    assert "- drop: PENDING: not built" in md
    assert "1/3 passed" in md
    doc = json.loads(table_json(rows))
    assert doc["exit_code"] == 1
    first = doc["rows"][0]
    assert first["experiment"] == "drop" and first["status"] == "PASS"
    assert first["detection_s"] == 9.0 and first["recovery_s"] == 31.0 and first["lost"] == 0
    assert first["injected"].startswith("2026-") and first["alert_fired_at"].endswith("+00:00")


def test_measurement_round_trips_through_json() -> None:
    m = judge(EXP, good(checks={"x": True}, details={"alerts": [{"alert": "A"}]}))
    back = Measurement.from_dict(json.loads(json.dumps(m.to_dict())))
    assert back == m
    assert back.detection_s == m.detection_s
