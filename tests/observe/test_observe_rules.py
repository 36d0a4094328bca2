"""Alert rules: promtool validates them, and its unit tests show each alert firing and silent."""

from __future__ import annotations

import subprocess

import yaml

from alert_cases import CASES, RULES, TESTS, load_rules, text


def test_promtool_check_rules(promtool: str) -> None:
    out = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(load_rules())} rules found" in out.stdout


def test_promtool_unit_tests_pass(promtool: str) -> None:
    out = subprocess.run([promtool, "test", "rules", str(TESTS)], capture_output=True,
                         text=True, timeout=60, cwd=TESTS.parent)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_unit_test_file_is_generated_from_current_cases() -> None:
    assert TESTS.read_text() == text(), "run: PYTHONPATH=tests python tests/observe/alert_cases.py"


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    alerts = set(load_rules())
    firing = {c.alert for c in CASES if c.fires}
    silent = {c.alert for c in CASES if not c.fires}
    assert alerts == firing == silent, (alerts - firing, alerts - silent)


def test_every_alert_has_severity_summary_description_runbook() -> None:
    for name, rule in load_rules().items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        for key in ("summary", "description", "runbook"):
            assert len(rule["annotations"].get(key, "")) > 20, (name, key)


def test_thresholds_match_the_issue() -> None:
    r = load_rules()
    want = {
        "StreamsIngestLagHigh": ("ray_streams_ingest_lag_seconds", "> 2", "warning"),
        "StreamsIngestLagCritical": ("ray_streams_ingest_lag_seconds", "> 5", "critical"),
        "StreamsSequenceGapUnrepaired": ("ray_streams_seq_gap_total", "> 0", "critical"),
        "StreamsEventToStoreSlow": ("ray_streams_event_to_db_ms_bucket", "> 300", "warning"),
        "StreamsEventToStoreCritical": ("ray_streams_event_to_db_ms_bucket", "> 1000",
                                        "critical"),
        "StreamsHeartbeatMissing": ("ray_streams_heartbeat", "> 60", "critical"),
        "StreamsHeartbeatStale": ("ray_streams_heartbeat", "> 15", "warning"),
        "StreamsMessageRateLow": ("ray_streams_messages_total", "< 0.1", "warning"),
        "StreamsDuplicatesHigh": ("ray_streams_dup_total", "> 0.1", "warning"),
        "StreamsDropping": ("ray_streams_drop_total", "> 0.001", "critical"),
        "BreakerTripped": ("ray_breaker_state", "== 1", "critical"),
        "BreakerSymbolTripped": ('ray_breaker_state{scope=~"symbol:.+"}', "== 1", "critical"),
        "ExecutorDown": ("ray_actors", "Executor", "critical"),
        "SignalsStale": ("ray_signals_feature_staleness_s", "> 30", "critical"),
        "SignalLatencyHigh": ("ray_signals_latency_ms_bucket", "> 50", "warning"),
    }
    assert set(r) == set(want)
    for name, (metric, threshold, severity) in want.items():
        expr = " ".join(r[name]["expr"].split())
        assert metric in expr and threshold in expr, (name, expr)
        assert r[name]["labels"]["severity"] == severity


def test_rule_file_is_plain_prometheus_format() -> None:
    doc = yaml.safe_load(RULES.read_text())
    assert set(doc) == {"groups"}
    for g in doc["groups"]:
        assert set(g) <= {"name", "interval", "rules"}
