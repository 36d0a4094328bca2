"""The placement scenario on a local 3-node Ray cluster; prints one JSON line of facts.

Run by ``test_placement.py`` in a subprocess: a driver can attach to one Ray only, and the test
session already has one. ``RAY_TMPDIR`` (set by the caller) keeps this cluster's files and
sockets out of /tmp/ray, so nothing here touches any other Ray on the machine.

    head (driver) + 2 workers, all on 127.0.0.1
    1. streams fabric (sink, normalizer, connector) on the venue simulator -> where each runs
    2. colocate_with(actor) probes, and an ExecutorActor next to the normalizer -> where they run
    3. the breaker, started by another driver that then exits -> still there, one of it
    4. the worker holding the normalizer dies (SIGKILL) mid-stream -> where the actors come
       back, and the lake against the venue's ground truth
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # before Ray is imported: loopback only

import ray
from ray.cluster_utils import Cluster

from spark_ray.actors.breaker import get_breaker
from spark_ray.actors.executor import ExecutorActor
from spark_ray.actors.naming import NAMESPACE, lookup
from spark_ray.app.fabric import Fabric, FabricConfig
from spark_ray.app.placement import colocate_with, node_of, placement
from spark_ray.app.session import connect, disconnect
from spark_ray.execution.executor import ExecutorConfig
from spark_ray.execution.spec import ExecutorSpec
from spark_ray.lake import DataStore
from spark_ray.venue import Venue

SYMBOLS = ("BTCUSDT", "ETHUSDT")
# Node death is noticed after 3 missed 1 s health checks (Ray's defaults: tens of seconds).
FAST_FAILURE_DETECTION = {"health_check_failure_threshold": 3, "health_check_timeout_ms": 1000,
                          "health_check_period_ms": 1000}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@ray.remote(num_cpus=0)
class Probe:
    """Stands in for an executor: an actor placed with ``colocate_with``."""

    def node(self) -> str:
        return str(ray.get_runtime_context().get_node_id())


def start_breaker_from_another_driver(address: str, journal: Path) -> str:
    """A second driver starts the breaker and exits; returns the actor id it saw."""
    code = (
        "import sys; from spark_ray.app.session import connect; "
        "from spark_ray.actors.breaker import get_breaker; "
        "connect(sys.argv[1], quiet=True); "
        "h, started = get_breaker(journal_path=sys.argv[2]); "
        "assert started; print(h._actor_id.hex())"
    )
    out = subprocess.run([sys.executable, "-c", code, address, str(journal)],
                         capture_output=True, text=True, timeout=120, check=True)
    return out.stdout.strip().splitlines()[-1]


def wait_node_dead(node_id: str, timeout_s: float = 60.0) -> float:
    t0 = time.monotonic()
    while any(n["NodeID"] == node_id and n["Alive"] for n in ray.nodes()):
        if time.monotonic() - t0 > timeout_s:
            raise TimeoutError(f"node {node_id} still alive after {timeout_s} s")
        time.sleep(0.2)
    return time.monotonic() - t0


def lake_vs_truth(venue: Venue, store: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for s in SYMBOLS:
        ids = DataStore(store).read("trades", "binance", s)["trade_id"].to_pylist()
        want = venue.ground_truth_ids(s)
        out[s] = {"published": len(want), "stored": len(ids), "distinct": len(set(ids)),
                  "missing": len(set(want) - set(ids)), "extra": len(set(ids) - set(want)),
                  "equal": ids == want}
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--trades", type=int, default=2000)
    args = p.parse_args()
    facts: dict[str, Any] = {}
    t0 = time.monotonic()

    cluster = Cluster(initialize_head=True, head_node_args=dict(
        num_cpus=1, node_ip_address="127.0.0.1", gcs_server_port=free_port(),
        include_dashboard=False, dashboard_agent_listen_port=free_port(),
        metrics_export_port=free_port(), _system_config=FAST_FAILURE_DETECTION))
    workers = [cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1") for _ in range(2)]
    venue: Venue | None = None
    fabric: Fabric | None = None
    try:
        connect(cluster.address, quiet=True, log_to_driver=False)
        assert cluster.head_node is not None
        facts["head"] = cluster.head_node.node_id
        facts["workers"] = [w.node_id for w in workers]
        facts["node_ips"] = sorted({n["NodeManagerAddress"] for n in ray.nodes()})
        facts["cluster_up_s"] = round(time.monotonic() - t0, 1)

        # 1. The fabric, spread.
        venue = Venue(symbols=SYMBOLS, seed=5, history_minutes=60, trades_per_second=250,
                      start_paused=True, max_trades_per_symbol=args.trades).start()
        store = str(args.work / "lake")
        fabric = Fabric(FabricConfig(
            symbols=list(SYMBOLS), streams=["trade"], ws_url=venue.ws_url,
            rest_url=venue.rest_url, store=store, namespace="placement-test", grace_ms=150,
            idle_check_ms=1000, sink_flush_ms=300, ping_s=1.0,
            start_ids={f"trades:{s}": venue.config.first_trade_id for s in SYMBOLS})).start()
        roles = {"sink": fabric.sink, "normalizer": fabric.normalizers[0],
                 "connector": fabric.connectors[0]}
        facts["fabric_nodes"] = placement(roles)

        # 2. colocate_with: a probe next to each fabric actor (they are on different nodes).
        probe: Any = Probe
        probes = {role: probe.options(**colocate_with(h)).remote() for role, h in roles.items()}
        facts["probe_nodes"] = {role: ray.get(pr.node.remote(), timeout=60)
                                for role, pr in probes.items()}
        for pr in probes.values():
            ray.kill(pr)
        # And the real executor class, placed as a driver places it (constructed, not started:
        # placement does not need a market or an approval).
        spec = ExecutorSpec(config=ExecutorConfig(), strategy="sma_cross", params={},
                            journal_path=str(args.work / "executor.jsonl"))
        executor = ExecutorActor.options(
            name="executor:placement", namespace="placement-test",
            **colocate_with(fabric.normalizers[0])).remote(spec, "executor:placement",
                                                          "placement-test")
        facts["executor_node"] = node_of(executor, timeout_s=60)
        ray.kill(executor, no_restart=True)

        # 3. The breaker: one named detached actor, started by a driver that has exited.
        journal = args.work / "breaker.jsonl"
        created_id = start_breaker_from_another_driver(cluster.address, journal)
        handle = lookup("breaker")
        facts["breaker"] = {
            "created_by_other_driver": created_id,
            "found_id": handle._actor_id.hex() if handle is not None else None,
            "state": ray.get(handle.status.remote(), timeout=30)["state"] if handle else None,
            "named_copies": sum(1 for a in ray.util.list_named_actors(all_namespaces=True)
                                if a["name"] == "breaker" and a["namespace"] == NAMESPACE),
            "get_breaker_started_another": get_breaker(journal_path=str(journal))[1],
            "node": node_of(handle) if handle is not None else None,
        }

        # 4. Lose the worker that runs the normalizer (or, failing that, any fabric actor).
        venue.resume()
        for s in SYMBOLS:
            venue.wait_for_trades(s, args.trades // 4, timeout=60)
        before = fabric.wait_stored({f"trades:{s}": args.trades // 5 for s in SYMBOLS}, 60)
        by_node = {w.node_id: w for w in workers}
        victim_id = next((facts["fabric_nodes"][r] for r in ("normalizer", "connector", "sink")
                          if facts["fabric_nodes"][r] in by_node), None)
        if victim_id is None:
            raise SystemExit(f"no fabric actor on a worker: {facts['fabric_nodes']}")
        facts["lost_node"] = victim_id
        facts["lost_roles"] = sorted(r for r, n in facts["fabric_nodes"].items()
                                     if n == victim_id)
        facts["stored_before_loss"] = before
        t_loss = time.monotonic()
        cluster.remove_node(by_node[victim_id], allow_graceful=False)
        facts["node_dead_after_s"] = round(wait_node_dead(victim_id), 1)

        got = fabric.wait_stored({f"trades:{s}": args.trades for s in SYMBOLS}, 180)
        facts["stored_after_loss"] = got
        facts["recovered_s"] = round(time.monotonic() - t_loss, 1)
        fabric.quiesce(10.0)
        facts["fabric_nodes_after"] = placement(roles)
        facts["alive_nodes_after"] = sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])
        facts["breaker_after"] = ray.get(handle.status.remote(), timeout=60)["state"] \
            if handle is not None else None
        fabric.stop(compact=True)
        fabric = None
        facts["lake"] = lake_vs_truth(venue, store)
        if handle is not None:
            ray.kill(handle, no_restart=True)
    finally:
        if fabric is not None:
            fabric.kill()
        if venue is not None:
            venue.stop()
        disconnect()
        cluster.shutdown()
    facts["total_s"] = round(time.monotonic() - t0, 1)
    print("SCENARIO " + json.dumps(facts, sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
