"""Binance market streams over real WebSockets: raw/combined, live subscriptions, stream limits,
depth, klines and bookTicker; stream names as plain parsing."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest
import websockets

from spark_ray.venue.binance_ws import StreamKey, parse_stream

from venue_helpers import collect, connect, http, recv_json


def test_parse_stream_names_as_binance_spells_them() -> None:
    assert parse_stream("btcusdt@trade") == StreamKey("btcusdt@trade", "BTCUSDT", "trade")
    assert parse_stream("ethusdt@kline_1m") == StreamKey("ethusdt@kline_1m", "ETHUSDT", "kline",
                                                         interval="1m")
    assert parse_stream("btcusdt@depth") == StreamKey("btcusdt@depth", "BTCUSDT", "depth")
    assert parse_stream("btcusdt@depth10@100ms") == StreamKey(
        "btcusdt@depth10@100ms", "BTCUSDT", "depth", levels=10, speed_ms=100)
    assert parse_stream("xyzusdt@bookTicker") is not None  # unlisted symbols stay silent
    for bad in ("BTCUSDT@trade", "btcusdt@kline_7m", "btcusdt@depth15", "btcusdt", "@trade"):
        assert parse_stream(bad) is None, bad


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
