"""Order faults over real HTTP: errors and timeouts that did (or did not) place the order, and
the trading ground truth in thread and process mode."""

from __future__ import annotations

import http.client
import socket
import time
import urllib.error
from decimal import Decimal
from typing import Any

import pytest

from spark_ray.venue import FaultKind, FaultSpec, Venue

from venue_helpers import KEY, TRADING, signed

SYM = "BTCUSDT"
LIMIT = {"symbol": SYM, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
         "quantity": "0.01", "price": "50000"}


def query(v: Any, client_id: str) -> tuple[int, Any]:
    status, _, body = signed(v.rest_url, "GET", "/api/v3/order",
                             {"symbol": SYM, "origClientOrderId": client_id})
    return status, body


def test_order_fault_specs_are_validated() -> None:
    with pytest.raises(ValueError, match="status"):
        FaultSpec(FaultKind.ORDER_ERROR, status=404)
    with pytest.raises(ValueError, match="delay_ms"):
        FaultSpec(FaultKind.ORDER_TIMEOUT)
    assert FaultSpec.from_dict({"kind": "order_error", "placed": False}).placed is False


def test_order_error_with_and_without_the_order_placed(make_venue: Any) -> None:
    v = make_venue(**TRADING, start_paused=True)
    v.inject("order_error", status=503, count=1)  # placed=True: the nasty case
    status, _, body = signed(v.rest_url, "POST", "/api/v3/order",
                             {**LIMIT, "newClientOrderId": "placed1"})
    assert status == 503 and body["code"] == -1008
    status, order = query(v, "placed1")
    assert status == 200 and order["status"] == "NEW"  # it exists although the client failed
    v.inject("order_error", status=500, count=1, placed=False)
    status, _, body = signed(v.rest_url, "POST", "/api/v3/order",
                             {**LIMIT, "newClientOrderId": "lost1"})
    assert (status, body["code"]) == (500, -1001)
    assert query(v, "lost1") == (400, {"code": -2013, "msg": "Order does not exist."})
    # The faults are used up: the retry of the lost order goes through.
    status, _, body = signed(v.rest_url, "POST", "/api/v3/order",
                             {**LIMIT, "newClientOrderId": "lost1"})
    assert status == 200
    assert [o["clientOrderId"] for o in v.orders(SYM)] == ["placed1", "lost1"]
    # Bad requests do not use up a fault: authentication comes first.
    v.inject("order_error", status=503, count=1, placed=False)
    assert signed(v.rest_url, "POST", "/api/v3/order", LIMIT, secret="wrong")[0] == 400
    assert signed(v.rest_url, "POST", "/api/v3/order", LIMIT)[0] == 503
    # The account's books: two open orders, each locking 500 USDT.
    assert v.balances(KEY)["USDT"] == {"free": "99000.00000000", "locked": "1000.00000000"}
    injected = [e for e in v.fault_log() if e["action"] == "injected"]
    assert [e["kind"] for e in injected] == ["order_error"] * 3
    assert ["placed=False" in e["detail"] for e in injected] == [False, True, True]


def test_order_timeout_places_then_holds_the_answer(make_venue: Any) -> None:
    v = make_venue(**TRADING, start_paused=True)
    v.inject("order_timeout", delay_ms=1500, count=1)
    t0 = time.monotonic()
    with pytest.raises((TimeoutError, socket.timeout, urllib.error.URLError)):
        signed(v.rest_url, "POST", "/api/v3/order", {**LIMIT, "newClientOrderId": "slow1"},
               timeout=0.4)
    assert time.monotonic() - t0 < 1.4  # the client gave up first ...
    status, order = query(v, "slow1")
    assert status == 200 and order["status"] == "NEW"  # ... but the order is there
    # Held, then answered normally to a patient client.
    v.inject("order_timeout", delay_ms=600, count=1)
    t0 = time.monotonic()
    status, _, body = signed(v.rest_url, "POST", "/api/v3/order",
                             {**LIMIT, "newClientOrderId": "slow2"})
    assert status == 200 and body["clientOrderId"] == "slow2"
    assert time.monotonic() - t0 >= 0.6
    # Not placed: after the delay the backend-timeout answer, and no order.
    v.inject("order_timeout", delay_ms=300, count=1, placed=False)
    status, _, body = signed(v.rest_url, "POST", "/api/v3/order",
                             {**LIMIT, "newClientOrderId": "slow3"})
    assert (status, body["code"]) == (503, -1007)
    assert query(v, "slow3")[0] == 400
    # Placed, then the connection reset instead of any answer.
    v.inject("order_timeout", delay_ms=200, count=1, drop_connection=True)
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected,
                        urllib.error.URLError)):
        signed(v.rest_url, "POST", "/api/v3/order", {**LIMIT, "newClientOrderId": "slow4"})
    assert query(v, "slow4")[0] == 200
    assert [o["clientOrderId"] for o in v.orders(SYM)] == ["slow1", "slow2", "slow4"]


def test_ground_truth_in_process_mode() -> None:
    with Venue(**TRADING, start_paused=True, process=True) as v:
        status, _, body = signed(v.rest_url, "POST", "/api/v3/order",
                                 {"symbol": SYM, "side": "SELL", "type": "MARKET",
                                  "quantity": "0.2"})
        assert status == 200 and body["status"] == "FILLED"
        v.inject("order_error", status=503, count=1, placed=True)
        status, _, _ = signed(v.rest_url, "POST", "/api/v3/order",
                              {**LIMIT, "newClientOrderId": "gt1"})
        assert status == 503
        orders = v.orders(SYM, api_key=KEY)
        assert [(o["type"], o["status"]) for o in orders] == [("MARKET", "FILLED"),
                                                               ("LIMIT", "NEW")]
        assert orders[1]["clientOrderId"] == "gt1"
        trades = v.my_trades(KEY)
        assert sum(Decimal(t["qty"]) for t in trades) == Decimal("0.2")
        assert all(not t["isBuyer"] and t["commissionAsset"] == "USDT" for t in trades)
        bal = v.balances(KEY)
        assert bal["BTC"] == {"free": "0.80000000", "locked": "0.00000000"}
        quote = sum(Decimal(t["quoteQty"]) - Decimal(t["commission"]) for t in trades)
        assert Decimal(bal["USDT"]["free"]) + Decimal(bal["USDT"]["locked"]) == 100000 + quote
        assert Decimal(bal["USDT"]["locked"]) == 500
        with pytest.raises(ValueError, match="api_key"):
            v.balances("nobody")
