"""Injected 5xx and timeouts on order submission: the BinanceBroker retries under the same client
order id and the venue ends up with exactly one order per intent -- whether or not the failed
attempt had placed the order."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import ray

from spark_ray.adapters.binance.broker import BinanceBroker
from spark_ray.execution.broker import Credentials, OutcomeUnknown
from spark_ray.execution.ids import client_order_id
from spark_ray.execution.orders import ManagedOrder
from spark_ray.fills.orders import BUY, SELL


def _order(i: int, side: int = BUY, **venue: Any) -> ManagedOrder:
    cid = client_order_id("retrytst", "BTCUSDT", 1_800_000_000_000 + i * 1000, 0)
    o = ManagedOrder(cid, "BTCUSDT", side, "market", 1_800_000_000_000 + i * 1000, 0,
                     qty=0.001, quantity="0.00100")
    for k, v in venue.items():
        setattr(o, k, v)
    return o


CASES = [
    ("order_error", {"status": 503, "placed": True}),
    ("order_error", {"status": 500, "placed": False}),
    ("order_timeout", {"delay_ms": 2500, "placed": True}),
    ("order_timeout", {"delay_ms": 2500, "placed": False}),
    ("order_timeout", {"delay_ms": 2500, "placed": True, "drop_connection": True}),
]


@pytest.mark.parametrize(("kind", "params"), CASES,
                         ids=[f"{k}-{'placed' if p['placed'] else 'lost'}"
                              f"{'-reset' if p.get('drop_connection') else ''}"
                              for k, p in CASES])
def test_one_order_per_client_id_under_faults(make_venue: Any, venue_keys: Any, kind: str,
                                              params: dict[str, Any]) -> None:
    key, secret = venue_keys
    venue = make_venue(starting_balances={"USDT": "100000", "BTC": "1"})
    broker = BinanceBroker(Credentials(key, secret), venue.rest_url, venue.ws_url,
                           timeout_s=1.0, attempts=4, backoff_s=0.05, recv_window_ms=1000,
                           user_stream=False)
    order = _order(1, BUY if params["placed"] else SELL)
    venue.inject(kind, count=1, **params)

    async def run() -> list[Any]:
        try:
            return await broker.submit(order)
        finally:
            await broker.close()

    t = time.monotonic()
    updates = asyncio.run(run())
    took = time.monotonic() - t
    at_venue = [o for o in venue.orders("BTCUSDT", key) if o["clientOrderId"] == order.cid]
    assert len(at_venue) == 1, at_venue  # exactly one order, whatever the fault did
    assert at_venue[0]["status"] == "FILLED"
    assert updates[0].status == "FILLED" and updates[0].venue_order_id == at_venue[0]["orderId"]
    injected = [e for e in venue.fault_log() if e["action"] == "injected"]
    assert len(injected) == 1 and injected[0]["kind"] == kind  # the fault really hit the submit
    assert broker.stats["retries"] >= 1
    if params["placed"]:  # found by origClientOrderId: adopted, never sent again
        assert broker.stats["resubmits"] == 0
    else:  # the venue never had it: resent under the same id, after the recvWindow
        assert broker.stats["resubmits"] == 1 and took >= 1.0


def test_unreachable_venue_leaves_the_outcome_unknown(make_venue: Any, venue_keys: Any) -> None:
    """When neither the submit nor the queries get an answer, nothing is resubmitted blindly:
    the order stays UNKNOWN (reconciliation asks again later)."""
    key, secret = venue_keys
    venue = make_venue()
    broker = BinanceBroker(Credentials(key, secret), venue.rest_url, venue.ws_url,
                           timeout_s=0.5, attempts=3, backoff_s=0.05, recv_window_ms=1000,
                           user_stream=False)
    order = _order(2)
    venue.inject("rest_timeout", delay_ms=2000, path="/api/v3/order", duration_s=6)

    async def run() -> None:
        try:
            await broker.submit(order)
        finally:
            await broker.close()

    with pytest.raises(OutcomeUnknown):
        asyncio.run(run())
    assert broker.stats["resubmits"] == 0 and broker.stats["retries"] >= 2
    assert len([o for o in venue.orders("BTCUSDT", key)
                if o["clientOrderId"] == order.cid]) <= 1  # never a second one


def test_live_executor_under_order_faults(make_venue: Any, make_fabric: Any, make_breaker: Any,
                                         make_executor: Any, approved: Any, wait_for: Any,
                                         venue_keys: Any) -> None:
    """The whole executor under a storm of failed submissions: every intent the venue saw is
    there once, and the executor agrees with the venue on each order's status."""
    key, _ = venue_keys
    venue = make_venue()
    bname, _ = make_breaker()
    ex, _ = make_executor(approved(), venue, bname, live=True)
    venue.inject("order_error", status=503, probability=0.5, placed=True)
    venue.inject("order_error", status=502, probability=0.5, placed=False)
    fabric = make_fabric(venue)
    ray.get([n.subscribe.remote(ex, "on_market_data") for n in fabric.normalizers])
    wait_for(lambda: ray.get(ex.status.remote())["orders"]["FILLED"] >= 4, timeout=90,
             what="four fills through the faults")
    venue.clear_faults()
    ray.get(ex.drain.remote())
    st = ray.get(ex.status.remote())
    assert st["broker_stats"]["retries"] >= 1
    assert len([e for e in venue.fault_log() if e["action"] == "injected"]) >= 1
    at_venue = [o for o in venue.orders("BTCUSDT", key) if o["clientOrderId"].startswith("sr-")]
    cids = [o["clientOrderId"] for o in at_venue]
    assert len(cids) == len(set(cids))
    ours = {o["cid"]: o for o in ray.get(ex.orders.remote())}
    for o in at_venue:
        assert ours[o["clientOrderId"]]["status"] == o["status"]


def test_clock_skew_is_resynced_once(make_venue: Any, venue_keys: Any) -> None:
    """-1021 (timestamp outside recvWindow): one resync with /api/v3/time, then the order."""
    key, secret = venue_keys
    venue = make_venue(speed=1.0)
    broker = BinanceBroker(Credentials(key, secret), venue.rest_url, venue.ws_url,
                           timeout_s=2.0, recv_window_ms=1000, user_stream=False)
    broker.offset_ms = -30_000  # our clock "runs" 30 s behind the venue's
    order = _order(3)

    async def run() -> list[Any]:
        try:
            return await broker.submit(order)
        finally:
            await broker.close()

    updates = asyncio.run(run())
    assert updates[0].status == "FILLED" and broker.stats["time_resyncs"] == 1
    assert abs(broker.offset_ms) < 5_000
    assert len([o for o in venue.orders("BTCUSDT", key) if o["clientOrderId"] == order.cid]) == 1
