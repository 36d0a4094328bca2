"""The console over HTTPS on a real Ray Serve (its own Ray, in a subprocess, so this module's
Serve settings never touch the shared platform's), and its refusal of tokens in clear when it
is bound off loopback without TLS."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import uvicorn

from spark_ray.console.guard import TokenHash, token_sha256
from spark_ray.console.web import Settings, build_app

from helpers import cli_env, free_port, make_ca_and_cert

TOKEN = "console-tls-token-0123456789"

SCRIPT = r"""
import sys, urllib.request
from ray import serve
from spark_ray.app import console_service
from spark_ray.app.cli.console import settings_for
from spark_ray.app.session import connect, disconnect
from spark_ray.config import RayConfig
from spark_ray.tls import TlsFiles, client_context

cert, key, ca, runs, port, dash, metrics = sys.argv[1:8]
connect(config=RayConfig(dashboard_port=int(dash), metrics_export_port=int(metrics),
                         num_cpus=1), quiet=True)
try:
    url = console_service.up("127.0.0.1", int(port), settings_for(runs, None, None, None),
                             lambda line: None, timeout_s=180, tls=TlsFiles(cert, key), ca=ca)
    print("URL", url, flush=True)
    with urllib.request.urlopen(url + "/api/health", timeout=30,
                                context=client_context(ca)) as r:
        print("VERIFIED", r.status, flush=True)
    try:
        urllib.request.urlopen(url + "/api/health", timeout=30, context=client_context())
        print("UNVERIFIED ANSWERED", flush=True)
    except urllib.error.URLError as e:
        print("UNVERIFIED REFUSED", e.reason, flush=True)
finally:
    serve.shutdown()
    disconnect()
"""


def test_the_console_serves_https_on_ray_serve(tmp_path: Path) -> None:
    ca, tls = make_ca_and_cert(tmp_path)
    (tmp_path / "runs").mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, tls.cert, tls.key, str(ca), str(tmp_path / "runs"),
         str(free_port()), str(free_port()), str(free_port())],
        capture_output=True, text=True, timeout=400, env=cli_env())
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "URL https://127.0.0.1:" in out, out
    assert "VERIFIED 200" in out, out
    assert "UNVERIFIED REFUSED" in out and "CERTIFICATE_VERIFY_FAILED" in out, out


class Live:
    def services(self) -> list[dict[str, object]]:
        return []

    def nodes(self) -> list[dict[str, object]]:
        return []

    def breaker(self, *args: object) -> dict[str, object]:
        raise AssertionError("a refused mutation must not reach the breaker")


def test_off_loopback_without_tls_every_mutation_is_refused_before_its_token(
        tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    settings = Settings(runs=str(tmp_path / "runs"), token=TokenHash(token_sha256(TOKEN)),
                        audit_log=str(tmp_path / "audit.jsonl"), refuse_plain_tokens=True)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(build_app(Live(), settings),  # type: ignore[arg-type]
                                           host="127.0.0.1", port=port, log_config=None,
                                           access_log=False, lifespan="off"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and t.is_alive()
        time.sleep(0.05)
    try:
        url = f"http://127.0.0.1:{port}"
        req = urllib.request.Request(
            url + "/api/breaker/trip",
            json.dumps({"who": "alice", "reason": "test", "breaker": "breaker"}).encode(),
            {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json",
             "Origin": url}, method="POST")
        try:
            urllib.request.urlopen(req, timeout=10)
            raise AssertionError("the mutation was accepted")
        except urllib.error.HTTPError as e:
            assert e.code == 403
            assert "refused over plain HTTP on a non-loopback bind" in json.loads(e.read())[
                "error"]
        with urllib.request.urlopen(url + "/api/runs", timeout=10) as r:  # reads still work
            assert r.status == 200
    finally:
        server.should_exit = True
        t.join(15)
    audit = (tmp_path / "audit.jsonl").read_text()
    assert "token over plain HTTP" in audit and TOKEN not in audit
