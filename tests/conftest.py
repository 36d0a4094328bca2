"""Shared fixtures: one loopback Ray per test session, and a CLI runner.

Ray costs ~5 s to start here, so it starts once (session scope), on free ports so it never
collides with a developer's own Ray or with a CLI subprocess that starts its own.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def cli_env(**extra: str) -> dict[str, str]:
    """Environment for a CLI subprocess: its own Ray ports, no inherited cluster address."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update({
        "SPARK_RAY_RAY__DASHBOARD_PORT": str(free_port()),
        "SPARK_RAY_RAY__METRICS_EXPORT_PORT": str(free_port()),
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    })
    env.update(extra)
    return env


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 300) -> CliResult:
    """Run ``spark-ray ARGS`` as a real subprocess (what a user runs)."""
    proc = subprocess.run(
        [sys.executable, "-m", "spark_ray", *args], capture_output=True, text=True,
        cwd=cwd, env=env or cli_env(), timeout=timeout,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="session")
def ray_session() -> Iterator[object]:
    """A local Ray on 127.0.0.1 shared by every test that needs one; shut down at the end."""
    from spark_ray.config import RayConfig
    from spark_ray.session import connect, disconnect

    cfg = RayConfig(dashboard_port=free_port(), metrics_export_port=free_port(), num_cpus=2)
    session = connect(config=cfg, quiet=True)
    yield session
    disconnect()
