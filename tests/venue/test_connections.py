"""WebSocket connections on the wire: frame encoding, the incoming message limit, pings and pong
timeouts, lifetimes and serverShutdown, for every connection alike."""

from __future__ import annotations

import asyncio
import json
import struct
import time
from typing import Any

import aiohttp
import pytest
import websockets

from spark_ray.venue.connections import encode_frames

from venue_helpers import RawWS, connect


def test_encode_frames_picks_the_length_form_and_keeps_the_payloads() -> None:
    small, mid, big = b"x" * 125, b"y" * 126, b"z" * 65536
    out = encode_frames([small, mid, big])
    assert out[:2] == bytes((0x81, 125)) and out[2:127] == small
    rest = out[127:]
    assert rest[:4] == struct.pack(">BBH", 0x81, 126, 126) and rest[4:130] == mid
    rest = rest[130:]
    assert rest[:10] == struct.pack(">BBQ", 0x81, 127, 65536) and rest[10:] == big
    assert encode_frames([b"ab"], opcode=0x89) == bytes((0x89, 2)) + b"ab"  # a ping
    assert encode_frames([]) == b""


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
