"""Every fault knob, observed from the client side, and matched to its fault-log entry."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import time
import urllib.error
from typing import Any

import pyarrow as pa
import pytest
import websockets

from venue_helpers import RawWS, connect, http


async def _frames(ws: Any, seconds: float) -> list[tuple[float, str | bytes]]:
    """(receive wall time, raw frame) pairs for `seconds`."""
    out: list[tuple[float, str | bytes]] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            raw = await asyncio.wait_for(ws.recv(), left)
        except TimeoutError:
            break
        out.append((time.time() * 1000, raw))
    return out


def _trade_ids(frames: list[tuple[float, Any]]) -> list[int]:
    return [json.loads(raw)["t"] for _, raw in frames]


def _injections(venue: Any, kind: str) -> list[dict[str, Any]]:
    return [e for e in venue.fault_log() if e["kind"] == kind and e["action"] == "injected"]


def _stream_with_fault(venue: Any, seconds: float, kind: str, **params: Any
                       ) -> tuple[list[tuple[float, Any]], int]:
    """Read btcusdt@trade on one connection while a fault scoped to it is active."""

    async def main() -> tuple[list[tuple[float, Any]], int]:
        async with connect(f"{venue.ws_url}/ws/btcusdt@trade") as ws:
            first = (time.time() * 1000, await asyncio.wait_for(ws.recv(), 5))
            cid = await asyncio.to_thread(venue.connection_id, ws.local_address[1])
            fid = await asyncio.to_thread(venue.inject, kind, connection=cid, **params)
            frames = [first, *await _frames(ws, seconds)]
            await asyncio.to_thread(venue.clear_faults, fid)
            return frames, cid

    return asyncio.run(main())


def test_drop_frames_missing_ids_are_exactly_the_logged_ones(venue: Any) -> None:
    frames, cid = _stream_with_fault(venue, 1.5, "drop", probability=0.3, seed=5)
    ids = _trade_ids(frames)
    missing = set(range(ids[0], ids[-1] + 1)) - set(ids)
    logged = {e["first_id"] for e in _injections(venue, "drop") if e["connection"] == cid}
    assert missing and missing == {i for i in logged if ids[0] < i < ids[-1]}
    assert ids == sorted(set(ids))  # nothing reordered or repeated
    assert set(venue.ground_truth_ids("BTCUSDT")) >= set(ids) | missing  # truth keeps all


def test_gap_skips_a_logged_trade_id_range(venue: Any) -> None:
    frames, _ = _stream_with_fault(venue, 1.2, "gap", count=6, symbol="BTCUSDT")
    ids = _trade_ids(frames)
    jumps = [(a, b) for a, b in itertools.pairwise(ids) if b != a + 1]
    (event,) = _injections(venue, "gap")
    assert jumps == [(event["first_id"] - 1, event["last_id"] + 1)]
    assert event["last_id"] - event["first_id"] + 1 == 6


def test_duplicates_repeat_logged_ids(venue: Any) -> None:
    frames, _ = _stream_with_fault(venue, 1.0, "duplicate", count=3)
    ids = _trade_ids(frames)
    repeated = sorted(i for i in set(ids) if ids.count(i) == 2)
    assert repeated == sorted(e["first_id"] for e in _injections(venue, "duplicate"))
    assert len(repeated) == 3 and len(ids) == len(set(ids)) + 3


def test_latency_shows_as_lag_between_event_time_and_arrival(venue: Any) -> None:
    async def main() -> tuple[list[float], list[float], list[float]]:
        async with connect(f"{venue.ws_url}/ws/btcusdt@trade") as ws:
            cid = await asyncio.to_thread(venue.connection_id, ws.local_address[1])
            before = await _frames(ws, 0.3)
            fid = await asyncio.to_thread(venue.inject, "latency", connection=cid,
                                          delay_ms=400)
            during = await _frames(ws, 0.9)
            await asyncio.to_thread(venue.clear_faults, fid)
            # The held-back frames drain: wait until one arrives on time (a fixed wait was too
            # short on a loaded machine), up to 5 s.
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                tail = await _frames(ws, 0.1)
                if tail and tail[-1][0] - json.loads(tail[-1][1])["E"] < 100:
                    break
            after = await _frames(ws, 0.3)

        def lags(fs: list[tuple[float, Any]]) -> list[float]:
            return [t - json.loads(raw)["E"] for t, raw in fs]

        return lags(before), lags(during), lags(after)

    before, during, after = asyncio.run(main())
    assert max(before) < 200 and max(after) < 200
    late = sorted(during)[len(during) // 2:]
    assert late and min(late) >= 350
    assert _injections(venue, "latency")[0]["detail"] == "latency: +400 ms"


@pytest.mark.parametrize("variant", ["bad_json", "wrong_types", "missing_fields"])
def test_malformed_frames(venue: Any, variant: str) -> None:
    frames, _ = _stream_with_fault(venue, 0.8, "malformed", count=1, variant=variant)
    parsed = []
    bad = 0
    for _, raw in frames:
        try:
            parsed.append(json.loads(raw))
        except ValueError:
            bad += 1
    (event,) = _injections(venue, "malformed")
    if variant == "bad_json":
        assert bad == 1
    elif variant == "wrong_types":
        (odd,) = [f for f in parsed if not isinstance(f["p"], str)]
        assert isinstance(odd["p"], float) and odd["t"] == str(event["first_id"])
    else:
        (odd,) = [f for f in parsed if "t" not in f]
        assert "e" in odd
    good_ids = [f["t"] for f in parsed if isinstance(f.get("t"), int)]
    assert event["first_id"] not in good_ids


def test_oversized_frame_trips_the_client_size_limit(venue: Any) -> None:
    async def main() -> Any:
        async with connect(f"{venue.ws_url}/ws/btcusdt@trade", max_size=2**20) as ws:
            cid = await asyncio.to_thread(venue.connection_id, ws.local_address[1])
            await asyncio.to_thread(venue.inject, "malformed", connection=cid, count=1,
                                    variant="oversized", size_bytes=3 * 2**20)
            with pytest.raises(websockets.ConnectionClosedError) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 5)
            return closed.value

    exc = asyncio.run(main())
    assert exc.sent is not None and exc.sent.code == 1009  # message too big


def test_disconnect_is_a_tcp_reset(venue: Any) -> None:
    raw = RawWS(venue.host, venue.port, "/ws/btcusdt@trade")
    assert raw.frame()[0] == 0x1
    cid = venue.connection_id(raw.local_port)
    venue.inject("disconnect", connection=cid)
    with pytest.raises(ConnectionResetError):
        while True:
            op, _ = raw.frame()
            assert op != 0x8, "a reset must not send a close frame"
    raw.close()
    (event,) = _injections(venue, "disconnect")
    assert event["connection"] == cid


def test_clean_close_with_code_for_one_symbol(venue: Any) -> None:
    async def main() -> tuple[Any, list[Any]]:
        async with connect(f"{venue.ws_url}/ws/btcusdt@trade") as btc, connect(
            f"{venue.ws_url}/ws/ethusdt@trade"
        ) as eth:
            await asyncio.to_thread(venue.inject, "close", symbol="BTCUSDT", close_code=1012)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(btc.recv(), 5)
            still = await _frames(eth, 0.3)
            return closed.value, still

    exc, still = asyncio.run(main())
    assert exc.rcvd.code == 1012 and still


def test_stall_withholds_data_but_keeps_pinging(make_venue: Any) -> None:
    v = make_venue(ping_interval_s=0.2)
    raw = RawWS(v.host, v.port, "/ws/btcusdt@trade")
    raw.frame()
    cid = v.connection_id(raw.local_port)
    v.inject("stall", connection=cid, duration_s=1.0)
    t_stall = time.monotonic()
    raw.sock.settimeout(0.02)
    while True:  # frames already on the wire before the stall
        try:
            op, _ = raw.frame()
        except TimeoutError:
            break
    raw.sock.settimeout(3)
    seen: list[tuple[float, int]] = []
    while True:
        op, payload = raw.frame()
        seen.append((time.monotonic() - t_stall, op))
        if op == 0x9:
            raw.send(0xA, payload)
        if op == 0x1:
            break
    pings = [t for t, op in seen if op == 0x9]
    assert len(pings) >= 3 and seen[-1][0] >= 0.9
    raw.close()


def test_symbol_scoped_drop_on_a_combined_stream(venue: Any) -> None:
    async def main() -> list[Any]:
        async with connect(f"{venue.ws_url}/stream?streams=btcusdt@trade/ethusdt@trade") as ws:
            await asyncio.to_thread(venue.inject, "drop", symbol="ETHUSDT")
            await _frames(ws, 0.1)
            return [json.loads(raw) for _, raw in await _frames(ws, 0.6)]

    frames = asyncio.run(main())
    assert frames and {f["stream"] for f in frames} == {"btcusdt@trade"}


def test_rest_errors_timeouts_and_latency(venue: Any) -> None:
    base = f"{venue.rest_url}/api/v3"
    venue.inject("rest_error", status=503, count=2, path="/api/v3/klines")
    answers = [http(f"{base}/klines?symbol=BTCUSDT&interval=1m&limit=1") for _ in range(3)]
    assert [a[0] for a in answers] == [503, 503, 200]
    assert answers[0][2]["code"] == -1008 and "X-MBX-USED-WEIGHT-1M" in answers[0][1]
    assert http(f"{base}/depth?symbol=BTCUSDT")[0] == 200  # other paths unaffected
    venue.inject("rest_timeout", delay_ms=1500, count=1)
    t0 = time.monotonic()
    with pytest.raises((TimeoutError, socket.timeout, urllib.error.URLError)):
        http(f"{base}/ping", timeout=0.5)
    assert time.monotonic() - t0 < 1.4
    fid = venue.inject("rest_latency", delay_ms=300)
    t0 = time.monotonic()
    assert http(f"{base}/ping")[0] == 200 and time.monotonic() - t0 >= 0.3
    venue.clear_faults(fid)
    kinds = [e["kind"] for e in venue.fault_log() if e["action"] == "injected"]
    assert kinds.count("rest_error") == 2 and "rest_timeout" in kinds


def test_admin_endpoint_requires_its_token(make_venue: Any) -> None:
    off = make_venue(admin_token="")
    status, _, body = http(f"{off.rest_url}/admin/faults", method="POST",
                           body={"kind": "drop"})
    assert status == 403 and "no token" in body["error"]
    v = make_venue(admin_token="s3cret-token")
    status, _, _ = http(f"{v.rest_url}/admin/faults", method="POST", body={"kind": "drop"},
                        headers={"X-Admin-Token": "wrong"})
    assert status == 401
    ok = {"X-Admin-Token": "s3cret-token", "Content-Type": "application/json"}
    status, _, body = http(f"{v.rest_url}/admin/faults", method="POST", headers=ok,
                           body={"kind": "gap", "count": 3, "symbol": "BTCUSDT"})
    assert status == 200 and body["id"] >= 1
    status, _, body = http(f"{v.rest_url}/admin/faults", method="POST", headers=ok,
                           body={"kind": "gap"})
    assert status == 400 and "count" in body["error"]
    status, _, active = http(f"{v.rest_url}/admin/faults", headers=ok)
    assert [f["kind"] for f in active] == ["gap"]
    status, _, log = http(f"{v.rest_url}/admin/fault-log", headers=ok)
    assert log[0]["action"] == "activated" and log[0]["time_ms"] > 1_600_000_000_000
    v.wait_for_trades("BTCUSDT", 5)
    status, _, raw = http(f"{v.rest_url}/admin/ground-truth?symbol=BTCUSDT", headers=ok)
    table = pa.ipc.open_stream(pa.py_buffer(raw)).read_all()
    assert status == 200 and table.num_rows >= 5
    status, _, body = http(f"{v.rest_url}/admin/faults", method="DELETE", headers=ok)
    assert body == {"cleared": 1}
