"""Readable, stable actor names and race-free get-or-create.

Operators find actors in the Ray dashboard by name, and the kill switch must reach the one
circuit breaker of a cluster from any driver: so names follow one scheme,
``<role>[:<qualifier>...]`` in the ``spark_ray`` namespace, and creation never races into two
copies (Ray's ``get_if_exists``).
"""

from __future__ import annotations

import re
from typing import Any

import ray

NAMESPACE = "spark_ray"
_PART = re.compile(r"^[A-Za-z0-9_.-]+$")


def actor_name(role: str, *qualifiers: str | int) -> str:
    """``actor_name("normalizer", "binance", 0) == "normalizer:binance:0"``; rejects odd parts."""
    parts = [role, *(str(q) for q in qualifiers)]
    for part in parts:
        if not _PART.match(part):
            raise ValueError(f"actor name part {part!r} must match {_PART.pattern}")
    return ":".join(parts)


def get_or_create(actor_cls: Any, name: str, *args: Any, detached: bool = False,
                  namespace: str = NAMESPACE, max_restarts: int = -1,
                  **options: Any) -> ray.actor.ActorHandle:
    """The named actor if it is alive, else a new one; two racing callers get the same actor.

    ``actor_cls`` is a ``@ray.remote`` class. Detached actors outlive the driver (the breaker);
    others die with it. ``max_restarts=-1`` lets Ray restart a crashed actor indefinitely:
    our actors recover their state themselves (journals, write-ahead logs).
    """
    opts: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "get_if_exists": True,
        "max_restarts": max_restarts,
        **options,
    }
    if detached:
        opts["lifetime"] = "detached"
    return actor_cls.options(**opts).remote(*args)


def lookup(name: str, namespace: str = NAMESPACE) -> ray.actor.ActorHandle | None:
    """The named actor, or None when the cluster has none by that name."""
    try:
        return ray.get_actor(name, namespace=namespace)
    except ValueError:
        return None


def actor_ref(name: str, namespace: str = NAMESPACE) -> str:
    """A named actor as a plain string for another actor's constructor.

    An actor handle passed as a constructor argument lives in the object store, and a restart
    (``max_restarts > 0``) can fail once it is gone (ray#53727); a name is resolved again at
    every (re)start.
    """
    return f"{namespace}/{name}"


def resolve_actor(ref: Any, timeout_s: float = 30.0) -> Any:
    """The handle for an :func:`actor_ref` string (waiting for its registration); a handle as is."""
    if not isinstance(ref, str):
        return ref
    import time

    namespace, _, name = ref.partition("/")
    deadline = time.monotonic() + timeout_s
    while True:
        handle = lookup(name, namespace)
        if handle is not None:
            return handle
        if time.monotonic() > deadline:
            raise ValueError(f"no actor {name!r} in namespace {namespace!r}")
        time.sleep(0.1)
