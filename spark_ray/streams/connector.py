"""The connector's core: exchange WebSocket(s) -> batches of raw frames -> a normalizer.

Plain asyncio, no Ray: :class:`spark_ray.actors.connector.ConnectorActor` wraps one
:class:`ConnectorCore` and gives it the normalizer as a ``send`` coroutine and Ray's metrics as
an :class:`Observer`. What to open, subscribe to and which frames are data is the venue
adapter's (:mod:`spark_ray.adapters`). It opens one connection per shard of channels the adapter
makes (Binance: at most ``max_streams_per_connection`` streams, SUBSCRIBE by method; BTCTurk:
one connection joining every pair), answers pings (the WebSocket library does), measures its own
ping round trip, and reconnects with exponential backoff and jitter. ``serverShutdown`` and the
24 h limit (``rollover_s``) are handled by opening the successor first and closing the old
connection once the new one streams: the overlap is deduplicated downstream, and a reconnect
that did leave a hole is reported to the normalizer, which backfills it over REST.

Frames are forwarded raw, in batches cut at ``batch_max`` frames or every ``flush_ms``, with their
receive times. At most ``max_inflight`` batches are in flight; the batch is kept until the
normalizer acknowledges it (which it does only after the sink made the rows durable), and resent
if the normalizer died: at-least-once end to end. When ``max_pending`` batches wait, reading
stops (TCP backpressure) instead of dropping.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from spark_ray.adapters.registry import get_adapter
from spark_ray.http import Backoff, RetryPolicy
from spark_ray.streams.wsclient import ConnectError, WsConn, open_ws

log = logging.getLogger(__name__)

Batch = tuple[int, list[bytes], list[int], list[str]]  # seq, frames, receive times, marks
# send(seq, frames, recv_ms, marks, sender_id, low): returns once the batch is durable
Send = Callable[[int, list[bytes], list[int], list[str], str, int], Awaitable[Any]]


class Observer(Protocol):
    """Where the core reports what the shell exports as metrics."""

    def heartbeat(self, unix_s: float) -> None: ...
    def round_trip(self, ms: float) -> None: ...
    def dropped(self, frames: int) -> None: ...


class NoObserver:
    def heartbeat(self, unix_s: float) -> None:
        return None

    def round_trip(self, ms: float) -> None:
        return None

    def dropped(self, frames: int) -> None:
        return None


@dataclass
class ConnectorConfig:
    exchange: str = "binance"
    ws_url: str = "wss://stream.binance.com:9443"
    channels: list[str] = field(default_factory=list)  # in the venue's names (adapter.channels)
    symbols: list[str] = field(default_factory=list)
    batch_max: int = 2_000
    flush_ms: float = 20.0
    max_inflight: int = 4
    max_pending: int = 64
    rollover_s: float = 23.5 * 3600  # Binance closes connections at 24 h
    overlap_timeout_s: float = 5.0
    ping_s: float = 5.0
    max_streams_per_connection: int = 1024
    backoff_base_s: float = 0.1
    backoff_cap_s: float = 5.0
    max_frame_bytes: int = 8 * 1024 * 1024
    ws_client: str = "aiohttp"  # or "websockets" (see spark_ray.streams.wsclient)


@dataclass
class _Conn:
    shard: int
    ws: WsConn
    opened: float
    streams: frozenset[str] = frozenset()  # the channels it subscribed to
    live: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    rollover: asyncio.Event = field(default_factory=asyncio.Event)
    shutdown_seen: bool = False
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    frames: int = 0

    async def close(self) -> None:
        for t in self.tasks:
            if t is not asyncio.current_task():
                t.cancel()
        await self.ws.close()
        self.closed.set()


class ConnectorCore:
    """One connector: its connections, batching, hand-off and chaos. ``send`` delivers a batch
    to the normalizer; an exception in ``retryable`` means "not acknowledged, send again"."""

    def __init__(self, config: ConnectorConfig, send: Send, name: str = "connector",
                 retryable: tuple[type[BaseException], ...] = (ConnectionError,),
                 observer: Observer | None = None) -> None:
        self.cfg = config
        self.adapter = get_adapter(config.exchange)
        self.send = send
        self.retryable = retryable
        self.observer: Observer = observer or NoObserver()
        self.name = name
        self._running = False
        self._tasks: list[asyncio.Task[Any]] = []
        self._conns: dict[int, _Conn] = {}
        self._frames: list[bytes] = []
        self._recv: list[int] = []
        self._marks: list[str] = []
        self._first_ms = 0.0
        self._queue: deque[tuple[int, list[bytes], list[int], list[str]]] = deque()
        self._inflight = 0
        self._deliveries: set[asyncio.Task[None]] = set()
        self._side_tasks: set[asyncio.Task[None]] = set()  # re-joins asked by the normalizer
        self._seq = 0
        # Who we are to the normalizer's batch order: new after a restart (seq starts over).
        self._sender_id = f"{name}:{uuid.uuid4().hex[:12]}"
        self._unacked: set[int] = set()  # batches handed to the normalizer, not yet acked
        self._room: asyncio.Event | None = None
        self._work: asyncio.Event | None = None
        self._chaos: dict[str, Any] = {}
        self._held: tuple[bytes, int] | None = None  # chaos reorder: a frame waiting one turn
        self.stats: dict[str, Any] = {
            "frames": 0, "batches": 0, "acked_batches": 0, "acked_frames": 0, "resends": 0,
            "connects": 0, "reconnects": 0, "rollovers": 0, "age_rollovers": 0,
            "server_shutdowns": 0,
            "control": 0, "backpressure_waits": 0, "chaos_dropped": 0, "chaos_duplicated": 0,
            "chaos_reordered": 0, "resubscribes": 0,
            "last_frame_ms": 0, "last_rtt_ms": None, "errors": 0,
        }

    # --- lifecycle ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._running

    async def start(self) -> dict[str, Any]:
        """Idempotent: the supervisor calls it again after Ray restarted the actor."""
        if self._running:
            return self.status()
        self._running = True
        self._room = asyncio.Event()
        self._room.set()
        self._work = asyncio.Event()
        loop = asyncio.get_running_loop()
        shards = self.adapter.connection_shards(self.cfg.channels,
                                                self.cfg.max_streams_per_connection)
        for i, streams in enumerate(shards):
            self._tasks.append(loop.create_task(self._shard_loop(i, streams)))
        self._tasks.append(loop.create_task(self._flusher()))
        self._tasks.append(loop.create_task(self._sender()))
        return self.status()

    async def stop(self, timeout_s: float = 20.0) -> dict[str, Any]:
        """Close the connections, hand off what was read, wait for the acknowledgements."""
        self._running = False
        for c in list(self._conns.values()):
            await c.close()
        self._cut()
        deadline = time.monotonic() + timeout_s
        while (self._queue or self._inflight) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for t in self._tasks:
            t.cancel()
        self._tasks = []
        return self.status()

    def status(self) -> dict[str, Any]:
        now = time.time() * 1000
        last = self.stats["last_frame_ms"]
        return {**self.stats, "name": self.name, "running": self._running,
                "connections": len(self._conns), "pending_batches": len(self._queue),
                "inflight": self._inflight,
                "last_frame_age_s": (now - last) / 1000 if last else None}

    # --- connections ----------------------------------------------------------------------------
    async def _open(self, shard: int, streams: list[str], backoff: Backoff) -> _Conn | None:
        cfg = self.cfg
        url = self.adapter.stream_url(cfg.ws_url)
        while self._running:
            try:
                ws = await open_ws(cfg.ws_client, url, cfg.max_frame_bytes)
            except ConnectError as e:
                self.stats["errors"] += 1
                log.info("%s: connect failed (%s); retrying", self.name, e)
                await asyncio.sleep(backoff.next())
                continue
            conn = _Conn(shard, ws, time.monotonic(), frozenset(streams))
            try:
                await self._subscribe(ws, streams)
            except OSError:
                self.stats["errors"] += 1
                await conn.close()
                await asyncio.sleep(backoff.next())
                continue
            loop = asyncio.get_running_loop()
            conn.tasks = [loop.create_task(self._reader(conn)),
                          loop.create_task(self._pinger(conn)),
                          loop.create_task(self._age(conn))]
            self._conns[id(conn)] = conn
            self.stats["connects"] += 1
            return conn
        return None

    async def _subscribe(self, ws: WsConn, streams: list[str]) -> None:
        self._seq += 1
        pace = self.adapter.subscribe_pacing_s
        for i, msg in enumerate(self.adapter.subscribe_messages(streams, self._seq)):
            if i and pace:
                await asyncio.sleep(pace)  # the venue's limit on incoming messages
            await ws.send(msg)

    async def _shard_loop(self, shard: int, streams: list[str]) -> None:
        backoff = Backoff(RetryPolicy(base_delay_s=self.cfg.backoff_base_s,
                                      max_delay_s=self.cfg.backoff_cap_s))
        cur: _Conn | None = None
        first = True
        try:
            while self._running:
                if cur is None:
                    cur = await self._open(shard, streams, backoff)
                    if cur is None:
                        return
                    if not first:
                        self._mark_reconnect()
                    first = False
                waits = [asyncio.ensure_future(cur.closed.wait()),
                         asyncio.ensure_future(cur.rollover.wait())]
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for w in waits:
                    w.cancel()
                if not self._running:
                    break
                if cur.live.is_set():
                    backoff.reset()
                if not cur.rollover.is_set():  # dropped: reconnect after a jittered pause
                    self.stats["reconnects"] += 1
                    self._conns.pop(id(cur), None)
                    await cur.close()
                    cur = None
                    await asyncio.sleep(backoff.next())
                    continue
                # Rollover (age limit or serverShutdown): successor first, then close the old.
                self.stats["rollovers"] += 1
                new = await self._open(shard, streams, backoff)
                if new is None:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(new.live.wait(), self.cfg.overlap_timeout_s)
                if cur.closed.is_set() or cur.shutdown_seen:
                    self._mark_reconnect()  # the old one may have stopped before the overlap
                self._conns.pop(id(cur), None)
                await cur.close()
                cur = new
        finally:
            if cur is not None:
                self._conns.pop(id(cur), None)
                await cur.close()

    def _mark_reconnect(self) -> None:
        self._marks.append("reconnect")
        self._cut()

    async def _age(self, conn: _Conn) -> None:
        await asyncio.sleep(self.cfg.rollover_s)
        if not conn.closed.is_set():
            self.stats["age_rollovers"] += 1
            conn.rollover.set()

    async def _pinger(self, conn: _Conn) -> None:
        while True:
            await asyncio.sleep(self.cfg.ping_s)
            rtt = await conn.ws.ping(10.0)
            if rtt is None:
                return
            self.stats["last_rtt_ms"] = round(rtt, 3)
            self.observer.round_trip(rtt)

    async def _reader(self, conn: _Conn) -> None:
        ws = conn.ws
        is_data = self.adapter.is_data_frame
        room = self._room
        assert room is not None  # nosec B101  # narrows Optional for mypy, not a check
        try:
            while True:
                raw = await ws.recv()
                if raw is None:
                    break
                now = int(time.time() * 1000)
                if is_data(raw[:10]):
                    if not conn.live.is_set():
                        conn.live.set()
                    conn.frames += 1
                    if self._chaos or self._held is not None:
                        await self._chaos_frame(raw, now)
                    else:
                        self._add(raw, now)
                    if not room.is_set():
                        self.stats["backpressure_waits"] += 1
                        await room.wait()
                else:
                    self._control(conn, raw, now)
        except OSError:
            pass
        finally:
            conn.closed.set()

    def _control(self, conn: _Conn, raw: bytes, now: int) -> None:
        self.stats["control"] += 1
        try:
            doc = json.loads(raw)
        except ValueError:
            self._add(raw, now)  # not ours to judge: the normalizer dead-letters it
            return
        kind = self.adapter.control_kind(doc)
        if kind == "shutdown":
            self.stats["server_shutdowns"] += 1
            conn.shutdown_seen = True
            conn.rollover.set()
        elif kind == "error":
            log.warning("%s: venue refused a request: %s", self.name, doc)
            self.stats["errors"] += 1
        elif kind == "data":
            self._add(raw, now)  # not a control message we know: the normalizer judges it

    # --- batching and hand-off ----------------------------------------------------------------
    def _add(self, raw: bytes, now: int) -> None:
        if not self._frames:
            self._first_ms = time.monotonic()
        self._frames.append(raw)
        self._recv.append(now)
        self.stats["frames"] += 1
        self.stats["last_frame_ms"] = now
        if len(self._frames) >= self.cfg.batch_max:
            self._cut()

    def _cut(self) -> None:
        if not self._frames and not self._marks:
            return
        self._seq += 1
        self._queue.append((self._seq, self._frames, self._recv, self._marks))
        self._frames, self._recv, self._marks = [], [], []
        self.stats["batches"] += 1
        assert self._work is not None and self._room is not None  # nosec B101  # narrows Optional for mypy, not a check
        self._work.set()
        if len(self._queue) + self._inflight >= self.cfg.max_pending:
            self._room.clear()

    async def _flusher(self) -> None:
        period = self.cfg.flush_ms / 1000
        while True:
            await asyncio.sleep(period / 2)
            if self._frames and time.monotonic() - self._first_ms >= period:
                self._cut()
            if self.stats["last_frame_ms"]:
                self.observer.heartbeat(self.stats["last_frame_ms"] / 1000)

    async def _sender(self) -> None:
        assert self._work is not None  # nosec B101  # narrows Optional for mypy, not a check
        loop = asyncio.get_running_loop()
        while True:
            while self._queue and self._inflight < self.cfg.max_inflight:
                batch = self._queue.popleft()
                self._inflight += 1
                task = loop.create_task(self._deliver(batch))
                self._deliveries.add(task)
                task.add_done_callback(self._deliveries.discard)
            self._work.clear()
            await self._work.wait()

    async def _deliver(self, batch: tuple[int, list[bytes], list[int], list[str]]) -> None:
        seq, frames, recv, marks = batch
        delay = 0.05
        self._unacked.add(seq)
        try:
            while True:
                try:
                    # ``low``: every batch below it is acked (the normalizer need not wait)
                    ack = await self.send(seq, frames, recv, marks, self._sender_id,
                                          min(self._unacked))
                    break
                except self.retryable as e:
                    # The normalizer is restarting (or failed this batch): keep it, send again.
                    self.stats["resends"] += 1
                    log.info("%s: batch %d not acknowledged (%s); resending", self.name, seq,
                             type(e).__name__)
                    await asyncio.sleep(delay)
                    delay = min(2.0, delay * 2)
            self.stats["acked_batches"] += 1
            self.stats["acked_frames"] += len(frames)
            if isinstance(ack, dict) and ack.get("resubscribe"):
                task = asyncio.get_running_loop().create_task(
                    self._resubscribe(list(ack["resubscribe"])))
                self._side_tasks.add(task)
                task.add_done_callback(self._side_tasks.discard)
        finally:
            self._unacked.discard(seq)
            self._inflight -= 1
            assert self._work is not None and self._room is not None  # nosec B101  # narrows Optional for mypy, not a check
            self._work.set()
            if len(self._queue) + self._inflight < self.cfg.max_pending:
                self._room.set()

    async def _resubscribe(self, channels: list[str]) -> None:
        """The normalizer found these channels' books out of sync: leave and re-join them on
        every live connection carrying them, so the venue sends fresh full books (BTCTurk; the
        adapter's ``caps.book_from_stream``). A connection that fails here is reconnecting,
        and a new connection joins afresh anyway."""
        want = set(channels)
        pace = self.adapter.subscribe_pacing_s
        for conn in list(self._conns.values()):
            mine = [c for c in channels if c in conn.streams and c in want]
            if not mine or conn.closed.is_set():
                continue
            self.stats["resubscribes"] += len(mine)
            try:
                for i, msg in enumerate(self.adapter.resubscribe_messages(mine)):
                    if i and pace:
                        await asyncio.sleep(pace)
                    await conn.ws.send(msg)
            except OSError as e:
                log.info("%s: re-join of %s failed (%s)", self.name, mine, e)

    # --- chaos (POST /chaos) ------------------------------------------------------------------
    async def chaos(self, kind: str, count: int = 10, delay_ms: float = 500.0) -> dict[str, Any]:
        """Inject a fault at the connector: ``drop``/``gap`` (next ``count`` data frames never
        forwarded), ``duplicate`` (next ``count`` forwarded twice), ``reorder`` (next ``count``
        pairs of frames forwarded swapped), ``lag`` (reading pauses ``delay_ms`` once),
        ``disconnect`` (every connection reset now)."""
        if kind in ("drop", "gap", "duplicate", "reorder"):
            self._chaos[kind] = self._chaos.get(kind, 0) + max(1, int(count))
        elif kind == "lag":
            self._chaos["lag"] = float(delay_ms)
        elif kind == "disconnect":
            for c in list(self._conns.values()):
                c.ws.abort()
        else:
            raise ValueError(f"chaos kind {kind!r}: one of drop, gap, duplicate, reorder, lag, "
                             "disconnect")
        return {"kind": kind, "count": count, "delay_ms": delay_ms}

    async def _chaos_frame(self, raw: bytes, now: int) -> None:
        c = self._chaos
        if "lag" in c:
            await asyncio.sleep(c.pop("lag") / 1000)
            now = int(time.time() * 1000)
        for kind in ("drop", "gap"):
            if c.get(kind, 0) > 0:
                c[kind] -= 1
                if c[kind] == 0:
                    del c[kind]
                self.stats["chaos_dropped"] += 1
                self.observer.dropped(1)
                return
        key = self.adapter.stream_key
        if self._held is not None and key(raw) == key(self._held[0]):
            # reorder: the held frame goes right after the next frame of its own stream
            held, self._held = self._held, None
            self._add(raw, now)
            self._add(*held)
            self.stats["chaos_reordered"] += 1
            return
        if c.get("reorder", 0) > 0 and self._held is None:
            c["reorder"] -= 1
            if c["reorder"] == 0:
                del c["reorder"]
            self._held = (raw, now)
            return
        self._add(raw, now)
        if c.get("duplicate", 0) > 0:
            c["duplicate"] -= 1
            if c["duplicate"] == 0:
                del c["duplicate"]
            self.stats["chaos_duplicated"] += 1
            self._add(raw, now)
