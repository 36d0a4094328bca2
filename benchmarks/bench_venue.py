"""Venue publishing rate: trade frames per second to one WebSocket connection, one core.

The venue runs in its own process pinned to one core and generates trades as fast as it can
(trade generation, ledger, book, Binance formatting and sending all included). A raw-socket
frame counter on the other core reads `btcusdt@trade` and checks the trade ids are contiguous
(nothing lost). Peers in the same run, each also one process on one core, pushing pre-built
identical frames to the same counter: a bare aiohttp server (`send_str` per frame) and a bare
`websockets` server (`send` per frame). The venue is also read once by a `websockets` client.
Target: >= 100,000 frames/s. Prints one JSON object; bounded to well under 60 s.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import os
import platform
import socket
import struct
import sys
import time
from multiprocessing.connection import Connection
from typing import Any

MEASURE_S = float(os.environ.get("BENCH_VENUE_SECONDS", "5"))
WARMUP_S = 1.0
VENUE_CORE, CLIENT_CORE = 0, 1


def _pin(pid: int, core: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > core:
        os.sched_setaffinity(pid, {core})


# --- the counting client -----------------------------------------------------------------------
def count_frames(host: str, port: int, path: str, seconds: float, *, check_ids: bool = True
                 ) -> dict[str, Any]:
    """Read WebSocket frames on a raw socket for `seconds` after a warm-up; parse only headers."""
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(65536)
    buf = buf.split(b"\r\n\r\n", 1)[1]
    unpack_h = struct.Struct(">H").unpack_from
    frames = nbytes = 0
    first_payload = last_payload = b""
    t_start = time.perf_counter()
    t_measure = t_start + WARMUP_S
    t_end = t_measure + seconds
    measuring = False
    pos = 0
    while True:
        now = time.perf_counter()
        if not measuring and now >= t_measure:
            measuring, frames, nbytes, t0 = True, 0, 0, now
        if now >= t_end:
            break
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        buf = buf[pos:] + chunk
        pos = 0
        end = len(buf)
        while True:
            if end - pos < 2:
                break
            n = buf[pos + 1] & 0x7F
            if n < 126:
                hdr = 2
            elif n == 126:
                if end - pos < 4:
                    break
                n, hdr = unpack_h(buf, pos + 2)[0], 4
            else:
                if end - pos < 10:
                    break
                n, hdr = struct.unpack_from(">Q", buf, pos + 2)[0], 10
            if end - pos < hdr + n:
                break
            if buf[pos] & 0x0F == 0x1:
                frames += 1
                nbytes += hdr + n
                if measuring and frames == 1:
                    first_payload = bytes(buf[pos + hdr : pos + hdr + n])
                last_payload = buf[pos + hdr : pos + hdr + n]
            pos += hdr + n
    elapsed = time.perf_counter() - t0
    sock.close()
    out: dict[str, Any] = {"frames": frames, "seconds": round(elapsed, 3),
                           "frames_per_s": round(frames / elapsed), "mb_per_s":
                           round(nbytes / elapsed / 1e6, 1)}
    try:
        a, b = json.loads(first_payload), json.loads(bytes(last_payload))
        if check_ids and "t" in a:
            out["ids_contiguous"] = b["t"] - a["t"] + 1 == frames
        out["frame_bytes"] = len(first_payload)
    except ValueError:
        pass
    return out


async def _count_with_websockets(url: str, seconds: float) -> dict[str, Any]:
    import websockets

    async with websockets.connect(url, max_queue=None, proxy=None, max_size=2**22) as ws:
        deadline = time.perf_counter() + WARMUP_S
        while time.perf_counter() < deadline:
            await ws.recv()
        frames, t0 = 0, time.perf_counter()
        end = t0 + seconds
        first = await ws.recv()
        frames += 1
        while time.perf_counter() < end:
            last = await ws.recv()
            frames += 1
        elapsed = time.perf_counter() - t0
    ids = json.loads(last)["t"] - json.loads(first)["t"] + 1
    return {"frames": frames, "frames_per_s": round(frames / elapsed),
            "ids_contiguous": ids == frames}


# --- peer baselines (each in its own process) ---------------------------------------------------
def _aiohttp_peer(frame: str, pipe: Connection) -> None:
    from aiohttp import web

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        try:
            while not ws.closed:
                for _ in range(1000):
                    await ws.send_str(frame)
        except (ConnectionError, RuntimeError):
            pass
        return ws

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/ws/btcusdt@trade", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        pipe.send(runner.addresses[0][1])
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
        await runner.cleanup()

    asyncio.run(main())


def _websockets_peer(frame: str, pipe: Connection) -> None:
    import websockets

    async def handler(ws: Any) -> None:
        try:
            while True:
                for _ in range(1000):
                    await ws.send(frame)
        except websockets.ConnectionClosed:
            pass

    async def main() -> None:
        async with websockets.serve(handler, "127.0.0.1", 0, compression=None,
                                    max_queue=None) as server:
            pipe.send(next(iter(server.sockets)).getsockname()[1])
            await asyncio.get_running_loop().run_in_executor(None, pipe.recv)

    asyncio.run(main())


def _run_peer(target: Any, frame: str) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=target, args=(frame, child), daemon=True)
    proc.start()
    try:
        port = parent.recv()
        _pin(proc.pid, VENUE_CORE)
        return count_frames("127.0.0.1", port, "/ws/btcusdt@trade", MEASURE_S, check_ids=False)
    finally:
        parent.send("stop")
        proc.join(10)
        if proc.is_alive():
            proc.terminate()


# --- the venue ---------------------------------------------------------------------------------
def _run_venue(client: str) -> tuple[dict[str, Any], str]:
    from spark_ray.venue import Venue

    venue = Venue(symbols=("BTCUSDT",), seed=1, trades_per_second=5_000_000, history_minutes=0,
                  max_batch=20_000, tick_s=0.002, process=True, start_paused=True)
    with venue:
        assert venue.pid is not None
        _pin(venue.pid, VENUE_CORE)
        venue.resume()
        if client == "raw":
            result = count_frames(venue.host, venue.port, "/ws/btcusdt@trade", MEASURE_S)
        else:
            result = asyncio.run(_count_with_websockets(f"{venue.ws_url}/ws/btcusdt@trade",
                                                        MEASURE_S / 2))
        with socket.create_connection((venue.host, venue.port)) as s:  # one real frame
            s.sendall(b"GET /api/v3/trades?symbol=BTCUSDT&limit=1 HTTP/1.0\r\n\r\n")
            body = b""
            while chunk := s.recv(65536):
                body += chunk
        trade = json.loads(body.split(b"\r\n\r\n", 1)[1])[0]
        frame = json.dumps({"e": "trade", "E": trade["time"] + 1, "s": "BTCUSDT",
                            "t": trade["id"], "p": trade["price"], "q": trade["qty"],
                            "T": trade["time"], "m": trade["isBuyerMaker"], "M": True},
                           separators=(",", ":"))
        result["trades_published"] = venue.trade_count("BTCUSDT")
    return result, frame


def main() -> int:
    _pin(0, CLIENT_CORE)
    t0 = time.perf_counter()
    venue_raw, frame = _run_venue("raw")
    venue_ws, _ = _run_venue("websockets")
    aiohttp_peer = _run_peer(_aiohttp_peer, frame)
    websockets_peer = _run_peer(_websockets_peer, frame)
    rate = venue_raw["frames_per_s"]
    result = {
        "benchmark": "venue trade frames per second to one connection (venue on one core)",
        "target_frames_per_s": 100_000,
        "venue_frames_per_s": rate,
        "meets_target": rate >= 100_000,
        "venue": venue_raw,
        "venue_read_by_websockets_client": venue_ws,
        "peer_bare_aiohttp_send_str": aiohttp_peer,
        "peer_bare_websockets_send": websockets_peer,
        "ratio_vs_aiohttp_peer": round(rate / aiohttp_peer["frames_per_s"], 2),
        "ratio_vs_websockets_peer": round(rate / websockets_peer["frames_per_s"], 2),
        "notes": "venue generates every trade (ids, ledger, book, JSON) and writes one frame "
                 "per message, many frames per transport write; peers only resend one "
                 "pre-built frame",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "total_seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
