"""The fabric's control plane on 127.0.0.1:4601: ``/health``, ``/metrics``, ``/chaos``.

- ``GET /health``: every actor's state, ingest lag and last-message age; 503 when unhealthy.
- ``GET /metrics``: Prometheus text (prometheus-client) of the fabric's counters, for scrapers
  outside Ray (Ray's own export carries the same names with a ``ray_`` prefix).
- ``POST /chaos``: inject a fault (``{"kind": "gap", "count": 50}``; kinds lag, gap, drop,
  duplicate, reorder, disconnect). Requires ``Authorization: Bearer <SPARK_RAY_STREAMS_TOKEN>``
  (compared in constant time); with no token configured it refuses. The token is never logged
  or echoed. Every attempt is appended to the audit log (:mod:`spark_ray.audit`) and rate
  limited per source (429 with ``Retry-After`` over it).

Actor status is polled by a background thread (every ``poll_s``) so a scrape never waits on Ray.
:func:`health` and :func:`metric_families` are pure functions of that status.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from spark_ray.audit import BAD_TOKEN, RATE_LIMITED, AuditLog, MutationLimiter
from spark_ray.httpbody import json_object, number
from spark_ray.logratelimit import http_logger
from spark_ray.streams import metrics as m
from spark_ray.tls import PLAIN_TOKEN_REFUSED, TlsFiles, plain_token_risk

TOKEN_ENV = "SPARK_RAY_STREAMS_TOKEN"  # nosec B105  # the name of an environment variable, not a token
DEFAULT_PORT = 4601
CHAOS_KINDS = ("lag", "gap", "drop", "duplicate", "reorder", "disconnect")
log = logging.getLogger(__name__)
HTTP_LOG = "spark_ray.streams.control.http"  # aiohttp's server log (bad requests)


def health(status: dict[str, Any], stale_s: float = 10.0) -> tuple[bool, dict[str, Any]]:
    """(healthy, body) from the fabric's status. Unhealthy: an actor unreachable, a connector
    not running or silent for ``stale_s``, or a normalizer with unrepaired gaps."""
    actors: dict[str, Any] = {}
    ok = bool(status)
    for name, s in status.items():
        entry: dict[str, Any] = {"ok": True}
        if "error" in s:
            entry = {"ok": False, "reason": f"unreachable: {s['error']}"}
        elif name.startswith("connector"):
            age = s.get("last_frame_age_s")
            entry.update(running=s.get("running"), connections=s.get("connections"),
                         last_message_age_s=age, reconnects=s.get("reconnects"),
                         pending_batches=s.get("pending_batches"),
                         ws_roundtrip_ms=s.get("last_rtt_ms"))
            if not s.get("running"):
                entry.update(ok=False, reason="not running")
            elif age is not None and age > stale_s:
                entry.update(ok=False, reason=f"no message for {age:.1f} s")
        elif name.startswith("normalizer"):
            lag = s.get("lag", {})
            entry.update(ingest_lag_p95_ms=lag.get("p95_ms"), open_gaps=s.get("open_gaps"),
                         last_message_age_s=s.get("last_batch_age_s"),
                         dead_letters=sum(s.get("dead_letters", {}).values()))
            if s.get("unrepaired"):
                entry.update(ok=False, reason="unrepaired gaps")
        else:
            entry.update(rows_written=s.get("rows_written"), buffered_rows=s.get("buffered_rows"),
                         event_to_db_p95_ms=s.get("event_to_db", {}).get("p95_ms"))
        ok = ok and entry["ok"]
        actors[name] = entry
    return ok, {"status": "ok" if ok else "unhealthy", "actors": actors,
                "time": time.time()}


def metric_families(status: dict[str, Any], exchange: str) -> Iterator[Metric]:
    """Prometheus families from the fabric's status (labels exchange, symbol, stream)."""
    labels = list(m.LABELS)
    fams = {
        "messages": CounterMetricFamily(m.MESSAGES, "Frames accepted, by stream.", labels=labels),
        "dups": CounterMetricFamily(m.DUPS, "Duplicate events dropped.", labels=labels),
        "out_of_order": CounterMetricFamily(m.OUT_OF_ORDER, "Events older than one already "
                                            "seen in their series.", labels=labels),
        "gaps_unrepaired": CounterMetricFamily(m.SEQ_GAPS, "Sequence gaps repair could not fill.",
                                               labels=labels),
    }
    last = GaugeMetricFamily(m.LAST_SEQ, "Last trade id seen.", labels=labels)
    dead = CounterMetricFamily(m.DEAD_LETTERS, "Frames sent to the dead-letter store.",
                               labels=[*labels, "reason"])
    drops = CounterMetricFamily(m.DROPS, "Frames the fabric dropped (chaos).", labels=labels)
    beat = GaugeMetricFamily(m.HEARTBEAT, "Unix time of a connector's last frame.",
                             labels=labels)
    lagp95 = GaugeMetricFamily("streams_ingest_lag_p95_seconds", "Ingest lag p95 so far.",
                               labels=labels)
    e2db = GaugeMetricFamily("streams_event_to_db_p95_ms", "Event to durable commit p95 so far.",
                             labels=labels)
    for name, s in status.items():
        if "error" in s:
            continue
        if name.startswith("normalizer"):
            for key, fam in fams.items():
                for k, v in s.get(key, {}).items():
                    sym, stream = k.split(":", 1)
                    fam.add_metric([exchange, sym, stream], v)
            for k, v in s.get("last_ids", {}).items():
                sym, stream = k.split(":", 1)
                last.add_metric([exchange, sym, stream], v)
            for reason, v in s.get("dead_letters", {}).items():
                dead.add_metric([exchange, "all", "all", reason], v)
            p95 = s.get("lag", {}).get("p95_ms")
            if p95 is not None:
                lagp95.add_metric([exchange, "all", name], p95 / 1000)
        elif name.startswith("connector"):
            drops.add_metric([exchange, "all", name], s.get("chaos_dropped", 0))
            if s.get("last_frame_ms"):
                beat.add_metric([exchange, "all", name], s["last_frame_ms"] / 1000)
        elif "event_to_db" in s and s["event_to_db"].get("p95_ms") is not None:
            e2db.add_metric([exchange, "all", "all"], s["event_to_db"]["p95_ms"])
    yield from fams.values()
    yield from (last, dead, drops, beat, lagp95, e2db)


class _Collector:
    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane

    def collect(self) -> Iterator[Metric]:
        yield from metric_families(self.plane.snapshot(), self.plane.exchange)


class ControlPlane:
    """Serves the endpoints from a thread of its own (aiohttp on a private event loop)."""

    def __init__(self, status_fn: Callable[[], dict[str, Any]],
                 chaos_fn: Callable[[dict[str, Any]], Any], exchange: str = "binance",
                 host: str = "127.0.0.1", port: int = DEFAULT_PORT, token: str | None = None,
                 poll_s: float = 1.0, stale_s: float = 10.0, audit: AuditLog | None = None,
                 limiter: MutationLimiter | None = None, tls: TlsFiles | None = None) -> None:
        self.status_fn = status_fn
        self.tls = tls  # HTTPS when given; without it, no token is taken off loopback
        # Every /chaos attempt is audited (who, from where, outcome) and rate limited per source.
        self.audit = audit if audit is not None else AuditLog()
        self.limiter = limiter if limiter is not None else MutationLimiter.from_env()
        self.chaos_fn = chaos_fn
        self.exchange = exchange
        self.host = host
        self.port = port
        self._token = token if token is not None else (os.environ.get(TOKEN_ENV) or None)
        self.poll_s = poll_s
        self.stale_s = stale_s
        self._status: dict[str, Any] = {}
        self._status_at = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._threads: list[threading.Thread] = []
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))

    def __repr__(self) -> str:
        return f"ControlPlane({self.host}:{self.port}, chaos={'on' if self._token else 'off'})"

    # --- status polling -----------------------------------------------------------------------
    def refresh(self) -> dict[str, Any]:
        try:
            st = self.status_fn()
        except Exception as e:  # a status failure is itself a health fact
            st = {"fabric": {"error": type(e).__name__}}
        with self._lock:
            self._status, self._status_at = st, time.time()
        return st

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._status)

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.refresh()

    # --- HTTP ---------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_post("/chaos", self._chaos)
        return app

    async def _health(self, request: web.Request) -> web.Response:
        ok, body = health(self.snapshot(), self.stale_s)
        body["status_age_s"] = round(time.time() - self._status_at, 3)
        return web.json_response(body, status=200 if ok else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        text = await asyncio.get_running_loop().run_in_executor(None, generate_latest,
                                                                self.registry)
        return web.Response(body=text, headers={"Content-Type": "text/plain; version=0.0.4"})

    async def _chaos(self, request: web.Request) -> web.Response:
        source = request.remote or "unknown"
        where = {"fabric": self.exchange}
        retry = self.limiter.take(source)
        if retry:
            message, headers = self.limiter.refusal(retry)
            self.audit.record("anonymous", "chaos", where, source, RATE_LIMITED)
            return web.json_response({"error": message}, status=429, headers=headers)
        if plain_token_risk(self.host, self.tls):
            self.audit.record("anonymous", "chaos", where, source,
                              "refused: token over plain HTTP on a non-loopback bind")
            return web.json_response({"error": PLAIN_TOKEN_REFUSED}, status=403)
        if not self._token:
            self.audit.record("anonymous", "chaos", where, source,
                              "refused: chaos is disabled (no token configured)")
            return web.json_response({"error": f"chaos is disabled: set {TOKEN_ENV}"},
                                     status=403)
        auth = request.headers.get("Authorization", "")
        given = auth[7:] if auth.startswith("Bearer ") else ""
        if not hmac.compare_digest(given.encode(), self._token.encode()):
            self.audit.record("anonymous", "chaos", where, source, BAD_TOKEN)
            return web.json_response({"error": "missing or wrong bearer token"}, status=401)
        try:
            body = json_object(await request.read(), request.charset)
            if body.get("kind") not in CHAOS_KINDS:
                raise ValueError(f"kind: one of {', '.join(CHAOS_KINDS)}")
            count = int(number(body, "count", 10, 1, 1_000_000))
            delay = number(body, "delay_ms", 500, 0, 60_000)
        except ValueError as e:
            self.audit.record("token-holder", "chaos", where, source,
                              f"refused: bad request: {e}")
            return web.json_response({"error": str(e)}, status=400)
        spec = {"kind": body["kind"], "count": count, "delay_ms": delay,
                "target": body.get("target", "connector")}
        who = str(body.get("who") or "token-holder")
        try:
            result = await asyncio.get_running_loop().run_in_executor(None, self.chaos_fn, spec)
        except ValueError as e:  # e.g. target=venue with no venue attached
            self.audit.record(who, "chaos", {**where, **spec}, source, f"refused: {e}")
            return web.json_response({"error": str(e)}, status=400)
        except Exception as e:
            self.audit.record(who, "chaos", {**where, **spec}, source,
                              f"error: {type(e).__name__}: {e}")
            raise
        self.audit.record(who, "chaos", {**where, **spec}, source, "ok")
        return web.json_response({"injected": spec, "result": result},
                                 dumps=lambda o: json.dumps(o, default=str))

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> ControlPlane:
        self.refresh()
        ready = threading.Event()
        errors: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            runner = web.AppRunner(self.app(), access_log=None, logger=http_logger(HTTP_LOG))
            try:
                loop.run_until_complete(runner.setup())
                ctx = self.tls.server_context() if self.tls is not None else None
                site = web.TCPSite(runner, self.host, self.port, ssl_context=ctx)
                loop.run_until_complete(site.start())
                server = getattr(site, "_server", None)
                if server is not None and server.sockets:
                    self.port = server.sockets[0].getsockname()[1]
            except BaseException as e:
                errors.append(e)
                ready.set()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(runner.cleanup())
                loop.close()

        t = threading.Thread(target=serve, name="streams-control", daemon=True)
        t.start()
        if not ready.wait(30):
            raise RuntimeError("control plane did not start")
        if errors:
            raise errors[0]
        p = threading.Thread(target=self._poll, name="streams-control-poll", daemon=True)
        p.start()
        self._threads = [t, p]
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        for t in self._threads:
            t.join(10)
        self._threads = []

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"


def fabric_chaos(fabric: Any, venue: Any = None) -> Callable[[dict[str, Any]], Any]:
    """The chaos function for a fabric: through the venue when we own it and it is asked for,
    else at every connector (``fabric.chaos``)."""
    venue_kinds = {"lag": "latency", "gap": "gap", "drop": "drop", "duplicate": "duplicate",
                   "disconnect": "disconnect"}

    def inject(spec: dict[str, Any]) -> Any:
        kind = spec["kind"]
        if spec.get("target") == "venue":
            if kind not in venue_kinds:
                raise ValueError(f"kind {kind!r}: the venue injects "
                                 f"{', '.join(sorted(venue_kinds))}")
            if venue is None:
                raise ValueError("no venue simulator attached to this fabric")
            params: dict[str, Any] = {}
            if kind == "lag":
                params = {"delay_ms": spec["delay_ms"], "duration_s": 2.0}
            elif kind == "gap":
                params = {"count": spec["count"], "symbol": fabric.cfg.symbols[0]}
            elif kind in ("drop", "duplicate"):
                params = {"count": spec["count"]}
            return {"venue_fault_id": venue.inject(venue_kinds[kind], **params)}
        return fabric.chaos(kind, spec["count"], spec["delay_ms"])

    return inject


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, default=str)
