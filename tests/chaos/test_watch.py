"""The alert timeline built from Prometheus' /api/v1/alerts answers, and alert matching."""

from __future__ import annotations

from spark_ray.chaos.watch import AlertTimeline, alert_key, matching


def alert(name: str, state: str, value: str = "1", **labels: str) -> dict[str, object]:
    return {"labels": {"alertname": name, **labels}, "state": state, "value": value}


def test_matching_by_name_state_and_labels() -> None:
    alerts = [alert("ActorRestarted", "firing", actor="sink"),
              alert("ActorRestarted", "pending", actor="normalizer"),
              alert("StreamsFramesMissing", "firing", symbol="BTCUSDT")]
    assert len(matching(alerts, "ActorRestarted")) == 1
    assert matching(alerts, "ActorRestarted", {"actor": "normalizer"}) == []
    assert len(matching(alerts, "ActorRestarted", {"actor": "normalizer"},
                        ("pending", "firing"))) == 1
    assert matching(alerts, "StreamsFramesMissing", {"symbol": "ETHUSDT"}) == []


def test_timeline_records_pending_firing_resolved_and_max_value() -> None:
    t = AlertTimeline()
    t.update(10.0, [alert("A", "pending", "3", x="1")])
    t.update(11.0, [alert("A", "firing", "7", x="1"), alert("B", "firing", "1e9")])
    t.update(12.0, [alert("A", "firing", "5", x="1")])
    t.update(13.0, [])
    t.update(14.0, [alert("A", "firing", "2", x="1")])  # a new episode of the same alert
    eps = t.to_list()
    assert [e["alert"] for e in eps] == ["A{x=1}", "B{}", "A{x=1}"]
    assert (eps[0]["pending_at"], eps[0]["firing_at"], eps[0]["resolved_at"]) == (10, 11, 13)
    assert eps[0]["max_value"] == 7.0
    assert (eps[1]["firing_at"], eps[1]["resolved_at"]) == (11, 12)
    assert eps[2]["resolved_at"] is None and eps[2]["pending_at"] == 14
    assert t.fired() == ["A", "B"]
    assert alert_key(alert("A", "firing", b="2", a="1")) == "A{a=1,b=2}"
