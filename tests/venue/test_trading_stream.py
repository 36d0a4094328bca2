"""User data streams over real WebSockets: executionReport sequences, account positions,
combined wrappers, listen-key expiry and isolation between accounts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from decimal import Decimal
from typing import Any

from websockets.exceptions import ConnectionClosed

from venue_helpers import KEY, TRADING, collect, connect, http, listen_key, raw_call, signed

D = Decimal
SYM = "BTCUSDT"
TAPE: dict[str, Any] = dict(TRADING, start_paused=True, start_time_ms=1_767_225_600_000,
                            speed=20.0)


async def order(v: Any, **params: Any) -> Any:
    status, _, body = await asyncio.to_thread(signed, v.rest_url, "POST", "/api/v3/order",
                                              {"symbol": SYM, **params})
    assert status == 200, body
    return body


async def until(ws: Any, done: Any, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Events until done(events) holds."""
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not done(events):
        left = deadline - time.monotonic()
        assert left > 0, events
        events.append(json.loads(await asyncio.wait_for(ws.recv(), left)))
    return events


def reports(events: list[dict[str, Any]], order_id: int) -> list[dict[str, Any]]:
    return [e for e in events if e["e"] == "executionReport" and e["i"] == order_id]


def test_execution_reports_follow_every_order_step(make_venue: Any) -> None:
    v = make_venue(**TAPE)
    lk = listen_key(v.rest_url)
    _, _, book = http(f"{v.rest_url}/api/v3/depth?symbol={SYM}&limit=2")
    qty = (D(book["asks"][0][1]) + D(book["asks"][1][1]) / 2).quantize(D("0.00001"))
    bid = D(book["bids"][0][0])

    async def main() -> None:
        async with connect(f"{v.ws_url}/ws/{lk}") as ws:
            conn = [c for c in await asyncio.to_thread(v.connections) if c["user_streams"]]
            assert len(conn) == 1 and conn[0]["streams"] == []  # the key itself is not shown
            assert conn[0]["path"] == "/ws/<listenKey>"
            # 1. A market order: NEW, then one TRADE per level, FILLED last.
            mkt = await order(v, side="BUY", type="MARKET", quantity=str(qty))
            events = await until(ws, lambda ev: any(
                e.get("X") == "FILLED" for e in ev) and ev[-1]["e"] == "outboundAccountPosition")
            ers = reports(events, mkt["orderId"])
            assert [(e["x"], e["X"]) for e in ers] == [
                ("NEW", "NEW"), ("TRADE", "PARTIALLY_FILLED"), ("TRADE", "FILLED")]
            new = ers[0]
            assert (new["s"], new["c"], new["S"], new["o"], new["q"], new["t"], new["N"]) == (
                SYM, mkt["clientOrderId"], "BUY", "MARKET", mkt["origQty"], -1, None)
            for e, f in zip(ers[1:], mkt["fills"], strict=True):
                assert (e["L"], e["l"], e["n"], e["N"], e["t"], e["m"]) == (
                    f["price"], f["qty"], f["commission"], f["commissionAsset"], f["tradeId"],
                    False)
                assert D(e["Y"]) == D(e["L"]) * D(e["l"])
            assert ers[-1]["z"] == mkt["executedQty"] and ers[-1]["Z"] == mkt[
                "cummulativeQuoteQty"]
            assert all(e["O"] == mkt["transactTime"] and e["C"] == "" for e in ers)
            positions = [e for e in events if e["e"] == "outboundAccountPosition"]
            assert len(positions) == 2  # after each fill
            _, _, acct = await asyncio.to_thread(signed, v.rest_url, "GET", "/api/v3/account")
            final = {b["a"]: (b["f"], b["l"]) for b in positions[-1]["B"]}
            assert final == {b["asset"]: (b["free"], b["locked"]) for b in acct["balances"]}
            # 2. A resting buy: NEW (on the book, quote locked), then maker fills on the tape.
            rest = await order(v, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01",
                               price=str(bid - 1), newClientOrderId="rest1")
            events = await until(ws, lambda ev: len(ev) >= 2)
            new, pos = events
            assert (new["x"], new["X"], new["c"], new["w"], new["W"]) == (
                "NEW", "NEW", "rest1", True, rest["transactTime"])
            assert pos["e"] == "outboundAccountPosition" and [b["a"] for b in pos["B"]] == ["USDT"]
            assert D(pos["B"][0]["l"]) == (bid - 1) * D("0.01")
            await asyncio.to_thread(v.resume)
            events = await until(ws, lambda ev: any(e.get("X") == "FILLED" for e in ev))
            ers = reports(events, rest["orderId"])
            assert [e["X"] for e in ers] == ["PARTIALLY_FILLED"] * (len(ers) - 1) + ["FILLED"]
            assert len(ers) >= 3 and all(e["m"] and e["L"] == rest["price"] for e in ers)
            assert sum(D(e["l"]) for e in ers) == D("0.01") and ers[-1]["z"] == "0.01000000"
            # 3. Cancel: c is the cancel's id, C the order's own.
            far = await order(v, side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.5",
                              price="90000", newClientOrderId="far1")
            await until(ws, lambda ev: any(e.get("i") == far["orderId"] for e in ev))
            status, _, _ = await asyncio.to_thread(
                signed, v.rest_url, "DELETE", "/api/v3/order",
                {"symbol": SYM, "orderId": far["orderId"], "newClientOrderId": "cxl1"})
            assert status == 200
            events = await until(ws, lambda ev: any(e.get("x") == "CANCELED" for e in ev)
                                 and ev[-1]["e"] == "outboundAccountPosition")
            cancel = next(e for e in events if e.get("x") == "CANCELED")
            assert (cancel["c"], cancel["C"], cancel["X"], cancel["w"]) == (
                "cxl1", "far1", "CANCELED", False)
            assert {b["a"]: b["l"] for b in events[-1]["B"]} == {"BTC": "0.00000000"}

    asyncio.run(main())


def test_combined_wrapper_expiry_and_keepalive(make_venue: Any) -> None:
    v = make_venue(**TRADING, start_paused=True, listen_key_ttl_s=1.5)
    lk = listen_key(v.rest_url)

    async def main() -> None:
        async with connect(f"{v.ws_url}/stream?streams={lk}") as ws:
            ioc = await order(v, side="BUY", type="LIMIT", timeInForce="IOC", quantity="0.01",
                              price="50000")
            frames = await until(ws, lambda ev: any(f["data"].get("x") == "EXPIRED" for f in ev)
                                 and ev[-1]["data"]["e"] == "outboundAccountPosition", timeout=5)
            assert {f["stream"] for f in frames} == {lk}
            assert [(f["data"]["x"], f["data"]["i"]) for f in frames
                    if f["data"]["e"] == "executionReport"] == [
                ("NEW", ioc["orderId"]), ("EXPIRED", ioc["orderId"])]
            # Kept alive past its first lifetime ...
            for _ in range(3):
                await asyncio.sleep(0.7)
                status, _, _ = await asyncio.to_thread(
                    raw_call, v.rest_url, "PUT", "/api/v3/userDataStream",
                    query=f"listenKey={lk}", headers={"X-MBX-APIKEY": KEY})
                assert status == 200
            # ... then left alone: listenKeyExpired, and the stream closes.
            frames = []
            with contextlib.suppress(ConnectionClosed):
                while True:
                    frames.append(json.loads(await asyncio.wait_for(ws.recv(), 4)))
            assert [f["data"] for f in frames] == [
                {"e": "listenKeyExpired", "E": frames[0]["data"]["E"], "listenKey": lk}]
            assert ws.close_code == 1000
        status, _, body = await asyncio.to_thread(
            raw_call, v.rest_url, "PUT", "/api/v3/userDataStream", query=f"listenKey={lk}",
            headers={"X-MBX-APIKEY": KEY})
        assert (status, body["code"]) == (400, -1125)
        assert listen_key(v.rest_url) != lk  # a new key after expiry

    asyncio.run(main())


def test_accounts_see_only_their_own_events_and_faults_reach_user_streams(
        make_venue: Any) -> None:
    other_key, other_secret = "tradeKey2", "tradeSecret2"
    v = make_venue(**{**TRADING, "api_keys": {KEY: "tradeSecret1", other_key: other_secret}},
                   start_paused=True)
    mine, theirs = listen_key(v.rest_url), listen_key(v.rest_url, other_key)
    assert mine != theirs
    status = raw_call(v.rest_url, "PUT", "/api/v3/userDataStream", query=f"listenKey={theirs}",
                      headers={"X-MBX-APIKEY": KEY})[0]
    assert status == 400  # a key cannot keep another account's stream alive

    async def main() -> None:
        async with connect(f"{v.ws_url}/ws/{mine}") as ws_a, \
                connect(f"{v.ws_url}/ws/{theirs}") as ws_b:
            v.inject("drop", streams=["userData"], count=1)
            first = await order(v, side="BUY", type="LIMIT", timeInForce="GTC",
                                quantity="0.01", price="50000")
            got_a = await collect(ws_a, 0.5)
            # The first frame (NEW) was dropped by the fault; the position still came.
            assert [e["e"] for e in got_a] == ["outboundAccountPosition"]
            assert await collect(ws_b, 0.2) == []
            status, _, body = await asyncio.to_thread(
                signed, v.rest_url, "POST", "/api/v3/order",
                {"symbol": SYM, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                 "quantity": "0.01", "price": "50000"}, key=other_key, secret=other_secret)
            assert status == 200
            got_b = await collect(ws_b, 0.5)
            assert [e["e"] for e in got_b] == ["executionReport", "outboundAccountPosition"]
            assert got_b[0]["i"] == body["orderId"] != first["orderId"]
            assert await collect(ws_a, 0.2) == []

    asyncio.run(main())
    log = [e for e in v.fault_log() if e["action"] == "injected"]
    assert [e["kind"] for e in log] == ["drop"] and log[0]["stream"] == "userData"
    assert not any(mine in str(e) or theirs in str(e) for e in v.fault_log())
