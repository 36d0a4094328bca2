"""The fabric's per-symbol readings for the breaker: news only when a message arrived, gaps
every poll, errors as deltas, a clock offset from the recent lags; and the status view."""

from __future__ import annotations

from spark_ray.breaker.models import SIGNAL_KINDS, Signal
from spark_ray.streams.feed import FeedTracker, SymbolReading, unhealthy_symbols


def kinds(readings: list[dict[str, object]], key: str) -> dict[str, float]:
    return {str(r["kind"]): float(r["value"]) for r in readings  # type: ignore[arg-type]
            if r["key"] == key}


def test_heartbeat_only_with_news_and_every_reading_is_a_valid_breaker_signal() -> None:
    t = FeedTracker("binance", ["BTCUSDT", "ethusdt"], started_s=100.0)
    out = t.update({"BTCUSDT": SymbolReading(10, 50.0, 0, 0, 0),
                    "ETHUSDT": SymbolReading(0, None, 0, 0, 0)}, 101.0)
    assert kinds(out, "BTCUSDT") == {"heartbeat": 1.0, "lag": 0.05, "clock_offset": -0.05,
                                     "gaps": 0.0}
    assert kinds(out, "ETHUSDT") == {"gaps": 0.0}  # silent: no heartbeat, no lag
    for r in out:  # the breaker accepts every kind we send
        assert r["kind"] in SIGNAL_KINDS and r["who"] == "fabric:binance"
        Signal(**r)  # type: ignore[arg-type]
    # Silent now: the age grows, no heartbeat; a gap and errors still go out.
    out = t.update({"BTCUSDT": SymbolReading(10, 50.0, 2, 1, 3)}, 102.0)
    assert kinds(out, "BTCUSDT") == {"gaps": 2.0, "venue_error": 3.0}
    v = t.view(106.0)
    assert v["BTCUSDT"]["last_message_age_s"] == 5.0 and v["BTCUSDT"]["gaps"] == 2
    assert v["BTCUSDT"]["unrepaired_gaps"] == 1 and v["BTCUSDT"]["venue_errors"] == 3
    assert v["ETHUSDT"]["last_message_age_s"] == 6.0 and not v["ETHUSDT"]["messages_seen"]
    assert unhealthy_symbols(v, 5.5) == {"BTCUSDT": "1 unrepaired gap(s)",
                                         "ETHUSDT": "no message for 6.0 s"}


def test_rates_offsets_and_counter_resets() -> None:
    t = FeedTracker("binance", ["BTCUSDT"], started_s=0.0)
    t.update({"BTCUSDT": SymbolReading(100, 10.0, 0, 0, 0)}, 1.0)
    out = t.update({"BTCUSDT": SymbolReading(300, 30.0, 0, 0, 0)}, 3.0)
    assert t.view(3.0)["BTCUSDT"]["rate_msg_s"] == 100.0
    assert kinds(out, "BTCUSDT")["clock_offset"] == -0.02  # median of -10 ms and -30 ms
    # The normalizer restarted: its counters start again at 5; that is news, not a negative.
    out = t.update({"BTCUSDT": SymbolReading(5, 20.0, 0, 0, 2)}, 4.0)
    assert kinds(out, "BTCUSDT")["heartbeat"] == 1.0
    assert kinds(out, "BTCUSDT")["venue_error"] == 2.0
    assert [r["kind"] for r in t.closing()] == ["source_closed"]
