"""What an actor message costs on this machine, beside the stdlib's process pipes as a peer.

The numbers behind the design rule "batch across actor boundaries": a synchronous actor round
trip, pipelined calls per second, and messages per second when sent 1,000 per call, each next to
the same pattern over ``multiprocessing.Pipe``. Prints one JSON object.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

ROUND_TRIPS = 2_000
PIPELINED = 4_000
BATCH = 1_000
BATCHES = 300


def _echo_server(conn: Connection) -> None:
    while True:
        msg = conn.recv()
        if msg is None:
            return
        conn.send(len(msg) if isinstance(msg, list | np.ndarray) else msg)


def bench_pipe() -> dict[str, float]:
    parent, child = mp.Pipe()
    proc = mp.Process(target=_echo_server, args=(child,), daemon=True)
    proc.start()
    parent.send(0)
    parent.recv()
    t0 = time.perf_counter()
    for i in range(ROUND_TRIPS):
        parent.send(i)
        parent.recv()
    rtt_ms = (time.perf_counter() - t0) / ROUND_TRIPS * 1e3
    batch = np.arange(BATCH * 4, dtype=np.float64).reshape(BATCH, 4)
    t0 = time.perf_counter()
    for _ in range(BATCHES):
        parent.send(batch)
        parent.recv()
    batched = BATCH * BATCHES / (time.perf_counter() - t0)
    parent.send(None)
    proc.join(5)
    return {"round_trip_ms": rtt_ms, "calls_per_s_sync": 1e3 / rtt_ms,
            "batched_msgs_per_s": batched}


def bench_ray() -> dict[str, float]:
    import ray

    from spark_ray.app.session import connect, disconnect
    from spark_ray.config import RayConfig

    connect(config=RayConfig(include_dashboard=False, num_cpus=2, log_to_driver=False,
                             metrics_export_port=int(os.environ.get("BENCH_METRICS_PORT", 18080))),
            quiet=True)
    try:
        @ray.remote
        class Sink:
            def __init__(self) -> None:
                self.n = 0

            def take(self, msg: Any) -> int:
                self.n += len(msg) if isinstance(msg, np.ndarray | list) else 1
                return self.n

        sink = Sink.remote()  # type: ignore[attr-defined]
        ray.get(sink.take.remote(0))
        t0 = time.perf_counter()
        for i in range(ROUND_TRIPS):
            ray.get(sink.take.remote(i))
        rtt_ms = (time.perf_counter() - t0) / ROUND_TRIPS * 1e3
        t0 = time.perf_counter()
        ray.get([sink.take.remote(i) for i in range(PIPELINED)])
        pipelined = PIPELINED / (time.perf_counter() - t0)
        batch = np.arange(BATCH * 4, dtype=np.float64).reshape(BATCH, 4)
        t0 = time.perf_counter()
        ray.get([sink.take.remote(batch) for _ in range(BATCHES)])
        batched = BATCH * BATCHES / (time.perf_counter() - t0)
        return {"round_trip_ms": rtt_ms, "calls_per_s_sync": 1e3 / rtt_ms,
                "calls_per_s_pipelined": pipelined, "batched_msgs_per_s": batched}
    finally:
        disconnect()


def main() -> None:
    pipe = bench_pipe()
    ray_ = bench_ray()
    result = {
        "benchmark": "ray_costs",
        "params": {"round_trips": ROUND_TRIPS, "pipelined": PIPELINED, "batch": BATCH,
                   "batches": BATCHES, "cpus": os.cpu_count()},
        "ray_actor": {k: round(v, 3) for k, v in ray_.items()},
        "peer_multiprocessing_pipe": {k: round(v, 3) for k, v in pipe.items()},
        "ratios": {
            "ray_rtt_over_pipe_rtt": round(ray_["round_trip_ms"] / pipe["round_trip_ms"], 2),
            "ray_batched_over_ray_sync": round(
                ray_["batched_msgs_per_s"] / ray_["calls_per_s_sync"], 1),
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
