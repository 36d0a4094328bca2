"""The promtool unit tests of the fault alerts (``grafana/alerts/spark-ray-faults.yml``), as data:
for every alert cases where it fires and cases where it stays silent.
``grafana/alerts/tests/spark-ray-faults.test.yml`` is generated from this (``PYTHONPATH=tests
python tests/chaos/fault_alert_cases.py`` rewrites it; a test checks it is current) by
:mod:`promtool_cases`, which renders the annotations from the rule file itself.

Series carry a ``WorkerId`` like Ray's export does: the rules tell restarts from loss by it.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import promtool_cases

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


# The fault cases step every 5 s (the canary scrapes every 2 s).
Case = partial(promtool_cases.Case, interval="5s")


# 40 trades/s: the last id and the frame counter both move 200 per 5 s step.
CASES: list[promtool_cases.Case] = [
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


def load_rules() -> dict[str, dict[str, Any]]:
    return promtool_cases.load_rules(RULES)


def text() -> str:
    return promtool_cases.text(CASES, RULES, TESTS, "tests/chaos/fault_alert_cases.py")


if __name__ == "__main__":
    promtool_cases.write(CASES, RULES, TESTS, "tests/chaos/fault_alert_cases.py")
