"""The circuit breaker gates every order: a trip cancels the executor's resting orders at the
venue and no new order reaches it; flatten-on-trip sells the position; an executor whose
approval was tampered with refuses to trade again after a restart, and says why."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import ray

from spark_ray.breaker.core import CircuitBreaker
from spark_ray.breaker.models import BreakerConfig
from spark_ray.execution.executor import ExecutorConfig, ExecutorCore
from spark_ray.execution.gate import LocalGate
from spark_ray.execution.journal import MemoryJournal
from spark_ray.execution.paper import PaperBroker
from spark_ray.execution.probe import Alternate
from spark_ray.execution.replay import feed

PROBE = "spark_ray.execution.probe:Alternate"


def test_trip_cancels_resting_orders_at_the_venue(make_venue: Any, make_fabric: Any,
                                                  make_breaker: Any, make_executor: Any,
                                                  approved: Any, wait_for: Any,
                                                  venue_keys: Any) -> None:
    key, _ = venue_keys
    venue = make_venue()
    bname, breaker = make_breaker()
    ex, _ = make_executor(approved(PROBE, {"burst": 3, "size_pct": 0.3, "limit_bps": 300}),
                          venue, bname, live=True)
    fabric = make_fabric(venue)
    ray.get([n.subscribe.remote(ex, "on_market_data") for n in fabric.normalizers])

    def resting() -> list[dict[str, Any]]:
        return [o for o in venue.orders("BTCUSDT", key) if o["status"] == "NEW"]

    wait_for(lambda: len(resting()) == 3, timeout=60, what="three resting limit orders")
    submitted = ray.get(ex.status.remote())["stats"]["submitted"]
    ray.get(breaker.trip.remote("resting orders must go", "tester"))
    wait_for(lambda: not resting(), timeout=20, what="the venue to cancel our resting orders")
    canceled = [o for o in venue.orders("BTCUSDT", key) if o["status"] == "CANCELED"]
    assert len(canceled) == 3

    def ours_canceled() -> bool:  # the venue's answers reach our records just after
        ours = {o["cid"]: o for o in ray.get(ex.orders.remote())}
        return all(ours[o["clientOrderId"]]["status"] == "CANCELED" for o in canceled)

    wait_for(ours_canceled, timeout=20, what="our records to show the three cancels")
    # The probe wants to buy again on every bar now; the breaker says no, nothing is sent.
    wait_for(lambda: any(o["status"] == "REJECTED" and o["reason"].startswith("breaker:")
                         for o in ray.get(ex.orders.remote())), timeout=20,
             what="an order blocked by the breaker")
    assert ray.get(ex.status.remote())["stats"]["submitted"] == submitted
    assert len(venue.orders("BTCUSDT", key)) == 3


def test_flatten_on_trip_is_asked_allowed_and_journaled() -> None:
    """In-process: the core with the breaker core; a trip cancels and flattens. The flatten
    order is asked too: the tripped breaker lets it out by policy (it reduces the position the
    breaker has seen) and journals that decision; new entries stay blocked."""
    cfg = ExecutorConfig(name="flat", symbols=("X",), interval="1s", cash=1000.0,
                         close_grace_ms=None, hole_wait_ms=None, skip_first_bar=False,
                         warmup_bars=0, flatten_on_trip=True)
    gate = LocalGate(CircuitBreaker(BreakerConfig.model_validate(
        {"consecutive_losses": {"enabled": False}, "order_rate": {"limit": 10**6}})))
    core = ExecutorCore(cfg, Alternate, {"burst": 1, "size_pct": 0.5},
                        PaperBroker({"X": 1000.0}, cfg.costs()), MemoryJournal(), gate)
    n = 60
    ids = np.arange(1, n + 1)
    cols = (1_795_000_000_000 + ids * 1000, np.full(n, 100.0), np.ones(n), ids,
            np.zeros(n, np.int64))

    async def run() -> dict[str, Any]:
        await core.start()
        await feed(core, "X", tuple(c[:3] for c in cols), 1)  # type: ignore[arg-type]
        assert core.positions["X"].qty > 0  # bought on bar 1, filled on bar 2
        gate.core.trip("test", "tester")
        result = await core.on_trip({"rule": "manual", "reason": "test"})
        await feed(core, "X", tuple(c[3:] for c in cols), 1)  # type: ignore[arg-type]
        return result

    result = asyncio.run(run())
    assert len(result["flatten_orders"]) == 1
    flat = core.om.get(result["flatten_orders"][0])
    assert flat is not None and flat.status == "FILLED" and flat.flatten
    exits = [e for e in gate.core.journal.events  # type: ignore[attr-defined]
             if e.kind == "exit"]
    assert [(e.scope, e.order["order_id"], e.order["tag"], e.order["reduce_only"],
             e.values["allowed"]) for e in exits] == [
        ("global", flat.cid, "flatten", True, True)]
    assert exits[0].order["strategy"] == "flat" and exits[0].order["account"] == "default"
    assert core.stats["flatten_unasked"] == 0
    assert core.positions["X"].qty == 0
    after = [o for o in core.om.orders.values() if o.bar_time > flat.bar_time]
    assert after and all(o.status == "REJECTED" and o.reason.startswith("breaker: manual")
                         for o in after)


def restart_verdict(ex: Any, wait_for: Any) -> dict[str, Any]:
    """The restarted executor's status once its start has said why it refused."""
    def refused() -> dict[str, Any] | None:
        try:
            st = ray.get(ex.start.remote(), timeout=30)
        except ray.exceptions.RayError:
            return None
        return st if st.get("start_error") else None

    return dict(wait_for(refused, timeout=60, every=0.5,
                         what="the restarted executor's verdict"))


def test_restart_refuses_tampered_params(make_venue: Any, make_breaker: Any,
                                         make_executor: Any, approved: Any,
                                         wait_for: Any) -> None:
    venue = make_venue()
    bname, _ = make_breaker()
    path = approved()
    ex, _ = make_executor(path, venue, bname)
    best = Path(path).parent / "best.json"
    best.write_text(best.read_text().replace('"objective": 1.0', '"objective": 9.0'))
    ray.kill(ex, no_restart=False)

    st = restart_verdict(ex, wait_for)
    assert st["started"] is False and "refusing to trade" in st["start_error"]
    assert "modified after approval" in st["start_error"]
    assert ray.get(ex.health.remote())["ok"] is False


def test_restart_refuses_an_approval_re_signed_by_an_untrusted_key(
        make_venue: Any, make_breaker: Any, make_executor: Any, approved: Any,
        wait_for: Any) -> None:
    """Someone with write access swaps approved.json for one they signed themselves."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from spark_ray.approval.approved import approve
    from spark_ray.approval.signing import Signer

    venue = make_venue()
    bname, _ = make_breaker()
    path = Path(approved())
    ex, _ = make_executor(path, venue, bname)
    mallory = Signer("mallory", Ed25519PrivateKey.generate())
    path.write_text(json.dumps(approve(path.parent / "best.json",
                                       path.parent / "risk-report.json", mallory)))
    ray.kill(ex, no_restart=False)

    st = restart_verdict(ex, wait_for)
    assert st["started"] is False and "refusing to trade" in st["start_error"]
    assert "signed by 'mallory', which is not in the trusted keys" in st["start_error"]


class _Unreachable(LocalGate):
    """A breaker that does not answer (its actor restarting)."""

    async def allow(self, orders: list[Any], signals: Any = ()) -> list[Any]:
        raise TimeoutError("breaker restarting")


def test_flatten_with_an_unreachable_breaker_goes_out_but_not_silently() -> None:
    cfg = ExecutorConfig(name="flat2", symbols=("X",), interval="1s", cash=1000.0,
                         close_grace_ms=None, hole_wait_ms=None, skip_first_bar=False,
                         warmup_bars=0)
    gate = LocalGate(CircuitBreaker(BreakerConfig.model_validate(
        {"consecutive_losses": {"enabled": False}, "order_rate": {"limit": 10**6}})))
    journal = MemoryJournal()
    core = ExecutorCore(cfg, Alternate, {"burst": 1, "size_pct": 0.5},
                        PaperBroker({"X": 1000.0}, cfg.costs()), journal, gate)
    n = 3
    ids = np.arange(1, n + 1)
    cols = (1_795_000_000_000 + ids * 1000, np.full(n, 100.0), np.ones(n), ids,
            np.zeros(n, np.int64))

    async def run() -> list[str]:
        await core.start()
        await feed(core, "X", cols, 1)  # type: ignore[arg-type]
        assert core.positions["X"].qty > 0
        core.gate = _Unreachable()
        return await core.flatten("operator")

    (cid,) = asyncio.run(run())
    assert core.stats["flatten_unasked"] == 1
    assert any("flatten sent unasked" in e for e in core.errors)
    notes = [r for r in journal.records if r.get("k") == "note"]
    assert notes and cid in notes[-1]["cids"] and "breaker unreachable" in notes[-1]["what"]
