"""The CLI joins a token-auth cluster started the way a user starts it (issue 18, point 9).

``ray start --head`` turns token authentication on when the user has a token (Ray writes
``~/.ray/auth_token`` on the first local ``ray.init``; here ``ray get-auth-token --generate``).
A client joining by address gets no token mode from Ray: before the fix every command said
"could not reach Ray" after ~20 s. The head runs in its own process group under a private HOME
and is stopped by that group, never with ``ray stop`` (which ends every Ray on the machine).
No RAY_AUTH_* variable is set for the head or the CLI.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import free_port

BIN = Path(sys.executable).parent
RAY = str(BIN / "ray")
CLI = str(BIN / "spark-ray")
AUTH_VARS = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS")


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in AUTH_VARS}
    env.update(HOME=str(home), RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", **extra)
    return env


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A token-auth head on 127.0.0.1 under a private HOME; yields (address, HOME)."""
    home = tmp_path_factory.mktemp("user-home")
    subprocess.run([RAY, "get-auth-token", "--generate"], env=_env(home), check=True,
                   capture_output=True, timeout=60)
    assert (home / ".ray" / "auth_token").is_file()
    port = free_port()
    log = tmp_path_factory.mktemp("head") / "head.log"
    # Ray's socket paths live under --temp-dir and must stay under 108 bytes (AF_UNIX).
    temp_dir = tempfile.mkdtemp(prefix="rt-", dir="/tmp")
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [RAY, "start", "--head", "--block", f"--port={port}", "--node-ip-address=127.0.0.1",
             "--num-cpus=1", "--include-dashboard=false", "--disable-usage-stats",
             f"--metrics-export-port={free_port()}", f"--temp-dir={temp_dir}"],
            env=_env(home), stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 120
        while "Ray runtime started" not in log.read_text():
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.time() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        assert "Token authentication is enabled" in log.read_text()
        yield f"127.0.0.1:{port}", home
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)
        time.sleep(1)
        with contextlib.suppress(ProcessLookupError):  # what outlived the head's own shutdown
            os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _cli(home: Path, *args: str, timeout: float = 150,
         **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], env=_env(home, **env), capture_output=True, text=True,
                          timeout=timeout)


def test_cli_presents_the_users_token_by_itself(head: tuple[str, Path]) -> None:
    address, home = head
    res = _cli(home, "breaker", "status", "--address", address, "--json")
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads(res.stdout)["state"] == "ARMED"
    assert f"token from {home / '.ray' / 'auth_token'}" in res.stderr
    assert "InvalidAuthToken" not in res.stderr
    # The same session code serves every command that joins a cluster.
    res = _cli(home, "cluster", "status", "--address", address)
    assert res.returncode == 0, res.stderr[-3000:]
    # A token elsewhere, named by RAY_AUTH_TOKEN_PATH, as Ray's own loader reads it.
    elsewhere = home.parent / f"{home.name}-elsewhere"
    elsewhere.mkdir(exist_ok=True)
    res = _cli(elsewhere, "breaker", "status", "--address", address,
               RAY_AUTH_TOKEN_PATH=str(home / ".ray" / "auth_token"))
    assert res.returncode == 0, res.stderr[-3000:]


def test_no_token_names_exactly_what_to_set(head: tuple[str, Path], tmp_path: Path) -> None:
    address, _ = head
    stranger = tmp_path / "stranger"  # a user without the cluster's token
    stranger.mkdir()
    res = _cli(stranger, "breaker", "status", "--address", address)
    assert res.returncode == 1, res.stderr[-3000:]
    last = res.stderr.strip().splitlines()[-1]
    for needed in ("RAY_AUTH_TOKEN_PATH", "RAY_AUTH_TOKEN", str(stranger / ".ray" / "auth_token"),
                   address):
        assert needed in last, last
    # A wrong token: says the token differs and where the right one is.
    res = _cli(stranger, "breaker", "status", "--address", address,
               RAY_AUTH_TOKEN="0" * 32)
    assert res.returncode == 1
    last = res.stderr.strip().splitlines()[-1]
    assert "RAY_AUTH_TOKEN" in last and "token differs" in last, last
    assert "0" * 32 not in res.stderr  # the secret itself never reaches the output


def test_console_deploys_on_the_cluster_and_outlives_the_command(
        head: tuple[str, Path], tmp_path: Path) -> None:
    """``spark-ray console`` joins the token-auth cluster by itself, deploys the Serve app,
    prints its URL and returns; the console still answers; ``console down`` removes it."""
    import urllib.error
    import urllib.request

    address, home = head
    port = free_port()
    runs = tmp_path / "runs"
    runs.mkdir()
    res = _cli(home, "console", "--address", address, "--port", str(port), "--runs", str(runs),
               SPARK_RAY_CONSOLE_TOKEN="cli-console-token")
    assert res.returncode == 0, res.stderr[-3000:]
    url = res.stdout.strip().splitlines()[-1]
    assert url == f"http://127.0.0.1:{port}"
    assert "cli-console-token" not in res.stdout + res.stderr
    with urllib.request.urlopen(url + "/api/health", timeout=30) as r:  # after the CLI exited
        names = [s["name"] for s in json.loads(r.read())["services"]]
    assert "console" in names
    with urllib.request.urlopen(url + "/api/runs", timeout=30) as r:
        assert json.loads(r.read())["root"] == str(runs.resolve())
    res = _cli(home, "console", "down", "--address", address)
    assert res.returncode == 0 and "deleted spark-ray-console" in res.stderr, res.stderr[-2000:]
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        deadline = time.time() + 30
        while time.time() < deadline:
            with urllib.request.urlopen(url + "/api/health", timeout=5) as r:
                if r.status != 200:
                    break
            time.sleep(0.5)
        raise AssertionError("the console still answers after `console down`")


@pytest.mark.parametrize(("args", "field"), [
    (["--port", "0"], "--port"), (["--prometheus", "ftp://x"], "--prometheus"),
    ([], "--address")])
def test_console_bad_arguments_exit_2_naming_the_field(tmp_path: Path, args: list[str],
                                                       field: str) -> None:
    res = _cli(tmp_path, "console", *args, timeout=60)
    assert res.returncode == 2, res.stderr[-2000:]
    assert field in res.stderr.strip().splitlines()[-1]
