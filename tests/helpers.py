"""Test helpers shared by every test folder: free ports, a CLI runner, paths.

A module of its own (not conftest.py): several folders have a conftest.py, and
``from conftest import ...`` would pick whichever one Python imported first.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


def signer(name: str = "alice") -> Any:
    """A session approver's key (tests/conftest.py: approver_keys)."""
    from spark_ray.approval.signing import load_signer

    return load_signer(name)


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
