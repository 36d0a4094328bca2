"""The shipped experiments, and bad experiment files failing early with the file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from spark_ray.chaos.experiments import EXPERIMENTS_DIR, load_experiments, preflight
from spark_ray.errors import UserError

ISSUE_IDS = ["lag_spike", "seq_gap", "drop", "dup_burst", "malformed", "disconnect_storm",
             "stall", "kill_connector", "kill_normalizer", "kill_sink", "kill_executor",
             "kill_breaker", "kill_node"]
GOOD = ("id: {id}\nfault: {{kind: venue, target: latency, params: {{delay_ms: 3000}}}}\n"
        "duration_s: 20\nexpect_alert: StreamsIngestLagHigh\nmax_detect_s: 30\n"
        "max_recover_s: 30\n")


def test_shipped_experiments_are_the_issues_in_its_order() -> None:
    exps = load_experiments(EXPERIMENTS_DIR)
    assert [e.id for e in exps] == ISSUE_IDS
    assert [e.id for e in exps if e.quick] == ["lag_spike", "seq_gap", "drop",
                                               "kill_normalizer"]
    preflight(exps)  # every fault's target and parameters are usable
    assert all(e.max_lost == 0 and e.max_duplicates == 0 for e in exps)  # nothing lost
    kinds = {e.fault.kind for e in exps}
    assert kinds == {"venue", "chaos_endpoint", "kill_actor", "kill_node"}
    drop = next(e for e in exps if e.id == "drop")
    assert drop.fault.params == {"probability": 0.05}  # the issue's 5%


def write(tmp: Path, body: str, name: str = "x.yaml") -> Path:
    path = tmp / name
    path.write_text(body)
    return path


@pytest.mark.parametrize(("body", "needle"), [
    (GOOD.format(id="a") + "max_detect: 3\n", "max_detect: Extra inputs are not permitted"),
    (GOOD.format(id="a").replace("duration_s: 20", "duration_s: soon"),
     "duration_s: Input should be a valid number"),
    (GOOD.format(id="a").replace("expect_alert: StreamsIngestLagHigh\n", ""),
     "expect_alert: Field required"),
    (GOOD.format(id="a").replace("max_detect_s: 30", "max_detect_s: 0"),
     "max_detect_s: Input should be greater than 0"),
    (GOOD.format(id="Bad-Id"), "id: String should match pattern"),
    (GOOD.format(id="a").replace("kind: venue", "kind: meteor"), "fault.kind: Input should be"),
    (GOOD.format(id="a").replace("target: latency,", "target: latency, when: now,"),
     "fault.when: Extra inputs are not permitted"),
])
def test_model_errors_name_file_and_field(tmp_path: Path, body: str, needle: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(UserError) as info:
        load_experiments(tmp_path)
    assert needle in str(info.value)
    assert f"{path}: " in str(info.value)


@pytest.mark.parametrize(("fault", "extra", "needle"), [
    ("{kind: venue, target: latency, params: {delay: 3000}}", "",
     "fault.params: unknown fault field(s): delay"),
    ("{kind: venue, target: lag, params: {delay_ms: 3000}}", "", "fault.target: 'lag' is not "
                                                                 "a venue fault"),
    ("{kind: venue, target: drop, params: {probability: 1.5}}", "",
     "fault.params: probability: must be between 0 and 1"),
    ("{kind: venue, target: gap, params: {count: 10}}", "",
     "fault.params.symbol: a gap needs the symbol"),
    ("{kind: venue, target: stall}", "duration_s: 0\n", "duration_s: a venue stall fault"),
    ("{kind: chaos_endpoint, target: meteor}", "", "fault.target: 'meteor' is not a /chaos"),
    ("{kind: chaos_endpoint, target: duplicate, params: {cnt: 5}}", "",
     "fault.params.cnt: not a parameter of this fault (allowed: count, delay_ms)"),
    ("{kind: kill_actor, target: planner}", "", "fault.target: 'planner' is not an actor role"),
    ("{kind: kill_actor, target: sink, params: {mid_wrte: true}}", "",
     "fault.params.mid_wrte: not a parameter of this fault (allowed: mid_write)"),
    ("{kind: kill_node, target: head}", "", "fault.target: 'head': a node kill removes"),
])
def test_fault_parameters_are_checked_before_anything_runs(tmp_path: Path, fault: str,
                                                           extra: str, needle: str) -> None:
    body = GOOD.format(id="a").replace(
        "fault: {kind: venue, target: latency, params: {delay_ms: 3000}}", f"fault: {fault}")
    body = body.replace("duration_s: 20\n", extra or "duration_s: 20\n")
    path = write(tmp_path, body)
    exps = load_experiments(tmp_path)  # the model itself is fine...
    with pytest.raises(UserError) as info:
        preflight(exps)  # ...the fault is not
    assert f"{path}: {needle}" in str(info.value)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    write(tmp_path, GOOD.format(id="a").replace("delay_ms", "delay"), "a.yaml")
    write(tmp_path, GOOD.format(id="b").replace("target: latency", "target: lag"), "b.yaml")
    with pytest.raises(UserError) as info:
        preflight(load_experiments(tmp_path))
    assert "a.yaml: fault.params" in str(info.value) and "b.yaml: fault.target" in str(
        info.value)


def test_duplicate_ids_and_unknown_selection(tmp_path: Path) -> None:
    write(tmp_path, GOOD.format(id="a"), "1.yaml")
    write(tmp_path, GOOD.format(id="b"), "2.yaml")
    assert [e.id for e in load_experiments(tmp_path, ["b", "a"])] == ["b", "a"]
    with pytest.raises(UserError, match=r"--experiments: unknown id\(s\) zz; known: a, b"):
        load_experiments(tmp_path, ["a", "zz"])
    write(tmp_path, GOOD.format(id="a"), "3.yaml")
    with pytest.raises(UserError, match=r"3.yaml: id: experiment id 'a' is declared twice"):
        load_experiments(tmp_path)


def test_requirement_missing_means_pending(tmp_path: Path) -> None:
    write(tmp_path, GOOD.format(id="a") + "requires: spark_ray.not_built_yet\n")
    (exp,) = load_experiments(tmp_path)
    assert exp.missing_requirement() == "spark_ray.not_built_yet is not built yet"
    write(tmp_path, GOOD.format(id="a") + "requires: spark_ray.chaos.runner\n")
    (exp,) = load_experiments(tmp_path)
    assert exp.missing_requirement() is None
