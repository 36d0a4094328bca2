"""``ExecutorActor``: trades approved parameters on live data; a thin Ray shell over
:class:`spark_ray.execution.executor.ExecutorCore`.

Named (``executor[:...]`` in namespace ``spark_ray``), restartable (``max_restarts=-1``) and
holding no CPU. Its constructor argument (an :class:`~spark_ray.execution.spec.ExecutorSpec`) is
all it needs, so after a crash Ray rebuilds it and the next call (or the driver's ``start``)
re-checks the approval, replays the journal and reconciles with the venue before a bar is
traded. What the shell adds to the core:

- ``on_market_data``: the streams fabric's batches (``NormalizerActor.subscribe``) go on a queue
  and return at once (a slow executor never stalls ingestion); one task feeds them to the core
  in order, stamping each with its arrival for tick-to-order latency;
- the circuit breaker: ``allow`` asked for every order through the named
  ``CircuitBreakerActor`` (fail closed), health and PnL reported in batches, trips received by
  subscription and, as a backstop, noticed by polling its state;
- timers (quiet bars, venue polling), the control plane (``/health``, ``/positions``,
  ``/orders``, ``POST /kill``) on the actor's own loop, and Ray metrics:
  ``executor_orders_total{status}``, ``executor_fills_total``, ``executor_position``,
  ``executor_pnl``, ``executor_tick_to_order_ms`` (gauges re-set every tick: Ray 2.60 drops a
  gauge ~20 s after its last ``set``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import warnings
from collections.abc import Sequence
from typing import Any

import ray
from ray.actor import ActorHandle
from ray.util.metrics import Counter, Gauge, Histogram

from spark_ray.actors.naming import NAMESPACE, get_or_create, lookup
from spark_ray.actors.priority import prefer_live_work
from spark_ray.adapters.registry import get_adapter
from spark_ray.breaker.models import Decision, Order, Signal
from spark_ray.errors import CheckFailed, UserError
from spark_ray.execution import metrics as m
from spark_ray.execution.broker import Broker
from spark_ray.execution.control import ControlPlane, Token, health
from spark_ray.execution.executor import ExecutorCore
from spark_ray.execution.gate import Gate
from spark_ray.execution.journal import ExecJournal
from spark_ray.execution.paper import PaperBroker
from spark_ray.execution.spec import VENUE_DEFAULT, ExecutorSpec
from spark_ray.signals.live import SignalBook
from spark_ray.strategy.loader import load_strategy

log = logging.getLogger(__name__)
TICK_S = 0.1
EXPORT_S = 1.0
BREAKER_POLL_S = 2.0
ALLOW_TIMEOUT_S = 5.0
RETRY_START_S = 5.0


class ActorGate:
    """The cluster's CircuitBreakerActor, found by name (again after it restarts)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._handle: ActorHandle | None = None
        self._pending: list[Any] = []
        self.dropped = 0

    def handle(self) -> ActorHandle:
        if self._handle is None:
            self._handle = lookup(self.name)
            if self._handle is None:
                raise LookupError(f"no circuit breaker named {self.name!r}")
        return self._handle

    async def allow(self, orders: list[Order], signals: Sequence[Signal] = ()) -> list[Decision]:
        """One ``allow_many`` message: the bar's readings, then its orders."""
        h = self.handle()
        try:
            return list(await asyncio.wait_for(h.allow_many.remote(orders, list(signals)),
                                               ALLOW_TIMEOUT_S))
        except Exception:
            self._handle = None  # look it up again next time
            raise

    def report(self, signals: list[Signal]) -> None:
        if self._pending:
            _, self._pending = ray.wait(self._pending, num_returns=len(self._pending),
                                        timeout=0)
        if len(self._pending) >= 16:  # a slow breaker: drop readings rather than pile up
            self.dropped += 1
            return
        self._pending.append(self.handle().report_many.remote(signals))

    async def trip(self, reason: str, who: str) -> None:
        await self.handle().trip.remote(reason, who)


@ray.remote(num_cpus=0, max_restarts=-1)
class ExecutorActor:
    def __init__(self, spec: ExecutorSpec, name: str = "executor",
                 namespace: str = NAMESPACE) -> None:
        prefer_live_work()
        self.spec = spec
        self.name = name
        self.namespace = namespace
        self.core: ExecutorCore | None = None
        self.gate = ActorGate(spec.breaker_name)
        self.control: ControlPlane | None = None
        self.start_error: str | None = None
        self.breaker_state: str | None = None
        self.last_data_time: float | None = None
        self.batches = 0
        self.dropped_batches = 0
        self.dropped_signals = 0  # signals that came before the core (or without a model)
        self.pid = os.getpid()  # callers tell a restarted process from the old one by it
        self.restarted = _reconstructed()
        self._queue: asyncio.Queue[tuple[dict[str, Any], float]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._start_lock: asyncio.Lock | None = None
        self._stopped = False
        self._retry_at = 0.0
        self._last_trip_seen: float | None = None
        tags = ("executor", "symbol")
        self._c_orders = Counter(m.ORDERS, "Orders reaching a status.",
                                 tag_keys=(*tags, "status"))
        self._c_fills = Counter(m.FILLS, "Fills applied to positions.", tag_keys=tags)
        self._g_pos = Gauge(m.POSITION, "Base quantity held.", tag_keys=tags)
        self._g_pnl = Gauge(m.PNL, "PnL in quote currency.", tag_keys=(*tags, "kind"))
        self._h_t2o = Histogram(m.TICK_TO_ORDER, "Tick arrival to order acknowledged (ms).",
                                boundaries=m.MS_BOUNDARIES, tag_keys=("executor",))
        for metric in (self._c_orders, self._c_fills, self._g_pos, self._g_pnl, self._h_t2o):
            metric.set_default_tags({"executor": name})

    # --- start ------------------------------------------------------------------------------
    async def start(self) -> dict[str, Any]:
        """Check the approval, build the core, replay + reconcile, serve; idempotent (an
        explicit call retries a failed start at once)."""
        self._retry_at = 0.0
        await self._ensure_started()
        return self.status()

    async def _ensure_started(self) -> bool:
        if self.core is not None and self.core.started:
            return True
        if self._stopped or time.monotonic() < self._retry_at:
            return False
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self.core is not None and self.core.started:
                return True
            try:
                await self._start()
                self.start_error = None
            except (CheckFailed, UserError) as exc:
                self.start_error = str(exc)
                self._retry_at = time.monotonic() + RETRY_START_S  # not on every batch
                log.error("%s: refusing to start: %s", self.name, exc)
                return False
            except Exception as exc:
                self.start_error = f"{type(exc).__name__}: {exc}"
                self._retry_at = time.monotonic() + RETRY_START_S
                log.exception("%s: start failed", self.name)
                if self.core is not None:
                    await self.core.close()
                    self.core = None
                return False
        return True

    async def _start(self) -> None:
        spec = self.spec
        if spec.approved_path:
            from spark_ray.execution.params import load_approved

            approved = load_approved(spec.approved_path, spec.trusted_keys)
            if approved.strategy != spec.strategy or approved.params != spec.params:
                raise CheckFailed(f"refusing to trade: {spec.approved_path} now approves "
                                  f"{approved.strategy} {approved.params}, not what this "
                                  "executor was started with")
        if not self.restarted:  # the GCS may not have counted the restart at construction
            self.restarted = _reconstructed()
        core = build_core(spec, self.gate)
        if spec.signals_model:
            core.signal_book = SignalBook()
        self.core = core
        await core.start()
        loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._tasks = [loop.create_task(self._consume()), loop.create_task(self._ticker())]
        if spec.control_port is not None and self.control is None:
            # The kill token is read here, on this node (the spec names where, never the value).
            token = spec.control_token.read() if spec.control_token is not None else None
            plane = ControlPlane(self, spec.control_host, spec.control_port,
                                 Token(token) if token else None, tls=spec.control_tls)
            await plane.start()
            self.control = plane
        try:
            breaker = self.gate.handle()
            target: Any = self.name if self.namespace == NAMESPACE else \
                ray.get_runtime_context().current_actor
            await breaker.subscribe.remote(target, "on_breaker_trip")
        except Exception as exc:  # the poll in the ticker still notices trips
            log.warning("%s: could not subscribe to breaker trips: %s", self.name, exc)

    # --- inputs -----------------------------------------------------------------------------
    async def on_market_data(self, payload: dict[str, Any]) -> None:
        """From a NormalizerActor: queue and return (never stall the fabric)."""
        t0 = time.perf_counter()
        self.last_data_time = time.time()
        if not await self._ensure_started() or self._queue is None:
            self.dropped_batches += 1
            return
        self.batches += 1
        self._queue.put_nowait((payload, t0))

    async def on_signals(self, message: dict[str, Any]) -> None:
        """From the SignalActor: one symbol's signals for a batch of trades, kept for the
        bars they belong to. A coroutine, so it runs on the loop where bars wait for it."""
        if self.core is None or self.core.signal_book is None:
            self.dropped_signals += 1
            return
        self.core.signal_book.add(message)

    async def _consume(self) -> None:
        assert self._queue is not None and self.core is not None  # nosec B101  # narrows Optional for mypy, not a check
        core, q = self.core, self._queue
        while True:
            payload, t0 = await q.get()
            try:
                await core.on_market_data(payload, t0)
            except Exception:
                log.exception("%s: market data batch failed", self.name)
            finally:
                q.task_done()

    async def on_breaker_trip(self, notice: dict[str, Any]) -> dict[str, Any]:
        if not await self._ensure_started() or self.core is None:
            return {"error": self.start_error}
        self.breaker_state = "TRIPPED"
        self._last_trip_seen = float(notice.get("ts") or time.time())
        return await self.core.on_trip(notice)

    async def kill(self, reason: str, flatten: bool = False) -> dict[str, Any]:
        if not await self._ensure_started() or self.core is None:
            return {"error": self.start_error}
        return await self.core.kill(reason, flatten)

    async def resume(self, reason: str) -> dict[str, Any]:
        if await self._ensure_started() and self.core is not None:
            self.core.resume(reason)
        return self.status()

    # --- timers -----------------------------------------------------------------------------
    async def _ticker(self) -> None:
        assert self.core is not None  # nosec B101  # narrows Optional for mypy, not a check
        core = self.core
        next_export = next_poll = 0.0
        while True:
            await asyncio.sleep(TICK_S)
            try:
                await core.tick()
                now = time.monotonic()
                if now >= next_export:
                    next_export = now + EXPORT_S
                    self._export()
                if now >= next_poll:
                    next_poll = now + BREAKER_POLL_S
                    await self._poll_breaker()
            except Exception:
                log.exception("%s: tick failed", self.name)

    async def _poll_breaker(self) -> None:
        """Backstop for a lost trip notice: not ARMED with orders open -> cancel them."""
        assert self.core is not None  # nosec B101  # narrows Optional for mypy, not a check
        try:
            st: dict[str, Any] = await asyncio.wait_for(self.gate.handle().status.remote(),
                                                        ALLOW_TIMEOUT_S)
        except Exception:
            self.breaker_state = "UNREACHABLE"
            return
        # Only the scopes this executor's orders belong to concern it (an older breaker
        # without scopes: its one state).
        scopes: dict[str, Any] = st.get("scopes") or {}
        mine = [scopes[n] for n in self.core.scopes() if n in scopes] or [st]
        bad = [s for s in mine if s.get("state") != "ARMED"]
        self.breaker_state = str(bad[0].get("state")) if bad else "ARMED"
        trips = [s.get("last_trip") or {} for s in bad]
        trip = max(trips, key=lambda t: float(t.get("since") or 0.0)) if trips else {}
        if bad and self.core.om.open_orders():
            since = float(trip.get("since") or 0.0)
            if self._last_trip_seen is None or since > self._last_trip_seen:
                self._last_trip_seen = since
                await self.core.on_trip({"rule": trip.get("rule"), "ts": since,
                                         "scope": trip.get("scope") or "global",
                                         "reason": f"(polled) {trip.get('reason', '')}"})

    def _export(self) -> None:
        assert self.core is not None  # nosec B101  # narrows Optional for mypy, not a check
        core = self.core
        drained = core.drain_metrics()
        for (sym, status), n in drained.statuses.items():
            self._c_orders.inc(n, {"symbol": sym, "status": status})
        for sym, n in drained.fills.items():
            self._c_fills.inc(n, {"symbol": sym})
        for ms in drained.tick_to_order_ms:
            self._h_t2o.observe(ms)
        for sym, s in core.positions.sleeves.items():
            tags = {"symbol": sym}
            self._g_pos.set(s.qty, tags)
            self._g_pnl.set(s.realized, {**tags, "kind": "realized"})
            self._g_pnl.set(s.unrealized(), {**tags, "kind": "unrealized"})
            self._g_pnl.set(s.equity() - s.initial_cash, {**tags, "kind": "total"})

    # --- views (also the control plane's Provider) --------------------------------------------
    def status(self) -> dict[str, Any]:
        base: dict[str, Any] = {"name": self.name, "started": False, "mode": self.spec.config.mode,
                                "start_error": self.start_error}
        if self.core is not None:
            base.update(self.core.status())
        broker = self.core.broker if self.core is not None else None
        base.update(
            actor_name=self.name, pid=self.pid, restarted=self.restarted,
            start_error=self.start_error,
            breaker=self.spec.breaker_name, breaker_state=self.breaker_state,
            last_data_time=self.last_data_time, batches=self.batches,
            dropped_batches=self.dropped_batches, dropped_signals=self.dropped_signals,
            queue=self._queue.qsize() if self._queue is not None else 0,
            control_url=self.control.url if self.control is not None else None,
            user_stream=getattr(broker, "stream_connected", None)
            if broker is not None and getattr(broker, "user_stream", False) else None,
            broker_stats=getattr(broker, "stats", None))
        return base

    def health(self) -> dict[str, Any]:
        ok, body = health(self.status())
        return {"ok": ok, **body}

    def positions(self) -> dict[str, Any]:
        return self.core.positions.snapshot() if self.core is not None else {}

    def orders(self, open_only: bool = False) -> list[dict[str, Any]]:
        if self.core is None:
            return []
        if open_only:
            return [o.as_dict() for o in self.core.om.open_orders()]
        return self.core.orders_view()

    def latencies(self) -> list[float]:
        """Tick-to-order samples (ms) kept by the core (the last 100,000)."""
        return list(self.core.t2o) if self.core is not None else []

    def equity_curve(self) -> list[tuple[float, float]]:
        """(bar time s, equity) per bar, the last 2,000 (the console's chart)."""
        return list(self.core.equity_curve) if self.core is not None else []

    def fills(self) -> list[dict[str, Any]]:
        return self.core.fills_view() if self.core is not None else []

    def trades(self) -> list[dict[str, Any]]:
        return self.core.trades_view() if self.core is not None else []

    async def drain(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued batch is traded (tests, orderly stops)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._queue is not None and self._queue.empty() and self.core is not None \
                    and not self.core.lock.locked():
                return True
            await asyncio.sleep(0.02)
        return False

    async def stop(self) -> dict[str, Any]:
        """Stop trading and release everything (open orders stay as they are)."""
        self._stopped = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(BaseException):
                await t
        self._tasks = []
        st = self.status()
        if self.control is not None:
            await self.control.stop()
            self.control = None
        if self.core is not None:
            with contextlib.suppress(Exception):
                h = self.gate.handle()
                target: Any = self.name if self.namespace == NAMESPACE else \
                    ray.get_runtime_context().current_actor
                await h.unsubscribe.remote(target)
            await self.core.close()
        return st


def _reconstructed() -> bool:
    """Whether Ray restarted this actor (a state-API lookup: False when it cannot answer)."""
    try:
        with warnings.catch_warnings():  # Ray 2.60 warns from inside its own property
            warnings.simplefilter("ignore", DeprecationWarning)
            return bool(ray.get_runtime_context().was_current_actor_reconstructed)
    except Exception:
        return False


def start_executor(spec: ExecutorSpec, name: str, namespace: str = NAMESPACE,
                   detached: bool = False, **options: Any) -> ActorHandle:
    """The named executor (created if absent), started: approval checked, journal replayed,
    venue reconciled. Raises CheckFailed/UserError with the reason when it refuses.
    ``options`` are Ray actor options (placement, e.g. ``placement.colocate_with(normalizer)``)."""
    spec.validate()
    handle = get_or_create(ExecutorActor, name, spec, name, namespace, detached=detached,
                           namespace=namespace, **options)
    st: dict[str, Any] = ray.get(handle.start.remote(), timeout=120)
    if not st.get("started"):
        ray.kill(handle, no_restart=True)
        reason = st.get("start_error") or "did not start"
        if reason.startswith("refusing"):
            raise CheckFailed(reason)
        raise UserError(f"executor {name}: {reason}")
    return handle


# --- building the core from its spec (the venue's parts come from its adapter) ----------------
def build_broker(spec: ExecutorSpec, public: Any | None = None) -> Broker:
    cfg = spec.config
    adapter = get_adapter(spec.exchange)
    if spec.live:
        assert spec.credentials is not None and spec.rest_url  # nosec B101  # spec.validate() refused a live spec without them
        ws_url = adapter.default_ws_url if spec.ws_url == VENUE_DEFAULT else spec.ws_url
        # Read on this node, now: the spec carries where the key is, never the key.
        return adapter.broker(spec.credentials.resolve(), _rest_url(spec) or "", ws_url,
                              **spec.broker_options)
    per = cfg.cash / len(cfg.symbols)
    source = public.exchange_filters if public is not None else None
    return PaperBroker(dict.fromkeys(cfg.symbols, per), cfg.costs(), filter_source=source)


def build_core(spec: ExecutorSpec, gate: Gate) -> ExecutorCore:
    """The core of one executor (the actor calls this on every start)."""
    cfg = spec.config
    rest_url = _rest_url(spec)
    public = get_adapter(spec.exchange).spot_rest(rest_url) if rest_url else None
    klines = public.closed_bars if public is not None and cfg.warmup_bars else None
    core = ExecutorCore(cfg, load_strategy(spec.strategy), spec.params,
                        build_broker(spec, public), ExecJournal(spec.journal_path), gate, klines,
                        spec.approval)
    if public is not None:
        core.closers.append(public.close)
    return core


def _rest_url(spec: ExecutorSpec) -> str | None:
    if spec.rest_url == VENUE_DEFAULT:
        return get_adapter(spec.exchange).default_rest_url
    return spec.rest_url
