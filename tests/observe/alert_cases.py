"""The promtool unit tests of our alert rules, as data: for every alert a case where it fires and
a case where it stays silent. ``grafana/alerts/tests/spark-ray.test.yml`` is generated from this
(``PYTHONPATH=tests python tests/observe/alert_cases.py`` rewrites it; a test checks it is
current) by :mod:`promtool_cases`, which renders the annotations from the rule file itself.

Run the tests themselves with ``promtool test rules grafana/alerts/tests/spark-ray.test.yml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import promtool_cases
from promtool_cases import Case

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "grafana" / "alerts" / "spark-ray.yml"
TESTS = REPO / "grafana" / "alerts" / "tests" / "spark-ray.test.yml"

S = {"exchange": "binance", "symbol": "BTCUSDT", "stream": "trade"}
LAG = 'ray_streams_ingest_lag_seconds{exchange="binance",symbol="BTCUSDT",stream="trade"}'
GAPS = 'ray_streams_seq_gap_total{exchange="binance",symbol="BTCUSDT",stream="trade"}'
MSGS = 'ray_streams_messages_total{exchange="binance",symbol="BTCUSDT",stream="trade"}'
DUPS = 'ray_streams_dup_total{exchange="binance",symbol="BTCUSDT",stream="trade"}'
CONN = '{exchange="binance",symbol="all",stream="connector:binance:0"}'
HB = f"ray_streams_heartbeat{CONN}"
DROPS = f"ray_streams_drop_total{CONN}"
E2DB = 'ray_streams_event_to_db_ms_bucket{{exchange="binance",symbol="all",stream="all",le="{}"}}'
BRK = 'ray_breaker_state{breaker="breaker"}'
BRK_SCOPE = 'ray_breaker_state{{breaker="breaker", scope="{}"}}'
EXEC = 'ray_actors{Source="gcs",State="ALIVE",Name="ExecutorActor"}'
STALE = 'ray_signals_feature_staleness_s{actor="signals:ex",symbol="BTCUSDT"}'
SIG_LAT = 'ray_signals_latency_ms_bucket{{actor="signals:ex",le="{}"}}'


def e2db(counts: dict[str, int], n: int = 40) -> list[tuple[str, str]]:
    """Cumulative histogram buckets growing by ``counts[le]`` per interval."""
    return [(E2DB.format(le), f"0+{c}x{n}") for le, c in counts.items()]


def sig_lat(counts: dict[str, int], n: int = 40) -> list[tuple[str, str]]:
    """The signal latency histogram's buckets, growing by ``counts[le]`` per interval."""
    return [(SIG_LAT.format(le), f"0+{c}x{n}") for le, c in counts.items()]





CASES: list[Case] = [
    Case("StreamsIngestLagHigh", "lag 3 s held past for: fires", [(LAG, "0.5x3 3x10")], "40s",
         [{**S, "$value": "3.0"}], interval="5s"),
    Case("StreamsIngestLagHigh", "lag 0.5 s: silent", [(LAG, "0.5x10")], "40s", interval="5s"),
    Case("StreamsIngestLagHigh", "a 5 s blip shorter than for: stays pending",
         [(LAG, "0.5x3 3 0.5x6")], "25s", interval="5s"),
    Case("StreamsIngestLagCritical", "lag 6 s: fires", [(LAG, "1x3 6x10")], "40s",
         [{**S, "$value": "6.0"}], interval="5s"),
    Case("StreamsIngestLagCritical", "lag 3 s (warning level): silent", [(LAG, "3x10")], "40s",
         interval="5s"),
    Case("StreamsSequenceGapUnrepaired", "counter rises: fires", [(GAPS, "0x5 1x5")], "6m",
         [S], interval="1m"),
    Case("StreamsSequenceGapUnrepaired", "series born at 1 (first gap of an actor): fires",
         [(GAPS, "_x5 1x5")], "7m", [S], interval="1m"),
    Case("StreamsSequenceGapUnrepaired", "no gaps: silent", [(GAPS, "0x20")], "15m",
         interval="1m"),
    Case("StreamsSequenceGapUnrepaired", "old gap, nothing new for 10 min: silent",
         [(GAPS, "1x30")], "25m", interval="1m"),
    Case("StreamsEventToStoreSlow", "p95 480 ms: fires",
         e2db({"100": 0, "500": 10, "1000": 10, "2000": 10, "+Inf": 10}), "3m",
         [{"exchange": "binance", "$value": "480"}]),
    Case("StreamsEventToStoreSlow", "p95 95 ms: silent",
         e2db({"100": 10, "500": 10, "1000": 10, "2000": 10, "+Inf": 10}), "3m"),
    Case("StreamsEventToStoreCritical", "p95 1950 ms: fires",
         e2db({"100": 0, "500": 0, "1000": 0, "2000": 10, "+Inf": 10}), "3m",
         [{"exchange": "binance", "$value": "1950"}]),
    Case("StreamsEventToStoreCritical", "p95 480 ms (warning level): silent",
         e2db({"100": 0, "500": 10, "1000": 10, "2000": 10, "+Inf": 10}), "3m"),
    Case("StreamsHeartbeatMissing", "series disappears (connector gone): fires",
         [(HB, "0+15x8 stale")], "3m",
         [{"exchange": "binance", "stream": "connector:binance:0"}]),
    Case("StreamsHeartbeatMissing", "no frame for over a minute: fires", [(HB, "10x20")], "2m",
         [{"exchange": "binance", "stream": "connector:binance:0"}]),
    Case("StreamsHeartbeatMissing", "fresh heartbeat: silent", [(HB, "0+15x20")], "4m"),
    Case("StreamsHeartbeatStale", "30 s old: fires", [(HB, "0+15x4 60x10")], "90s",
         [{"exchange": "binance", "stream": "connector:binance:0", "$value": "30s"}]),
    Case("StreamsHeartbeatStale", "fresh heartbeat: silent", [(HB, "0+15x20")], "4m"),
    Case("StreamsMessageRateLow", "0.067 msg/s for 2 min: fires", [(MSGS, "0+1x40")], "4m",
         [{"exchange": "binance", "stream": "trade", "$value": "0.067"}]),
    Case("StreamsMessageRateLow", "1 msg/s: silent", [(MSGS, "0+15x40")], "4m"),
    Case("StreamsDuplicatesHigh", "0.2 duplicates/s: fires", [(DUPS, "0+3x40")], "3m",
         [{**S, "$value": "0.20"}]),
    Case("StreamsDuplicatesHigh", "0.067 duplicates/s: silent", [(DUPS, "0+1x40")], "3m"),
    Case("StreamsDropping", "0.67% of frames dropped: fires",
         [(DROPS, "0+1x40"), (MSGS, "0+150x40")], "3m",
         [{"exchange": "binance", "$value": "0.6667%"}]),
    Case("StreamsDropping", "no drops: silent", [(DROPS, "0x40"), (MSGS, "0+150x40")], "3m"),
    Case("BreakerTripped", "state 1 (TRIPPED): fires", [(BRK, "0x3 1x5")], "90s",
         [{"breaker": "breaker"}]),
    Case("BreakerTripped", "ARMED then COOLDOWN: silent", [(BRK, "0x3 2x5")], "90s"),
    Case("BreakerTripped", "an account scope TRIPPED: fires",
         [(BRK_SCOPE.format("global"), "0x8"), (BRK_SCOPE.format("account:desk"), "0x3 1x5")],
         "90s", [{"breaker": "breaker"}]),
    Case("BreakerTripped", "only a symbol scope TRIPPED: silent (BreakerSymbolTripped's)",
         [(BRK_SCOPE.format("global"), "0x8"), (BRK_SCOPE.format("symbol:BTCUSDT"), "0x3 1x5")],
         "90s"),
    Case("BreakerSymbolTripped", "symbol scope TRIPPED (stale data): fires for that scope",
         [(BRK_SCOPE.format("global"), "0x8"), (BRK_SCOPE.format("symbol:BTCUSDT"), "0x3 1x5"),
          (BRK_SCOPE.format("symbol:ETHUSDT"), "0x8")], "90s",
         [{"breaker": "breaker", "scope": "symbol:BTCUSDT"}]),
    Case("BreakerSymbolTripped", "symbol in COOLDOWN, global TRIPPED: silent",
         [(BRK_SCOPE.format("global"), "0x3 1x5"), (BRK_SCOPE.format("symbol:BTCUSDT"),
                                                   "0x3 2x5")], "90s"),
    Case("ExecutorDown", "was alive, now not: fires", [(EXEC, "1x8 0x10")], "3m",
         [{"Name": "ExecutorActor"}]),
    Case("ExecutorDown", "alive: silent", [(EXEC, "1x20")], "4m"),
    Case("ExecutorDown", "never started (paper-only setup): silent", [(BRK, "0x20")], "4m"),
    Case("SignalsStale", "actor misses the trades the fabric accepts: fires",
         [(STALE, "0+15x20"), (MSGS, "0+15x20")], "3m",
         [{"symbol": "BTCUSDT", "$value": "3m 0s"}]),
    Case("SignalsStale", "fresh signals while trades flow: silent",
         [(STALE, "1x20"), (MSGS, "0+15x20")], "3m"),
    Case("SignalsStale", "quiet market (no trades at the fabric either): silent",
         [(STALE, "0+15x20"), (MSGS, "7x20")], "3m"),
    Case("SignalsStale", "a lone trade, then silence (illiquid symbol): silent",
         [(STALE, "0+15x20"), (MSGS, "0 1x19")], "3m"),
    Case("SignalLatencyHigh", "p99 99 ms for 5 min: fires",
         sig_lat({"10": 0, "50": 5, "100": 10, "+Inf": 10}), "8m",
         [{"actor": "signals:ex", "$value": "99"}]),
    Case("SignalLatencyHigh", "p99 9.9 ms: silent",
         sig_lat({"10": 10, "50": 10, "100": 10, "+Inf": 10}), "8m"),
    Case("SignalLatencyHigh", "p99 9.9 ms for 5 min, then 99 ms for 3 min (< for): silent",
         [(SIG_LAT.format("10"), "0+10x20 200+0x12"), (SIG_LAT.format("50"), "0+10x20 205+5x12"),
          (SIG_LAT.format("100"), "0+10x20 210+10x12"),
          (SIG_LAT.format("+Inf"), "0+10x20 210+10x12")], "8m"),
]


def load_rules() -> dict[str, dict[str, Any]]:
    return promtool_cases.load_rules(RULES)


def text() -> str:
    return promtool_cases.text(CASES, RULES, TESTS, "tests/observe/alert_cases.py")


if __name__ == "__main__":
    promtool_cases.write(CASES, RULES, TESTS, "tests/observe/alert_cases.py")
