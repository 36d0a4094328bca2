"""The venue's HTTP and WebSocket server (aiohttp): one port, the engine loop and housekeeping.

One port serves everything, routed by path to one handler object per protocol, all sharing the
market engine, the fault plan and the connection :class:`~spark_ray.venue.connections.Hub`:

- `/api/v3/...`              Binance spot REST (:mod:`rest_handler`): public market data
                             (:mod:`rest`) and the signed trading endpoints (:mod:`signed`);
                             `/sapi/v1/margin/...` answers "no margin pairs" (ccxt asks)
- `/ws`, `/ws/<s>[/<s>...]`  Binance raw streams;  `/stream?streams=a/b`  combined streams
                             (:mod:`binance_ws`); a listenKey as the stream name is that
                             account's user data stream (:mod:`userstream`)
- `/btcturk`                 BTCTurk's public WebSocket (:mod:`btcturk_ws`)
- `/btcturk/api/v2/...`, `/btcturk/v1/...`  BTCTurk's public REST and graph (klines) API
                             (:mod:`btcturk_rest`)
- `/admin/...`               token-protected control (:mod:`admin`): faults, fault log, ground
                             truth, pause

Every engine step publishes the new trades (Binance, BTCTurk), lets resting orders the tape
crossed fill, then publishes the timed streams; housekeeping pings, times out and retires
connections, expires listen keys and carries out connection faults.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import pyarrow as pa
from aiohttp import web

from spark_ray.logratelimit import http_logger
from spark_ray.tls import tls_files
from spark_ray.venue import btcturk_rest
from spark_ray.venue.admin import Admin
from spark_ray.venue.binance_ws import BinanceStreams
from spark_ray.venue.btcturk_ws import BtcturkFeed
from spark_ray.venue.config import VenueConfig
from spark_ray.venue.connections import Hub
from spark_ray.venue.engine import MarketEngine
from spark_ray.venue.fault_plan import FaultLog, FaultPlan
from spark_ray.venue.faults import FaultSpec
from spark_ray.venue.rest_handler import RestHandler
from spark_ray.venue.signed import SignedApi
from spark_ray.venue.trading import TradingDesk
from spark_ray.venue.userstream import ListenKeys, UserStreams

log = logging.getLogger("spark_ray.venue")
HTTP_LOG = "spark_ray.venue.http"  # aiohttp's server log of this venue (bad requests)


class VenueServer:
    """The running venue: call :meth:`start` and :meth:`stop` on one event loop."""

    def __init__(self, config: VenueConfig, candles: pa.Table | None = None) -> None:
        self.config = config
        self.engine = MarketEngine(config, candles)
        self.plan = FaultPlan(FaultLog(config.fault_log_size))
        self.token = config.resolved_token()
        self.hub = Hub(config, self.plan, self.engine.now_ms)
        listen_keys = ListenKeys(config.listen_key_ttl_s)
        self.users = UserStreams(self.hub, listen_keys)
        self.desk = TradingDesk(config, self.engine, emit=self.users.emit)
        api = SignedApi(self.desk, listen_keys, market_clock=self.engine.now_ms)
        self.rest = RestHandler(config, self.engine, self.plan, api,
                                on_stream_closed=self.users.sweep)
        self.binance = BinanceStreams(config, self.engine, self.hub, self.users)
        self.btcturk = BtcturkFeed(config, self.engine, self.hub)
        self.admin = Admin(self)
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False
        self.runner: web.AppRunner | None = None
        self.port = 0
        self.app = self._build_app()

    # --- lifecycle -------------------------------------------------------------------------
    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=1024 * 1024)
        r = app.router
        r.add_route("*", "/api/{tail:.*}", self.rest.handle)
        r.add_route("*", "/sapi/{tail:.*}", self.rest.handle)  # margin pairs (spot: none)
        r.add_get("/ws", self.binance.handle)
        r.add_get("/ws/{tail:.*}", self.binance.handle)
        r.add_get("/stream", self.binance.handle)
        r.add_get("/btcturk", self.btcturk.handle)
        r.add_route("*", btcturk_rest.REST_PREFIX + "/{tail:.+}", self._btcturk_rest)
        self.admin.add_routes(r)
        return app

    async def _btcturk_rest(self, request: web.Request) -> web.Response:
        """BTCTurk's public REST and graph API (GET only, as BTCTurk's public endpoints)."""
        path = request.path[len(btcturk_rest.REST_PREFIX):]
        if request.method != "GET":
            ans = btcturk_rest.method_not_allowed()
        else:
            params = dict(request.query)
            ans = None
            if self.plan.faults:  # the same REST faults as Binance's paths (path: /btcturk/...)
                pair = params.get("pairSymbol") or params.get("symbol") or params.get("pair")
                d = self.plan.decide_rest(request.path, pair and pair.replace("_", ""),
                                          time.monotonic())
                if d.delay_ms:
                    await asyncio.sleep(d.delay_ms / 1000)
                if d.timeout_ms is not None:
                    await asyncio.sleep(d.timeout_ms / 1000)
                    if d.drop_connection and request.transport is not None:
                        request.transport.abort()
                    ans = btcturk_rest.server_error(503)
                elif d.error_status is not None:
                    ans = btcturk_rest.server_error(d.error_status)
            if ans is None:
                ans = btcturk_rest.answer(self.engine, path, params)
        assert ans is not None  # nosec B101  # narrows Optional for mypy, not a check
        return web.Response(status=ans.status, body=ans.body, content_type="application/json")

    async def start(self) -> None:
        # logger: a bad request (bad HTTP, over-long line) leaves one line, rate-limited.
        self.runner = web.AppRunner(self.app, access_log=None, handle_signals=False,
                                    shutdown_timeout=1.0, logger=http_logger(HTTP_LOG))
        await self.runner.setup()
        tls = tls_files(self.config.tls_cert, self.config.tls_key)
        site = web.TCPSite(self.runner, self.config.host, self.config.port,
                           ssl_context=tls.server_context() if tls is not None else None)
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
        self.hub.abort_all()
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
        return [c.describe() for c in self.hub.live()]

    def pause(self) -> None:
        """Freeze the clock and publish what was already due, so ground truth is final."""
        self.engine.pause()
        self._tick()

    def resume(self) -> None:
        self.engine.resume()

    async def shutdown_connections(self) -> int:
        """Send serverShutdown to every Binance connection and close all WebSockets."""
        return await self.hub.shutdown_all()

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
            await self.hub.backpressure()
            await asyncio.sleep(max(0.0, cfg.tick_s - (loop.time() - t0)))

    def _tick(self) -> None:
        event_time, batches = self.engine.step()
        wall = time.monotonic()
        for sym, batch in batches.items():
            self.binance.publish_trades(event_time, sym, batch)
            self.btcturk.publish_trades(sym, batch)
            if self.desk.resting.get(sym):  # resting orders the tape crossed fill as maker
                self.desk.on_trades(sym, batch.price, batch.qty)
        self.binance.publish_book_tickers()
        self.binance.publish_timed(event_time, wall)
        self.btcturk.publish_books(wall)
        self.binance.trim_books()

    # --- housekeeping: pings, pong timeouts, lifetimes, listen keys, connection faults ------
    async def _housekeeping_loop(self) -> None:
        cfg = self.config
        period = min(0.25, cfg.ping_interval_s / 4, cfg.pong_timeout_s / 4,
                     cfg.max_lifetime_s / 4)
        period = max(0.01, period)
        while self._running:
            try:
                self._housekeep()
            except Exception:
                log.exception("venue housekeeping failed")
            await asyncio.sleep(period)

    def _housekeep(self) -> None:
        now = time.monotonic()
        self.plan.expire(now)
        self.users.expire(now)
        for fault in self.plan.due_connection_faults(now):
            self.hub.apply_connection_fault(fault)
        self.hub.keepalive(now)
