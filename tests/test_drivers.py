"""Driver scripts: runnable locally, and as Ray jobs against a `ray start --head` cluster on
loopback (started and stopped here by its own process group, never with `ray stop`, which
would end every Ray on the machine)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spark_ray.data import DataStore
from spark_ray.data.importer import import_files
from spark_ray.samples import sample
from spark_ray.session import Session

from helpers import REPO, free_port

RAY = str(Path(sys.executable).with_name("ray"))
PREFIX = "SPARK_RAY_RESULT "


def _result(output: str) -> dict[str, Any]:
    lines = [line for line in output.splitlines() if line.startswith(PREFIX)]
    assert lines, output[-3000:]
    return dict(json.loads(lines[-1][len(PREFIX):]))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_AUTH_MODE="token", **extra)
    # A job's "python" is whatever the cluster's PATH finds: here, this venv's.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Ray head on 127.0.0.1 (its own process group); yields the dashboard URL."""
    port, dash, metrics = free_port(), free_port(), free_port()
    log = tmp_path_factory.mktemp("head") / "head.log"
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [RAY, "start", "--head", "--block", f"--port={port}", "--node-ip-address=127.0.0.1",
             "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
             f"--metrics-export-port={metrics}", "--num-cpus=2", "--include-dashboard=true",
             # The job agent's default ports (52365...) are taken by the test session's Ray.
             f"--dashboard-agent-listen-port={free_port()}",
             f"--dashboard-agent-grpc-port={free_port()}",
             "--disable-usage-stats"],
            env=_env(), stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{dash}"
    token = (Path.home() / ".ray" / "auth_token").read_text().strip()
    try:
        deadline = time.time() + 120
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                req = urllib.request.Request(f"{url}/api/jobs/",
                                             headers={"Authorization": f"Bearer {token}"})
                with urllib.request.urlopen(req, timeout=5) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            assert time.time() < deadline, "the head's job API never came up"
            time.sleep(1)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        time.sleep(2)
        with contextlib.suppress(ProcessLookupError):  # what outlived the head's own shutdown
            os.killpg(proc.pid, signal.SIGKILL)


def _submit(url: str, *args: str) -> str:
    """`ray job submit` (retrying while the job agent is still starting); returns the logs."""
    deadline = time.time() + 120
    while True:
        proc = subprocess.run([RAY, "job", "submit", "--address", url, "--working-dir",
                               str(REPO), "--", "python", *args], capture_output=True, text=True,
                              env=_env(), timeout=600)
        out = proc.stdout + proc.stderr
        if "No available agent" in out and time.time() < deadline:
            time.sleep(3)
            continue
        assert proc.returncode == 0, out[-4000:]
        return out


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("drivers") / "lake"
    import_files(DataStore(root), [sample("ETH_BTC-5m.feather")], "freqtrade")
    return root


def test_drivers_run_locally(ray_session: Session, lake: Path, tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "drivers" / "backtest.py"), "--store", str(lake), "--symbol",
         "ETHBTC", "--interval", "5m", "--out", str(tmp_path / "runs")],
        capture_output=True, text=True, env=_env(), timeout=300)
    assert out.returncode == 0, out.stderr
    assert _result(out.stdout)["trades"] == 138
    out = subprocess.run(
        [sys.executable, str(REPO / "drivers" / "optimize.py"), "--address", ray_session.address,
         "--store", str(lake), "--strategy", "sma_cross", "--scenarios",
         str(tmp_path / "s.yaml"), "--trials", "3", "--out", str(tmp_path / "runs")],
        capture_output=True, text=True, env=_env(), timeout=300,
    ) if (tmp_path / "s.yaml").write_text(
        "scenarios:\n  - {name: eth, symbol: ETHBTC, interval: 5m}\n") else None
    assert out is not None and out.returncode == 0, out.stderr if out else ""
    res = _result(out.stdout)
    assert res["trials"] == 3 and Path(res["run"], "best.json").is_file()


def test_drivers_as_ray_jobs(head: str, lake: Path, tmp_path: Path) -> None:
    logs = _submit(head, "drivers/backtest.py", "--store", str(lake), "--symbol", "ETHBTC",
                   "--interval", "5m", "--out", str(tmp_path / "runs"))
    res = _result(logs)
    assert res["trades"] == 138
    assert Path(res["run"], "report.json").is_file()
    logs = _submit(head, "drivers/ingest.py", "--store", str(tmp_path / "lake2"), "--synth",
                   "BTCUSDT", "--interval", "1h", "--start", "2024-01-01", "--end", "2024-01-08")
    res = _result(logs)
    assert res["series"] == [{"symbol": "BTCUSDT", "interval": "1h", "present": 168,
                              "missing": 0}]
