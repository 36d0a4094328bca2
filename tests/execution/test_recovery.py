"""Kill the executor mid-order: after Ray restarts it, the journal is replayed and reconciled with
the venue before trading resumes, and every intent has at most one order at the venue -- the one
the crash left unanswered is adopted, not sent again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ray


def _journal(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_kill_mid_order_then_reconcile(make_venue: Any, make_fabric: Any, make_breaker: Any,
                                       make_executor: Any, approved: Any, wait_for: Any,
                                       venue_keys: Any, tmp_path: Path) -> None:
    key, secret = venue_keys
    venue = make_venue()
    bname, _ = make_breaker()
    journal = tmp_path / "journal.jsonl"
    # The venue places the next order, then holds its answer for 8 s: the executor is "mid-order"
    # (intent journaled, no answer yet) for as long as its own 3 s timeout. Without the user data
    # stream the answer is the only news, so the crash leaves the outcome truly unknown.
    ex, _ = make_executor(approved(), venue, bname, live=True, journal=journal,
                          broker_options={"timeout_s": 3.0, "user_stream": False})
    venue.inject("order_timeout", delay_ms=8000, placed=True, count=1)
    fabric = make_fabric(venue)
    ray.get([n.subscribe.remote(ex, "on_market_data") for n in fabric.normalizers])

    def held() -> bool:
        return any(e["action"] == "injected" for e in venue.fault_log())

    pid_before = ray.get(ex.status.remote())["pid"]
    wait_for(held, timeout=60, every=0.01, what="an order submission held by the venue")
    ray.kill(ex, no_restart=False)  # crash now; Ray restarts the actor
    intent = next(r["order"] for r in reversed(_journal(journal)) if r["k"] == "intent")
    cid = intent["cid"]
    updates = [r for r in _journal(journal) if r["k"] == "update" and r["update"]["cid"] == cid]
    assert not updates, "the crash was meant to come before the submit's answer"
    at_venue = [o for o in venue.orders("BTCUSDT", key) if o["clientOrderId"] == cid]
    assert len(at_venue) == 1  # placed before the crash

    def restarted() -> dict[str, Any] | None:
        try:
            s = ray.get(ex.start.remote(), timeout=60)
        except ray.exceptions.RayError:  # still restarting
            return None
        # ray.kill is asynchronous: a call made just after it may still reach the old process
        return s if s["started"] and s["pid"] != pid_before else None

    st = wait_for(restarted, timeout=90, every=0.5, what="the restarted executor")
    assert st["restarted"] is True
    assert st["reconcile"]["resolved"].get(cid) == at_venue[0]["status"]
    assert st["reconcile"]["checked"] >= 1 and not st["reconcile"]["errors"]
    order = next(o for o in ray.get(ex.orders.remote()) if o["cid"] == cid)
    assert order["status"] == at_venue[0]["status"] and order["fills"]

    # Trading resumes; afterwards every intent has at most one order at the venue, every venue
    # order is an intent of the journal, and the executor agrees with the venue on each.
    n0 = len([r for r in _journal(journal) if r["k"] == "intent"])
    wait_for(lambda: len([r for r in _journal(journal) if r["k"] == "intent"]) >= n0 + 2,
             timeout=60, what="new intents after the restart")
    # Compare at rest: the market stops, so no order is in flight while both sides are read
    # (a snapshot taken mid-submit holds PENDING_NEW for an order the venue has already filled).
    venue.pause()

    def settled() -> tuple[dict[str, str], list[dict[str, Any]]] | None:
        if not ray.get(ex.drain.remote()):
            return None
        ours = {o["cid"]: o["status"] for o in ray.get(ex.orders.remote())}
        theirs = venue.orders("BTCUSDT", key)
        if any(s in ("PENDING_NEW", "UNKNOWN") for s in ours.values()):
            return None
        return (ours, theirs) if all(ours.get(o["clientOrderId"]) == o["status"]
                                     for o in theirs) else None

    ours, theirs = wait_for(settled, timeout=30, every=0.5,
                            what="the executor and the venue agreeing on every order")
    intents = {r["order"]["cid"] for r in _journal(journal) if r["k"] == "intent"}
    venue_cids = [o["clientOrderId"] for o in theirs]
    assert len(venue_cids) == len(set(venue_cids))
    assert set(venue_cids) <= intents
    for o in theirs:
        assert ours[o["clientOrderId"]] == o["status"], o
    assert secret not in journal.read_text()


def test_supervisor_starts_a_restarted_executor_and_keeps_it_fed(
        make_venue: Any, make_breaker: Any, approved: Any, wait_for: Any, tmp_path: Path) -> None:
    """``spark-ray trade``'s supervision loop (TradingRun.supervise): after Ray restarts a killed
    executor, the supervisor starts it (journal replayed, venue reconciled), the fabric feeds the
    new process, and it is subscribed once -- re-subscribing never doubles the feed."""
    import uuid

    from spark_ray.app.fabric import FabricConfig
    from spark_ray.app.trading import TradingRun
    from spark_ray.execution.executor import ExecutorConfig
    from spark_ray.execution.params import load_approved
    from spark_ray.execution.spec import ExecutorSpec

    venue = make_venue()
    bname, _ = make_breaker()
    ap = load_approved(approved())
    tag = uuid.uuid4().hex[:8]
    spec = ExecutorSpec(
        config=ExecutorConfig(name=f"sup-{tag}", symbols=("BTCUSDT",), interval="1s",
                              cash=5_000.0, warmup_bars=20),
        strategy=ap.strategy, params=ap.params, journal_path=str(tmp_path / "journal.jsonl"),
        approved_path=ap.path, approval=ap.approval, rest_url=venue.rest_url,
        ws_url=venue.ws_url, breaker_name=bname, control_port=None)
    run = TradingRun(spec, f"executor:sup-{tag}",
                     FabricConfig(symbols=["BTCUSDT"], streams=["trade"], ws_url=venue.ws_url,
                                  rest_url=venue.rest_url, store=str(tmp_path / "lake"),
                                  namespace=f"test-{tag}", flush_ms=5.0)).start()
    try:
        first = wait_for(lambda: (s := run.supervise())["batches"] > 0 and s, timeout=60,
                         every=0.5, what="market data at the executor")
        ray.kill(run.executor, no_restart=False)

        def back() -> dict[str, Any] | None:
            try:
                s = run.supervise()
            except ray.exceptions.RayError:  # restarting
                return None
            return s if s["pid"] != first["pid"] and s["started"] and s["batches"] > 0 else None

        st = wait_for(back, timeout=90, every=0.5, what="the restarted executor fed again")
        assert run.restarts == 1 and st["restarted"] is True
        assert st["start_error"] is None and not st["reconcile"].get("errors")
        run._subscribe()  # what supervise does when data goes quiet: idempotent
        assert run.fabric is not None
        subs: Any = ray.get(run.fabric.normalizers[0].status.remote())["subscribers"]
        assert len(subs) == 1, subs
    finally:
        run.stop(collect=False)
