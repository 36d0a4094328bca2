"""Observability: a real Prometheus on Ray's metrics export, Grafana dashboards, alert rules.

- :mod:`spark_ray.observe.prom`: Prometheus config generation (Ray's file service discovery, our
  alert rules), a managed ``prometheus`` process on 127.0.0.1, and a small HTTP API client;
- :mod:`spark_ray.observe.dashboards`: the dashboards as Python (one source of truth) and their
  Grafana JSON model (``grafana/dashboards/*.json``);
- :mod:`spark_ray.observe.render`: each dashboard rendered to PNG from Prometheus query results;
- :mod:`spark_ray.observe.raydash`: the Ray dashboard's HTTP APIs (token auth);
- :mod:`spark_ray.app.cli.observe`: ``spark-ray observe up|down|status``;
- :mod:`spark_ray.app.demo.observe`: the ``make demo`` stage.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["grafana_dir"]


def grafana_dir() -> Path:
    """The ``grafana/`` folder: ``$SPARK_RAY_GRAFANA_DIR``, the installed copy
    (``spark_ray/grafana`` when packaged), or the repository's (editable installs)."""
    import os

    env = os.environ.get("SPARK_RAY_GRAFANA_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "grafana", here.parent.parent / "grafana"):
        if (candidate / "alerts").is_dir():
            return candidate
    raise FileNotFoundError("grafana/ (dashboards and alert rules) not found; set "
                            "SPARK_RAY_GRAFANA_DIR")
