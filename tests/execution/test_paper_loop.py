"""The full loop on real parts: venue stream -> fabric -> ExecutorActor (strategy) -> breaker ->
PaperBroker -> fills -> positions, then a breaker trip halting new orders and canceling open ones,
and the control plane."""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

import ray

from spark_ray.execution.ids import CID_RE


def _subscribe(fabric: Any, handle: Any) -> None:
    ray.get([n.subscribe.remote(handle, "on_market_data") for n in fabric.normalizers])


def _get(url: str, token: str | None = None, data: bytes | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def test_stream_strategy_breaker_order_fill_position(make_venue: Any, make_fabric: Any,
                                                     make_breaker: Any, make_executor: Any,
                                                     approved: Any, wait_for: Any,
                                                     ray_session: Any) -> None:
    venue = make_venue()
    bname, breaker = make_breaker()
    ex, _spec = make_executor(approved("sma_cross", {"fast": 2, "slow": 3}), venue, bname)
    fabric = make_fabric(venue)
    _subscribe(fabric, ex)

    st = wait_for(lambda: (s := ray.get(ex.status.remote()))["orders"]["FILLED"] >= 3 and s,
                  timeout=60, what="three paper fills")
    assert st["started"] and st["mode"] == "paper" and st["broker"] == "paper"
    assert st["stats"]["warmup_bars"] > 0  # history came from the venue's REST klines
    assert st["stats"]["allowed"] >= st["stats"]["submitted"] > 0  # the breaker said yes first
    orders = ray.get(ex.orders.remote())

    def consistent() -> Any:
        """Fills and positions read together (the executor keeps trading between calls)."""
        f, p = ray.get([ex.fills.remote(), ex.positions.remote()])
        return (f, p["BTCUSDT"]) if p["BTCUSDT"]["fills"] == len(f) else None

    fills, pos = wait_for(consistent, timeout=30, what="fills and positions read together")
    assert all(CID_RE.match(o["cid"]) and o["cid"].startswith("sr-") for o in orders)
    assert len({o["cid"] for o in orders}) == len(orders)  # one order per intent
    filled = [o for o in orders if o["status"] == "FILLED"]
    assert len(fills) >= len(filled)
    # Fills follow the backtest's convention: a market order decided on bar t fills at the open
    # of a later bar (never its own).
    assert all(f["time_ms"] > o["bar_time"] for o in filled for f in o["fills"])
    # Positions are exactly the fills: buys minus sells, cash minus notional and fees.
    qty = sum(f["qty"] if f["side"] == "buy" else -f["qty"] for f in fills)
    cash = 5_000.0 - sum((f["qty"] * f["price"]) * (1 if f["side"] == "buy" else -1)
                         + f["commission"] for f in fills)
    assert abs(pos["qty"] - qty) < 1e-9 and abs(pos["cash"] - cash) < 1e-6
    assert pos["fees"] > 0 and pos["fills"] == len(fills)
    # Quantities are on the venue's lot grid (LOT_SIZE 0.00001 for BTCUSDT).
    assert all(re.fullmatch(r"\d+\.\d{1,5}", f"{f['qty']:.5f}") for f in fills)

    # The control plane: health, positions, orders; /kill needs the token (none configured).
    url = st["control_url"]
    code, body = _get(url + "/health")
    assert code == 200 and body["status"] == "ok", body
    assert _get(url + "/positions")[1]["BTCUSDT"]["fills"] >= len(fills)
    assert len(_get(url + "/orders")[1]) >= len(orders)
    assert _get(url + "/kill", data=b"{}")[0] == 403

    # Breaker trip: no new entry goes out (an exit of the position may: the breaker lets
    # reduce-only sells out of a tripped scope), open ones are canceled, reasons are recorded.
    ray.get(breaker.trip.remote("test incident", "tester"))
    # Handled: the executor canceled under its lock, so no bar's order is on its way any more.
    wait_for(lambda: [t for t in ray.get(ex.status.remote())["trips"] if "canceled" in t],
             timeout=15, what="the trip notice handled")
    known = {o["cid"] for o in ray.get(ex.orders.remote())}
    # (an earlier order may have been refused for a slow breaker answer: fail closed)
    wait_for(lambda: [o for o in ray.get(ex.orders.remote())
                      if o["status"] == "REJECTED" and "manual: test incident" in o["reason"]],
             timeout=30, what="an order blocked by the tripped breaker")
    later = [o for o in ray.get(ex.orders.remote()) if o["cid"] not in known]
    sent = [o for o in later if o["status"] != "REJECTED"]
    assert all(o["side"] == "sell" for o in sent), sent  # no entry reached the broker since
    # Nothing works at the broker any more: every order it had accepted was canceled or filled.
    # (A later bar's order may be PENDING_NEW for a moment, on its way to the breaker's "no".)
    working = [o for o in ray.get(ex.orders.remote())
               if o["status"] in ("NEW", "PARTIALLY_FILLED")]
    assert working == []
    wait_for(lambda: ray.get(ex.status.remote())["open_orders"] == 0, timeout=15,
             what="no open order")
    code, body = _get(url + "/health")
    assert code == 503 and any("breaker" in r for r in body["reasons"])

    # Ray's Prometheus export carries the executor's metrics (``ray_`` prefix).
    name = st["actor_name"]
    metrics = f"http://127.0.0.1:{ray_session.metrics_export_port}/metrics"

    def exported() -> str | None:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(metrics, timeout=10) as r:
            text = r.read().decode()
        want = ['ray_executor_orders_total{', 'status="FILLED"', "ray_executor_fills_total",
                "ray_executor_position", "ray_executor_pnl", "ray_executor_tick_to_order_ms"]
        mine = [ln for ln in text.splitlines() if f'executor="{name}"' in ln]
        return text if all(any(w in ln for ln in mine) for w in want) else None

    wait_for(exported, timeout=60, every=2.0, what="the executor's metrics in Ray's export")
