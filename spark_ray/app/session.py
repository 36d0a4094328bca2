"""The Ray session: an embedded loopback Ray by default, a real cluster when given an address.

Every entry point (CLI, drivers, tests) goes through :func:`connect`, so the loopback rule
(nothing binds the machine's network address) and the fixed metrics port that Prometheus scrapes
are enforced in one place.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spark_ray.app.auth import AuthPlan, explain_join_failure, prepare_join
from spark_ray.config import RayConfig

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Session:
    """What a caller needs to know about the Ray it is attached to."""

    address: str
    dashboard_url: str | None
    metrics_export_port: int | None
    node_ip: str
    started_local: bool
    namespace: str
    resources: dict[str, float] = field(default_factory=dict)

    def shutdown(self) -> None:
        """Stop Ray if this process started it; leave a joined cluster running."""
        import ray

        if ray.is_initialized():
            ray.shutdown()


_current: Session | None = None


def _force_loopback() -> None:
    """Make a local Ray bind 127.0.0.1 only.

    Ray reads ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` once, when ``ray`` is imported: the env var
    covers the raylet and workers (new processes), and the module constant covers this process if
    it imported Ray before calling :func:`connect`.
    """
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False


def connect(address: str | None = None, *, config: RayConfig | None = None, quiet: bool = False,
            **opts: Any) -> Session:
    """Attach to Ray and return a :class:`Session`; idempotent within a process.

    With no ``address`` (and no ``RAY_ADDRESS``), start a local Ray bound to 127.0.0.1 only, with
    the dashboard on ``config.dashboard_host:dashboard_port`` and metrics exported on the fixed
    ``config.metrics_export_port``. With an address, join that cluster, presenting the Ray
    token by itself when one is available (:mod:`spark_ray.app.auth`); a failed join raises
    ``ConnectionError`` naming what to set. Extra ``opts`` go to ``ray.init`` (e.g.
    ``num_cpus``). Token authentication is left on (Ray's default).
    """
    global _current
    import ray

    cfg = config or RayConfig()
    if ray.is_initialized() and _current is not None:
        return _current

    target = address or os.environ.get("RAY_ADDRESS") or cfg.address
    init_kwargs: dict[str, Any] = {
        "namespace": cfg.namespace,
        "logging_level": cfg.logging_level,
        "log_to_driver": cfg.log_to_driver,
        "ignore_reinit_error": True,
    }
    plan: AuthPlan | None = None
    if target:
        started_local = False
        init_kwargs["address"] = target
        if target not in ("auto", "local"):
            plan = prepare_join()
        host = target.split("://")[-1].rsplit(":", 1)[0]
        if host in ("127.0.0.1", "localhost", "::1"):
            # Else Ray rewrites a loopback address to the machine's IP, where a loopback-only
            # cluster is not listening, and the join hangs.
            _force_loopback()
    else:
        started_local = True
        _force_loopback()
        # "local" always starts a new Ray; with no address Ray would attach to (or refuse,
        # "multiple active Ray instances") any other Ray already running on this machine.
        init_kwargs["address"] = "local"
        init_kwargs.update(
            include_dashboard=cfg.include_dashboard,
            dashboard_host=cfg.dashboard_host,
            dashboard_port=cfg.dashboard_port,
            _node_ip_address=LOOPBACK,
            _metrics_export_port=cfg.metrics_export_port,
        )
        if cfg.num_cpus is not None:
            init_kwargs["num_cpus"] = cfg.num_cpus
        if cfg.object_store_memory is not None:
            init_kwargs["object_store_memory"] = cfg.object_store_memory
    init_kwargs.update(opts)

    try:
        ctx = ray.init(**init_kwargs)
    except (ConnectionError, RuntimeError, TimeoutError, ray.exceptions.RayError) as exc:
        if plan is None:
            raise
        raise ConnectionError(explain_join_failure(target or "", plan)) from exc
    node = ray.nodes()[0] if ray.nodes() else {}
    dashboard = getattr(ctx, "dashboard_url", None) or None
    dashboard_url = f"http://{dashboard}" if dashboard and "://" not in dashboard else dashboard
    _current = Session(
        address=str(getattr(ctx, "address_info", {}).get("gcs_address", "")),
        dashboard_url=dashboard_url,
        metrics_export_port=node.get("MetricsExportPort"),
        node_ip=node.get("NodeManagerAddress", ""),
        started_local=started_local,
        namespace=cfg.namespace,
        resources={k: float(v) for k, v in ray.cluster_resources().items()},
    )
    if not quiet:
        where = "local Ray on 127.0.0.1" if started_local else f"Ray cluster at {target}"
        if plan is not None and plan.mode == "token":
            where += f" (token auth, token from {plan.token_source})"
        print(f"spark-ray: connected to {where}; dashboard: {dashboard_url or 'disabled'}",
              file=sys.stderr)
    return _current


def disconnect() -> None:
    """Shut Ray down if this process started it, and forget the session."""
    global _current
    if _current is not None:
        _current.shutdown()
    _current = None


def current_session_dir() -> Path:
    """The session folder of the Ray this process is connected to."""
    import ray

    if not ray.is_initialized():
        raise RuntimeError("Ray is not initialized in this process")
    node = ray._private.worker._global_node
    if node is None:
        raise RuntimeError("this process has no Ray node handle (not a driver?)")
    return Path(node.get_session_dir_path())
