"""Shared by the observability tests (a module of its own: ``conftest`` is not importable by
name under --import-mode=importlib).

Ray's dashboard reads ``RAY_PROMETHEUS_HOST`` once, when Ray starts; the session's Ray starts after
collection, so importing this module (conftest.py does, at collection) points it at the port the
end-to-end test's Prometheus will use: the real wiring ``spark-ray observe up`` prints.
"""

from __future__ import annotations

import os

import pytest

from helpers import free_port

if "RAY_PROMETHEUS_HOST" not in os.environ:
    E2E_PROM_PORT = free_port()
    os.environ["RAY_PROMETHEUS_HOST"] = f"http://127.0.0.1:{E2E_PROM_PORT}"
else:  # preset by the caller: the e2e Prometheus uses a free port, the dashboard check skips
    E2E_PROM_PORT = 0


def need(binary: str) -> str:
    """The binary's path; a missing one fails under CI=true and skips (with the fix) locally."""
    from spark_ray.observe.prom import APT_PACKAGE, find_binary

    path = find_binary(binary)
    if path is None:
        msg = f"{binary} not installed (apt-get install -y {APT_PACKAGE}; make test does this)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return path
