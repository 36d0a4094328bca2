"""HTTPS on our control planes, with a certificate made in the test by a private CA: a client
that trusts the CA gets answers (and /kill with its token), one that does not is refused by
certificate verification, plain HTTP to the HTTPS port gets nothing. A token sent to a server
bound off loopback without TLS is refused before it is looked at."""

from __future__ import annotations

import asyncio
import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from spark_ray.audit import AuditLog, MutationLimiter
from spark_ray.errors import UserError
from spark_ray.tls import TlsFiles, client_context, plain_token_risk, tls_files

from helpers import make_ca_and_cert, run_cli

TOKEN = "tls-test-token-0123456789"


class Executor:
    def __init__(self) -> None:
        self.killed: list[str] = []

    def status(self) -> dict[str, Any]:
        return {"name": "executor:tls", "started": True}

    def positions(self) -> dict[str, Any]:
        return {}

    def orders(self, open_only: bool = False) -> list[dict[str, Any]]:
        return []

    async def kill(self, reason: str, flatten: bool) -> dict[str, Any]:
        self.killed.append(reason)
        return {"cancelled": 0}


def post(url: str, token: str, ctx: ssl.SSLContext | None) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, json.dumps({"reason": "tls test"}).encode(),
                                 {"Authorization": f"Bearer {token}",
                                  "Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_the_executor_control_plane_serves_https_and_clients_verify(
        loop: asyncio.AbstractEventLoop, tmp_path: Path) -> None:
    from spark_ray.execution.control import ControlPlane, Token

    ca, tls = make_ca_and_cert(tmp_path)
    ex = Executor()
    plane = ControlPlane(ex, port=0, token=Token(TOKEN), audit=AuditLog(tmp_path / "a.jsonl"),
                         limiter=MutationLimiter(100, 1.0), tls=tls)
    asyncio.run_coroutine_threadsafe(plane.start(), loop).result(30)
    try:
        assert plane.url.startswith("https://127.0.0.1:")
        trusting = client_context(str(ca))
        with urllib.request.urlopen(plane.url + "/health", timeout=10, context=trusting) as r:
            assert json.loads(r.read())["name"] == "executor:tls"
        assert post(plane.url + "/kill", TOKEN, trusting)[0] == 200
        assert ex.killed == ["tls test"]
        # A client that does not trust the CA refuses the server: verification is on.
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            urllib.request.urlopen(plane.url + "/health", timeout=10,
                                   context=client_context())
        # Plain HTTP to the HTTPS port gets no answer.
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen(plane.url.replace("https", "http") + "/health", timeout=10)
    finally:
        asyncio.run_coroutine_threadsafe(plane.stop(), loop).result(30)


def test_the_streams_control_plane_serves_https(tmp_path: Path) -> None:
    from spark_ray.streams.control import ControlPlane

    ca, tls = make_ca_and_cert(tmp_path)
    injected: list[Any] = []
    plane = ControlPlane(lambda: {}, injected.append, exchange="binance", port=0, token=TOKEN,
                         audit=AuditLog(tmp_path / "a.jsonl"), limiter=MutationLimiter(100, 1.0),
                         tls=tls).start()
    try:
        assert plane.url.startswith("https://")
        req = urllib.request.Request(plane.url + "/chaos", json.dumps(
            {"kind": "drop", "count": 1}).encode(), {"Authorization": f"Bearer {TOKEN}"},
            method="POST")
        with urllib.request.urlopen(req, timeout=10, context=client_context(str(ca))) as r:
            assert r.status == 200
        assert injected and injected[0]["kind"] == "drop"
    finally:
        plane.stop()


def test_a_token_is_refused_over_plain_http_off_loopback(
        loop: asyncio.AbstractEventLoop, tmp_path: Path) -> None:
    """The rule, through the real handler: the plane believes it is bound to every interface
    (host 0.0.0.0) while the test serves its app on loopback only."""
    from aiohttp import web

    from spark_ray.execution.control import ControlPlane, Token

    assert plain_token_risk("0.0.0.0", None) and plain_token_risk("10.1.2.3", None)
    assert not plain_token_risk("127.0.0.1", None) and not plain_token_risk("::1", None)
    _, tls = make_ca_and_cert(tmp_path)
    assert not plain_token_risk("0.0.0.0", tls)
    ex = Executor()
    plane = ControlPlane(ex, host="0.0.0.0", port=0, token=Token(TOKEN),
                         audit=AuditLog(tmp_path / "a.jsonl"), limiter=MutationLimiter(100, 1.0))

    async def serve() -> tuple[web.AppRunner, int]:
        runner = web.AppRunner(plane.app())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    runner, port = asyncio.run_coroutine_threadsafe(serve(), loop).result(30)
    try:
        code, body = post(f"http://127.0.0.1:{port}/kill", TOKEN, None)
        assert code == 403 and "refused over plain HTTP on a non-loopback bind" in body["error"]
        assert ex.killed == []
        audit = (tmp_path / "a.jsonl").read_text()
        assert "token over plain HTTP" in audit and TOKEN not in audit
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)


def test_tls_flags_come_in_pairs_and_bad_files_name_the_flag(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="--tls-key: give it with --tls-cert"):
        tls_files("cert.pem", None)
    assert tls_files(None, None) is None
    with pytest.raises(UserError, match=r"--tls-cert: .* not found"):
        TlsFiles(str(tmp_path / "no.pem"), str(tmp_path / "no.key")).server_context()
    (tmp_path / "junk.pem").write_text("junk")
    with pytest.raises(UserError, match="do not load as a PEM certificate"):
        TlsFiles(str(tmp_path / "junk.pem"), str(tmp_path / "junk.pem")).server_context()


def test_cli_tls_flags_exit_2_naming_the_flag(tmp_path: Path) -> None:
    res = run_cli("streams", "--tls-cert", str(tmp_path / "cert.pem"), "--duration", "1")
    assert res.code == 2 and "--tls-key: give it with --tls-cert" in res.err, res.err
    (tmp_path / "junk.pem").write_text("junk")
    res = run_cli("streams", "--tls-cert", str(tmp_path / "junk.pem"), "--tls-key",
                  str(tmp_path / "junk.pem"), "--duration", "1")
    assert res.code == 2 and "do not load as a PEM certificate" in res.err, res.err


def test_the_venue_serves_https_and_wss_to_verifying_clients(tmp_path: Path) -> None:
    import websockets.sync.client as ws_client

    from spark_ray.venue import Venue

    ca, tls = make_ca_and_cert(tmp_path)
    with Venue(symbols=("BTCUSDT",), seed=3, history_minutes=5, trades_per_second=50,
               tls_cert=tls.cert, tls_key=tls.key, admin_token=TOKEN) as v:
        assert v.rest_url.startswith("https://") and v.ws_url.startswith("wss://")
        trusting = client_context(str(ca))
        with urllib.request.urlopen(v.rest_url + "/api/v3/ping", timeout=10,
                                    context=trusting) as r:
            assert r.status == 200
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            urllib.request.urlopen(v.rest_url + "/api/v3/ping", timeout=10,
                                   context=client_context())
        with ws_client.connect(v.ws_url + "/ws/btcusdt@trade", ssl=trusting,
                               open_timeout=10) as ws:
            msg = json.loads(ws.recv(timeout=10))
            assert msg["e"] == "trade" and msg["s"] == "BTCUSDT"
        req = urllib.request.Request(v.rest_url + "/admin/pause", b"{}", {
            "X-Admin-Token": TOKEN, "Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=10, context=trusting) as r:
            assert r.status == 200
