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
