"""Helpers for the venue tests: HTTP calls and a raw WebSocket reader on a plain socket."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "binance-format"

# Fast defaults so every venue in the suite is light; tests override what they exercise.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, no proxy

FAST: dict[str, Any] = dict(
    symbols=("BTCUSDT", "ETHUSDT"), seed=11, trades_per_second=40, history_minutes=600
)


def http(url: str, *, method: str = "GET", headers: dict[str, str] | None = None,
         body: Any = None, timeout: float = 10.0) -> tuple[int, dict[str, str], Any]:
    """(status, headers, decoded JSON or raw bytes) of one HTTP call, errors included."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            status, hdrs, raw = resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        status, hdrs, raw = e.code, dict(e.headers), e.read()
    try:
        return status, hdrs, json.loads(raw) if raw else None
    except ValueError:
        return status, hdrs, raw


class RawWS:
    """A minimal WebSocket client on a plain socket: sees RSTs, ping frames and raw bytes."""

    def __init__(self, host: str, port: int, path: str, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed during handshake")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.status = int(head.split(b" ")[1])
        self.local_port = self.sock.getsockname()[1]

    def _need(self, n: int) -> None:
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buf += chunk

    def frame(self) -> tuple[int, bytes]:
        """Next (opcode, payload); raises ConnectionResetError on RST, ConnectionError on EOF."""
        self._need(2)
        b1 = self.buf[1]
        n = b1 & 0x7F
        off = 2
        if n == 126:
            self._need(4)
            n = struct.unpack(">H", self.buf[2:4])[0]
            off = 4
        elif n == 127:
            self._need(10)
            n = struct.unpack(">Q", self.buf[2:10])[0]
            off = 10
        self._need(off + n)
        op, payload = self.buf[0] & 0x0F, self.buf[off : off + n]
        self.buf = self.buf[off + n :]
        return op, payload

    def send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        else:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def close(self) -> None:
        self.sock.close()


def connect(url: str, **kw: Any) -> Any:
    """A real `websockets` client, never through a proxy from the environment.

    An unbounded receive queue keeps reading while a test is not consuming, so closing never
    waits behind unread frames.
    """
    import websockets

    kw.setdefault("max_queue", None)
    return websockets.connect(url, proxy=None, **kw)


async def recv_json(ws: Any, timeout: float = 5.0) -> Any:
    import asyncio

    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def collect(ws: Any, seconds: float) -> list[Any]:
    """Every JSON frame a websockets client receives within ``seconds``."""
    out: list[Any] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            out.append(json.loads(await asyncio.wait_for(ws.recv(), left)))
        except TimeoutError:
            break
    return out


# --- trading (signed endpoints) -------------------------------------------------------------
KEY, SECRET = "tradeKey1", "tradeSecret1"  # test-only credentials of the venues below
TRADING: dict[str, Any] = dict(
    FAST, symbols=("BTCUSDT",), api_keys={KEY: SECRET},
    starting_balances={"USDT": "100000", "BTC": "1"},
)


def signed(base: str, method: str, path: str, params: dict[str, Any] | None = None, *,
           key: str | None = KEY, secret: str = SECRET, in_body: bool = False,
           timestamp_ms: int | None = None, recv_window_ms: int | None = 5000,
           timeout: float = 10.0) -> tuple[int, dict[str, str], Any]:
    """One SIGNED call the way Binance documents it: params + timestamp, HMAC signature last,
    in the query string or (in_body) a form-encoded body; (status, headers, JSON)."""
    from spark_ray.adapters.binance.auth import API_KEY_HEADER, signed_query

    total = signed_query(params or {}, secret, timestamp_ms=timestamp_ms,
                         recv_window_ms=recv_window_ms)
    return raw_call(base, method, path, query="" if in_body else total,
                    body=total if in_body else "",
                    headers={API_KEY_HEADER: key} if key is not None else {}, timeout=timeout)


def raw_call(base: str, method: str, path: str, *, query: str = "", body: str = "",
             headers: dict[str, str] | None = None, timeout: float = 10.0
             ) -> tuple[int, dict[str, str], Any]:
    """An HTTP call with an exact query string and form body (what signatures cover)."""
    hdrs = dict(headers or {})
    data = None
    if body:
        data = body.encode()
        hdrs["Content-Type"] = "application/x-www-form-urlencoded"
    url = f"{base}{path}{'?' + query if query else ''}"
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            status, rh, raw = resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        status, rh, raw = e.code, dict(e.headers), e.read()
    return status, rh, json.loads(raw) if raw else None


def listen_key(base: str, key: str = KEY) -> str:
    status, _, body = raw_call(base, "POST", "/api/v3/userDataStream",
                               headers={"X-MBX-APIKEY": key})
    assert status == 200, body
    return str(body["listenKey"])
