"""The token-protected control endpoint `/admin/...`: the server's control API over HTTP.

Faults (list, inject, clear), the fault log, ground truth (Arrow IPC stream or trade ids),
connections, status, pause/resume, serverShutdown to every client, and the trading ground
truth (orders, fills, balances). Every call needs `X-Admin-Token` equal to the venue's token;
no token configured: the endpoint refuses all (403). Bad input is a 400 naming the field.
Every mutation (POST, DELETE) is appended to the audit log as ``venue-admin:<op>`` with its
outcome and source address, refusals included, and rate limited per source (429 with
``Retry-After``; :mod:`spark_ray.audit`). Reads are neither audited nor limited.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import pyarrow as pa
from aiohttp import web

from spark_ray.audit import BAD_TOKEN, RATE_LIMITED, AuditLog, MutationLimiter
from spark_ray.httpbody import json_object
from spark_ray.tls import PLAIN_TOKEN_REFUSED, plain_token_risk, tls_files
from spark_ray.venue.faults import FaultSpec

if TYPE_CHECKING:
    from spark_ray.venue.server import VenueServer

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Admin:
    """Handlers of `/admin/...` over a running :class:`~spark_ray.venue.server.VenueServer`."""

    def __init__(self, server: VenueServer, audit: AuditLog | None = None,
                 limiter: MutationLimiter | None = None) -> None:
        self.server = server
        cfg = server.config  # fixed for the server's life: the plain-token rule is too
        self.refuse_plain_tokens = plain_token_risk(cfg.host,
                                                    tls_files(cfg.tls_cert, cfg.tls_key))
        self.audit = audit if audit is not None else AuditLog()
        self.limiter = limiter if limiter is not None else MutationLimiter.from_env()

    def add_routes(self, r: web.UrlDispatcher) -> None:
        r.add_get("/admin/status", self._guard(self._status))
        r.add_get("/admin/connections", self._guard(self._connections))
        r.add_get("/admin/faults", self._guard(self._faults))
        r.add_post("/admin/faults", self._guard(self._add_fault, "fault-inject"))
        r.add_delete("/admin/faults", self._guard(self._clear_faults, "faults-clear"))
        r.add_delete("/admin/faults/{id}", self._guard(self._clear_faults, "faults-clear"))
        r.add_get("/admin/fault-log", self._guard(self._fault_log))
        r.add_get("/admin/ground-truth", self._guard(self._ground_truth))
        r.add_post("/admin/pause", self._guard(self._pause, "pause"))
        r.add_post("/admin/resume", self._guard(self._resume, "resume"))
        r.add_post("/admin/server-shutdown", self._guard(self._server_shutdown,
                                                         "server-shutdown"))
        r.add_get("/admin/orders", self._guard(self._orders))
        r.add_get("/admin/my-trades", self._guard(self._my_trades))
        r.add_get("/admin/balances", self._guard(self._balances))

    def _guard(self, handler: Handler, op: str | None = None) -> Handler:
        """Token check; for a mutation (``op``) also the rate limit and the audit line."""
        action = f"venue-admin:{op}"

        def audit(request: web.Request, who: str, outcome: str) -> None:
            if op is not None:
                target = {"path": request.path, **request.get("audit_target", {})}
                self.audit.record(who, action, target, request.remote or "unknown", outcome)

        async def guarded(request: web.Request) -> web.StreamResponse:
            source = request.remote or "unknown"
            if op is not None and (retry := self.limiter.take(source)):
                message, headers = self.limiter.refusal(retry)
                audit(request, "anonymous", RATE_LIMITED)
                return web.json_response({"error": message}, status=429, headers=headers)
            if self.refuse_plain_tokens:
                audit(request, "anonymous", "refused: token over plain HTTP on a non-loopback "
                      "bind")
                return web.json_response({"error": PLAIN_TOKEN_REFUSED}, status=403)
            token = self.server.token
            if token is None:
                audit(request, "anonymous", "refused: admin endpoint disabled (no token)")
                return web.json_response(
                    {"error": "admin endpoint disabled: no token configured"}, status=403)
            given = request.headers.get("X-Admin-Token", "")
            if not hmac.compare_digest(given.encode(), token.encode()):
                audit(request, "anonymous", BAD_TOKEN)
                return web.json_response({"error": "bad or missing X-Admin-Token"}, status=401)
            try:
                response = await handler(request)
            except ValueError as e:
                audit(request, "admin-token-holder", f"refused: bad request: {e}")
                return web.json_response({"error": str(e)}, status=400)
            except Exception as e:
                audit(request, "admin-token-holder", f"error: {type(e).__name__}: {e}")
                raise
            audit(request, "admin-token-holder", "ok")
            return response

        return guarded

    async def _status(self, request: web.Request) -> web.StreamResponse:
        s = self.server
        engine = s.engine
        return web.json_response({
            "symbols": list(engine.specs),
            "market_time_ms": engine.now_ms(),
            "start_time_ms": engine.start_ms,
            "paused": engine.clock.paused,
            "halted": engine.halted(),
            "trades": {sym: engine.ledger.count(sym) for sym in engine.specs},
            "connections": len(s.connections()),
            "faults_active": len(s.plan.faults),
        })

    async def _connections(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.server.connections())

    async def _faults(self, request: web.Request) -> web.StreamResponse:
        return web.json_response([
            {"id": f.id, "injected": f.injected, **f.spec.to_dict()}
            for f in self.server.plan.active()
        ])

    async def _add_fault(self, request: web.Request) -> web.StreamResponse:
        data = json_object(await request.read(), request.charset)  # ValueError: a 400
        try:
            spec = FaultSpec.from_dict(data)
        except TypeError as e:
            raise ValueError(str(e)) from None
        fid = self.server.inject(spec)
        request["audit_target"] = {"fault": spec.to_dict(), "id": fid}
        return web.json_response({"id": fid})

    async def _clear_faults(self, request: web.Request) -> web.StreamResponse:
        raw = request.match_info.get("id")
        fid = int(raw) if raw is not None and raw.isdigit() else None
        if raw is not None and fid is None:
            raise ValueError("id: must be an integer")
        request["audit_target"] = {"id": fid}
        return web.json_response({"cleared": self.server.clear_faults(fid)})

    async def _fault_log(self, request: web.Request) -> web.StreamResponse:
        return web.json_response([e.to_dict() for e in self.server.plan.log.events()])

    async def _ground_truth(self, request: web.Request) -> web.StreamResponse:
        engine = self.server.engine
        symbol = request.query.get("symbol", "")
        if symbol not in engine.specs:
            raise ValueError(f"symbol: {symbol!r} is not listed by this venue")
        if request.query.get("format") == "ids":
            return web.json_response(engine.ledger.ids(symbol).tolist())
        table = engine.ledger.table(symbol)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return web.Response(body=sink.getvalue().to_pybytes(),
                            content_type="application/vnd.apache.arrow.stream")

    async def _pause(self, request: web.Request) -> web.StreamResponse:
        self.server.pause()
        return web.json_response({"paused": True, "market_time_ms": self.server.engine.now_ms()})

    async def _resume(self, request: web.Request) -> web.StreamResponse:
        self.server.resume()
        return web.json_response({"paused": False,
                                  "market_time_ms": self.server.engine.now_ms()})

    async def _server_shutdown(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"closed": await self.server.shutdown_connections()})

    def _key(self, request: web.Request, *, required: bool) -> str | None:
        key = request.query.get("key") or None
        if key is None and required:
            raise ValueError("key: an api key is required")
        if key is not None and key not in self.server.desk.accounts:
            raise ValueError("key: not an api key of this venue")
        return key

    async def _orders(self, request: web.Request) -> web.StreamResponse:
        symbol = request.query.get("symbol") or None
        return web.json_response(self.server.desk.order_rows(
            symbol, self._key(request, required=False)))

    async def _my_trades(self, request: web.Request) -> web.StreamResponse:
        symbol = request.query.get("symbol") or None
        return web.json_response(self.server.desk.trade_rows(
            self._key(request, required=False), symbol))

    async def _balances(self, request: web.Request) -> web.StreamResponse:
        key = self._key(request, required=True)
        assert key is not None  # nosec B101  # required=True already raised if absent
        return web.json_response(self.server.desk.balances(key))
