"""``ConnectorActor``: the Ray shell of :class:`spark_ray.streams.connector.ConnectorCore`.

The core reads the exchange and cuts batches; this shell gives it the normalizer (a batch is
sent as ``normalizer.ingest``, and a Ray error means "not acknowledged, send again") and Ray's
metrics (heartbeat gauge, WebSocket round-trip histogram, chaos-drop counter).
"""

from __future__ import annotations

import contextlib
from typing import Any

import ray
from ray.util.metrics import Counter, Gauge, Histogram

from spark_ray.actors.naming import resolve_actor
from spark_ray.actors.priority import prefer_live_work
from spark_ray.streams import metrics as m
from spark_ray.streams.connector import ConnectorConfig, ConnectorCore

__all__ = ["ConnectorActor", "ConnectorConfig"]


class _RayMetrics:
    def __init__(self, exchange: str, name: str) -> None:
        tags = {"exchange": exchange, "symbol": "all", "stream": name}
        self._heartbeat = Gauge(m.HEARTBEAT, "Unix time of the last frame a connector read.",
                                tag_keys=m.LABELS)
        self._heartbeat.set_default_tags(tags)
        self._rtt = Histogram(m.WS_ROUNDTRIP, "WebSocket ping round trip (ms).",
                              boundaries=m.MS_BOUNDARIES, tag_keys=m.LABELS)
        self._rtt.set_default_tags(tags)
        self._drop = Counter(m.DROPS, "Frames the fabric dropped (chaos drops only: "
                                      "overflow applies backpressure instead).",
                             tag_keys=m.LABELS)
        self._drop.set_default_tags(tags)

    def heartbeat(self, unix_s: float) -> None:
        self._heartbeat.set(unix_s)

    def round_trip(self, ms: float) -> None:
        self._rtt.observe(ms)

    def dropped(self, frames: int) -> None:
        self._drop.inc(frames)


@ray.remote(num_cpus=0, max_restarts=-1)
class ConnectorActor:
    def __init__(self, config: ConnectorConfig, normalizer: Any, name: str = "connector") -> None:
        prefer_live_work()
        self.normalizer = resolve_actor(normalizer)  # a name (fabric) or a handle (tests)
        self.core = ConnectorCore(config, self._send, name,
                                  retryable=(ray.exceptions.RayError,),
                                  observer=_RayMetrics(config.exchange, name))

    async def _send(self, seq: int, frames: list[bytes], recv: list[int], marks: list[str],
                    sender: str, low: int) -> Any:
        return await self.normalizer.ingest.remote(seq, frames, recv, marks, sender, low)

    async def start(self) -> dict[str, Any]:
        """Idempotent: the supervisor calls it again after Ray restarted this actor."""
        if not self.core.running:
            # Open the actor-to-actor channel before the first real batch needs it.
            with contextlib.suppress(ray.exceptions.RayError):
                await self.normalizer.ingest.remote(0, [], [], [])
        return await self.core.start()

    async def stop(self, timeout_s: float = 20.0) -> dict[str, Any]:
        return await self.core.stop(timeout_s)

    def status(self) -> dict[str, Any]:
        return self.core.status()

    async def chaos(self, kind: str, count: int = 10, delay_ms: float = 500.0) -> dict[str, Any]:
        return await self.core.chaos(kind, count, delay_ms)
