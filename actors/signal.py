"""``SignalActor``: the signal model in the live loop; a thin Ray shell over
:class:`spark_ray.signals.live.SignalCore`.

It subscribes to the streams fabric like an executor (``NormalizerActor.subscribe``), updates
each symbol's features one trade at a time in trade-id order, scores the approved model once per
batch and publishes every trade's signals to its executors (``ExecutorActor.on_signals``), which
put them beside their bars. Ray does not promise that an async actor runs calls in the order they
were sent (measured: dozens of 1,500 trades overtaken under load), and features depend on trade
order: so trades ahead of a missing id wait for it (``SignalCore``, as the executor's bar builder
does), and each published batch carries a sequence number the executor's ``SignalBook`` orders
by. Its constructor takes only plain strings (the model folder, the symbols, the
executors' names): after a crash Ray rebuilds it from them, it re-checks the model's approval and
its sha256 and starts over (features warm up again from the next trades).

Metrics (Ray's Prometheus export, ``ray_`` prefixed): ``signals_latency_ms`` (a trade's receipt
by the connector -> its signal published; a sample of up to 64 a second, the exact percentiles
are in ``status()``), ``signals_published_total{symbol}``,
``signals_feature_staleness_s{symbol}`` (seconds since a symbol's features last saw a trade;
re-set every second, as Ray drops a gauge ~20 s after its last ``set``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from pathlib import Path
from typing import Any

import ray
from ray.util.metrics import Counter, Gauge, Histogram

from spark_ray.actors.naming import NAMESPACE, get_or_create, lookup
from spark_ray.actors.priority import prefer_live_work
from spark_ray.signals.live import SignalCore
from spark_ray.streams.metrics import sample

log = logging.getLogger(__name__)
EXPORT_S = 1.0
TICK_S = 0.1
LATENCY = "signals_latency_ms"
PUBLISHED = "signals_published_total"
STALENESS = "signals_feature_staleness_s"
MS_BOUNDARIES: list[float] = [0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000]


def load_served_model(model_dir: str, require_approval: bool = True,
                      trusted_keys: str | None = None) -> Any:
    """The model to serve: approved (signed by a key of ``trusted_keys``, default: this node's
    trusted-keys file) and intact (sha256, feature definitions), else CheckFailed/ValueError/
    UserError saying why."""
    from spark_ray.signals import artifact

    folder = Path(model_dir)
    if require_approval:
        from spark_ray.approval.model import check_model
        from spark_ray.approval.signing import TrustedKeys

        check_model(folder, TrustedKeys.load(trusted_keys))
    return artifact.load(folder)


@ray.remote(num_cpus=0, max_restarts=-1)
class SignalActor:
    def __init__(self, model_dir: str, symbols: list[str], executors: list[str],
                 name: str = "signals", namespace: str = NAMESPACE,
                 require_approval: bool = True, ref_wait_ms: float = 250.0,
                 trusted_keys: str | None = None) -> None:
        prefer_live_work()
        self.name = name
        self.namespace = namespace
        self.executors = list(executors)
        self.model = load_served_model(model_dir, require_approval, trusted_keys)
        self.model_sha256: str = self.model.card["model_sha256"]
        self.core = SignalCore(self.model.features,
                               functools.partial(self.model.predict, threads=1), symbols,
                               ref_wait_ms=ref_wait_ms)
        self.pid = os.getpid()
        self.errors = 0
        self.dropped = 0  # messages an executor could not be reached for
        self._handles: dict[str, Any] = {}
        self._task: asyncio.Task[None] | None = None
        self._h_lat = Histogram(LATENCY, "A trade received -> its signal published (ms).",
                                boundaries=MS_BOUNDARIES, tag_keys=("actor",))
        self._c_pub = Counter(PUBLISHED, "Signals published (one per trade).",
                              tag_keys=("actor", "symbol"))
        self._g_stale = Gauge(STALENESS, "Seconds since the symbol's features saw a trade.",
                              tag_keys=("actor", "symbol"))
        for metric in (self._h_lat, self._c_pub, self._g_stale):
            metric.set_default_tags({"actor": name})
        self._published_exported: dict[str, int] = {}

    def _handle(self, executor: str) -> Any:
        h = self._handles.get(executor)
        if h is None:
            h = lookup(executor, self.namespace)
            if h is None:
                raise LookupError(f"no executor named {executor!r}")
            self._handles[executor] = h
        return h

    async def on_market_data(self, payload: dict[str, Any]) -> None:
        """From a NormalizerActor: signals for every trade, published before returning."""
        arrived = time.time() * 1000
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._exporter())
        # Raw trades only, as the executor reads them: their ids are the ids a bar's last
        # trade is looked up by (aggregate trades number differently and would mix in). The
        # book rows go to the order-book features; payloads are taken in the sender's order.
        try:
            results = self.core.on_payload(payload, arrived)
        except Exception:
            self.errors += 1
            log.exception("%s: scoring a batch failed", self.name)
            return
        self._publish(results, arrived)

    def _publish(self, results: list[Any], arrived: float) -> None:
        for scored, recv in results:
            msg = scored.to_message()
            for ex in self.executors:
                try:
                    self._handle(ex).on_signals.remote(msg)
                except Exception:
                    self._handles.pop(ex, None)
                    self.dropped += 1
            self.core.published_now(scored, recv, time.time() * 1000, arrived)

    async def _exporter(self) -> None:
        """Timers: trades held behind a hole that never filled (every TICK_S), metrics
        (every EXPORT_S)."""
        next_export = 0.0
        while True:
            await asyncio.sleep(TICK_S)
            try:
                now = time.time() * 1000
                self._publish(self.core.due(now), now)
                if time.monotonic() >= next_export:
                    next_export = time.monotonic() + EXPORT_S
                    self._export()
            except Exception:
                log.exception("%s: timer failed", self.name)

    def _export(self) -> None:
        # A sample of the second's latencies (each observe is a call that holds the loop:
        # every one of 5,000 a second paused it ~14 ms); the exact ones are in status().
        for ms in sample(self.core.drain_latencies(), 64).tolist():
            self._h_lat.observe(ms)
        for sym, n in self.core.published.items():
            new = n - self._published_exported.get(sym, 0)
            if new:
                self._c_pub.inc(new, {"symbol": sym})
                self._published_exported[sym] = n
        for sym, s in self.core.staleness_s(time.time() * 1000).items():
            self._g_stale.set(s, {"symbol": sym})

    def status(self) -> dict[str, Any]:
        return {"name": self.name, "pid": self.pid, "model_sha256": self.model_sha256,
                "executors": self.executors, "errors": self.errors, "dropped": self.dropped,
                **self.core.status(time.time() * 1000)}


def start_signals(model_dir: str, symbols: list[str], executors: list[str], name: str,
                  namespace: str = NAMESPACE, require_approval: bool = True,
                  ref_wait_ms: float = 250.0, trusted_keys: str | None = None,
                  **options: Any) -> Any:
    """The named signal actor (created if absent), its model checked; raises with the reason
    (not approved, tampered) when it refuses."""
    load_served_model(model_dir, require_approval, trusted_keys)  # refuse here, first
    handle = get_or_create(SignalActor, name, model_dir, list(symbols), list(executors), name,
                           namespace, require_approval, float(ref_wait_ms), trusted_keys,
                           namespace=namespace, **options)
    ray.get(handle.status.remote(), timeout=120)  # surfaces a constructor's refusal
    return handle
