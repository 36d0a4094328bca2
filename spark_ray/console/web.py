"""The console's ASGI app (Starlette): the pages, ``/static/``, and the JSON API of
docs/CONSOLE.md. The live parts come in through :class:`Live`; everything else (runs, lake,
alerts, journal) is read here. Ray Serve hosts it (``spark_ray.app.console_service``); a test or
a script can also serve it with any ASGI server.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from spark_ray.audit import BAD_TOKEN, RATE_LIMITED, AuditLog, MutationLimiter
from spark_ray.console.alerts import AlertSource
from spark_ray.console.coverage import LakeView
from spark_ray.console.guard import JOURNAL, Journal, TokenHash, same_origin
from spark_ray.console.runs import NotFound, RunsFolder
from spark_ray.errors import CheckFailed, UserError
from spark_ray.tls import PLAIN_TOKEN_REFUSED

STATIC = Path(__file__).parent / "static"
PAGES = {"/": "index.html", "/streams": "streams.html", "/trading": "trading.html",
         "/research": "research.html", "/data": "data.html", "/alerts": "alerts.html",
         "/chaos": "chaos.html"}
LIVE_PERIOD_S = 1.0  # the streams page's server-sent events: one document a second
BREAKER_ACTIONS = ("trip", "reset", "dry-run")


class Live(Protocol):
    """What only the running cluster knows (the Serve replica asks actors; tests may run
    the same parts in-process)."""

    def services(self) -> list[dict[str, Any]]: ...
    def nodes(self) -> list[dict[str, Any]]: ...
    def streams(self) -> dict[str, Any]: ...
    def trading(self) -> dict[str, Any]: ...
    def breaker(self, action: str, breaker: str | None, scope: str, who: str, reason: str,
                on: bool) -> dict[str, Any]: ...
    def kill(self, executor: str, flatten: bool, who: str, reason: str) -> dict[str, Any]: ...


@dataclass
class Settings:
    runs: str
    store: str | None = None
    prometheus: str | None = None
    alertmanager: str | None = None
    keys_dir: str | None = None  # approvers' private keys on the console's node (approve)
    # Bound off loopback without TLS: a token would cross the network in clear, so every
    # mutation is refused before its token is looked at.
    refuse_plain_tokens: bool = False
    audit_log: str | None = None  # the audit log (None: $SPARK_RAY_AUDIT_LOG or the default)
    mutation_rate: str | None = None  # "N/S" per source (None: $SPARK_RAY_MUTATION_RATE, 10/10)
    token: TokenHash = field(default_factory=TokenHash)
    started: float = field(default_factory=time.time)


def _json_safe(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {str(k): _json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_safe(x) for x in v]
    return v


def ok(doc: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(_json_safe(doc), status_code=status,
                        headers={"Cache-Control": "no-store"})


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def build_app(live: Live, settings: Settings) -> Starlette:
    runs = RunsFolder(Path(settings.runs))
    lake = LakeView(settings.store or "")
    alerts = AlertSource(settings.prometheus, settings.alertmanager)
    journal = Journal(runs.root / JOURNAL)
    audit = AuditLog(settings.audit_log)
    limiter = (MutationLimiter.parse(settings.mutation_rate) if settings.mutation_rate
               else MutationLimiter.from_env())
    audit_actions = {"approve": "params-approve"}

    def acks() -> dict[str, dict[str, Any]]:
        return {e["target"]["alert"]: e for e in journal.read(500)
                if e.get("action") == "alert-ack"}

    async def health(_: Request) -> Response:
        services = await run_in_threadpool(live.services)
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(settings.started))
        services.append({"name": "console", "kind": "console", "ok": True,
                         "detail": f"serving since {since} UTC"})
        for name, url in (("prometheus", settings.prometheus),
                          ("alertmanager", settings.alertmanager)):
            if url:
                up, detail = await run_in_threadpool(alerts.healthy, url)
                services.append({"name": name, "kind": name, "ok": up, "detail": detail})
        nodes = await run_in_threadpool(live.nodes)
        firing = await run_in_threadpool(alerts.firing, acks())
        return ok({"at": time.time(), "services": services, "nodes": nodes,
                   "alerts": firing["alerts"], "alerts_error": firing.get("error")})

    async def streams(_: Request) -> Response:
        return ok({"at": time.time(), **await run_in_threadpool(live.streams)})

    async def streams_live(request: Request) -> Response:
        async def events() -> AsyncIterator[str]:
            yield "retry: 2000\n\n"
            while not await request.is_disconnected():
                doc = {"at": time.time(), **await run_in_threadpool(live.streams)}
                yield f"data: {json.dumps(_json_safe(doc))}\n\n"
                await asyncio.sleep(LIVE_PERIOD_S)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store",
                                          "X-Accel-Buffering": "no"})

    async def trading(_: Request) -> Response:
        return ok({"at": time.time(), **await run_in_threadpool(live.trading)})

    async def runs_list(_: Request) -> Response:
        return ok(await run_in_threadpool(runs.list))

    async def run_detail(request: Request) -> Response:
        return ok(await run_in_threadpool(runs.detail, request.path_params["run_id"]))

    async def data(_: Request) -> Response:
        return ok(await run_in_threadpool(lake.doc))

    async def alerts_list(_: Request) -> Response:
        return ok(await run_in_threadpool(alerts.firing, acks()))

    async def chaos(_: Request) -> Response:
        return ok(await run_in_threadpool(runs.chaos))

    async def evidence(_: Request) -> Response:
        return ok(await run_in_threadpool(runs.bundles))

    async def verify(request: Request) -> Response:
        bundle = request.query_params.get("bundle", "")
        return ok(await run_in_threadpool(runs.verify, bundle))

    async def journal_read(_: Request) -> Response:
        return ok({"path": str(journal.path), "entries": journal.read(200)[::-1]})

    # --- mutations --------------------------------------------------------------------------
    def mutation(action: str, run: Callable[[dict[str, Any]], Any],
                 target: Callable[[dict[str, Any]], dict[str, Any]]
                 ) -> Callable[[Request], Awaitable[Response]]:
        audit_action = audit_actions.get(action, action)

        async def handler(request: Request) -> Response:
            source = request.client.host if request.client else "unknown"

            def audited(who: str, body: dict[str, Any], outcome: str, reason: str = "") -> None:
                try:
                    tgt = target(body)
                except (KeyError, TypeError, ValueError):
                    tgt = {}
                audit.record(who, audit_action, tgt, source, outcome, reason)

            if not same_origin(request.headers.get("origin"), request.headers.get("host")):
                audited("anonymous", {}, "refused: cross-site request")
                return error(403, "cross-site request refused (Origin is not this console)")
            if not request.headers.get("content-type", "").startswith("application/json"):
                audited("anonymous", {}, "refused: not a JSON body")
                return error(415, "a mutation must be a JSON body (Content-Type: "
                                  "application/json)")
            retry = limiter.take(source)
            if retry:
                message, headers = limiter.refusal(retry)
                audited("anonymous", {}, RATE_LIMITED)
                return JSONResponse({"error": message}, status_code=429, headers=headers)
            if settings.refuse_plain_tokens:  # bound off loopback without TLS
                audited("anonymous", {}, "refused: token over plain HTTP on a non-loopback bind")
                return error(403, PLAIN_TOKEN_REFUSED)
            allowed, why = settings.token.check(request.headers.get("authorization"))
            if not allowed:
                audited("anonymous", {}, BAD_TOKEN if "disabled" not in why
                        else "refused: mutations are disabled (no token configured)")
                return error(401, why)
            try:
                body = await request.json()
            except (ValueError, RecursionError):  # RecursionError: nested too deeply
                audited("token-holder", {}, "refused: bad request: body is not valid JSON")
                return error(400, "body: not valid JSON")
            if not isinstance(body, dict):
                audited("token-holder", {}, "refused: bad request: body is not a JSON object")
                return error(400, "body: expected a JSON object")
            who = str(body.get("who") or "").strip()
            reason = str(body.get("reason") or "").strip()
            if not who:
                audited("token-holder", body, "refused: bad request: who is missing", reason)
                return error(400, "who: name the operator")
            if not reason:
                audited(f"console:{who}", body, "refused: bad request: reason is missing")
                return error(400, "reason: say why")
            body["who"], body["reason"] = who, reason
            client = request.client.host if request.client else None
            operator = f"console:{who}"
            try:
                result = await run_in_threadpool(run, body)
            except NotFound as exc:
                audited(operator, body, f"refused: not found: {exc}", reason)
                return error(404, str(exc))
            except (CheckFailed, PermissionError) as exc:
                journal.write(action, who, reason, target(body), f"refused: {exc}", client)
                audited(operator, body, f"refused: {exc}", reason)
                return error(409, str(exc))
            except (UserError, ValueError, KeyError, TypeError) as exc:
                audited(operator, body, f"refused: bad request: {exc}", reason)
                return error(400, str(exc))
            except RuntimeError as exc:
                audited(operator, body, f"error: {exc}", reason)
                return error(503, str(exc))
            entry = journal.write(action, who, reason, target(body), "ok", client)
            audited(operator, body, "ok", reason)
            return ok({"ok": True, "action": action, "journal": entry, "result": result})

        return handler

    def breaker_action(action: str) -> Callable[[Request], Awaitable[Response]]:
        def run(b: dict[str, Any]) -> Any:
            return live.breaker(action, b.get("breaker"), str(b.get("scope") or "global"),
                                "console:" + b["who"], b["reason"], bool(b.get("on", True)))

        return mutation(f"breaker-{action}", run, lambda b: {
            "breaker": b.get("breaker"), "scope": b.get("scope") or "global",
            **({"on": bool(b.get("on", True))} if action == "dry-run" else {})})

    def kill(b: dict[str, Any]) -> Any:
        executor = str(b.get("executor") or "").strip()
        if not executor:
            raise ValueError("executor: name the executor to halt")
        return live.kill(executor, bool(b.get("flatten", False)), "console:" + b["who"],
                         b["reason"])

    def approve(b: dict[str, Any]) -> Any:
        return runs.approve(str(b.get("run") or ""), b["who"], "console: " + b["reason"],
                            settings.keys_dir)

    def silence(b: dict[str, Any]) -> Any:
        minutes = float(b.get("minutes") or 60)
        if not 0 < minutes <= 7 * 24 * 60:
            raise ValueError("minutes: between 0 and 10080")
        return alerts.silence(str(b["alert"]), minutes, b["who"], b["reason"])

    async def webhook(request: Request) -> Response:
        """Alertmanager's notifications (its webhook receiver sends the operator token)."""
        allowed, why = settings.token.check(request.headers.get("authorization"))
        if not allowed:
            return error(401, why)
        try:
            n = alerts.notified(await request.json())
        except (ValueError, AttributeError, TypeError, KeyError, RecursionError):
            return error(400, "body: not an Alertmanager notification")
        return ok({"received": n})

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / PAGES[request.url.path],
                            headers={"Cache-Control": "no-cache"})

    async def not_found(request: Request, exc: Exception) -> Response:
        return error(404, str(exc) if isinstance(exc, NotFound) else "not found")

    async def bad_request(request: Request, exc: Exception) -> Response:
        return error(400, str(exc))

    routes = [Route(p, page) for p in PAGES] + [
        Route("/api/health", health), Route("/api/streams", streams),
        Route("/api/streams/live", streams_live), Route("/api/trading", trading),
        Route("/api/runs", runs_list), Route("/api/runs/{run_id}", run_detail),
        Route("/api/data", data), Route("/api/alerts", alerts_list),
        Route("/api/chaos", chaos), Route("/api/evidence", evidence),
        Route("/api/evidence/verify", verify), Route("/api/journal", journal_read),
        *[Route(f"/api/breaker/{a}", breaker_action(a), methods=["POST"])
          for a in BREAKER_ACTIONS],
        Route("/api/approve", mutation("approve", approve, lambda b: {"run": b.get("run")}),
              methods=["POST"]),
        Route("/api/executor/kill", mutation("executor-kill", kill, lambda b: {
            "executor": b.get("executor"), "flatten": bool(b.get("flatten", False))}),
              methods=["POST"]),
        Route("/api/alerts/silence", mutation("alert-silence", silence, lambda b: {
            "alert": b.get("alert"), "minutes": b.get("minutes") or 60}), methods=["POST"]),
        Route("/api/alerts/ack", mutation("alert-ack", lambda b: {"alert": b["alert"]},
                                          lambda b: {"alert": b.get("alert")}),
              methods=["POST"]),
        Route("/api/alerts/webhook", webhook, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes, exception_handlers={
        NotFound: not_found, UserError: bad_request, 404: not_found})
