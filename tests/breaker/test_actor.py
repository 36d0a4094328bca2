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
    assert any(ln.startswith("ray_breaker_state{") and 'scope="global"' in ln
               and ln.endswith(" 1.0") for ln in lines)
    assert any(ln.startswith("ray_breaker_trips_total{") and 'rule="manual"' in ln
               and 'scope="global"' in ln for ln in lines)
    assert any(ln.startswith("ray_breaker_blocked_orders_total{") for ln in lines)
    assert lookup(name) is not None


def test_fabric_health_trips_one_symbol_and_exits_still_go_out(
        breaker: tuple[Any, str, Path]) -> None:
    """The fabric's contract: ``report_many`` with symbol-keyed health dicts. A quiet symbol's
    scope trips on the actor's own ticker; its entries are refused, a reduce-only exit passes
    (journaled), other symbols trade; fresh data re-arms it after the cooldown."""
    handle, _, journal = breaker
    who = "executor:t"
    ray.get(handle.report_many.remote([
        {"kind": "heartbeat", "key": "BTCUSDT", "value": 1, "who": "fabric:binance"},
        {"kind": "lag", "key": "BTCUSDT", "value": 0.05, "who": "fabric:binance"},
        {"kind": "gaps", "key": "BTCUSDT", "value": 0, "who": "fabric:binance"},
        {"kind": "venue_error", "key": "BTCUSDT", "value": 0, "who": "fabric:binance"},
        {"kind": "clock_offset", "key": "BTCUSDT", "value": 0.01, "who": "fabric:binance"},
        {"kind": "position", "key": "BTCUSDT", "value": 2.0, "who": who},
        {"kind": "price", "key": "BTCUSDT", "value": 100.0, "who": who},
        {"kind": "price", "key": "ETHUSDT", "value": 10.0, "who": who}]))

    def tripped() -> dict[str, Any] | None:
        st: dict[str, Any] = ray.get(handle.status.remote())
        return st if st["scopes"].get("symbol:BTCUSDT", {}).get("state") == "TRIPPED" else None

    st = wait_for(tripped, 10)
    assert st["state"] == "TRIPPED" and st["global_state"] == "ARMED"
    health = st["tree"]["symbols"]["BTCUSDT"]["health"]
    assert health["last_message_age_s"] > 0.5 and health["clock_offset_s"] == 0.01
    entry = ray.get(handle.allow.remote(Order("BTCUSDT", "buy", 0.1, who=who)))
    assert not entry.allowed and "symbol:BTCUSDT stale_data" in entry.reasons[0]
    assert ray.get(handle.allow.remote(Order("ETHUSDT", "buy", 0.1, who=who))).allowed
    exit_ = ray.get(handle.allow.remote(Order("BTCUSDT", "sell", 1.0, who=who,
                                              reduce_only=True, order_id="exit-1")))
    assert exit_.allowed
    events, _ = read_journal(journal)
    (ev,) = [e for e in events if e.kind == "exit"]
    assert ev.scope == "symbol:BTCUSDT" and ev.order and ev.order["order_id"] == "exit-1"

    def rearmed() -> bool:  # keep the feed fresh until the cooldown (0.2 s) has passed
        ray.get(handle.report_many.remote([{"kind": "heartbeat", "key": "BTCUSDT", "value": 1,
                                            "who": "fabric:binance"}]))
        return bool(ray.get(handle.status.remote())["state"] == "ARMED")

    wait_for(rearmed, 10)
    assert ray.get(handle.allow.remote(Order("BTCUSDT", "buy", 0.1, who=who))).allowed


def test_restart_restores_scopes_and_dry_run(breaker: tuple[Any, str, Path]) -> None:
    handle, _, _ = breaker
    ray.get(handle.report_many.remote([
        {"kind": "equity", "value": 1000.0, "who": "executor:a", "account": "main",
         "strategy": "a"},
        {"kind": "equity", "value": 800.0, "who": "executor:a", "account": "main",
         "strategy": "a"}]))
    ray.get(handle.trip.remote("desk halt", "test", "account:desk"))
    ray.get(handle.set_dry_run.remote(True, "test", "shadow", "symbol:ethusdt"))
    before = ray.get(handle.status.remote())
    states = {n: s["state"] for n, s in before["scopes"].items() if s["state"] != "ARMED"}
    assert states == {"account:main": "TRIPPED", "strategy:a": "TRIPPED",
                      "account:desk": "TRIPPED"}
    ray.kill(handle, no_restart=False)
    after = wait_for(lambda: (s := ray.get(handle.status.remote()))["recovered"]["pid"]
                     != before["recovered"]["pid"] and s, 30)
    assert after["scopes"]["account:desk"]["state"] == "TRIPPED"  # manual: until a reset
    assert after["dry_run_scopes"] == ["symbol:ETHUSDT"]
    assert after["tree"]["accounts"]["main"]["strategies"]["a"]["peak"] == 1000.0
    # The drawdown comes back with the next equity reading, against the replayed peak.
    ray.get(handle.report.remote({"kind": "equity", "value": 800.0, "who": "executor:a",
                                  "account": "main", "strategy": "a"}))
    d = ray.get(handle.allow.remote(Order("X", "buy", 1.0, account="main", strategy="b")))
    assert not d.allowed and "account:main" in d.reasons[0] and "max_drawdown" in d.reasons[0]
