"""The fault alert rules: promtool validates them, its unit tests show each alert firing and
staying silent, and every experiment expects an alert that exists."""

from __future__ import annotations

import subprocess

import yaml
from fault_alert_cases import CASES, RULES, TESTS, load_rules, text

from spark_ray.chaos.experiments import EXPERIMENTS_DIR, load_experiments
from spark_ray.observe.prom import rule_files


def test_promtool_check_rules(promtool: str) -> None:
    out = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 5 rules found" in out.stdout  # 2 recording rules, 3 alerts


def test_promtool_unit_tests_pass(promtool: str) -> None:
    out = subprocess.run([promtool, "test", "rules", str(TESTS)], capture_output=True,
                         text=True, timeout=60, cwd=TESTS.parent)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_unit_test_file_is_generated_from_current_cases() -> None:
    assert TESTS.read_text() == text(), \
        "run: PYTHONPATH=tests python tests/chaos/fault_alert_cases.py"


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    alerts = set(load_rules())
    assert alerts == {"StreamsFramesMissing", "StreamsDeadLetters", "ActorRestarted"}
    assert {c.alert for c in CASES if c.fires} == alerts
    assert {c.alert for c in CASES if not c.fires} == alerts


def test_every_alert_has_severity_summary_description_runbook() -> None:
    for name, rule in load_rules().items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        for key in ("summary", "description", "runbook"):
            assert len(rule["annotations"].get(key, "")) > 20, (name, key)


def test_observe_up_loads_the_fault_rules_too() -> None:
    """`spark-ray observe up` (and the canary) load every rule file of grafana/alerts."""
    assert RULES in rule_files()


def test_every_experiment_expects_an_existing_alert() -> None:
    """Every declared experiment must be detected by an alert that is really defined."""
    defined = set()
    for path in rule_files():
        doc = yaml.safe_load(path.read_text())
        defined |= {r["alert"] for g in doc["groups"] for r in g["rules"] if "alert" in r}
    for e in load_experiments(EXPERIMENTS_DIR):
        assert e.expect_alert in defined, (e.id, e.expect_alert)
