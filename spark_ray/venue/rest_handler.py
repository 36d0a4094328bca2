"""The HTTP side of `/api/...`: request weights and the rate limiter, REST and order faults.

Every call is weighed and charged first (Binance charges failed calls too), then REST faults
apply, then the endpoint answers: public market data from :mod:`~spark_ray.venue.rest`, signed
trading and user-stream calls from :class:`~spark_ray.venue.signed.SignedApi` (authenticated,
counted against the order limits, subject to order faults).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aiohttp import web

from spark_ray.venue import formats, rest
from spark_ray.venue.config import VenueConfig
from spark_ray.venue.engine import MarketEngine
from spark_ray.venue.fault_plan import FaultPlan, OrderDecision
from spark_ray.venue.faults import FaultKind
from spark_ray.venue.params import RestError
from spark_ray.venue.ratelimit import RateLimiter
from spark_ray.venue.signed import ORDER_PATH, STREAM_PATH, SignedApi, SignedRequest, parse_request

_REST_5XX = {
    500: (-1001, "Internal error; unable to process your request. Please try again."),
    502: (-1000, "An unknown error occurred while processing the request."),
    503: (-1008, "Server is currently overloaded with other requests. Please try again in a "
                 "few minutes."),
    504: (-1007, "Timeout waiting for response from backend server. Send status unknown; "
                 "execution status unknown."),
}


class RestHandler:
    """Answers every `/api/...` request."""

    def __init__(self, config: VenueConfig, engine: MarketEngine, plan: FaultPlan,
                 api: SignedApi, *, on_stream_closed: Callable[[], None]) -> None:
        self.config = config
        self.engine = engine
        self.plan = plan
        self.api = api
        self.limiter = RateLimiter(config.rate_limit)
        self.on_stream_closed = on_stream_closed  # a listenKey was deleted

    async def handle(self, request: web.Request) -> web.StreamResponse:
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
        except RestError as e:
            return _json(e.status, formats.rest_error(e.code, e.msg), headers)
        decision = OrderDecision()
        if submit and self.plan.faults:
            decision = self.plan.decide_order(req.params.get("symbol"), time.monotonic())
        if decision.kind is None:
            ans = self.api.answer(method, path, req.params, key)
            if method == "DELETE" and path == STREAM_PATH and ans.status == 200:
                self.on_stream_closed()
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


def _json(status: int, body: bytes, headers: dict[str, str]) -> web.Response:
    return web.Response(status=status, body=body, content_type="application/json",
                        headers=headers)
