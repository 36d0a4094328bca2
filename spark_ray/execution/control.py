"""The executor's control plane on 127.0.0.1:4001 (aiohttp, on the executor's own event loop).

- ``GET /health``: 200 when started, not halted, the breaker armed and market data fresh; else
  503 with the reasons.
- ``GET /positions``: per symbol quantity, average price, cash, realized/unrealized PnL, fees.
- ``GET /orders``: the latest orders with status, fills and reasons (``?open=1``: open only).
- ``POST /kill``: the executor's kill switch: halt for good, cancel every open order, trip the
  breaker, and flatten when the body says ``{"flatten": true}``. Needs ``Authorization: Bearer
  <SPARK_RAY_EXECUTOR_TOKEN>`` (compared in constant time); with no token configured the endpoint
  refuses. The token is never logged or echoed. Every attempt is appended to the audit log
  (:mod:`spark_ray.audit`: who, from where, outcome) and rate limited per source (429 with
  ``Retry-After`` over it).
"""

from __future__ import annotations

import hmac
import json
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from spark_ray.audit import BAD_TOKEN, RATE_LIMITED, AuditLog, MutationLimiter
from spark_ray.httpbody import json_object
from spark_ray.logratelimit import http_logger
from spark_ray.tls import PLAIN_TOKEN_REFUSED, TlsFiles, plain_token_risk

TOKEN_ENV = "SPARK_RAY_EXECUTOR_TOKEN"  # nosec B105  # the name of an environment variable, not a token
DEFAULT_PORT = 4001
HTTP_LOG = "spark_ray.execution.control.http"  # aiohttp's server log (bad requests)


@dataclass(frozen=True)
class Token:
    """A bearer token that never prints."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Token(***)"

    __str__ = __repr__


class Provider(Protocol):
    def status(self) -> dict[str, Any]: ...
    def positions(self) -> dict[str, Any]: ...
    def orders(self, open_only: bool = False) -> list[dict[str, Any]]: ...
    def kill(self, reason: str, flatten: bool) -> Awaitable[dict[str, Any]]: ...


def health(status: dict[str, Any], now: float | None = None,
           stale_s: float = 30.0) -> tuple[bool, dict[str, Any]]:
    """(healthy, body) from the executor's status."""
    now = time.time() if now is None else now
    reasons: list[str] = []
    if not status.get("started"):
        reasons.append("not started" + (f": {status['start_error']}"
                                        if status.get("start_error") else ""))
    if status.get("halted"):
        reasons.append(f"halted: {status['halted']}")
    breaker = status.get("breaker_state")
    if breaker not in (None, "ARMED"):
        reasons.append(f"breaker {breaker}")
    last = status.get("last_data_time")
    if status.get("started") and last is not None and now - last > stale_s:
        reasons.append(f"no market data for {now - last:.0f} s")
    if status.get("user_stream") is False:
        reasons.append("user data stream disconnected")
    ok = not reasons
    return ok, {"status": "ok" if ok else "unhealthy", "reasons": reasons,
                "name": status.get("name"), "mode": status.get("mode"),
                "equity": status.get("equity"), "open_orders": status.get("open_orders"),
                "orders": status.get("orders"), "tick_to_order": status.get("tick_to_order"),
                "time": now}


class ControlPlane:
    def __init__(self, provider: Provider, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                 token: Token | None = None, stale_s: float = 30.0,
                 audit: AuditLog | None = None, limiter: MutationLimiter | None = None,
                 tls: TlsFiles | None = None) -> None:
        self.provider = provider
        self.host = host
        self.tls = tls  # HTTPS when given; without it, no token is taken off loopback
        self.port = port
        self._token = token.value if token is not None and token.value else None
        self.stale_s = stale_s
        # Every /kill attempt is audited (who, from where, outcome) and rate limited per source.
        self.audit = audit if audit is not None else AuditLog()
        self.limiter = limiter if limiter is not None else MutationLimiter.from_env()
        self._runner: web.AppRunner | None = None

    def __repr__(self) -> str:
        return f"ControlPlane({self.host}:{self.port}, kill={'on' if self._token else 'off'})"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/positions", self._json(lambda r: self.provider.positions()))
        app.router.add_get("/orders", self._json(
            lambda r: self.provider.orders(r.query.get("open") in ("1", "true"))))
        app.router.add_post("/kill", self._kill)
        return app

    def _json(self, fn: Callable[[web.Request], Any]) -> Any:
        async def handler(request: web.Request) -> web.Response:
            return web.json_response(fn(request), dumps=_dumps)

        return handler

    async def _health(self, request: web.Request) -> web.Response:
        ok, body = health(self.provider.status(), stale_s=self.stale_s)
        return web.json_response(body, status=200 if ok else 503, dumps=_dumps)

    def _executor(self) -> dict[str, Any]:
        try:
            return {"executor": self.provider.status().get("name")}
        except Exception:  # the audit line must not fail on a status that does
            return {"executor": None}

    async def _kill(self, request: web.Request) -> web.Response:
        source = request.remote or "unknown"
        retry = self.limiter.take(source)
        if retry:
            message, headers = self.limiter.refusal(retry)
            self.audit.record("anonymous", "executor-kill", self._executor(), source,
                              RATE_LIMITED)
            return web.json_response({"error": message}, status=429, headers=headers)
        if plain_token_risk(self.host, self.tls):
            self.audit.record("anonymous", "executor-kill", self._executor(), source,
                              "refused: token over plain HTTP on a non-loopback bind")
            return web.json_response({"error": PLAIN_TOKEN_REFUSED}, status=403)
        if not self._token:
            self.audit.record("anonymous", "executor-kill", self._executor(), source,
                              "refused: kill is disabled (no token configured)")
            return web.json_response({"error": f"kill is disabled: set {TOKEN_ENV}"}, status=403)
        auth = request.headers.get("Authorization", "")
        given = auth[7:] if auth.startswith("Bearer ") else ""
        if not hmac.compare_digest(given.encode(), self._token.encode()):
            self.audit.record("anonymous", "executor-kill", self._executor(), source, BAD_TOKEN)
            return web.json_response({"error": "missing or wrong bearer token"}, status=401)
        try:
            body = json_object(await request.read(), request.charset, empty=True)
            reason = str(body.get("reason") or "kill switch")
            flatten = body.get("flatten", False)
            if not isinstance(flatten, bool):
                raise ValueError("flatten: true or false")
        except ValueError as exc:
            self.audit.record("token-holder", "executor-kill", self._executor(), source,
                              f"refused: bad request: {exc}")
            return web.json_response({"error": str(exc)}, status=400)
        who = str(body.get("who") or "token-holder")
        target = {**self._executor(), "flatten": flatten}
        try:
            result = await self.provider.kill(reason, flatten)
        except Exception as exc:
            self.audit.record(who, "executor-kill", target, source,
                              f"error: {type(exc).__name__}: {exc}", reason)
            raise
        self.audit.record(who, "executor-kill", target, source, "ok", reason)
        return web.json_response({"killed": True, **result}, dumps=_dumps)

    async def start(self) -> int:
        runner = web.AppRunner(self.app(), access_log=None, logger=http_logger(HTTP_LOG))
        await runner.setup()
        ssl_context = self.tls.server_context() if self.tls is not None else None
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True,
                           ssl_context=ssl_context)
        await site.start()
        self._runner = runner
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            self.port = int(server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"


def _dumps(obj: Any) -> str:
    return json.dumps(_clean(obj), default=str)


def _clean(obj: Any) -> Any:
    """Strict JSON: non-finite floats become null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj
