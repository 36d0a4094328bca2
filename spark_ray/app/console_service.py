"""``spark-ray console``: the operator console as a Ray Serve application on the cluster.

:class:`RayLive` answers the console's live questions from the cluster's named actors (fabric
supervisors ``fabric:<exchange>``, executors ``executor:*``, breakers ``breaker*``, in any
namespace) and Ray's node table; the pages, runs, lake and guard are
:mod:`spark_ray.console`. :func:`up` deploys the app (``spark-ray-console``, route ``/``) on Serve's
HTTP proxy at ``host:port`` and returns once ``/api/health`` answers; the application is
detached, so it outlives the driver, and :func:`down` deletes it. The replica gets only plain
settings: paths, URLs, and the operator token's SHA-256 (never the token).
"""

from __future__ import annotations

import contextlib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import ray
from ray import serve

from spark_ray.console import views
from spark_ray.errors import CheckFailed, UserError
from spark_ray.execution.control import health as executor_health
from spark_ray.httpopen import urlopen
from spark_ray.tls import TlsFiles, client_context

APP_NAME = "spark-ray-console"
DEFAULT_PORT = 3003
Progress = Callable[[str], None]


class RayLive:
    """The console's :class:`spark_ray.console.web.Live` over the cluster's actors."""

    def __init__(self, max_age_s: float = 30.0) -> None:
        self.max_age_s = max_age_s
        self._fabrics: dict[tuple[str, str], Any] = {}

    # --- discovery ---------------------------------------------------------------------
    @staticmethod
    def _named(prefix: str) -> list[tuple[str, str]]:
        """(namespace, name) of every live named actor whose name starts with ``prefix``."""
        found = ray.util.list_named_actors(all_namespaces=True)
        return sorted((a["namespace"], a["name"]) for a in found
                      if a["name"] == prefix.rstrip(":") or a["name"].startswith(prefix))

    def _resolve(self, prefix: str, name: str | None, field: str) -> tuple[str, str]:
        """(namespace, name) of the running actor ``name`` (None: the only one), or a
        UserError naming ``field`` and the ones that run."""
        found = self._named(prefix)
        names = [n for _, n in found]
        if name is None:
            if len(found) != 1:
                raise UserError(f"{field}: name one of {names or 'none running'}")
            return found[0]
        for ns, n in found:
            if n == name:
                return ns, n
        raise UserError(f"{field}: no {field} {name!r} (running: {names})")

    def _fabrics_now(self) -> list[Any]:
        from spark_ray.app.fabric import Fabric

        out = []
        for ns, name in self._named("fabric:"):
            exchange = name.split(":", 1)[1]
            f = self._fabrics.get((ns, exchange))
            if f is None:
                f = Fabric.attach(exchange, ns)
                if f is None:
                    continue
                self._fabrics[(ns, exchange)] = f
            out.append(f)
        return out

    @staticmethod
    def _get(ref: Any, timeout_s: float = 5.0) -> Any:
        return ray.get(ref, timeout=timeout_s)

    # --- Live --------------------------------------------------------------------------
    def services(self) -> list[dict[str, Any]]:
        from spark_ray.app import fabric_service

        out: list[dict[str, Any]] = []
        for f in self._fabrics_now():
            name = f"fabric:{f.cfg.exchange}"
            try:
                healthy, doc = fabric_service.report(f, self.max_age_s)
                bad = [f"{s}: {v['reason']}" for s, v in doc["symbols"].items() if "reason" in v]
                bad += [f"{a}: {v.get('reason')}" for a, v in doc["actors"].items()
                        if not v.get("ok", True)]
                out.append({"name": name, "kind": "fabric", "ok": healthy,
                            "detail": "; ".join(bad) or f"{len(doc['symbols'])} symbols ok"})
            except ray.exceptions.RayError as exc:
                self._fabrics.pop((f.cfg.namespace, f.cfg.exchange), None)
                out.append({"name": name, "kind": "fabric", "ok": False,
                            "detail": f"unreachable ({type(exc).__name__})"})
        for ns, name in self._named("executor:"):
            try:
                h = self._get(ray.get_actor(name, namespace=ns).health.remote())
                out.append({"name": name, "kind": "executor", "ok": bool(h.get("ok")),
                            "detail": "; ".join(h.get("reasons") or []) or "ok"})
            except (ray.exceptions.RayError, ValueError) as exc:
                out.append({"name": name, "kind": "executor", "ok": False,
                            "detail": f"unreachable ({type(exc).__name__})"})
        for ns, name in self._named("breaker:"):
            try:
                st = self._get(ray.get_actor(name, namespace=ns).status.remote())
                state = st.get("state")
                out.append({"name": name, "kind": "breaker", "ok": state == "ARMED",
                            "detail": state + (" (dry-run)" if st.get("dry_run") else "")})
            except (ray.exceptions.RayError, ValueError) as exc:
                out.append({"name": name, "kind": "breaker", "ok": False,
                            "detail": f"unreachable ({type(exc).__name__})"})
        return out

    def nodes(self) -> list[dict[str, Any]]:
        """Every node with its resources; what is free is known cluster-wide only, so it is
        shown on the node when the cluster has one."""
        out = []
        for n in ray.nodes():
            res = {k: v for k, v in n.get("Resources", {}).items() if not k.startswith("node:")}
            out.append({"node_id": n.get("NodeID"), "address": n.get("NodeManagerAddress"),
                        "alive": bool(n.get("Alive")), "resources": res,
                        "head": "node:__internal_head__" in n.get("Resources", {}),
                        "available": None})
        alive = [n for n in out if n["alive"]]
        if len(alive) == 1:
            alive[0]["available"] = {k: v for k, v in ray.available_resources().items()
                                     if not k.startswith("node:")}
        return out

    def streams(self) -> dict[str, Any]:
        from spark_ray.app import fabric_service

        exchanges = []
        for f in self._fabrics_now():
            try:
                _, doc = fabric_service.report(f, self.max_age_s)
                exchanges.append(views.stream_rows(doc, f.status(timeout_s=10),
                                                   f.stored_counts()))
            except ray.exceptions.RayError as exc:
                self._fabrics.pop((f.cfg.namespace, f.cfg.exchange), None)
                exchanges.append({"exchange": f.cfg.exchange, "status": "UNREACHABLE",
                                  "error": type(exc).__name__, "symbols": []})
        return {"exchanges": exchanges}

    def trading(self) -> dict[str, Any]:
        executors = []
        now = time.time()
        for ns, name in self._named("executor:"):
            try:
                h = ray.get_actor(name, namespace=ns)
                st, orders, fills, curve = self._get([
                    h.status.remote(), h.orders.remote(), h.fills.remote(),
                    h.equity_curve.remote()])
            except (ray.exceptions.RayError, ValueError) as exc:
                executors.append({"name": name, "healthy": False,
                                  "reasons": [f"unreachable ({type(exc).__name__})"]})
                continue
            ok, body = executor_health(st, now)
            executors.append(views.executor_view(st, (ok, body["reasons"]), orders, fills,
                                                 [list(p) for p in curve]))
        breakers = []
        for ns, name in self._named("breaker:"):
            try:
                b = ray.get_actor(name, namespace=ns)
                st, events = self._get([b.status.remote(), b.events.remote(100)])
                breakers.append(views.breaker_view(name, st, events))
            except (ray.exceptions.RayError, ValueError) as exc:
                breakers.append({"name": name, "state": "UNREACHABLE", "scopes": [],
                                 "events": [], "error": type(exc).__name__})
        return {"executors": executors, "breakers": breakers}

    def breaker(self, action: str, breaker: str | None, scope: str, who: str, reason: str,
                on: bool) -> dict[str, Any]:
        ns, breaker = self._resolve("breaker:", breaker, "breaker")
        handle = ray.get_actor(breaker, namespace=ns)
        try:
            if action == "trip":
                st = self._get(handle.trip.remote(reason, who, scope), 15)
            elif action == "reset":
                st = self._get(handle.reset.remote(reason, who, scope), 15)
            else:
                st = self._get(handle.set_dry_run.remote(on, who, reason, scope), 15)
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause if isinstance(exc.cause, Exception) else exc
            raise UserError(f"scope: {cause}") from None
        return {"breaker": breaker, "state": st.get("state"),
                "scope": (st.get("scopes") or {}).get(scope, {}).get("state")}

    def kill(self, executor: str, flatten: bool, who: str, reason: str) -> dict[str, Any]:
        """The executor's kill switch (its control plane's ``POST /kill``): halt for good,
        cancel open orders, trip its breaker, flatten when asked."""
        ns, executor = self._resolve("executor:", executor, "executor")
        handle = ray.get_actor(executor, namespace=ns)
        result: dict[str, Any] = self._get(handle.kill.remote(f"{who}: {reason}", flatten), 60)
        if result.get("error"):
            raise RuntimeError(f"executor {executor}: {result['error']}")
        return result


# No access log: the pages poll every 2 s, which would write a line per request for months;
# every mutation is journaled by the console itself (who, why, what, result).
@serve.deployment(name="console", num_replicas=1, ray_actor_options={"num_cpus": 0},
                  logging_config={"enable_access_log": False})
@serve.ingress()
class ConsoleDeployment:
    """The Serve replica: plain settings in, the ASGI app built on the replica."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings

    def __serve_build_asgi_app__(self) -> Any:
        from spark_ray.console.guard import TokenHash
        from spark_ray.console.web import Settings, build_app

        s = dict(self.settings)
        token = TokenHash(s.pop("token_sha256", None))
        return quiet_disconnects(build_app(RayLive(), Settings(token=token, **s)))


def quiet_disconnects(app: Any) -> Any:
    """The ASGI app, with a client that goes away seen as ``http.disconnect``.

    When a browser leaves a live page, Serve's ``receive`` raises (the request's task was
    cancelled) inside Starlette's streaming response, which then logs a traceback for a normal
    event; ASGI's own message for it is ``http.disconnect``, which ends the stream quietly."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        async def safe_receive() -> Any:
            try:
                return await receive()
            except ray.exceptions.RayError:
                return {"type": "http.disconnect"}

        await app(scope, safe_receive, send)

    return wrapped


def up(host: str, port: int, settings: dict[str, Any], progress: Progress,
       timeout_s: float = 120.0, tls: TlsFiles | None = None, ca: str | None = None) -> str:
    """Deploy (or update) the console; return its URL once ``/api/health`` answers.

    With ``tls``, Ray Serve's proxy serves HTTPS (its ``ssl_certfile``/``ssl_keyfile``) and
    the readiness poll verifies the certificate (system CAs, or ``ca``)."""
    options: dict[str, Any] = {"host": host, "port": port}
    if tls is not None:
        tls.server_context()  # a bad certificate or key: exit 2 naming the flag, up front
        options.update(ssl_certfile=tls.cert, ssl_keyfile=tls.key)
    try:
        serve.start(http_options=options)
    except Exception as exc:  # Serve runs already on another address: say which
        raise UserError(f"--port: Ray Serve could not listen on {host}:{port} ({exc})") from None
    current = _proxy_address()
    if current is not None and current != (host, port):
        raise UserError(f"--port/--host: Ray Serve on this cluster already listens on "
                        f"{current[0]}:{current[1]}; run `spark-ray console down` first or "
                        f"use --host {current[0]} --port {current[1]}")
    progress(f"deploying {APP_NAME} on Ray Serve ({host}:{port})")
    serve.run(ConsoleDeployment.bind(settings),  # type: ignore[attr-defined]
              name=APP_NAME, route_prefix="/",
              blocking=False)
    url = f"{'https' if tls is not None else 'http'}://{host}:{port}"
    context = client_context(ca) if tls is not None else None
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        try:
            with _open(f"{url}/api/health", context) as resp:
                if resp.status == 200:
                    progress(f"console answers at {url}")
                    return url
        except (OSError, urllib.error.URLError) as exc:
            last = str(getattr(exc, "reason", exc))
        time.sleep(0.5)
    raise CheckFailed(f"console: no answer from {url}/api/health within {timeout_s:g} s "
                      f"({last})")


def _open(url: str, context: ssl.SSLContext | None) -> Any:
    """GET ``url``: direct on loopback (urlopen), verifying ``context`` for HTTPS."""
    if context is None:
        return urlopen(url, timeout=10)
    return urllib.request.urlopen(url, timeout=10, context=context)  # nosec B310  # https URL built above


def _proxy_address() -> tuple[str, int] | None:
    with contextlib.suppress(Exception):
        client = serve.context._get_global_client()
        if client is not None:
            opts = client.http_config
            return str(opts.host), int(opts.port)
    return None


def down(progress: Progress) -> bool:
    """Delete the console application (True) or say none runs (False)."""
    try:
        apps = serve.status().applications
    except Exception:  # Serve not running on this cluster
        apps = {}
    if APP_NAME not in apps:
        return False
    serve.delete(APP_NAME)
    progress(f"deleted {APP_NAME}")
    return True
