"""The fault plan as a plain object: scopes, limits, gap ranges, decisions and the log."""

from __future__ import annotations

from spark_ray.venue.fault_plan import FaultPlan
from spark_ray.venue.faults import FaultKind, FaultSpec


def _decide(plan: FaultPlan, conn: int = 1, symbol: str = "BTCUSDT", kind: str = "trade",
            first: int | None = 1, last: int | None = 1):
    faults = plan.frame_faults(conn, symbol, kind)
    return plan.decide_frame(faults, connection=conn, symbol=symbol, stream="btcusdt@trade",
                             first_id=first, last_id=last, now=0.0)


def test_scope_by_symbol_connection_and_stream() -> None:
    plan = FaultPlan()
    plan.add(FaultSpec(FaultKind.DROP, symbol="ETHUSDT"), 0.0)
    plan.add(FaultSpec(FaultKind.DUPLICATE, connection=2, streams=("aggTrade",)), 0.0)
    assert not _decide(plan).drop
    assert _decide(plan, symbol="ETHUSDT").drop
    assert not _decide(plan, conn=2).duplicate
    assert _decide(plan, conn=2, kind="aggTrade").duplicate


def test_count_limited_drop_retires_and_logs_each_injection() -> None:
    plan = FaultPlan()
    f = plan.add(FaultSpec(FaultKind.DROP, count=3), 0.0)
    drops = [_decide(plan, first=i, last=i).drop for i in range(1, 8)]
    assert drops == [True, True, True, False, False, False, False]
    assert f.id not in plan.faults
    actions = [(e.action, e.first_id) for e in plan.log.events()]
    assert actions == [("activated", None), ("injected", 1), ("injected", 2), ("injected", 3),
                       ("exhausted", None)]
    assert all(e.time_ms > 1_600_000_000_000 for e in plan.log.events())


def test_probability_is_seeded_and_roughly_right() -> None:
    plan = FaultPlan()
    plan.add(FaultSpec(FaultKind.DROP, probability=0.25, seed=4), 0.0)
    drops = sum(_decide(plan, first=i, last=i).drop for i in range(4000))
    assert 850 < drops < 1150


def test_gap_skips_a_contiguous_id_range_once() -> None:
    plan = FaultPlan()
    plan.add(FaultSpec(FaultKind.GAP, count=5, symbol="BTCUSDT"), 0.0)
    kept = [i for i in range(100, 120) if not _decide(plan, first=i, last=i).drop]
    assert kept == [100 + k for k in range(20) if not 0 <= k < 5]
    gap = [e for e in plan.log.events() if e.action == "injected"]
    assert (gap[0].first_id, gap[0].last_id) == (100, 104)
    assert not plan.faults  # retired once the stream moved past the gap


def test_expiry_and_clear() -> None:
    plan = FaultPlan()
    plan.add(FaultSpec(FaultKind.STALL, duration_s=1.0), 10.0)
    plan.add(FaultSpec(FaultKind.LATENCY, delay_ms=5), 10.0)
    plan.expire(10.5)
    assert len(plan.faults) == 2
    plan.expire(11.0)
    assert [f.spec.kind for f in plan.active()] == [FaultKind.LATENCY]
    assert plan.remove(None, 12.0) == 1 and not plan.faults
    assert [e.action for e in plan.log.events()][-2:] == ["expired", "cleared"]


def test_connection_faults_fire_once_or_every_interval() -> None:
    plan = FaultPlan()
    plan.add(FaultSpec(FaultKind.DISCONNECT), 0.0)
    plan.add(FaultSpec(FaultKind.CLOSE, interval_s=1.0), 0.0)
    assert len(plan.due_connection_faults(0.0)) == 2
    assert plan.due_connection_faults(0.5) == []
    assert [f.spec.kind for f in plan.due_connection_faults(1.0)] == [FaultKind.CLOSE]


def test_rest_decisions() -> None:
    plan = FaultPlan()
    plan.add(FaultSpec(FaultKind.REST_ERROR, status=503, path="/api/v3/klines", count=1), 0.0)
    assert plan.decide_rest("/api/v3/depth", None, 0).error_status is None
    assert plan.decide_rest("/api/v3/klines", None, 0).error_status == 503
    assert plan.decide_rest("/api/v3/klines", None, 0).error_status is None
