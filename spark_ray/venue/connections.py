"""The venue's WebSocket connections: frames on the wire, frame faults, closing and keepalive.

Every protocol (:mod:`binance_ws`, :mod:`btcturk_ws`, :mod:`userstream`) registers its
connections with the one :class:`Hub` and sends through it, so frame faults, delayed frames,
pings, pong timeouts, lifetimes and connection faults work the same on all of them.

Frames are written straight to the transport, one message per WebSocket frame but many frames
per write, which is what lets one core publish >100k trade frames per second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from aiohttp import WSMsgType, web

from spark_ray.venue import formats
from spark_ray.venue.config import VenueConfig
from spark_ray.venue.fault_plan import Fault, FaultPlan, FrameDecision
from spark_ray.venue.faults import FaultKind, FaultSpec, malform

if TYPE_CHECKING:
    from spark_ray.venue.binance_ws import StreamKey

log = logging.getLogger("spark_ray.venue")

_HDR7 = [bytes((0x81, n)) for n in range(126)]


def encode_frames(payloads: Iterable[bytes], opcode: int = 0x81) -> bytes:
    """Server-to-client WebSocket frames (FIN set, unmasked), one per payload, concatenated."""
    parts: list[bytes] = []
    append = parts.append
    for p in payloads:
        n = len(p)
        if opcode == 0x81 and n < 126:
            append(_HDR7[n])
        elif n < 126:
            append(bytes((opcode, n)))
        elif n < 65536:
            append(struct.pack(">BBH", opcode, 126, n))
        else:
            append(struct.pack(">BBQ", opcode, 127, n))
        append(p)
    return b"".join(parts)


@dataclass(eq=False)
class Connection:
    """One WebSocket client and everything the venue tracks about it."""

    id: int
    kind: str  # "binance" | "btcturk"
    ws: web.WebSocketResponse
    transport: asyncio.Transport
    peer: str
    path: str
    combined: bool = False
    opened: float = field(default_factory=time.monotonic)
    opened_wall_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    streams: dict[str, StreamKey] = field(default_factory=dict)
    listen_keys: set[str] = field(default_factory=set)  # user data streams carried
    bt_subs: set[tuple[str, str]] = field(default_factory=set)
    bt_cs: dict[tuple[str, str], int] = field(default_factory=dict)
    incoming: deque[float] = field(default_factory=deque)
    delayed: deque[tuple[float, bytes]] = field(default_factory=deque)
    flusher: asyncio.Task[None] | None = None
    last_ping: float = field(default_factory=time.monotonic)
    pings: dict[bytes, float] = field(default_factory=dict)  # outstanding ping payload -> sent
    closing: bool = False
    close_done: asyncio.Event | None = None  # set once a venue-initiated close has finished
    frames_sent: int = 0

    def buffered(self) -> int:
        return 0 if self.transport.is_closing() else self.transport.get_write_buffer_size()

    def send(self, payloads: Sequence[bytes]) -> None:
        if self.closing or self.ws.closed or self.transport.is_closing():
            return
        self.transport.write(encode_frames(payloads))
        self.frames_sent += len(payloads)

    def reset(self) -> None:
        """Abrupt disconnect: SO_LINGER 0 then abort, so the peer sees a TCP RST."""
        self.closing = True
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()

    def symbols(self) -> set[str]:
        return {k.symbol for k in self.streams.values()} | {ev for _, ev in self.bt_subs}

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "peer": self.peer,
            "path": self.path,
            "combined": self.combined,
            "streams": sorted(self.streams) if self.kind == "binance"
            else sorted(f"{ch}:{ev}" for ch, ev in self.bt_subs),
            "user_streams": len(self.listen_keys),  # never the keys: they are credentials
            "opened_ms": self.opened_wall_ms,
            "frames_sent": self.frames_sent,
        }


class Hub:
    """Every open WebSocket connection, and the one way frames reach them (faults included).

    Call only on the venue's event loop.
    """

    def __init__(self, config: VenueConfig, plan: FaultPlan,
                 market_ms: Callable[[], int]) -> None:
        self.config = config
        self.plan = plan
        self.market_ms = market_ms  # event time of serverShutdown
        self.conns: dict[int, Connection] = {}
        self._next_conn = 1
        self._background: set[asyncio.Task[None]] = set()

    # --- registry ---------------------------------------------------------------------------
    @staticmethod
    def new_ws() -> web.WebSocketResponse:
        return web.WebSocketResponse(autoping=False, compress=False, max_msg_size=64 * 1024,
                                     timeout=1.0)

    def open(self, kind: str, ws: web.WebSocketResponse, request: web.Request,
             combined: bool = False) -> Connection:
        transport = request.transport
        assert transport is not None  # nosec B101  # narrows Optional for mypy, not a check
        peer = transport.get_extra_info("peername") or ("?", 0)
        c = Connection(self._next_conn, kind, ws, transport, f"{peer[0]}:{peer[1]}",
                       request.path_qs, combined)
        self._next_conn += 1
        self.conns[c.id] = c
        return c

    async def serve(self, c: Connection, on_text: Callable[[Connection, str], None],
                    on_gone: Callable[[Connection], None]) -> None:
        """Read the client until it goes; then forget it (`on_gone` drops its subscriptions)."""
        try:
            await self._read_loop(c, on_text)
        finally:
            c.closing = True
            self.conns.pop(c.id, None)
            on_gone(c)
            if c.flusher is not None:
                c.flusher.cancel()

    def live(self) -> list[Connection]:
        return [c for c in self.conns.values() if not c.closing]

    def abort_all(self) -> None:
        for c in list(self.conns.values()):
            c.closing = True
            c.transport.abort()

    # --- reading ----------------------------------------------------------------------------
    def _count_incoming(self, c: Connection) -> bool:
        """Binance allows 5 incoming messages (pings, pongs, JSON) per second per connection."""
        now = time.monotonic()
        c.incoming.append(now)
        while c.incoming and c.incoming[0] <= now - 1.0:
            c.incoming.popleft()
        return len(c.incoming) <= self.config.max_incoming_per_s

    async def _read_loop(self, c: Connection, on_text: Callable[[Connection, str], None]
                         ) -> None:
        ws = c.ws
        while True:
            msg = await ws.receive()
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                if c.close_done is not None:
                    # Our own close is under way: let it send its close frame before the
                    # handler returns and aiohttp drops the transport.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(c.close_done.wait(), 3.0)
                break
            if c.closing:
                continue
            if not self._count_incoming(c):
                log.info("venue: connection %s sent too many messages; disconnecting", c.id)
                await self.close(c, 1008, "too many messages")
                break
            if msg.type == WSMsgType.PING:
                if not c.transport.is_closing():
                    c.transport.write(encode_frames([msg.data], opcode=0x8A))
            elif msg.type == WSMsgType.PONG:
                if bytes(msg.data) in c.pings:
                    c.pings.clear()
            elif msg.type == WSMsgType.TEXT:
                on_text(c, msg.data)

    # --- sending with faults ----------------------------------------------------------------
    def fanout(
        self,
        conns: Iterable[Connection],
        name: str,
        symbol: str | None,
        kind: str,
        payloads: list[bytes],
        first_ids: np.ndarray | None,
        last_ids: np.ndarray | None,
    ) -> None:
        wrapped: list[bytes] | None = None
        active = bool(self.plan.faults)
        for c in list(conns):
            if c.closing:
                continue
            frames = payloads
            if c.combined:
                if wrapped is None:
                    nb = name.encode()
                    wrapped = [formats.combined(nb, p) for p in payloads]
                frames = wrapped
            faults = self.plan.frame_faults(c.id, symbol, kind) if active else []
            if not faults and not c.delayed:
                c.send(frames)
            else:
                self._send_faulty(c, faults, frames, symbol,
                                  "userData" if kind == "userData" else name, first_ids, last_ids)

    def _send_faulty(
        self,
        c: Connection,
        faults: list[Fault],
        frames: list[bytes],
        symbol: str | None,
        stream: str,  # as the fault log names it: a listenKey is a credential, so "userData"
        first_ids: np.ndarray | None,
        last_ids: np.ndarray | None,
    ) -> None:
        now = time.monotonic()
        firsts = first_ids.tolist() if first_ids is not None else None
        lasts = last_ids.tolist() if last_ids is not None else None
        direct: list[bytes] = []
        for i, frame in enumerate(frames):
            d = (
                self.plan.decide_frame(
                    faults, connection=c.id, symbol=symbol,
                    stream=stream,
                    first_id=firsts[i] if firsts is not None else None,
                    last_id=lasts[i] if lasts is not None else None, now=now,
                )
                if faults
                else FrameDecision()
            )
            if d.drop:
                continue
            out = malform(frame, d.malformed, d.size_bytes) if d.malformed else frame
            for _ in range(2 if d.duplicate else 1):
                if d.delay_ms > 0 or c.delayed:
                    c.delayed.append((now + d.delay_ms / 1000.0, out))
                else:
                    direct.append(out)
        if direct:
            c.send(direct)
        if c.delayed and c.flusher is None:
            c.flusher = asyncio.get_running_loop().create_task(self._flush_delayed(c))

    async def _flush_delayed(self, c: Connection) -> None:
        try:
            while c.delayed and not c.closing:
                wait = c.delayed[0][0] - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                now = time.monotonic()
                batch = []
                while c.delayed and c.delayed[0][0] <= now:
                    batch.append(c.delayed.popleft()[1])
                if batch:
                    c.send(batch)
        finally:
            c.flusher = None

    def send_control(self, c: Connection, payload: bytes) -> None:
        """Replies keep their place behind delayed frames but are never dropped or corrupted."""
        if c.delayed:
            c.delayed.append((time.monotonic(), payload))
        else:
            c.send([payload])

    async def backpressure(self) -> None:
        """Let slow readers drain (a bounded wait); drop a reader that stays far behind."""
        cfg = self.config
        deadline = time.monotonic() + 1.0
        for c in list(self.conns.values()):
            while not c.closing and c.buffered() > cfg.write_high_water:
                if c.buffered() > cfg.slow_consumer_bytes:
                    log.warning("venue: dropping slow consumer %s (%d bytes queued)", c.id,
                                c.buffered())
                    c.reset()
                    break
                if time.monotonic() > deadline:
                    return
                await asyncio.sleep(0.001)

    # --- closing ----------------------------------------------------------------------------
    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a close in the background, keeping a reference until it finishes."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self, c: Connection, code: int, reason: str) -> None:
        if c.closing:
            return
        c.closing = True
        c.close_done = asyncio.Event()
        try:
            await asyncio.wait_for(c.ws.close(code=code, message=reason.encode()), 2.0)
        except (TimeoutError, ConnectionError, RuntimeError):
            c.transport.abort()
        finally:
            c.close_done.set()

    async def server_shutdown(self, c: Connection) -> None:
        if c.closing:
            return
        if c.kind == "binance" and not c.transport.is_closing():
            c.transport.write(encode_frames([formats.server_shutdown(self.market_ms())]))
        await self.close(c, 1001, "server shutdown")

    async def shutdown_all(self) -> int:
        """Send serverShutdown to every Binance connection and close all WebSockets."""
        conns = self.live()
        await asyncio.gather(*(self.server_shutdown(c) for c in conns))
        return len(conns)

    # --- housekeeping: pings, pong timeouts, lifetimes, connection faults -----------------
    def keepalive(self, now: float) -> None:
        """Ping on time, drop who missed a pong, retire connections at the end of their life."""
        cfg = self.config
        for c in list(self.conns.values()):
            if c.closing:
                continue
            if now - c.opened >= cfg.max_lifetime_s:
                self.spawn(self.server_shutdown(c))
                continue
            if c.pings and now - min(c.pings.values()) >= cfg.pong_timeout_s:
                log.info("venue: connection %s missed its pong; disconnecting", c.id)
                self.spawn(self.close(c, 1008, "pong timeout"))
                continue
            if now - c.last_ping >= cfg.ping_interval_s:
                payload = str(int(time.time() * 1000)).encode()
                c.pings[payload] = now
                c.last_ping = now
                if not c.transport.is_closing():
                    c.transport.write(encode_frames([payload], opcode=0x89))

    def _targets(self, spec: FaultSpec) -> list[Connection]:
        conns = self.live()
        if spec.connection is not None:
            return [c for c in conns if c.id == spec.connection]
        if spec.symbol is not None:
            return [c for c in conns if spec.symbol in c.symbols()]
        return conns

    def apply_connection_fault(self, fault: Fault) -> None:
        spec = fault.spec
        for c in self._targets(spec):
            self.plan.log_connection_fault(fault, c.id, spec.symbol)
            if spec.kind is FaultKind.DISCONNECT:
                c.reset()
            else:
                self.spawn(self.close(c, spec.close_code, "closed by venue"))
