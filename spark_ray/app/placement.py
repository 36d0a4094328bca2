"""Where the platform's actors run on a multi-node Ray cluster: the three placement policies.

**Streams actors (connectors, normalizers, sinks) are spread over the nodes**
(:func:`streams_options`): losing one node takes out part of the fabric, not all of it, and its
restartable actors (``max_restarts=-1``) come back, spread again, on the survivors. The policy is
Ray's ``scheduling_strategy="SPREAD"`` plus a nominal 1-byte ``memory`` request.

The nominal request is what makes it work. Our streams actors hold no CPU (``num_cpus=0``: they
are I/O-bound and must schedule even while Tune fills every CPU), and Ray places an actor that
requests no resources on a random node whatever its scheduling strategy (ray-project/ray#25360
fixed that for hard node affinity only). Measured on a 3-node ``ray.cluster_utils.Cluster``
(Ray 2.60), batches of 3 actors landed on:

- ``SPREAD``, no resources: 3, 3, 2, 2, 1, 1 distinct nodes; soft node affinity: 1 of 3 on target;
- ``SPREAD`` + ``memory=1``: 3, 3, 3, 3, 3 distinct nodes; soft node affinity: 9/9 on target.

A 1-byte logical ``memory`` request is always available (nothing in the platform books logical
memory) and, unlike a fractional CPU, is never starved by jobs that take every CPU.

Why not a placement group (``strategy="SPREAD"``, which also spread 6/6)? Its bundles reserve
resources these actors do not use, it has to be removed when the fabric stops (one more thing to
leak), a lost node's bundle must be rescheduled before its actor can restart, and
``STRICT_SPREAD`` cannot reschedule at all once there are fewer nodes than bundles. ``SPREAD``
needs none of that; its limit is that it spreads at creation: a node that joins later gets
streams actors only as they restart.

**The circuit breaker is one named, detached actor** (``breaker`` in namespace ``spark_ray``,
:func:`spark_ray.actors.breaker.get_breaker`, race-free get-or-create): every driver and the kill
switch reach the same one, it outlives the driver that started it, and if its node dies Ray
restarts it elsewhere, where it replays its journal (so the journal belongs on shared storage).

**An executor runs next to its normalizer** (:func:`colocate_with`): market data reaches it
without crossing the network, and a node failure takes producer and consumer out together rather
than leaving one waiting on the other. Soft node affinity, so a lost node does not strand it.
"""

from __future__ import annotations

from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

# A resource request Ray can always grant: without one, strategies are ignored (see above).
NOMINAL: dict[str, Any] = {"memory": 1}


def alive_nodes() -> list[dict[str, Any]]:
    """``ray.nodes()`` without the dead ones (Ray keeps dead nodes in the list)."""
    return [n for n in ray.nodes() if n.get("Alive")]


def streams_options() -> dict[str, Any]:
    """``.options(...)`` for the fabric's actors: spread when there are several alive nodes,
    nothing (Ray's default) on a single node."""
    if len(alive_nodes()) < 2:
        return {}
    return {"scheduling_strategy": "SPREAD", **NOMINAL}


def node_of(handle: Any, timeout_s: float = 30.0) -> str:
    """The hex id of the node the actor runs on. Asked of the actor itself, so it also proves the
    actor is alive, and it needs no dashboard (the state API does)."""
    ref = handle.__ray_call__.remote(lambda _self: ray.get_runtime_context().get_node_id())
    return str(ray.get(ref, timeout=timeout_s))


def colocate_with(handle: Any, *, soft: bool = True, nominal: bool = True,
                  timeout_s: float = 30.0) -> dict[str, Any]:
    """``Executor.options(**colocate_with(normalizer))``: run where ``handle`` runs.

    Soft by default: if that node is gone when the actor (re)starts, Ray places it elsewhere
    instead of failing it. The node is looked up now; a later move of ``handle`` is not followed.
    ``nominal`` adds the 1-byte ``memory`` request without which Ray ignores the affinity of an
    actor that requests no resources; pass ``nominal=False`` for an actor that books its own
    ``memory`` (the option would replace it).
    """
    node = node_of(handle, timeout_s)
    opts: dict[str, Any] = {
        "scheduling_strategy": NodeAffinitySchedulingStrategy(node_id=node, soft=soft)}
    if nominal:
        opts.update(NOMINAL)
    return opts


def placement(handles: dict[str, Any], timeout_s: float = 30.0) -> dict[str, str]:
    """Role -> node id for a set of actors (reports, tests); an unreachable actor -> ``"?"``."""
    out: dict[str, str] = {}
    for role, handle in handles.items():
        try:
            out[role] = node_of(handle, timeout_s)
        except (ray.exceptions.RayError, TimeoutError):
            out[role] = "?"
    return out
