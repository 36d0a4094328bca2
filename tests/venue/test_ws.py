"""Binance market streams over real WebSockets: raw/combined, live subscriptions, limits, timers."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any

import aiohttp
import pytest
import websockets

from venue_helpers import RawWS, collect, connect, http, recv_json


def test_raw_and_combined_streams_carry_the_same_events(venue: Any) -> None:
    async def main() -> tuple[list[Any], list[Any]]:
        async with connect(f"{venue.ws_url}/ws/btcusdt@trade") as raw, connect(
            f"{venue.ws_url}/stream?streams=btcusdt@trade/ethusdt@trade"
        ) as comb:
            return await collect(raw, 1.0), await collect(comb, 0.5)

    raw, comb = asyncio.run(main())
    assert raw and all(f["e"] == "trade" and f["s"] == "BTCUSDT" for f in raw)
    assert list(raw[0]) == ["e", "E", "s", "t", "p", "q", "T", "m", "M"]
    assert comb and all(set(f) == {"stream", "data"} for f in comb)
    assert {f["stream"] for f in comb} == {"btcusdt@trade", "ethusdt@trade"}
    by_id = {f["t"]: f for f in raw}
    shared = [f["data"] for f in comb if f["stream"] == "btcusdt@trade" and f["data"]["t"] in by_id]
    assert shared and all(by_id[d["t"]] == d for d in shared)


def test_subscribe_list_unsubscribe_and_properties(make_venue: Any) -> None:
    venue = make_venue(max_incoming_per_s=50)

    async def main() -> None:
        async with connect(f"{venue.ws_url}/ws") as ws:
            await ws.send(json.dumps({"method": "SUBSCRIBE",
                                      "params": ["btcusdt@aggTrade", "btcusdt@bookTicker"],
                                      "id": 1}))
            frames = await collect(ws, 0.6)
            assert frames[0] == {"result": None, "id": 1}
            kinds = {f.get("e", "bookTicker" if "u" in f else None) for f in frames[1:]}
            assert kinds == {"aggTrade", "bookTicker"}
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}))
            reply = next(f for f in await collect(ws, 0.3) if f.get("id") == 2)
            assert reply == {"result": ["btcusdt@aggTrade", "btcusdt@bookTicker"], "id": 2}
            await ws.send(json.dumps({"method": "GET_PROPERTY", "params": ["combined"],
                                      "id": 3}))
            await ws.send(json.dumps({"method": "SET_PROPERTY", "params": ["combined", True],
                                      "id": 4}))
            await ws.send(json.dumps({"method": "UNSUBSCRIBE", "params": ["btcusdt@bookTicker"],
                                      "id": 5}))
            frames = await collect(ws, 0.6)
            assert {"result": False, "id": 3} in frames and {"result": None, "id": 4} in frames
            i5 = frames.index({"result": None, "id": 5})
            after = frames[i5 + 1:]
            assert after and all(f["stream"] == "btcusdt@aggTrade" for f in after)

    asyncio.run(main())


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("{not json", {"code": 3}),
        (json.dumps({"method": "SUBSCRIBEX", "params": [], "id": 7}),
         {"code": 2, "id": 7, "msg_start": "Invalid request: unknown variant `SUBSCRIBEX`"}),
        (json.dumps({"method": "SUBSCRIBE", "params": ["BTCUSDT@trade"], "id": 8}),
         {"code": 2, "id": 8, "msg_start": "Invalid request: invalid stream"}),
        (json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": [1]}),
         {"code": 2, "msg_start": "Invalid request: request ID must be"}),
        (json.dumps({"method": "GET_PROPERTY", "params": ["colour"], "id": 9}),
         {"code": 0, "id": 9, "msg_start": "Unknown property"}),
        (json.dumps({"method": "SET_PROPERTY", "params": ["combined", "yes"], "id": 10}),
         {"code": 1, "id": 10, "msg_start": "Invalid value type: expected Boolean"}),
    ],
)
def test_bad_control_messages_get_binance_errors(venue: Any, message: str,
                                                 expected: dict[str, Any]) -> None:
    async def main() -> Any:
        async with connect(f"{venue.ws_url}/ws") as ws:
            await ws.send(message)
            return await recv_json(ws)

    reply = asyncio.run(main())
    assert set(reply) == {"error", "id"}
    assert reply["error"]["code"] == expected["code"]
    assert reply["id"] == expected.get("id")
    assert reply["error"]["msg"].startswith(expected.get("msg_start", "Invalid JSON"))


def test_invalid_stream_in_url_is_refused(venue: Any) -> None:
    async def main() -> None:
        async with connect(f"{venue.ws_url}/ws/btcusdt@nonsense"):
            pass

    with pytest.raises(websockets.InvalidStatus) as e:
        asyncio.run(main())
    assert e.value.response.status_code == 400


def test_stream_limit_per_connection(make_venue: Any) -> None:
    v = make_venue(max_streams=3)

    async def main() -> Any:
        async with connect(f"{v.ws_url}/stream?streams=btcusdt@trade/ethusdt@trade") as ws:
            await ws.send(json.dumps({"method": "SUBSCRIBE",
                                      "params": ["btcusdt@aggTrade", "ethusdt@aggTrade"],
                                      "id": 1}))
            frames = await collect(ws, 0.5)
            return next(f for f in frames if f.get("id") == 1)

    reply = asyncio.run(main())
    assert reply["error"]["code"] == 2 and "too many streams" in reply["error"]["msg"]


def test_more_than_five_messages_per_second_disconnects(venue: Any) -> None:
    async def main() -> Any:
        async with connect(f"{venue.ws_url}/ws") as ws:
            for i in range(7):
                await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                for _ in range(20):
                    await asyncio.wait_for(ws.recv(), 5)
            return closed.value

    exc = asyncio.run(main())
    assert exc.rcvd is not None and exc.rcvd.code == 1008


def test_silent_client_is_dropped_after_pong_timeout(make_venue: Any) -> None:
    v = make_venue(ping_interval_s=0.2, pong_timeout_s=0.8)

    async def main() -> tuple[int, float, int | None]:
        async with aiohttp.ClientSession() as s, s.ws_connect(
            f"{v.ws_url}/ws/btcusdt@trade", autoping=False
        ) as ws:
            t0, pings = time.monotonic(), 0
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.PING:
                    pings += 1  # deliberately never answered
            return pings, time.monotonic() - t0, ws.close_code

    pings, lasted, code = asyncio.run(main())
    assert pings >= 2 and 0.7 <= lasted <= 3.0 and code == 1008


def test_pong_keeps_the_connection_and_unsolicited_pongs_do_not(make_venue: Any) -> None:
    v = make_venue(ping_interval_s=0.2, pong_timeout_s=0.8, max_incoming_per_s=50)
    good = RawWS(v.host, v.port, "/ws/btcusdt@bookTicker")
    bad = RawWS(v.host, v.port, "/ws/btcusdt@bookTicker")
    state = {"answered": 0, "good_data": 0, "bad_close": None}

    def drain(ws: RawWS, on_frame: Any) -> None:
        ws.sock.settimeout(0.01)
        try:
            while True:
                on_frame(*ws.frame())
        except TimeoutError:
            pass
        except ConnectionError:  # EOF after the close frame
            assert ws is bad and state["bad_close"] is not None

    def on_good(op: int, payload: bytes) -> None:
        if op == 0x9:
            good.send(0xA, payload)  # a proper pong echoes the ping's payload
            state["answered"] += 1
        elif op == 0x1:
            state["good_data"] += 1
        elif op == 0x8:
            raise AssertionError("the answering client was disconnected")

    def on_bad(op: int, payload: bytes) -> None:
        if op == 0x8:
            state["bad_close"] = int.from_bytes(payload[:2], "big")

    deadline = time.monotonic() + 1.5
    last_unsolicited = 0.0
    while time.monotonic() < deadline:
        drain(good, on_good)
        if state["bad_close"] is None:
            if time.monotonic() - last_unsolicited > 0.1:
                bad.send(0xA, b"")  # unsolicited pongs are allowed but do not count
                last_unsolicited = time.monotonic()
            drain(bad, on_bad)
    assert state["answered"] >= 5 and state["good_data"] > 10
    assert state["bad_close"] == 1008
    good.close()
    bad.close()


def test_lifetime_ends_with_server_shutdown(make_venue: Any) -> None:
    v = make_venue(max_lifetime_s=1.0)

    async def main() -> tuple[list[Any], Any, float]:
        frames: list[Any] = []
        t0 = time.monotonic()
        async with connect(f"{v.ws_url}/ws/btcusdt@trade") as ws:
            with pytest.raises(websockets.ConnectionClosedOK) as closed:
                while True:
                    frames.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
        return frames, closed.value, time.monotonic() - t0

    frames, exc, lasted = asyncio.run(main())
    assert frames[-1]["e"] == "serverShutdown" and isinstance(frames[-1]["E"], int)
    assert all(f["e"] == "trade" for f in frames[:-1])
    assert exc.rcvd.code == 1001 and 0.9 <= lasted <= 3.0


def test_server_shutdown_reaches_every_connection(venue: Any) -> None:
    async def main() -> list[tuple[Any, int]]:
        async def until_closed(ws: Any) -> tuple[Any, int]:
            last = None
            try:
                while True:
                    last = await asyncio.wait_for(ws.recv(), 5)
            except websockets.ConnectionClosed as e:
                return json.loads(last) if last else None, e.rcvd.code

        async with connect(f"{venue.ws_url}/ws/btcusdt@trade") as a, connect(
            f"{venue.ws_url}/stream?streams=ethusdt@trade"
        ) as b:
            await ws_first(a, b)
            closed = await asyncio.to_thread(venue.server_shutdown)
            assert closed == 2
            return list(await asyncio.gather(until_closed(a), until_closed(b)))

    async def ws_first(*conns: Any) -> None:
        for ws in conns:
            await asyncio.wait_for(ws.recv(), 5)

    for last, code in asyncio.run(main()):
        assert last["e"] == "serverShutdown" and code == 1001


def test_depth_diffs_chain_onto_the_rest_snapshot(venue: Any) -> None:
    """Binance's local order book procedure ends exactly at the venue's book."""

    async def main() -> tuple[list[Any], Any, Any]:
        async with connect(f"{venue.ws_url}/ws/btcusdt@depth@100ms") as ws:
            events = await collect(ws, 0.6)
            _, _, snap = await asyncio.to_thread(
                http, f"{venue.rest_url}/api/v3/depth?symbol=BTCUSDT&limit=1000")
            events += await collect(ws, 0.8)
            await asyncio.to_thread(venue.pause)
            events += await collect(ws, 0.4)  # the last 100 ms batch after the pause
            _, _, final = await asyncio.to_thread(
                http, f"{venue.rest_url}/api/v3/depth?symbol=BTCUSDT&limit=1000")
            return events, snap, final

    events, snap, final = asyncio.run(main())
    assert all(e["e"] == "depthUpdate" and e["s"] == "BTCUSDT" for e in events)
    assert all(b["U"] == a["u"] + 1 for a, b in itertools.pairwise(events))
    last = snap["lastUpdateId"]
    bids = {p: q for p, q in snap["bids"]}
    asks = {p: q for p, q in snap["asks"]}
    pending = [e for e in events if e["u"] > last]
    assert pending and pending[0]["U"] <= last + 1 <= pending[0]["u"]
    for e in pending:
        for side, levels in ((bids, e["b"]), (asks, e["a"])):
            for p, q in levels:
                if float(q) == 0:
                    side.pop(p, None)
                else:
                    side[p] = q
        last = e["u"]
    assert last == final["lastUpdateId"]
    assert bids == {p: q for p, q in final["bids"]}
    assert asks == {p: q for p, q in final["asks"]}


def test_kline_stream_closes_candles_that_match_rest(make_venue: Any) -> None:
    v = make_venue(speed=120.0, kline_push_s=0.2, trades_per_second=20)

    async def main() -> list[Any]:
        async with connect(f"{v.ws_url}/ws/btcusdt@kline_1m") as ws:
            return await collect(ws, 1.2)

    frames = asyncio.run(main())
    assert all(f["e"] == "kline" and f["k"]["i"] == "1m" for f in frames)
    closed = [f["k"] for f in frames if f["k"]["x"]]
    assert closed, "at speed 120 a 1m candle closes every half second"
    k = closed[0]
    _, _, rows = http(f"{v.rest_url}/api/v3/klines?symbol=BTCUSDT&interval=1m"
                      f"&startTime={k['t']}&limit=1")
    row = rows[0]
    assert [row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[8]] == [
        k["t"], k["o"], k["h"], k["l"], k["c"], k["v"], k["T"], k["n"]]
    if k["n"]:
        assert k["L"] - k["f"] + 1 == k["n"]
    else:  # a minute with no trades (e.g. the venue opened just before its end)
        assert (k["f"], k["L"]) == (-1, -1)


def test_book_ticker_and_silent_unknown_symbol(venue: Any) -> None:
    async def main() -> list[Any]:
        async with connect(f"{venue.ws_url}/stream?streams=btcusdt@bookTicker/dogeusdt@trade"
                           ) as ws:
            return await collect(ws, 0.8)

    frames = asyncio.run(main())
    assert frames and {f["stream"] for f in frames} == {"btcusdt@bookTicker"}
    data = [f["data"] for f in frames]
    assert list(data[0]) == ["u", "s", "b", "B", "a", "A"]
    assert all(float(d["b"]) < float(d["a"]) for d in data)
    assert all(b["u"] > a["u"] for a, b in itertools.pairwise(data))


def test_partial_book_depth_stream(venue: Any) -> None:
    async def main() -> list[Any]:
        async with connect(f"{venue.ws_url}/ws/btcusdt@depth5@100ms") as ws:
            return await collect(ws, 0.5)

    frames = asyncio.run(main())
    assert len(frames) >= 3
    assert all(list(f) == ["lastUpdateId", "bids", "asks"] for f in frames)
    assert all(len(f["bids"]) == len(f["asks"]) == 5 for f in frames)
