"""Placement on a local multi-node cluster (``ray.cluster_utils.Cluster``, 3 nodes on 127.0.0.1):
streams actors spread, ``colocate_with`` honoured, one detached breaker, and the loss of a worker
node mid-stream with every trade id in the lake exactly once.

The cluster runs in a subprocess (``multinode_scenario.py``, one JSON line of facts): this test
session may already be attached to its own Ray, and a driver attaches to one Ray only.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spark_ray.app.placement import streams_options

from helpers import REPO

SCENARIO = Path(__file__).with_name("multinode_scenario.py")
TRADES = 2000


@pytest.fixture(scope="module")
def facts() -> Iterator[dict[str, Any]]:
    # Short path: Ray's socket paths under it must stay below the 107-byte limit.
    work = Path(tempfile.mkdtemp(prefix="sr-place-", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RAY_TMPDIR=str(work), RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
    proc = subprocess.Popen([sys.executable, str(SCENARIO), "--work", str(work), "--trades",
                             str(TRADES)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=400)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the scenario and the Ray nodes it started
        out, _ = proc.communicate()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines = [line for line in out.splitlines() if line.startswith("SCENARIO ")]
    assert proc.returncode == 0 and lines, out[-6000:]
    yield json.loads(lines[-1][len("SCENARIO "):])


def test_the_cluster_is_three_nodes_on_loopback(facts: dict[str, Any]) -> None:
    assert facts["node_ips"] == ["127.0.0.1"]
    assert len({facts["head"], *facts["workers"]}) == 3


def test_streams_actors_are_spread_over_the_nodes(facts: dict[str, Any]) -> None:
    nodes = facts["fabric_nodes"]
    assert set(nodes) == {"sink", "normalizer", "connector"}
    assert set(nodes.values()) == {facts["head"], *facts["workers"]}  # one actor per node


def test_colocate_with_places_an_actor_on_its_targets_node(facts: dict[str, Any]) -> None:
    # One probe per fabric actor; the three targets sit on three different nodes, so at least
    # two probes had to go somewhere other than the driver's node.
    assert facts["probe_nodes"] == facts["fabric_nodes"]
    # The ExecutorActor itself, placed next to its normalizer.
    assert facts["executor_node"] == facts["fabric_nodes"]["normalizer"]


def test_the_breaker_is_one_named_detached_actor(facts: dict[str, Any]) -> None:
    b = facts["breaker"]
    # Started by another driver that has exited since: still alive, so detached.
    assert b["found_id"] == b["created_by_other_driver"]
    assert b["state"] == "ARMED"
    assert b["named_copies"] == 1
    assert b["get_breaker_started_another"] is False  # get-or-create found the same one
    assert facts["breaker_after"] == "ARMED"  # and it answers after the node loss too


def test_losing_a_worker_node_mid_stream_loses_no_trade(facts: dict[str, Any]) -> None:
    lost = facts["lost_node"]
    assert lost in facts["workers"] and facts["lost_roles"]
    assert lost not in facts["alive_nodes_after"]
    after = facts["fabric_nodes_after"]
    # Every actor answers again, on a surviving node; the ones that lived elsewhere stayed put.
    assert set(after.values()) <= set(facts["alive_nodes_after"])
    for role, node in facts["fabric_nodes"].items():
        if role not in facts["lost_roles"]:
            assert after[role] == node
    # The stream went on: from a quarter of the trades at the loss to all of them.
    for s in ("BTCUSDT", "ETHUSDT"):
        assert facts["stored_before_loss"][f"trades:{s}"] < TRADES
        assert facts["stored_after_loss"][f"trades:{s}"] >= TRADES
        lake = facts["lake"][s]
        assert lake["published"] == TRADES
        assert lake["equal"], lake  # every published trade id in the lake exactly once
        assert lake["missing"] == lake["extra"] == 0 and lake["distinct"] == lake["stored"]


def test_a_single_node_keeps_rays_default_placement(ray_session: object) -> None:
    assert streams_options() == {}
