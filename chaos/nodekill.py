"""``python -m spark_ray.chaos.nodekill``: the ``kill_node`` experiment in a process of its own.

A driver can be attached to one Ray only, so the multi-node cluster lives here: a head and
``workers`` worker nodes from ``ray.cluster_utils.Cluster``, every one bound to 127.0.0.1, each
exporting metrics on its own port (Ray lists them all in the head session's service-discovery
file, which the stack's Prometheus scrapes). The fabric spreads its actors over the nodes; the
experiment removes the worker node hosting the most of them (processes SIGKILLed) and measures
like every other experiment. The measurement goes to ``--result`` as JSON; the cluster is torn
down here, by this process, whatever happens.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def start_cluster(workers: int) -> Any:
    """Head + ``workers`` nodes on loopback, quick node-death detection, 2 s metric reports."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ.setdefault("RAY_metrics_report_interval_ms", "2000")
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster

    ray_constants.ENABLE_RAY_CLUSTER = False
    node: dict[str, Any] = {"node_ip_address": LOOPBACK, "num_cpus": 1}
    cluster = Cluster(initialize_head=True, head_node_args={
        **node, "metrics_export_port": _free_port(), "include_dashboard": True,
        "dashboard_host": LOOPBACK, "dashboard_port": _free_port(),
        "_system_config": {"health_check_period_ms": 1000, "health_check_failure_threshold": 3,
                           "health_check_initial_delay_ms": 1000}})
    for _ in range(workers):
        cluster.add_node(**node, metrics_export_port=_free_port())
    cluster.wait_for_nodes()
    return cluster


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--experiment", type=Path, required=True, help="experiment JSON")
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--result", type=Path, required=True)
    args = p.parse_args(argv)

    from spark_ray.chaos.experiments import Experiment
    from spark_ray.chaos.runner import run_experiment
    from spark_ray.chaos.stack import Stack
    from spark_ray.chaos.verdict import FAIL, Measurement

    spec = json.loads(args.experiment.read_text())
    exp = Experiment.model_validate(spec["experiment"])

    def log(msg: str) -> None:
        print(f"chaos: [{exp.id}] {msg}", flush=True)

    t0 = time.monotonic()
    cluster = stack = None
    m: Measurement | None = None
    final: dict[str, Any] = {}
    err = None
    try:
        workers = int(exp.fault.params.get("workers", 2))
        cluster = start_cluster(workers)
        from spark_ray.app.session import connect
        from spark_ray.config import RayConfig

        connect(cluster.address, config=RayConfig(log_to_driver=False), quiet=True)
        import ray

        log(f"cluster: {len(ray.nodes())} nodes on "
            f"{sorted({n['NodeManagerAddress'] for n in ray.nodes()})} "
            f"({time.monotonic() - t0:.0f} s)")
        stack = Stack(args.work / "stack", cluster=cluster, log=lambda s: log(f"  {s}"))
        stack.start()
        placement = {n: a.get("node_id", "")[:8] for n, a in stack.actors().items()}
        log(f"  actors on nodes: {placement}")
        m = run_experiment(stack, exp, log)
    except Exception as e:  # reported as the experiment's failure, with the reason
        err = f"{type(e).__name__}: {e}"
        log(f"error: {err}")
    finally:
        if stack is not None:
            try:
                final = stack.stop()
            except Exception as e:
                err = err or f"stop: {type(e).__name__}: {e}"
        import ray

        if ray.is_initialized():
            ray.shutdown()
        if cluster is not None:
            cluster.shutdown()
    if m is None:
        m = Measurement(exp.id, alert=exp.expect_alert, status=FAIL,
                        reasons=[err or "no measurement"])
    elif final and final.get("lost"):
        m.notes.append(f"lake at the end: {final['lost']} trades lost")
    args.result.write_text(json.dumps({"measurement": m.to_dict(), "final_lake": final},
                                      default=str, indent=1))
    log(f"done in {time.monotonic() - t0:.0f} s: {m.status}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
