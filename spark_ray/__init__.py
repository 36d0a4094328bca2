"""Spark-Ray: a crypto trading platform built as an actor system on Ray.

The package root stays light (no Ray import) so the CLI answers ``--help`` instantly; the Ray
session is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from spark_ray.app.session import Session


def connect(address: str | None = None, **opts: Any) -> Session:
    """Attach to Ray (local loopback Ray when no address): :func:`spark_ray.app.session.connect`."""
    from spark_ray.app.session import connect as _connect

    return _connect(address, **opts)


__all__ = ["__version__", "connect"]
