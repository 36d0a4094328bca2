"""CircuitBreakerActor on a real Ray: named and detached, guards orders, notifies subscribers,
re-evaluates on its own, exports its metrics and recovers its state from the journal after a
crash."""

from __future__ import annotations

import secrets
import time
import urllib.request
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import ray

from spark_ray.actors.breaker import get_breaker
from spark_ray.actors.naming import NAMESPACE, actor_name, lookup
from spark_ray.breaker.journal import read_journal
from spark_ray.breaker.models import BreakerConfig, Decision, Order, Signal


@ray.remote(num_cpus=0)
class Recorder:
    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []

    def on_breaker_trip(self, event: dict[str, Any]) -> None:
        self.got.append(event)

    def seen(self) -> list[dict[str, Any]]:
        return self.got


def seen(recorder: Any) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = ray.get(recorder.seen.remote())
    return got


def wait_for(fn: Callable[[], Any], timeout_s: float = 30.0) -> Any:
    """Poll ``fn`` until it returns something truthy (actor restarts raise meanwhile)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = fn()
            if value:
                return value
        except ray.exceptions.RayActorError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s")
        time.sleep(0.05)


@pytest.fixture
def breaker(ray_session: object, tmp_path: Path) -> Iterator[tuple[Any, str, Path]]:
    name = actor_name("breaker", "test", secrets.token_hex(4))
    journal = tmp_path / "journal.jsonl"
    cfg = BreakerConfig.model_validate({"cooldown_s": 0.2, "tick_s": 0.05,
                                        "daily_loss": {"enabled": False},
                                        "stale_data": {"max_age_s": 0.5}})
    handle, started = get_breaker(name, config=cfg, journal_path=journal)
    assert started
    yield handle, name, journal
    ray.kill(handle, no_restart=True)


def test_named_detached_and_guarding_orders(ray_session: Any,
                                            breaker: tuple[Any, str, Path]) -> None:
    handle, name, journal = breaker
    again, started = get_breaker(name)
    assert not started and again._actor_id == handle._actor_id
    from ray.util.state import get_actor

    info = get_actor(handle._actor_id.hex(), address=ray_session.address)
    assert info is not None and info.name == name and info.ray_namespace == NAMESPACE
    assert info.is_detached
    ray.get(handle.report_many.remote([Signal("price", 100.0, "BTC"),
                                       {"kind": "equity", "value": 1000.0}]))
    d = ray.get(handle.allow.remote(Order("BTC", "buy", 0.1, 100.0)))
    assert isinstance(d, Decision) and d.allowed
    d = ray.get(handle.allow.remote({"symbol": "BTC", "side": "buy", "qty": 0.1, "price": 150.0}))
    assert not d.allowed and d.reasons[0].startswith("fat_finger: BTC price 150")
    status = ray.get(handle.status.remote())
    assert status["name"] == name and status["journal"] == str(journal)
    assert status["trips"] == {"fat_finger": 1} and status["blocked_total"] == 1


def test_trip_notifies_subscribers_and_a_dead_one_breaks_nothing(
        breaker: tuple[Any, str, Path]) -> None:
    handle, _, _ = breaker
    live = Recorder.remote()  # type: ignore[attr-defined]
    dead_name = actor_name("test-dead-sub", secrets.token_hex(4))
    dead = Recorder.options(name=dead_name, namespace=NAMESPACE).remote()  # type: ignore[attr-defined]
    named_name = actor_name("test-named-sub", secrets.token_hex(4))
    named = Recorder.options(name=named_name, namespace=NAMESPACE).remote()  # type: ignore[attr-defined]
    try:
        ray.get(handle.subscribe.remote(live))
        ray.get(handle.subscribe.remote(dead))
        ray.get(handle.subscribe.remote(dead_name))
        ray.get(handle.subscribe.remote(named_name, "on_breaker_trip"))
        ray.kill(dead, no_restart=True)
        ray.get(handle.trip.remote("test halt", "test"))
        for sub in (live, named):
            got = wait_for(partial(seen, sub), 10)
            assert got[0]["rule"] == "manual" and got[0]["reason"] == "test halt"
        status = ray.get(handle.reset.remote("done", "test"))
        assert status["state"] == "ARMED"
        assert named_name in status["subscribers"]
    finally:
        for a in (live, named):
            ray.kill(a, no_restart=True)


def test_time_driven_rules_trip_without_any_call(breaker: tuple[Any, str, Path]) -> None:
    handle, _, _ = breaker
    ray.get(handle.report.remote(Signal("heartbeat", key="feed")))
    # Nobody calls status or allow: the actor's own ticker sees the feed go quiet.
    trips = wait_for(lambda: [e for e in ray.get(handle.events.remote(20))
                              if e["kind"] == "trip"], 10)
    assert trips[0]["rule"] == "stale_data" and trips[0]["who"] == "breaker"


def test_restart_recovers_state_from_the_journal(breaker: tuple[Any, str, Path]) -> None:
    handle, _, journal = breaker
    ray.get(handle.trip.remote("before the crash", "test"))
    ray.get(handle.allow.remote(Order("BTC", "buy", 1.0, 1.0)))
    before = ray.get(handle.status.remote())
    ray.kill(handle, no_restart=False)  # crash: Ray restarts it, __init__ replays the journal
    after = wait_for(lambda: (s := ray.get(handle.status.remote()))["recovered"]["pid"]
                     != before["recovered"]["pid"] and s, 30)
    assert after["state"] == "TRIPPED"
    for key in ("conditions", "trips", "blocked_total", "last_trip"):
        assert after[key] == before[key]
    assert after["recovered"]["events_replayed"] == before["seq"]
    assert not ray.get(handle.allow.remote(Order("BTC", "buy", 1.0, 1.0))).allowed
    events, skipped = read_journal(journal)
    assert skipped == 0 and [e.kind for e in events].count("start") == 2


def test_metrics_are_exported(ray_session: Any, breaker: tuple[Any, str, Path]) -> None:
    handle, name, _ = breaker
    ray.get(handle.trip.remote("metrics", "test"))
    ray.get(handle.allow.remote(Order("BTC", "buy", 1.0, 1.0)))
    url = f"http://127.0.0.1:{ray_session.metrics_export_port}/metrics"

    def scrape() -> list[str]:
        with urllib.request.urlopen(url, timeout=5) as r:
            lines = [ln for ln in r.read().decode().splitlines()
                     if f'breaker="{name}"' in ln]
        return lines if len(lines) >= 3 else []

    lines = wait_for(scrape, 40)
    assert any(ln.startswith("ray_breaker_state{") and ln.endswith(" 1.0") for ln in lines)
    assert any(ln.startswith("ray_breaker_trips_total{") and 'rule="manual"' in ln
               for ln in lines)
    assert any(ln.startswith("ray_breaker_blocked_orders_total{") for ln in lines)
    assert lookup(name) is not None
