"""``CircuitBreakerActor``: the cluster's circuit breaker, a thin Ray shell over
:class:`spark_ray.breaker.core.CircuitBreaker`.

Named (``breaker`` in namespace ``spark_ray``) and detached so every driver and the kill switch
reach the same one; ``max_restarts=-1`` and, on every (re)start, a replay of the journal, so a
crash loses nothing it had acted on. It holds no CPU (``num_cpus=0``) so it schedules even on a
saturated cluster. A background thread re-evaluates time-driven rules every ``tick_s`` (stale
data trips without any order arriving) and sends trip notifications, so a slow or dead subscriber
never stalls ``allow``.

Metrics (``ray.util.metrics``; Prometheus sees them with Ray's ``ray_`` prefix), tagged
``breaker=<actor name>`` and ``scope`` (``global``, ``account:NAME``, ``strategy:NAME``,
``symbol:SYMBOL``):

- ``breaker_state`` gauge: 0 ARMED, 1 TRIPPED, 2 COOLDOWN, one series per scope (``max by
  (breaker)`` is the headline);
- ``breaker_trips_total`` counter, tags ``rule`` and ``scope``;
- ``breaker_blocked_orders_total`` counter, tag ``scope`` (the scope that blocked).

Callers should fail closed: if ``allow`` raises (breaker restarting, unreachable), do not send.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import deque
from typing import Any

import ray
from ray.actor import ActorHandle
from ray.util.metrics import Counter, Gauge

from spark_ray.actors.naming import NAMESPACE, actor_name, get_or_create, lookup
from spark_ray.actors.priority import prefer_live_work
from spark_ray.breaker.core import CircuitBreaker
from spark_ray.breaker.journal import FileJournal, resolve_journal_path
from spark_ray.breaker.models import BreakerConfig, Decision, Event, Order, Signal
from spark_ray.breaker.scopes import GLOBAL

log = logging.getLogger(__name__)

DEFAULT_NAME = actor_name("breaker")
TRIP_METHOD = "on_breaker_trip"
_TRANSITIONS = frozenset({"trip", "cooldown", "arm", "reset"})


def _config(config: BreakerConfig | dict[str, Any] | None) -> BreakerConfig:
    if isinstance(config, BreakerConfig):
        return config
    return BreakerConfig.model_validate(config or {})


@ray.remote(num_cpus=0, max_restarts=-1)
class CircuitBreakerActor:
    """Guards every order on the cluster: ``allow(order) -> Decision``."""

    def __init__(self, config: BreakerConfig | dict[str, Any] | None = None,
                 journal_path: str | None = None, name: str = DEFAULT_NAME) -> None:
        prefer_live_work()  # every order waits for allow(): it is on the live path
        cfg = _config(config)
        self._name = name
        self._cfg = cfg
        self._path = resolve_journal_path(journal_path, cfg)
        self._lock = threading.Lock()
        self._notices: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._handles: list[tuple[ActorHandle, str]] = []
        self._recent: deque[dict[str, Any]] = deque(maxlen=500)
        tags = {"breaker": name}
        self._g_state = Gauge("breaker_state",
                              description="Circuit breaker state by scope: 0 ARMED, 1 TRIPPED, "
                                          "2 COOLDOWN.",
                              tag_keys=("breaker", "scope"))
        self._g_state.set_default_tags(tags)
        self._c_trips = Counter("breaker_trips_total",
                                description="Circuit breaker trips, by rule and scope.",
                                tag_keys=("breaker", "rule", "scope"))
        self._c_trips.set_default_tags(tags)
        self._c_blocked = Counter("breaker_blocked_orders_total",
                                  description="Orders the circuit breaker blocked, by scope.",
                                  tag_keys=("breaker", "scope"))
        self._c_blocked.set_default_tags(tags)

        self._journal = FileJournal(self._path)
        replayed = self._journal.events
        self._core = CircuitBreaker.replay(replayed, cfg, journal=self._journal,
                                           listener=self._on_event)
        self._recent.extend(e.model_dump(mode="json") for e in replayed[-500:])
        self._recovered = {"events_replayed": len(replayed), "lines_skipped":
                           self._journal.skipped, "state": self._core.state.name,
                           "pid": os.getpid()}
        with self._lock:
            self._core.record_start(dict(self._recovered))
            self._export_states()
        self._thread = threading.Thread(target=self._background, name="breaker-tick",
                                        daemon=True)
        self._thread.start()

    # --- the API -----------------------------------------------------------------------------

    def allow(self, order: Order | dict[str, Any]) -> Decision:
        o = order if isinstance(order, Order) else Order(**order)
        with self._lock:
            return self._core.allow(o)

    def allow_many(self, orders: list[Order | dict[str, Any]],
                   signals: list[Signal | dict[str, Any]] | None = None) -> list[Decision]:
        """Decide a burst of orders in one message, in order (each sees the ones before),
        after taking ``signals`` (readings that must count for these decisions)."""
        parsed = [o if isinstance(o, Order) else Order(**o) for o in orders]
        readings = [s if isinstance(s, Signal) else Signal(**s) for s in signals or ()]
        with self._lock:
            for s in readings:
                self._core.report(s)
            return [self._core.allow(o) for o in parsed]

    def report(self, signal: Signal | dict[str, Any]) -> str:
        """Take one health/PnL signal; returns the state name."""
        s = signal if isinstance(signal, Signal) else Signal(**signal)
        with self._lock:
            return self._core.report(s).name

    def report_many(self, signals: list[Signal | dict[str, Any]]) -> str:
        """Batch of signals in one message (cheaper than one call each)."""
        parsed = [s if isinstance(s, Signal) else Signal(**s) for s in signals]
        with self._lock:
            for s in parsed:
                self._core.report(s)
            return self._core.state.name

    def trip(self, reason: str, who: str, scope: str = GLOBAL) -> dict[str, Any]:
        """The kill switch for ``scope`` (ValueError naming a bad scope)."""
        with self._lock:
            self._core.trip(reason, who, scope=scope)
        return self.status()

    def reset(self, reason: str, who: str, scope: str = GLOBAL) -> dict[str, Any]:
        with self._lock:
            self._core.reset(reason, who, scope=scope)
        return self.status()

    def set_dry_run(self, on: bool, who: str, reason: str = "",
                    scope: str = GLOBAL) -> dict[str, Any]:
        """Switch dry-run of ``scope`` on this running breaker; journaled, so it survives a
        restart."""
        with self._lock:
            self._core.set_dry_run(bool(on), who, reason, scope=scope)
        return self.status()

    def status(self) -> dict[str, Any]:
        with self._lock:
            self._core.tick()
            snap = self._core.snapshot()
        snap.update(name=self._name, journal=str(self._path), recovered=self._recovered)
        return snap

    def subscribe(self, target: str | ActorHandle, method: str = TRIP_METHOD) -> None:
        """Be told of every trip: ``target.<method>.remote(event)``. A name (an actor in
        namespace ``spark_ray``) is journaled and survives breaker restarts; a handle is not."""
        with self._lock:
            if isinstance(target, str):
                self._core.subscribe(target, method)
            else:
                self._handles.append((target, method))

    def unsubscribe(self, target: str | ActorHandle) -> None:
        with self._lock:
            if isinstance(target, str):
                self._core.unsubscribe(target)
            else:
                self._handles = [(h, m) for h, m in self._handles
                                 if h._actor_id != target._actor_id]

    def events(self, last: int = 50) -> list[dict[str, Any]]:
        """The most recent journal events (the file holds all of them)."""
        with self._lock:
            return list(self._recent)[-last:]

    def config(self) -> dict[str, Any]:
        return self._cfg.model_dump(mode="json")

    # --- the shell ---------------------------------------------------------------------------

    def _export_states(self) -> None:
        """One ``breaker_state`` series per scope (re-set on every tick: Ray drops a gauge
        ~20 s after its last ``set``)."""
        for name, sc in self._core.scopes.items():
            self._g_state.set(int(sc.state), tags={"scope": name})

    def _on_event(self, ev: Event) -> None:
        """Runs under the lock right after the core applied ``ev``: metrics, notifications."""
        self._recent.append(ev.model_dump(mode="json"))
        if ev.kind in _TRANSITIONS:
            self._g_state.set(int(self._core.scope_state(ev.scope)), tags={"scope": ev.scope})
        if ev.kind == "trip":
            self._c_trips.inc(1, tags={"rule": ev.rule or "manual", "scope": ev.scope})
            if not ev.dry_run:
                self._notices.put(self._recent[-1])
        elif ev.kind == "blocked":
            self._c_blocked.inc(1, tags={"scope": ev.scope})

    def _background(self) -> None:
        tick_s = self._cfg.tick_s
        next_tick = time.monotonic() + tick_s
        while True:  # daemon thread: ends with the actor's process
            try:
                notice: dict[str, Any] | None = self._notices.get(
                    timeout=max(0.0, next_tick - time.monotonic()))
            except queue.Empty:
                notice = None
            try:
                if notice is not None:
                    self._notify(notice)
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + tick_s
                    with self._lock:
                        self._core.tick()
                        # Ray 2.60 stops exporting a gauge ~20 s after its last set(): a breaker
                        # tripped for longer would vanish from Prometheus and its alert resolve.
                        self._export_states()
            except Exception:  # e.g. the journal's disk is full: keep the thread alive
                log.exception("breaker background work failed")

    def _notify(self, notice: dict[str, Any]) -> None:
        """Fire-and-forget to every subscriber; a dead one is logged and skipped."""
        with self._lock:
            named = self._core.subscribers
            targets = list(self._handles)
        for name, method in named.items():
            try:
                targets.append((ray.get_actor(name, namespace=NAMESPACE), method))
            except Exception as exc:
                log.warning("breaker subscriber %s unreachable: %s", name, exc)
        for handle, method in targets:
            try:
                getattr(handle, method).remote(notice)
            except Exception as exc:
                log.warning("breaker could not notify %s.%s: %s", handle, method, exc)


def get_breaker(name: str = DEFAULT_NAME, *, config: BreakerConfig | None = None,
                journal_path: str | os.PathLike[str] | None = None) -> tuple[ActorHandle, bool]:
    """The named breaker, starting it (detached) if the cluster has none; ``(handle, started)``.

    The journal path is resolved here, in the caller's environment ($SPARK_RAY_BREAKER_JOURNAL,
    config, default), because the actor's worker does not inherit the caller's variables.
    Constructor arguments are ignored when the breaker already exists.
    """
    handle = lookup(name)
    if handle is not None:
        return handle, False
    path = str(resolve_journal_path(journal_path, config))
    handle = get_or_create(CircuitBreakerActor, name, config or BreakerConfig(), path, name,
                           detached=True)
    return handle, True
