"""The venue's HTTP and WebSocket server (aiohttp): wires the engine, formats, limiter and faults.

One port serves everything, routed by path:

- `/api/v3/...`              Binance spot REST (rate limited, REST faults): public market data
                             and the signed trading endpoints (:mod:`signed`, order faults)
- `/ws`, `/ws/<s>[/<s>...]`  Binance raw streams;  `/stream?streams=a/b`  combined streams;
                             a listenKey as the stream name is that account's user data stream
- `/btcturk`                 BTCTurk's public WebSocket (`[type, {...}]` models)
- `/admin/...`               token-protected control: faults, fault log, ground truth, pause

Frames are written straight to the transport, one Binance message per WebSocket frame but many
frames per write, which is what lets one core publish >100k trade frames per second.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import socket
import struct
import time
from collections import deque
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from aiohttp import WSMsgType, web

from spark_ray.venue import formats, rest
from spark_ray.venue.candles import Kline, interval_open, klines_from_trades, select
from spark_ray.venue.config import VenueConfig
from spark_ray.venue.engine import MarketEngine
from spark_ray.venue.fault_plan import Fault, FaultLog, FaultPlan, FrameDecision, OrderDecision
from spark_ray.venue.faults import FaultKind, FaultSpec, malform
from spark_ray.venue.formats import AggGroups
from spark_ray.venue.market import TradeBatch, mix64
from spark_ray.venue.ratelimit import RateLimiter
from spark_ray.venue.signed import ORDER_PATH, STREAM_PATH, SignedApi, SignedRequest, parse_request
from spark_ray.venue.streams import StreamKey, parse_stream
from spark_ray.venue.trading import TradingDesk
from spark_ray.venue.userstream import ListenKeys

log = logging.getLogger("spark_ray.venue")

_HDR7 = [bytes((0x81, n)) for n in range(126)]
_METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
_REST_5XX = {
    500: (-1001, "Internal error; unable to process your request. Please try again."),
    502: (-1000, "An unknown error occurred while processing the request."),
    503: (-1008, "Server is currently overloaded with other requests. Please try again in a "
                 "few minutes."),
    504: (-1007, "Timeout waiting for response from backend server. Send status unknown; "
                 "execution status unknown."),
}


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


class VenueServer:
    """The running venue: call :meth:`start` and :meth:`stop` on one event loop."""

    def __init__(self, config: VenueConfig, candles: pa.Table | None = None) -> None:
        self.config = config.validate()
        self.engine = MarketEngine(config, candles)
        self.plan = FaultPlan(FaultLog(config.fault_log_size))
        self.limiter = RateLimiter(config.rate_limit)
        self.token = config.resolved_token()
        self.listen_keys = ListenKeys(config.listen_key_ttl_s)
        self.desk = TradingDesk(config, self.engine, emit=self._user_event)
        self.api = SignedApi(self.desk, self.listen_keys, market_clock=self.engine.now_ms)
        self.user_conns: dict[str, set[Connection]] = {}
        self.conns: dict[int, Connection] = {}
        self.subs: dict[str, set[Connection]] = {}
        self.keys: dict[str, StreamKey] = {}
        self.last_push: dict[str, float] = {}
        self.depth_cursor: dict[str, int] = {}
        self.kline_open: dict[str, int] = {}
        self.last_best: dict[str, tuple[int, int, int, int]] = {}
        self.bt_subs: dict[tuple[str, str], set[Connection]] = {}
        self.bt_state: dict[str, tuple[int, dict[int, int], dict[int, int]]] = {}
        self.bt_last_push = 0.0
        self._names = {
            s: {k: f"{s.lower()}@{k}" for k in ("trade", "aggTrade", "bookTicker")}
            for s in self.engine.specs
        }
        self._next_conn = 1
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._running = False
        self.runner: web.AppRunner | None = None
        self.port = 0
        self.app = self._build_app()

    # --- lifecycle -------------------------------------------------------------------------
    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=1024 * 1024)
        r = app.router
        r.add_route("*", "/api/{tail:.*}", self._rest)
        r.add_get("/ws", self._ws_binance)
        r.add_get("/ws/{tail:.*}", self._ws_binance)
        r.add_get("/stream", self._ws_binance)
        r.add_get("/btcturk", self._ws_btcturk)
        r.add_get("/admin/status", self._admin(self._a_status))
        r.add_get("/admin/connections", self._admin(self._a_connections))
        r.add_get("/admin/faults", self._admin(self._a_faults))
        r.add_post("/admin/faults", self._admin(self._a_add_fault))
        r.add_delete("/admin/faults", self._admin(self._a_clear_faults))
        r.add_delete("/admin/faults/{id}", self._admin(self._a_clear_faults))
        r.add_get("/admin/fault-log", self._admin(self._a_fault_log))
        r.add_get("/admin/ground-truth", self._admin(self._a_ground_truth))
        r.add_post("/admin/pause", self._admin(self._a_pause))
        r.add_post("/admin/resume", self._admin(self._a_resume))
        r.add_post("/admin/server-shutdown", self._admin(self._a_server_shutdown))
        r.add_get("/admin/orders", self._admin(self._a_orders))
        r.add_get("/admin/my-trades", self._admin(self._a_my_trades))
        r.add_get("/admin/balances", self._admin(self._a_balances))
        return app

    async def start(self) -> None:
        self.runner = web.AppRunner(self.app, access_log=None, handle_signals=False,
                                    shutdown_timeout=1.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.config.host, self.config.port)
        await site.start()
        addr = self.runner.addresses[0]
        self.port = int(addr[1])
        self._running = True
        self._tasks = [
            asyncio.create_task(self._engine_loop(), name="venue-engine"),
            asyncio.create_task(self._housekeeping_loop(), name="venue-housekeeping"),
        ]

    async def stop(self) -> None:
        self._running = False
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for c in list(self.conns.values()):
            c.closing = True
            c.transport.abort()
        if self.runner is not None:
            await self.runner.cleanup()

    @property
    def host(self) -> str:
        return self.config.host

    # --- control API (call on the loop) ----------------------------------------------------
    def inject(self, spec: FaultSpec) -> int:
        return self.plan.add(spec, time.monotonic()).id

    def clear_faults(self, fault_id: int | None = None) -> int:
        return self.plan.remove(fault_id, time.monotonic())

    def connections(self) -> list[dict[str, Any]]:
        return [c.describe() for c in self.conns.values() if not c.closing]

    def pause(self) -> None:
        """Freeze the clock and publish what was already due, so ground truth is final."""
        self.engine.pause()
        self._tick()

    def resume(self) -> None:
        self.engine.resume()

    async def shutdown_connections(self) -> int:
        """Send serverShutdown to every Binance connection and close all WebSockets."""
        conns = [c for c in self.conns.values() if not c.closing]
        await asyncio.gather(*(self._server_shutdown(c) for c in conns))
        return len(conns)

    # --- engine loop ------------------------------------------------------------------------
    async def _engine_loop(self) -> None:
        cfg = self.config
        loop = asyncio.get_running_loop()
        while self._running:
            t0 = loop.time()
            try:
                self._tick()
            except Exception:  # a bug must not silently freeze the market: log and go on
                log.exception("venue engine step failed")
            await self._backpressure()
            await asyncio.sleep(max(0.0, cfg.tick_s - (loop.time() - t0)))

    async def _backpressure(self) -> None:
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

    def _tick(self) -> None:
        event_time, batches = self.engine.step()
        wall = time.monotonic()
        for sym, batch in batches.items():
            self._publish_trades(event_time, sym, batch)
            if self.desk.resting.get(sym):  # resting orders the tape crossed fill as maker
                self.desk.on_trades(sym, batch.price, batch.qty)
        for sym in self.engine.specs:
            self._publish_book_ticker(sym)
        self._publish_timed(event_time, wall)
        if self.bt_subs and wall - self.bt_last_push >= self.config.btcturk_push_s:
            self.bt_last_push = wall
            self._publish_btcturk_books()
        self._trim_books()

    def _publish_trades(self, event_time: int, sym: str, batch: TradeBatch) -> None:
        fmt = self.engine.formatters[sym]
        names = self._names[sym]
        conns = self.subs.get(names["trade"])
        if conns:
            payloads = fmt.trades(event_time, batch.ids, batch.price, batch.qty, batch.time,
                                  batch.maker)
            self._fanout(conns, names["trade"], sym, "trade", payloads, batch.ids, batch.ids)
        conns = self.subs.get(names["aggTrade"])
        if conns:
            groups = AggGroups(batch.agg, batch.ids, batch.price, batch.qty, batch.time,
                               batch.maker)
            payloads = fmt.agg_trades(event_time, groups)
            self._fanout(conns, names["aggTrade"], sym, "aggTrade", payloads, groups.f,
                         groups.last)
        bt = self.bt_subs.get(("trade", sym))
        if bt:
            payloads = fmt.btcturk_trades(batch.ids, batch.price, batch.qty, batch.time,
                                          batch.maker)
            self._fanout(bt, "trade", sym, "btcturk.trade", payloads, batch.ids, batch.ids)

    def _publish_book_ticker(self, sym: str) -> None:
        name = self._names[sym]["bookTicker"]
        conns = self.subs.get(name)
        if not conns:
            return
        book = self.engine.books[sym]
        best = book.best()
        if self.last_best.get(sym) == best:
            return
        self.last_best[sym] = best
        payload = self.engine.formatters[sym].book_ticker(book.last_update_id, best)
        self._fanout(conns, name, sym, "bookTicker", [payload], None, None)

    def _publish_timed(self, event_time: int, wall: float) -> None:
        """Depth diffs, partial books and klines: pushed on their own cadences."""
        for name, key in list(self.keys.items()):
            sym = key.symbol
            if sym not in self.engine.specs or not self.subs.get(name):
                continue
            fmt = self.engine.formatters[sym]
            if key.kind == "depth":
                if wall - self.last_push.get(name, 0.0) < key.speed_ms / 1000:
                    continue
                self.last_push[name] = wall
                book = self.engine.books[sym]
                if key.levels is None:
                    diff = book.diff_since(self.depth_cursor.get(name, book.last_update_id))
                    if diff is None:
                        continue
                    self.depth_cursor[name] = diff.last_uid
                    payload = fmt.depth_update(event_time, diff)
                else:
                    uid, bids, asks = book.snapshot(key.levels)
                    payload = fmt.partial_depth(uid, bids, asks)
                self._fanout(self.subs[name], name, sym, "depth", [payload], None, None)
            elif key.kind == "kline":
                self._publish_kline(name, key, event_time, wall)

    def _publish_kline(self, name: str, key: StreamKey, event_time: int, wall: float) -> None:
        assert key.interval is not None
        sym, interval = key.symbol, key.interval
        fmt = self.engine.formatters[sym]
        now = self.engine.now_ms()
        cur_open = interval_open(interval, now)
        prev_open = self.kline_open.get(name, cur_open)
        push_s = 1.0 if interval == "1s" else self.config.kline_push_s
        payloads: list[bytes] = []
        if cur_open > prev_open:
            for k in self._klines(sym, interval, prev_open, cur_open - 1, 10):
                payloads.append(fmt.kline(event_time, interval, k, True))
        elif wall - self.last_push.get(name, 0.0) < push_s:
            return
        current = self._klines(sym, interval, cur_open, None, 1)
        if current:
            payloads.append(fmt.kline(event_time, interval, current[-1], False))
        self.kline_open[name] = cur_open
        self.last_push[name] = wall
        if payloads:
            self._fanout(self.subs[name], name, sym, "kline", payloads, None, None)

    def _klines(self, sym: str, interval: str, start: int, end: int | None, limit: int
                ) -> list[Kline]:
        if interval == "1s":
            cols = self.engine.ledger.tail(sym, start)
            ks = klines_from_trades(cols.time, cols.price, cols.qty, cols.maker, cols.ids,
                                    start=start, end=end, limit=limit)
            if not ks and end is None:
                # No trade yet this second: Binance still shows the candle, flat at the last price.
                last = self.engine.markets[sym].last_price
                ks = [Kline(start, start + 999, last, last, last, last, 0, 0, 0, 0, 0, -1, -1)]
            return ks
        rows = self.engine.rows_since(sym, interval_open(interval, start))
        return select(rows, interval, start=start, end=end, limit=limit)

    def _trim_books(self) -> None:
        for sym, book in self.engine.books.items():
            cursors = [
                self.depth_cursor.get(n, book.last_update_id)
                for n, k in self.keys.items()
                if k.symbol == sym and k.kind == "depth" and k.levels is None
            ]
            book.trim(min(cursors) if cursors else book.last_update_id)

    # --- BTCTurk books ------------------------------------------------------------------------
    def _bt_snapshot(self, sym: str) -> tuple[int, dict[int, int], dict[int, int]]:
        uid, bids, asks = self.engine.books[sym].snapshot(100)
        return uid, dict(bids), dict(asks)

    def _publish_btcturk_books(self) -> None:
        for sym in self.engine.specs:
            ob = self.bt_subs.get(("obdiff", sym))
            full = self.bt_subs.get(("orderbook", sym))
            if not ob and not full:
                continue
            state = self.bt_state.get(sym)
            new = self._bt_snapshot(sym)
            if state is not None and state[0] == new[0]:
                continue
            self.bt_state[sym] = new
            fmt = self.engine.formatters[sym]
            if ob and state is not None:
                bid_rows = _bt_changes(state[1], new[1], reverse=True)
                ask_rows = _bt_changes(state[2], new[2], reverse=False)
                if bid_rows or ask_rows:
                    for c in list(ob):
                        cs = c.bt_cs[("obdiff", sym)] = c.bt_cs[("obdiff", sym)] + 1
                        self._fanout([c], "obdiff", sym, "btcturk.obdiff",
                                     [fmt.btcturk_book_diff(cs, bid_rows, ask_rows)], None, None)
            if full:
                bids = sorted(new[1].items(), reverse=True)
                asks = sorted(new[2].items())
                for c in list(full):
                    cs = c.bt_cs[("orderbook", sym)] = c.bt_cs[("orderbook", sym)] + 1
                    self._fanout([c], "orderbook", sym, "btcturk.orderbook",
                                 [fmt.btcturk_book_full("orderbook", cs, bids, asks)], None, None)

    # --- sending with faults ------------------------------------------------------------------
    def _fanout(
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

    def _send_control(self, c: Connection, payload: bytes) -> None:
        """Replies keep their place behind delayed frames but are never dropped or corrupted."""
        if c.delayed:
            c.delayed.append((time.monotonic(), payload))
        else:
            c.send([payload])

    # --- housekeeping: pings, pong timeouts, lifetimes, connection faults --------------------
    async def _housekeeping_loop(self) -> None:
        cfg = self.config
        period = min(0.25, cfg.ping_interval_s / 4, cfg.pong_timeout_s / 4,
                     cfg.max_lifetime_s / 4)
        period = max(0.01, period)
        while self._running:
            try:
                await self._housekeep()
            except Exception:
                log.exception("venue housekeeping failed")
            await asyncio.sleep(period)

    async def _housekeep(self) -> None:
        cfg = self.config
        now = time.monotonic()
        self.plan.expire(now)
        for listen_key in self.listen_keys.expire(now):
            self._drop_listen_key(listen_key, expired=True)
        for fault in self.plan.due_connection_faults(now):
            self._apply_connection_fault(fault)
        for c in list(self.conns.values()):
            if c.closing:
                continue
            if now - c.opened >= cfg.max_lifetime_s:
                self._spawn(self._server_shutdown(c))
                continue
            if c.pings and now - min(c.pings.values()) >= cfg.pong_timeout_s:
                log.info("venue: connection %s missed its pong; disconnecting", c.id)
                self._spawn(self._close(c, 1008, "pong timeout"))
                continue
            if now - c.last_ping >= cfg.ping_interval_s:
                payload = str(int(time.time() * 1000)).encode()
                c.pings[payload] = now
                c.last_ping = now
                if not c.transport.is_closing():
                    c.transport.write(encode_frames([payload], opcode=0x89))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a close in the background, keeping a reference until it finishes."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _targets(self, spec: FaultSpec) -> list[Connection]:
        conns = [c for c in self.conns.values() if not c.closing]
        if spec.connection is not None:
            return [c for c in conns if c.id == spec.connection]
        if spec.symbol is not None:
            return [c for c in conns if spec.symbol in c.symbols()]
        return conns

    def _apply_connection_fault(self, fault: Fault) -> None:
        spec = fault.spec
        for c in self._targets(spec):
            self.plan.log_connection_fault(fault, c.id, spec.symbol)
            if spec.kind is FaultKind.DISCONNECT:
                c.reset()
            else:
                self._spawn(self._close(c, spec.close_code, "closed by venue"))

    async def _close(self, c: Connection, code: int, reason: str) -> None:
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

    async def _server_shutdown(self, c: Connection) -> None:
        if c.closing:
            return
        if c.kind == "binance" and not c.transport.is_closing():
            c.transport.write(encode_frames([formats.server_shutdown(self.engine.now_ms())]))
        await self._close(c, 1001, "server shutdown")

    # --- WebSocket: common ----------------------------------------------------------------------
    def _register(self, kind: str, ws: web.WebSocketResponse, request: web.Request,
                  combined: bool = False) -> Connection:
        transport = request.transport
        assert transport is not None
        peer = transport.get_extra_info("peername") or ("?", 0)
        c = Connection(self._next_conn, kind, ws, transport, f"{peer[0]}:{peer[1]}",
                       request.path_qs, combined)
        self._next_conn += 1
        self.conns[c.id] = c
        return c

    def _unregister(self, c: Connection) -> None:
        c.closing = True
        self.conns.pop(c.id, None)
        for name in list(c.streams):
            self._unsubscribe(c, name)
        for lk in c.listen_keys:
            conns = self.user_conns.get(lk)
            if conns is not None:
                conns.discard(c)
                if not conns:
                    del self.user_conns[lk]
        for key in list(c.bt_subs):
            s = self.bt_subs.get(key)
            if s is not None:
                s.discard(c)
                if not s:
                    del self.bt_subs[key]
        if c.flusher is not None:
            c.flusher.cancel()

    def _count_incoming(self, c: Connection) -> bool:
        """Binance allows 5 incoming messages (pings, pongs, JSON) per second per connection."""
        now = time.monotonic()
        c.incoming.append(now)
        while c.incoming and c.incoming[0] <= now - 1.0:
            c.incoming.popleft()
        return len(c.incoming) <= self.config.max_incoming_per_s

    async def _read_loop(self, c: Connection, on_text: Any) -> None:
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
                await self._close(c, 1008, "too many messages")
                break
            if msg.type == WSMsgType.PING:
                if not c.transport.is_closing():
                    c.transport.write(encode_frames([msg.data], opcode=0x8A))
            elif msg.type == WSMsgType.PONG:
                if bytes(msg.data) in c.pings:
                    c.pings.clear()
            elif msg.type == WSMsgType.TEXT:
                on_text(c, msg.data)

    def _new_ws(self) -> web.WebSocketResponse:
        return web.WebSocketResponse(autoping=False, compress=False, max_msg_size=64 * 1024,
                                     timeout=1.0)

    # --- WebSocket: Binance -------------------------------------------------------------------
    async def _ws_binance(self, request: web.Request) -> web.StreamResponse:
        combined = request.path.startswith("/stream")
        raw = request.query.get("streams", "") if combined else request.match_info.get("tail", "")
        names = [n for n in raw.split("/") if n]
        user = [n for n in names if self.listen_keys.account_of(n) is not None]
        keys = [parse_stream(n) for n in names if n not in user]
        if any(k is None for k in keys):
            return web.Response(status=400, body=formats.ws_error(2, "Invalid request: invalid "
                                                                     "stream"),
                                content_type="application/json")
        if len(set(names)) > self.config.max_streams:
            return web.Response(status=400, body=formats.ws_error(
                2, f"Invalid request: too many streams (max {self.config.max_streams})"),
                content_type="application/json")
        ws = self._new_ws()
        await ws.prepare(request)
        c = self._register("binance", ws, request, combined)
        for k in keys:
            assert k is not None
            self._subscribe(c, k)
        for lk in user:
            c.listen_keys.add(lk)
            c.path = c.path.replace(lk, "<listenKey>")  # a credential: never shown
            self.user_conns.setdefault(lk, set()).add(c)
        try:
            await self._read_loop(c, self._on_binance_text)
        finally:
            self._unregister(c)
        return ws

    def _subscribe(self, c: Connection, key: StreamKey) -> None:
        if key.name in c.streams:
            return
        c.streams[key.name] = key
        conns = self.subs.get(key.name)
        if conns is None:
            conns = self.subs[key.name] = set()
            self.keys[key.name] = key
            if key.symbol in self.engine.books:
                self.depth_cursor[key.name] = self.engine.books[key.symbol].last_update_id
        conns.add(c)
        if key.kind == "bookTicker":
            self.last_best.pop(key.symbol, None)  # a new subscriber gets the current best soon

    def _unsubscribe(self, c: Connection, name: str) -> None:
        c.streams.pop(name, None)
        conns = self.subs.get(name)
        if conns is None:
            return
        conns.discard(c)
        if not conns:
            del self.subs[name]
            self.keys.pop(name, None)
            self.depth_cursor.pop(name, None)
            self.kline_open.pop(name, None)
            self.last_push.pop(name, None)

    def _on_binance_text(self, c: Connection, text: str) -> None:
        reply = self._binance_control(c, text)
        if reply is not None:
            self._send_control(c, reply)

    def _binance_control(self, c: Connection, text: str) -> bytes | None:
        """Live SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS / SET_ / GET_PROPERTY."""
        try:
            msg = json.loads(text)
        except ValueError as e:
            line, col = getattr(e, "lineno", 1), getattr(e, "colno", 1)
            return formats.ws_error(3, f"Invalid JSON: expected value at line {line} column "
                                       f"{col}")
        if not isinstance(msg, dict):
            return formats.ws_error(2, "Invalid request: expected an object")
        rid = msg.get("id")
        if "id" not in msg or not (
            rid is None
            or (isinstance(rid, int) and not isinstance(rid, bool))
            or (isinstance(rid, str) and rid.isalnum() and len(rid) <= 36)
        ):
            return formats.ws_error(2, "Invalid request: request ID must be an unsigned integer")
        method = msg.get("method")
        if method not in _METHODS:
            allowed = ", ".join(f"`{m}`" for m in _METHODS)
            col = text.find(str(method)) + len(str(method)) + 1
            return formats.ws_error(
                2, f"Invalid request: unknown variant `{method}`, expected one of {allowed} at "
                   f"line 1 column {max(col, 1)}", rid)
        params = msg.get("params")
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                return formats.ws_error(2, "Invalid request: invalid stream", rid)
            keys = [parse_stream(p) for p in params]
            if any(k is None for k in keys):
                return formats.ws_error(2, "Invalid request: invalid stream", rid)
            if method == "SUBSCRIBE":
                total = len(set(c.streams) | set(params))
                if total > self.config.max_streams:
                    return formats.ws_error(
                        2, f"Invalid request: too many streams (max {self.config.max_streams})",
                        rid)
                for k in keys:
                    assert k is not None
                    self._subscribe(c, k)
            else:
                for p in params:
                    self._unsubscribe(c, p)
            return formats.ws_result(None, rid)
        if method == "LIST_SUBSCRIPTIONS":
            return formats.ws_result(list(c.streams), rid)
        if not isinstance(params, list) or not params or not isinstance(params[0], str):
            return formats.ws_error(2, "Invalid request: property name must be a string", rid)
        if params[0] != "combined":
            return formats.ws_error(0, "Unknown property", rid)
        if method == "GET_PROPERTY":
            return formats.ws_result(c.combined, rid)
        if len(params) < 2 or not isinstance(params[1], bool):
            return formats.ws_error(1, "Invalid value type: expected Boolean", rid)
        c.combined = params[1]
        return formats.ws_result(None, rid)

    # --- WebSocket: BTCTurk -------------------------------------------------------------------
    async def _ws_btcturk(self, request: web.Request) -> web.StreamResponse:
        ws = self._new_ws()
        await ws.prepare(request)
        c = self._register("btcturk", ws, request)
        c.send([formats.btcturk_welcome()])
        try:
            await self._read_loop(c, self._on_btcturk_text)
        finally:
            self._unregister(c)
        return ws

    def _on_btcturk_text(self, c: Connection, text: str) -> None:
        """`[151, {"type":151,"channel":..,"event":..,"join":bool}]`; anything else is ignored."""
        try:
            msg = json.loads(text)
        except ValueError:
            return
        if not (isinstance(msg, list) and len(msg) == 2 and msg[0] == 151
                and isinstance(msg[1], dict)):
            return
        body = msg[1]
        ch, ev, join = body.get("channel"), body.get("event"), body.get("join")
        if not isinstance(ch, str) or not isinstance(ev, str) or not isinstance(join, bool):
            return
        key = (ch, ev)
        tag = f"{'join' if join else 'leave'}|{ch}:{ev}"
        if not join:
            c.bt_subs.discard(key)
            s = self.bt_subs.get(key)
            if s is not None:
                s.discard(c)
                if not s:
                    del self.bt_subs[key]
            self._send_control(c, formats.btcturk_result(True, tag))
            return
        if key in c.bt_subs:
            self._send_control(c, formats.btcturk_result(False, tag))
            return
        c.bt_subs.add(key)
        self.bt_subs.setdefault(key, set()).add(c)
        self._send_control(c, formats.btcturk_result(True, tag))
        if ev not in self.engine.specs:
            return  # BTCTurk acknowledges unknown pairs and channels, then stays silent
        fmt = self.engine.formatters[ev]
        if ch == "trade":
            cols = self.engine.ledger.tail(ev, self.engine.markets[ev].current.open_time)
            if len(cols) < 50:
                cols = self.engine.ledger.columns(ev)
            last = slice(max(0, len(cols) - 50), len(cols))
            items = [
                fmt.btcturk_trade_item(t, p, q, tt, m)
                for t, p, q, tt, m in zip(cols.ids[last].tolist(), cols.price[last].tolist(),
                                          cols.qty[last].tolist(), cols.time[last].tolist(),
                                          cols.maker[last].tolist(), strict=True)
            ]
            self._send_control(c, fmt.btcturk_trade_list(items))
        elif ch in ("obdiff", "orderbook"):
            c.bt_cs[key] = 1 + mix64(c.id, *ev.encode()) % 4_000_000
            if ch == "obdiff":
                # Start from the state the next diff is computed against, so they chain.
                state = self.bt_state.get(ev)
                if state is None:
                    state = self.bt_state[ev] = self._bt_snapshot(ev)
            else:
                state = self._bt_snapshot(ev)
            bids = sorted(state[1].items(), reverse=True)
            asks = sorted(state[2].items())
            self._send_control(c, fmt.btcturk_book_full(ch, c.bt_cs[key], bids, asks))

    # --- REST ------------------------------------------------------------------------------------
    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        signed: SignedRequest | None = None
        params: dict[str, str] = {}
        duplicate = None
        if self.api.handles(path):
            body = ""
            if (request.method != "GET" and request.can_read_body
                    and request.content_type == "application/x-www-form-urlencoded"):
                body = await request.text()
            signed = parse_request(request.rel_url.raw_query_string, body)
            params = signed.params
        else:
            for k, v in request.query.items():
                if k in params:
                    duplicate = k
                params[k] = v
        now = time.monotonic()
        weight = (self.api.weight(request.method, path, params) if signed is not None
                  else rest.weight(path, params))
        verdict = self.limiter.check(request.remote or "?", weight, now)
        headers = {
            "X-MBX-USED-WEIGHT-1M": str(verdict.used_weight),
            "X-MBX-USED-WEIGHT": str(verdict.used_weight),
        }
        if verdict.status != 200:
            headers["Retry-After"] = str(verdict.retry_after)
            if verdict.status == 429:
                msg = (f"Too many requests; current limit of IP({request.remote}) is "
                       f"{self.config.rate_limit.weight_limit} request weight per 1 MINUTE. "
                       "Please use the websocket for live updates to avoid polling the API.")
            else:
                until = int(time.time() * 1000 + (verdict.retry_after or 0) * 1000)
                msg = (f"Way too much request weight used; IP({request.remote}) banned until "
                       f"{until}. Please use WebSocket Streams for live updates to avoid bans.")
            return _json(verdict.status, formats.rest_error(-1003, msg), headers)
        if signed is not None:
            return await self._signed(request, path, signed, headers)
        if request.method != "GET":
            return _json(405, formats.rest_error(-1000, "Method not allowed."), headers)
        if duplicate is not None:
            return _json(400, formats.rest_error(
                -1101, f"Duplicate values for parameter '{duplicate}'."), headers)
        faulted = await self._rest_faults(request, path, params.get("symbol"), now, headers)
        if faulted is not None:
            return faulted
        ans = rest.answer(self.engine, path, params, request.headers)
        return _json(ans.status, ans.body, headers)

    async def _rest_faults(self, request: web.Request, path: str, symbol: str | None,
                           now: float, headers: dict[str, str]) -> web.Response | None:
        """Carry out REST faults (latency, timeout, 5xx); None when the request goes on."""
        if not self.plan.faults:
            return None
        d = self.plan.decide_rest(path, symbol, now)
        if d.delay_ms:
            await asyncio.sleep(d.delay_ms / 1000)
        if d.timeout_ms is not None:
            await asyncio.sleep(d.timeout_ms / 1000)
            if d.drop_connection and request.transport is not None:
                request.transport.abort()
            code, msg = _REST_5XX[504]
            return _json(503, formats.rest_error(code, msg), headers)
        if d.error_status is not None:
            code, msg = _REST_5XX.get(d.error_status, _REST_5XX[500])
            return _json(d.error_status, formats.rest_error(code, msg), headers)
        return None

    async def _signed(self, request: web.Request, path: str, req: SignedRequest,
                      headers: dict[str, str]) -> web.StreamResponse:
        """Trading endpoints: REST faults, authentication, order faults, then the desk."""
        method = request.method
        faulted = await self._rest_faults(request, path, req.params.get("symbol"),
                                          time.monotonic(), headers)
        if faulted is not None:
            return faulted
        submit = method == "POST" and path == ORDER_PATH
        try:
            key = self.api.authenticate(method, path, req, request.headers)
            if submit:
                headers.update(self.api.count_order(key))
        except rest.RestError as e:
            return _json(e.status, formats.rest_error(e.code, e.msg), headers)
        decision = OrderDecision()
        if submit and self.plan.faults:
            decision = self.plan.decide_order(req.params.get("symbol"), time.monotonic())
        if decision.kind is None:
            ans = self.api.answer(method, path, req.params, key)
            if method == "DELETE" and path == STREAM_PATH and ans.status == 200:
                self._sweep_listen_keys()
            return _json(ans.status, ans.body, headers)
        placed = self.api.answer(method, path, req.params, key) if decision.placed else None
        if decision.kind is FaultKind.ORDER_ERROR:
            code, msg = _REST_5XX.get(decision.status, _REST_5XX[500])
            return _json(decision.status, formats.rest_error(code, msg), headers)
        await asyncio.sleep(decision.delay_ms / 1000)  # ORDER_TIMEOUT
        if decision.drop_connection and request.transport is not None:
            request.transport.abort()
        if placed is not None:
            return _json(placed.status, placed.body, headers)
        code, msg = _REST_5XX[504]
        return _json(503, formats.rest_error(code, msg), headers)

    # --- user data streams ---------------------------------------------------------------------
    def _user_event(self, account: str, event: dict[str, Any]) -> None:
        """The desk's executionReport / outboundAccountPosition, to the account's streams."""
        lk = self.listen_keys.key_of(account)
        conns = self.user_conns.get(lk) if lk is not None else None
        if lk is None or not conns:
            return
        self._fanout(conns, lk, None, "userData", [formats.dumps(event)], None, None)

    def _sweep_listen_keys(self) -> None:
        for lk in [k for k in self.user_conns if self.listen_keys.account_of(k) is None]:
            self._drop_listen_key(lk, expired=False)

    def _drop_listen_key(self, lk: str, *, expired: bool) -> None:
        """A listenKey closed or expired: say so (expired), stop its stream, close bare sockets."""
        conns = self.user_conns.pop(lk, set())
        for c in list(conns):
            if expired:
                event = {"e": "listenKeyExpired", "E": int(time.time() * 1000), "listenKey": lk}
                self._fanout([c], lk, None, "userData", [formats.dumps(event)], None, None)
            c.listen_keys.discard(lk)
            if not c.streams and not c.listen_keys:
                self._spawn(self._close(c, 1000, "listenKey expired" if expired
                                        else "listenKey closed"))

    # --- admin -----------------------------------------------------------------------------------
    def _admin(self, handler: Any) -> Any:
        async def guarded(request: web.Request) -> web.StreamResponse:
            if self.token is None:
                return web.json_response(
                    {"error": "admin endpoint disabled: no token configured"}, status=403)
            given = request.headers.get("X-Admin-Token", "")
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return web.json_response({"error": "bad or missing X-Admin-Token"}, status=401)
            try:
                result: web.StreamResponse = await handler(request)
                return result
            except ValueError as e:
                return web.json_response({"error": str(e)}, status=400)

        return guarded

    async def _a_status(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({
            "symbols": list(self.engine.specs),
            "market_time_ms": self.engine.now_ms(),
            "start_time_ms": self.engine.start_ms,
            "paused": self.engine.clock.paused,
            "halted": self.engine.halted(),
            "trades": {s: self.engine.ledger.count(s) for s in self.engine.specs},
            "connections": len(self.connections()),
            "faults_active": len(self.plan.faults),
        })

    async def _a_connections(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.connections())

    async def _a_faults(self, request: web.Request) -> web.StreamResponse:
        return web.json_response([
            {"id": f.id, "injected": f.injected, **f.spec.to_dict()} for f in self.plan.active()
        ])

    async def _a_add_fault(self, request: web.Request) -> web.StreamResponse:
        try:
            data = await request.json()
        except ValueError:
            raise ValueError("body: expected a JSON object") from None
        if not isinstance(data, dict):
            raise ValueError("body: expected a JSON object")
        try:
            spec = FaultSpec.from_dict(data)
        except TypeError as e:
            raise ValueError(str(e)) from None
        return web.json_response({"id": self.inject(spec)})

    async def _a_clear_faults(self, request: web.Request) -> web.StreamResponse:
        raw = request.match_info.get("id")
        fid = int(raw) if raw is not None and raw.isdigit() else None
        if raw is not None and fid is None:
            raise ValueError("id: must be an integer")
        return web.json_response({"cleared": self.clear_faults(fid)})

    async def _a_fault_log(self, request: web.Request) -> web.StreamResponse:
        return web.json_response([e.to_dict() for e in self.plan.log.events()])

    async def _a_ground_truth(self, request: web.Request) -> web.StreamResponse:
        symbol = request.query.get("symbol", "")
        if symbol not in self.engine.specs:
            raise ValueError(f"symbol: {symbol!r} is not listed by this venue")
        if request.query.get("format") == "ids":
            return web.json_response(self.engine.ledger.ids(symbol).tolist())
        table = self.engine.ledger.table(symbol)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return web.Response(body=sink.getvalue().to_pybytes(),
                            content_type="application/vnd.apache.arrow.stream")

    async def _a_pause(self, request: web.Request) -> web.StreamResponse:
        self.pause()
        return web.json_response({"paused": True, "market_time_ms": self.engine.now_ms()})

    async def _a_resume(self, request: web.Request) -> web.StreamResponse:
        self.resume()
        return web.json_response({"paused": False, "market_time_ms": self.engine.now_ms()})

    async def _a_server_shutdown(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"closed": await self.shutdown_connections()})

    def _admin_key(self, request: web.Request, *, required: bool) -> str | None:
        key = request.query.get("key") or None
        if key is None and required:
            raise ValueError("key: an api key is required")
        if key is not None and key not in self.desk.accounts:
            raise ValueError("key: not an api key of this venue")
        return key

    async def _a_orders(self, request: web.Request) -> web.StreamResponse:
        symbol = request.query.get("symbol") or None
        return web.json_response(self.desk.order_rows(symbol, self._admin_key(request,
                                                                               required=False)))

    async def _a_my_trades(self, request: web.Request) -> web.StreamResponse:
        symbol = request.query.get("symbol") or None
        return web.json_response(self.desk.trade_rows(self._admin_key(request, required=False),
                                                      symbol))

    async def _a_balances(self, request: web.Request) -> web.StreamResponse:
        key = self._admin_key(request, required=True)
        assert key is not None
        return web.json_response(self.desk.balances(key))


def _json(status: int, body: bytes, headers: dict[str, str]) -> web.Response:
    return web.Response(status=status, body=body, content_type="application/json",
                        headers=headers)


def _bt_changes(old: dict[int, int], new: dict[int, int], *, reverse: bool) -> list[
        tuple[int, int, int]]:
    """BTCTurk 432 rows (CP, price, amount): 1 new level, 0 new amount, 3 level deleted."""
    rows: list[tuple[int, int, int]] = []
    for p in sorted(set(old) | set(new), reverse=reverse):
        if p not in old:
            rows.append((1, p, new[p]))
        elif p not in new:
            rows.append((3, p, old[p]))
        elif old[p] != new[p]:
            rows.append((0, p, new[p]))
    return rows
