"""One small WebSocket client surface over two libraries, chosen per connector.

The connector's hot path is one ``recv`` per market-data frame. Measured on this machine against
the venue simulator (client CPU per frame): the ``websockets`` asyncio client 6.3 µs, its
Sans-I/O protocol driven by hand 3.8 µs, ``aiohttp``'s client (C frame reader) 1.4 µs. So the
connector reads with ``aiohttp`` by default and keeps ``websockets`` selectable
(``ws_client="websockets"``); both answer pings, measure ping round trips, abort and close the
same way, and the fabric's truth tests run on both.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from typing import Protocol

import aiohttp
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import WebSocketException

CLIENTS = ("aiohttp", "websockets")


class ConnectError(Exception):
    """Opening the WebSocket failed (refused, timed out, bad handshake)."""


class WsConn(Protocol):
    async def recv(self) -> bytes | None:
        """The next data frame (text frames as UTF-8 bytes); ``None`` once the connection ended."""

    async def send(self, text: str) -> None: ...

    async def ping(self, timeout_s: float) -> float | None:
        """Round trip of one ping in ms; ``None`` if no pong came back in time."""

    def abort(self) -> None:
        """Drop the TCP connection now (chaos: an abrupt disconnect)."""

    async def close(self) -> None: ...


async def open_ws(client: str, url: str, max_frame_bytes: int, open_timeout_s: float = 5.0
                  ) -> WsConn:
    if client == "aiohttp":
        return await _AiohttpConn.open(url, max_frame_bytes, open_timeout_s)
    if client == "websockets":
        return await _WebsocketsConn.open(url, max_frame_bytes, open_timeout_s)
    raise ValueError(f"ws_client {client!r}: one of {', '.join(CLIENTS)}")


class _AiohttpConn:
    _ids = itertools.count(1)

    def __init__(self, session: aiohttp.ClientSession,
                 ws: aiohttp.ClientWebSocketResponse) -> None:
        self.session = session
        self.ws = ws
        self._pings: dict[bytes, asyncio.Future[float]] = {}

    @classmethod
    async def open(cls, url: str, max_frame_bytes: int, timeout_s: float) -> _AiohttpConn:
        # trust_env=False: never route through a proxy from the environment.
        session = aiohttp.ClientSession(trust_env=False)
        try:
            ws = await asyncio.wait_for(session.ws_connect(
                url, max_msg_size=max_frame_bytes, autoping=False, autoclose=True, compress=0,
                heartbeat=None, timeout=aiohttp.ClientWSTimeout(ws_receive=None,
                                                                ws_close=1.0),
                proxy=None), timeout_s)
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            await session.close()
            raise ConnectError(f"{type(e).__name__}: {e}") from e
        return cls(session, ws)

    async def recv(self) -> bytes | None:
        ws = self.ws
        while True:
            msg = await ws.receive()
            t = msg.type
            if t is aiohttp.WSMsgType.TEXT:
                return msg.data.encode()
            if t is aiohttp.WSMsgType.BINARY:
                return msg.data
            if t is aiohttp.WSMsgType.PING:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.pong(msg.data)
                continue
            if t is aiohttp.WSMsgType.PONG:
                fut = self._pings.pop(msg.data, None)
                if fut is not None and not fut.done():
                    fut.set_result(time.perf_counter())
                continue
            return None  # CLOSE, CLOSING, CLOSED, ERROR

    async def send(self, text: str) -> None:
        try:
            await self.ws.send_str(text)
        except (ConnectionError, RuntimeError) as e:
            raise OSError(str(e)) from e

    async def ping(self, timeout_s: float) -> float | None:
        payload = b"sr%d" % next(self._ids)
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._pings[payload] = fut
        t0 = time.perf_counter()
        try:
            await self.ws.ping(payload)
            t1 = await asyncio.wait_for(fut, timeout_s)
        except (ConnectionError, RuntimeError, TimeoutError):
            return None
        finally:
            self._pings.pop(payload, None)
        return (t1 - t0) * 1000

    def abort(self) -> None:
        conn = self.ws._response.connection  # aiohttp exposes no abort()
        transport = conn.transport if conn is not None else None
        if transport is not None:
            transport.abort()
        else:  # already detached: close it the orderly way
            asyncio.get_running_loop().create_task(self.ws.close())

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 2.0)
        with contextlib.suppress(Exception):
            await self.session.close()


class _WebsocketsConn:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, url: str, max_frame_bytes: int, timeout_s: float) -> _WebsocketsConn:
        try:
            ws = await ws_connect(url, max_size=max_frame_bytes, ping_interval=None,
                                  compression=None, open_timeout=timeout_s, close_timeout=1,
                                  max_queue=4096, proxy=None)
        except (OSError, WebSocketException, TimeoutError) as e:
            raise ConnectError(f"{type(e).__name__}: {e}") from e
        return cls(ws)

    async def recv(self) -> bytes | None:
        try:
            raw = await self.ws.recv(decode=False)
        except (WebSocketException, OSError):
            return None
        return raw.encode() if isinstance(raw, str) else raw

    async def send(self, text: str) -> None:
        try:
            await self.ws.send(text)
        except WebSocketException as e:
            raise OSError(str(e)) from e

    async def ping(self, timeout_s: float) -> float | None:
        t0 = time.perf_counter()
        try:
            waiter = await self.ws.ping()
            await asyncio.wait_for(waiter, timeout_s)
        except (WebSocketException, TimeoutError, OSError):
            return None
        return (time.perf_counter() - t0) * 1000

    def abort(self) -> None:
        transport = self.ws.transport
        if transport is not None:
            transport.abort()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 2.0)
