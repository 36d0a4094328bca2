"""`streams up` waits for a slow supervisor instead of failing.

CI caught `up_many` raising GetTimeoutError when the supervisor's worker process took more than
10 s to start on a loaded 2-core node: the readiness poll let the timeout escape instead of
reporting "not ready yet" and polling again until its own deadline.
"""

from __future__ import annotations

import time
from typing import Any

import ray

from spark_ray.app.fabric import Fabric, FabricConfig
from spark_ray.app.fabric_service import _ready


@ray.remote(num_cpus=0)
class _Sink:
    def stats(self) -> dict[str, Any]:
        return {"ok": True}


@ray.remote(num_cpus=0)
class _SlowSupervisor:
    """Answers its first status call late, like a supervisor whose process is still starting."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s

    def status(self) -> dict[str, Any]:
        time.sleep(self.delay_s)
        self.delay_s = 0.0
        return {"polls": 1, "unreachable": []}


def test_a_supervisor_that_answers_late_is_not_ready_yet_then_ready(ray_session: Any) -> None:
    fabric = Fabric(FabricConfig(symbols=["BTCUSDT"]))
    fabric.sink = _Sink.remote()  # type: ignore[attr-defined]
    fabric.supervisor = _SlowSupervisor.remote(12.0)  # type: ignore[attr-defined]
    try:
        ok, why = _ready(fabric)
        assert not ok and "supervisor not answering yet" in why
        deadline = time.monotonic() + 30
        while not ok and time.monotonic() < deadline:
            ok, why = _ready(fabric)
        assert ok, why
    finally:
        ray.kill(fabric.sink)
        ray.kill(fabric.supervisor)
