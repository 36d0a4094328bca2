"""The embedded Ray: loopback only, token auth on, fixed metrics port, idempotent, joinable."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import ray

import spark_ray
from spark_ray.app.session import Session


def _ray_pids() -> set[int]:
    """This test session's Ray processes: children of this process (raylet, GCS, workers...)."""
    me = psutil.Process()
    return {p.pid for p in me.children(recursive=True)}


def _is_loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    mapped = getattr(addr, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is loopback too
    return addr.is_loopback or bool(mapped and mapped.is_loopback)


def test_local_ray_is_loopback_only(ray_session: Session) -> None:
    assert ray.nodes()[0]["NodeManagerAddress"] == "127.0.0.1"
    assert ray_session.node_ip == "127.0.0.1"
    assert ray_session.started_local
    pids = _ray_pids()
    assert pids, "expected Ray child processes"
    listening = [c for c in psutil.net_connections(kind="inet")
                 if c.status == psutil.CONN_LISTEN and c.pid in pids]
    assert listening, "Ray processes should listen on some ports"
    off_loopback = [(c.pid, c.laddr) for c in listening if not _is_loopback(c.laddr.ip)]
    assert off_loopback == []


def test_connect_is_idempotent(ray_session: Session) -> None:
    assert spark_ray.connect() is ray_session
    assert spark_ray.connect(quiet=True) is ray_session


def test_dashboard_requires_token(ray_session: Session) -> None:
    assert ray_session.dashboard_url and ray_session.dashboard_url.startswith("http://127.0.0.1:")
    url = f"{ray_session.dashboard_url}/api/v0/nodes"
    deadline = time.time() + 30
    status = None
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=5)
            status = 200
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError:
            time.sleep(1)
            continue
        break
    assert status == 401, "token authentication must stay on"
    token = (Path.home() / ".ray" / "auth_token").read_text().strip()
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200


def test_metrics_export_on_fixed_port(ray_session: Session) -> None:
    port = ray_session.metrics_export_port
    assert port
    deadline = time.time() + 60
    body = b""
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                body = r.read()
            if b"ray_" in body:
                break
        except OSError:
            pass
        time.sleep(1)
    assert b"ray_" in body


def test_second_driver_joins_by_address(ray_session: Session, tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import ray, spark_ray
        s = spark_ray.connect({ray_session.address!r}, quiet=True)
        assert not s.started_local
        assert ray.nodes()[0]["NodeManagerAddress"] == "127.0.0.1"
        @ray.remote
        def f(x):
            return x * 2
        print("joined", ray.get(f.remote(21)))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "joined 42" in proc.stdout
