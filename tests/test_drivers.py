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
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray

from spark_ray.actors.naming import lookup
from spark_ray.app.session import Session
from spark_ray.data.importer import import_files
from spark_ray.lake import DataStore
from spark_ray.samples import sample

from helpers import REPO, free_port, signer

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
            # Metrics exported every 2 s (Ray's default: 10 s), as the chaos canary's own Ray
            # does: its detection limits assume it.
            env=_env(RAY_metrics_report_interval_ms="2000"), stdout=fh,
            stderr=subprocess.STDOUT, start_new_session=True)
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
            proc.wait(timeout=10)
        time.sleep(1)
        with contextlib.suppress(ProcessLookupError):  # what outlived the head's own shutdown
            os.killpg(proc.pid, signal.SIGKILL)


def _submit(url: str, *args: str, env_vars: dict[str, str] | None = None,
            expect_code: int = 0) -> str:
    """`ray job submit` (retrying while the job agent is still starting); returns the logs.
    ``env_vars`` go to the job through its runtime environment."""
    opts = ["--runtime-env-json", json.dumps({"env_vars": env_vars})] if env_vars else []
    deadline = time.time() + 120
    while True:
        proc = subprocess.run([RAY, "job", "submit", "--address", url, "--working-dir",
                               str(REPO), *opts, "--", "python", *args], capture_output=True,
                              text=True, env=_env(), timeout=600)
        out = proc.stdout + proc.stderr
        if "No available agent" in out and time.time() < deadline:
            time.sleep(3)
            continue
        assert proc.returncode == expect_code, out[-4000:]
        return out


def _approved(folder: Path, params: dict[str, Any] | None = None) -> Path:
    from spark_ray.chaos.approval import synthetic_approval

    return synthetic_approval(folder, params=params, note="driver tests", signer=signer("ci"))


def _breaker_env(journal: Path) -> dict[str, str]:
    """The breaker's journal in the test's folder; rules a 10-bars-a-second churn won't trip."""
    return {"SPARK_RAY_BREAKER_JOURNAL": str(journal),
            "SPARK_RAY_BREAKER__CONSECUTIVE_LOSSES__ENABLED": "false",
            "SPARK_RAY_BREAKER__ORDER_RATE__LIMIT": "100000",
            "SPARK_RAY_BREAKER__DAILY_LOSS__LIMIT": "0.5",
            "SPARK_RAY_BREAKER__MAX_DRAWDOWN__LIMIT": "0.5"}


def _check_streams_trade(res: dict[str, Any]) -> None:
    assert res["strategy"] == "sma_cross" and res["interval"] == "1s"
    assert res["fills"] >= res["orders"]["FILLED"] > 0  # paper orders filled from live bars
    assert res["executor_next_to_normalizer"] is True
    assert set(res["placement"]) == {"sink", "normalizer", "connector", "executor", "breaker"}
    assert "?" not in res["placement"].values()
    lake = res["lake"]["BTCUSDT"]
    assert lake["stored"] > 0 and lake["lost"] == 0 and lake["duplicates"] == 0
    run = Path(res["run"])
    assert json.loads((run / "fills.json").read_text()) and (run / "run.json").is_file()


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
    (tmp_path / "s.yaml").write_text("scenarios:\n  - {name: eth, symbol: ETHBTC, interval: 5m}\n")
    out = subprocess.run(
        [sys.executable, str(REPO / "drivers" / "optimize.py"), "--address", ray_session.address,
         "--store", str(lake), "--strategy", "sma_cross", "--scenarios",
         str(tmp_path / "s.yaml"), "--trials", "3", "--out", str(tmp_path / "runs")],
        capture_output=True, text=True, env=_env(), timeout=300)
    assert out.returncode == 0, out.stderr
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


def test_streams_trade_driver_locally(ray_session: Session, tmp_path: Path) -> None:
    """Streams + paper trading against the venue simulator, on the session's Ray."""
    name = f"breaker:t{uuid.uuid4().hex[:8]}"
    try:
        out = subprocess.run(
            [sys.executable, str(REPO / "drivers" / "streams_trade.py"), "--address",
             ray_session.address, "--approved", str(_approved(tmp_path / "params")),
             "--seconds", "8", "--store", str(tmp_path / "lake"), "--out",
             str(tmp_path / "runs"), "--breaker", name, "--warmup-bars", "30"],
            capture_output=True, text=True, env=_env(**_breaker_env(tmp_path / "b.jsonl")),
            timeout=300)
        assert out.returncode == 0, out.stderr[-4000:]
        res = _result(out.stdout)
        _check_streams_trade(res)
        assert res["breaker"] == {"name": name, "started_here": True}
        # The breaker is detached: it outlived the driver.
        assert lookup(name) is not None
    finally:
        if (h := lookup(name)) is not None:
            ray.kill(h, no_restart=True)


def test_streams_trade_driver_refuses_unapproved_parameters(ray_session: Session,
                                                            tmp_path: Path) -> None:
    approved = _approved(tmp_path / "params")
    best = tmp_path / "params" / "best.json"
    best.write_text(best.read_text().replace('"fast": 2', '"fast": 4'))  # edited after approval
    out = subprocess.run(
        [sys.executable, str(REPO / "drivers" / "streams_trade.py"), "--address",
         ray_session.address, "--approved", str(approved), "--seconds", "5", "--out",
         str(tmp_path / "runs")], capture_output=True, text=True, env=_env(), timeout=120)
    assert out.returncode == 1, out.stderr[-3000:]
    assert "refusing to trade" in out.stderr and PREFIX not in out.stdout
    assert not (tmp_path / "runs").exists()  # nothing ran, nothing recorded


def test_chaos_driver_names_a_bad_experiment_id(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, str(REPO / "drivers" / "chaos.py"), "--experiments",
                          "seq_gap,no_such_fault", "--out", str(tmp_path / "runs")],
                         capture_output=True, text=True, env=_env(), timeout=120)
    assert out.returncode == 2
    assert "no_such_fault" in out.stderr and "seq_gap" in out.stderr  # unknown, and the known
    assert not (tmp_path / "runs").exists()


def test_streams_trade_driver_as_a_ray_job(head: str, tmp_path: Path) -> None:
    approved = _approved(tmp_path / "params")
    logs = _submit(head, "drivers/streams_trade.py", "--approved", str(approved),
                   "--seconds", "8", "--store", str(tmp_path / "lake"), "--out",
                   str(tmp_path / "runs"), "--breaker", "breaker:job", "--warmup-bars", "30",
                   env_vars=_breaker_env(tmp_path / "b.jsonl"))
    res = _result(logs)
    _check_streams_trade(res)
    assert res["breaker"]["name"] == "breaker:job"


@pytest.mark.slow
def test_chaos_driver_as_a_ray_job(head: str, tmp_path: Path) -> None:
    """One quick experiment through the job API: the canary's stack, a real Prometheus, the
    alert firing and resolving, the lake accounted. lag_spike, because its alert reads a gauge:
    the id-counting alerts (seq_gap, drop) compare with 30 s ago, which a stack that has just
    started does not have yet."""
    logs = _submit(head, "drivers/chaos.py", "--experiments", "lag_spike", "--out",
                   str(tmp_path / "runs"))
    res = _result(logs)
    assert res["exit_code"] == 0, res
    (row,) = res["experiments"]
    assert row["experiment"] == "lag_spike" and row["status"] == "PASS", row
    assert row["detection_s"] is not None and row["recovery_s"] is not None
    assert row["lost"] == 0 and row["duplicates"] == 0
    assert res["lake"]["lost"] == 0 and res["lake"]["stored"] > 0
    assert (Path(res["run"]) / "chaos-table.md").is_file()
