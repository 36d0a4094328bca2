"""The breaker's demo stage: a scripted drawdown trips it, orders are blocked, it cools down and
re-arms, a kill-switch trip survives the actor being killed, and a reset re-arms it.

Runs on an already connected Ray with its own breaker (a unique ``breaker:demo:...`` name, never
the cluster's ``breaker``) and short timings, in well under 10 s.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

import ray

from spark_ray.actors.breaker import CircuitBreakerActor
from spark_ray.actors.naming import actor_name, get_or_create
from spark_ray.breaker.journal import read_journal
from spark_ray.breaker.models import BreakerConfig, Order, Signal
from spark_ray.breaker.status import format_status

SYMBOL = "BTCUSDT"
# Equity path: a rally to 104k, a slide to 92k (drawdown 11.5% > 10%), a recovery to 96k (7.7%).
EQUITY = [100_000.0, 101_500.0, 103_000.0, 104_000.0, 101_000.0, 97_000.0, 93_000.0, 92_000.0,
          94_500.0, 96_000.0]


@ray.remote(num_cpus=0)
class _DemoExecutor:
    """Stands in for the executor: on a trip it would cancel open orders (and maybe flatten)."""

    def __init__(self) -> None:
        self.notices: list[dict[str, Any]] = []

    def on_breaker_trip(self, event: dict[str, Any]) -> None:
        self.notices.append(event)

    def received(self) -> list[dict[str, Any]]:
        return self.notices


def _status(breaker: Any, timeout_s: float = 30.0) -> dict[str, Any]:
    """Status, retrying while the actor restarts (calls then fail with RayActorError)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            snap: dict[str, Any] = ray.get(breaker.status.remote(), timeout=timeout_s)
            return snap
        except ray.exceptions.RayActorError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _wait(breaker: Any, want: str, timeout_s: float, not_pid: int | None = None) -> dict[str, Any]:
    """Poll until the breaker is in state ``want`` (and, after a kill, is a new process)."""
    deadline = time.monotonic() + timeout_s
    while True:
        snap = _status(breaker, timeout_s)
        if snap["state"] == want and snap["recovered"]["pid"] != not_pid:
            return snap
        if time.monotonic() > deadline:
            raise RuntimeError(f"breaker stayed {snap['state']}, expected {want}")
        time.sleep(0.05)


def run_demo(out_dir: Path) -> dict[str, object]:
    """Drive a demo breaker through trip, block, cooldown, re-arm, kill-and-recover, reset."""
    t0 = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    journal = out_dir / "journal.jsonl"
    name = actor_name("breaker", "demo", secrets.token_hex(4))
    config = BreakerConfig.model_validate({"cooldown_s": 1.0, "tick_s": 0.1,
                                           "daily_loss": {"enabled": False},
                                           "max_drawdown": {"limit": 0.10}})
    breaker = get_or_create(CircuitBreakerActor, name, config, str(journal), name, detached=True)
    executor = _DemoExecutor.remote()  # type: ignore[attr-defined]
    log: list[str] = []
    try:
        ray.get(breaker.subscribe.remote(executor))
        ray.get(breaker.report_many.remote([
            Signal("price", 60_000.0, SYMBOL, who="demo:market"),
            Signal("heartbeat", key="binance:BTCUSDT", who="demo:ingest")]))
        allowed = blocked = 0
        order = Order(SYMBOL, "buy", 0.01, who="demo:strategy")
        for equity in EQUITY:
            state = ray.get(breaker.report.remote(Signal("equity", equity, who="demo:pnl")))
            d = ray.get(breaker.allow.remote(order))
            allowed += d.allowed
            blocked += not d.allowed
            log.append(f"equity {equity:>9,.0f}  {state:<8}  order "
                       f"{'allowed' if d.allowed else 'BLOCKED: ' + '; '.join(d.reasons)}")
        cooling = ray.get(breaker.status.remote())
        if cooling["state"] != "COOLDOWN":
            raise RuntimeError(f"expected COOLDOWN after the recovery, got {cooling['state']}")
        rearmed = _wait(breaker, "ARMED", timeout_s=5.0)
        d = ray.get(breaker.allow.remote(order))
        allowed += d.allowed
        log.append(f"after cooldown  {rearmed['state']:<8}  order "
                   f"{'allowed' if d.allowed else 'BLOCKED'}")

        ray.get(breaker.trip.remote("demo: kill switch drill", "demo:operator"))
        deadline = time.monotonic() + 5
        while len(ray.get(executor.received.remote())) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        notices = ray.get(executor.received.remote())
        old_pid = _status(breaker)["recovered"]["pid"]
        ray.kill(breaker, no_restart=False)  # crash it: Ray restarts it, it replays the journal
        recovered = _wait(breaker, "TRIPPED", timeout_s=30.0, not_pid=old_pid)
        log.append("killed while TRIPPED; restarted: " + format_status(recovered).splitlines()[0])
        final = ray.get(breaker.reset.remote("demo: drill over", "demo:operator"))
    finally:
        ray.kill(breaker, no_restart=True)
        ray.kill(executor, no_restart=True)

    events, skipped = read_journal(journal)
    transitions = [f"{e.time[11:23]} {e.from_state}->{e.to_state} {e.kind}"
                   + (f" {e.rule} ({e.reason})" if e.rule else f" ({e.reason})")
                   + f" by={e.who}"
                   for e in events if e.kind in ("trip", "cooldown", "arm", "reset")]
    summary: dict[str, object] = {
        "actor": name,
        "journal": str(journal),
        "journal_events": len(events),
        "journal_lines_skipped": skipped,
        "orders_allowed": allowed,
        "orders_blocked": blocked,
        "blocked_journaled": sum(e.kind == "blocked" for e in events),
        "trips": {k: v for k, v in final["trips"].items()},
        "executor_notices": [f"{n['rule']}: {n['reason']}" for n in notices],
        "recovered": {"state": recovered["state"], **recovered["recovered"]},
        "final_state": final["state"],
        "transitions": transitions,
        "orders": log,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
