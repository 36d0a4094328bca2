"""The promtool unit tests of the fault alerts (``grafana/alerts/spark-ray-faults.yml``), as data:
for every alert cases where it fires and cases where it stays silent.
``grafana/alerts/tests/spark-ray-faults.test.yml`` is generated from this (``python
tests/chaos/fault_alert_cases.py`` rewrites it; a test checks it is current), because promtool
compares annotations verbatim and these are rendered here from the rule file itself.

Series carry a ``WorkerId`` like Ray's export does: the rules tell restarts from loss by it.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "grafana" / "alerts" / "spark-ray-faults.yml"
TESTS = REPO / "grafana" / "alerts" / "tests" / "spark-ray-faults.test.yml"

S = {"exchange": "binance", "symbol": "BTCUSDT", "stream": "trade"}
_STREAM = 'exchange="binance",symbol="BTCUSDT",stream="trade"'
CONN = {"exchange": "binance", "stream": "connector:binance:0"}
_CONN = 'exchange="binance",symbol="all",stream="connector:binance:0"'


def last(w: str) -> str:
    return f'ray_streams_last_seq{{{_STREAM},WorkerId="{w}"}}'


def msgs(w: str) -> str:
    return f'ray_streams_messages_total{{{_STREAM},WorkerId="{w}"}}'


def lag(w: str) -> str:
    return f'ray_streams_ingest_lag_seconds{{{_STREAM},WorkerId="{w}"}}'


def dups(w: str) -> str:
    return f'ray_streams_dup_total{{{_STREAM},WorkerId="{w}"}}'


def dead(w: str, reason: str = "invalid") -> str:
    return (f'ray_streams_dead_letter_total{{exchange="binance",symbol="all",stream="all",'
            f'reason="{reason}",WorkerId="{w}"}}')


def beat(w: str) -> str:
    return f'ray_streams_heartbeat{{{_CONN},WorkerId="{w}"}}'


def e2db(w: str) -> str:
    return (f'ray_streams_event_to_db_ms_count{{exchange="binance",symbol="all",stream="all",'
            f'WorkerId="{w}"}}')


def brk(w: str) -> str:
    return f'ray_breaker_state{{breaker="breaker:chaos",WorkerId="{w}"}}'


def pos(w: str) -> str:
    return f'ray_executor_position{{executor="chaos-x",symbol="BTCUSDT",WorkerId="{w}"}}'


@dataclass
class Case:
    alert: str
    name: str
    series: list[tuple[str, str]]
    eval_time: str
    fires: list[dict[str, str]] = field(default_factory=list)  # labels (+ "$value" rendered)
    interval: str = "5s"


# 40 trades/s: the last id and the frame counter both move 200 per 5 s step.
CASES: list[Case] = [
    Case("StreamsFramesMissing", "a gap of 50 ids (REST-repaired): fires",
         [(last("w1"), "1000+200x10 3250+200x19"), (msgs("w1"), "0+200x30")], "60s",
         [{**S, "$value": "50"}]),
    Case("StreamsFramesMissing", "5% of frames dropped: fires",
         [(last("w1"), "0+200x30"), (msgs("w1"), "0+190x30")], "60s",
         [{**S, "$value": "60"}]),
    Case("StreamsFramesMissing", "every id arrived: silent",
         [(last("w1"), "1000+200x30"), (msgs("w1"), "0+200x30")], "60s"),
    Case("StreamsFramesMissing", "2 ids of export skew: silent",
         [(last("w1"), "1000+200x10 3002+200x19"), (msgs("w1"), "0+200x30")], "60s"),
    Case("StreamsFramesMissing", "duplicate frames are not loss: silent",
         [(last("w1"), "0+200x30"), (msgs("w1"), "0+200x9 2100+200x20"),
          (dups("w1"), "_x10 100x20")], "60s"),
    Case("StreamsFramesMissing", "ids from REST ahead of frames 3 s late (a lag spike): silent",
         [(last("w1"), "0+200x30"), (msgs("w1"), "0+200x9 1880+200x20"),
          (lag("w1"), "0.1x9 3x20")], "60s"),
    Case("StreamsFramesMissing", "a blip shorter than for (one late export): silent",
         [(last("w1"), "0+200x30"), (msgs("w1"), "0+200x10 2100 2400+200x18")], "55s"),
    Case("StreamsFramesMissing", "a normalizer restart (new worker, counter from 0): silent",
         [(last("w1"), "1000+200x9"), (msgs("w1"), "0+200x9 1800x20"),
          (last("w2"), "_x10 3200+200x19"), (msgs("w2"), "_x10 0+200x19")], "60s"),
    Case("StreamsFramesMissing", "the gap left the 30 s window: silent",
         [(last("w1"), "1000+200x10 3250+200x29"), (msgs("w1"), "0+200x40")], "100s"),
    Case("StreamsDeadLetters", "a flood of 40 (first dead letters of the worker): fires",
         [(dead("w1"), "_x10 40x10")], "60s",
         [{"exchange": "binance", "reason": "invalid", "$value": "40"}]),
    Case("StreamsDeadLetters", "10 per 5 s: fires", [(dead("w1"), "0+10x20")], "60s",
         [{"exchange": "binance", "reason": "invalid", "$value": "60"}]),
    Case("StreamsDeadLetters", "1 per 10 s: silent", [(dead("w1"), "0+1x20")], "150s",
         interval="10s"),
    Case("StreamsDeadLetters", "old dead letters, nothing new: silent", [(dead("w1"), "40x20")],
         "60s"),
    Case("ActorRestarted", "connector in a second process: fires",
         [(beat("w1"), "1+5x9"), (beat("w2"), "_x10 60+5x9")], "60s",
         [{**CONN, "actor": "connector", "$value": "2"}]),
    Case("ActorRestarted", "normalizer in a second process: fires",
         [(last("w1"), "0+200x9"), (last("w2"), "_x10 2200+200x9")], "60s",
         [{"exchange": "binance", "symbol": "BTCUSDT", "actor": "normalizer", "$value": "2"}]),
    Case("ActorRestarted", "sink: two processes wrote within 30 s: fires",
         [(e2db("w1"), "0+10x10 100x20"), (e2db("w2"), "_x11 0+10x19")], "70s",
         [{"exchange": "binance", "actor": "sink", "$value": "2"}]),
    Case("ActorRestarted", "breaker in a second process: fires",
         [(brk("w1"), "0x9"), (brk("w2"), "_x10 0x9")], "60s",
         [{"breaker": "breaker:chaos", "actor": "breaker", "$value": "2"}]),
    Case("ActorRestarted", "executor in a second process: fires",
         [(pos("w1"), "0x9"), (pos("w2"), "_x10 0x9")], "60s",
         [{"executor": "chaos-x", "actor": "executor", "$value": "2"}]),
    Case("ActorRestarted", "one process each: silent",
         [(beat("w1"), "1+5x30"), (last("w1"), "0+200x30"), (e2db("w1"), "0+10x30"),
          (brk("w1"), "0x30"), (pos("w1"), "0x30")], "120s"),
    Case("ActorRestarted", "restart more than 30 s ago: silent",
         [(beat("w1"), "1+5x9"), (beat("w2"), "_x10 60+5x30"),
          (e2db("w1"), "0+10x10 100x30"), (e2db("w2"), "_x11 0+10x30")], "150s"),
]

_LABEL = re.compile(r"\{\{\s*\$labels\.(\w+)\s*\}\}")
_VALUE = re.compile(r"\{\{\s*\$value\s*(\|[^}]*)?\}\}")


def load_rules() -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"] if "alert" in r}


def render(text: str, labels: dict[str, str], value: str | None) -> str:
    """An annotation as Prometheus renders it for these labels and this (formatted) value."""
    text = _LABEL.sub(lambda m: labels.get(m.group(1), ""), text)
    if _VALUE.search(text):
        if value is None:
            raise ValueError(f"annotation uses $value; give the case a '$value': {text}")
        text = _VALUE.sub(value, text)
    return text


def build() -> dict[str, Any]:
    rules = load_rules()
    tests = []
    for c in CASES:
        rule = rules[c.alert]
        exp = []
        for f in c.fires:
            labels = {k: v for k, v in f.items() if k != "$value"}
            exp.append({
                "exp_labels": {**rule.get("labels", {}), **labels},
                "exp_annotations": {k: render(v, labels, f.get("$value"))
                                    for k, v in rule.get("annotations", {}).items()},
            })
        tests.append({
            "name": f"{c.alert}: {c.name}",
            "interval": c.interval,
            "input_series": [{"series": s, "values": v} for s, v in c.series],
            "alert_rule_test": [{"eval_time": c.eval_time, "alertname": c.alert,
                                 "exp_alerts": exp}],
        })
    return {"rule_files": [f"../{RULES.name}"], "evaluation_interval": "5s", "tests": tests}


def text() -> str:
    header = ("# GENERATED by tests/chaos/fault_alert_cases.py (python "
              "tests/chaos/fault_alert_cases.py);\n"
              "# do not edit by hand. Every alert has cases where it fires and where it stays\n"
              f"# silent. Run: promtool test rules grafana/alerts/tests/{TESTS.name}\n")
    return header + yaml.safe_dump(build(), sort_keys=False, width=100)


if __name__ == "__main__":
    TESTS.parent.mkdir(parents=True, exist_ok=True)
    TESTS.write_text(text())
    print(f"wrote {TESTS} ({len(CASES)} cases)", file=sys.stderr)
