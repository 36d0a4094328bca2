"""Loopback calls never go through an environment proxy; a busy Prometheus gets asked again."""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from spark_ray.httpopen import is_loopback, urlopen
from spark_ray.observe.dashboards import Panel, Target
from spark_ray.observe.prom import PromClient
from spark_ray.observe.render import query_panel

RANGE = {"status": "success", "data": {"resultType": "matrix", "result": [
    {"metric": {"symbol": "BTCUSDT"}, "values": [[1000, "1"], [1015, "2"]]}]}}


class _Handler(BaseHTTPRequestHandler):

    def do_GET(self) -> None:
        srv: Any = self.server
        srv.calls += 1
        if srv.calls <= srv.failures:
            self.send_response(503)
            self.end_headers()
            self.wfile.write(b"busy")
            return
        body = json.dumps(RANGE).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[Any]:
    srv: Any = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.calls, srv.failures = 0, 0
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_loopback_hosts() -> None:
    assert all(is_loopback(u) for u in ("http://127.0.0.1:9090", "http://localhost/x",
                                        "http://127.8.0.2:1", "http://[::1]:80/"))
    assert not any(is_loopback(u) for u in ("http://10.0.0.5:9090", "https://api.binance.com",
                                            "http://prometheus.internal:9090"))


@pytest.mark.parametrize("url", ["file:///etc/hostname", "file://localhost/etc/hostname",
                                 "ftp://127.0.0.1/x", "data:text/plain,hello"])
def test_only_http_urls_are_opened(url: str) -> None:
    # urllib itself would read these (a local file, even through the loopback opener).
    with pytest.raises(urllib.error.URLError, match="not an http"):
        urlopen(url, timeout=5)
    with pytest.raises(urllib.error.URLError, match="not an http"):
        urlopen(urllib.request.Request(url), timeout=5)


def test_loopback_calls_bypass_an_environment_proxy(server: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy that does not answer (a closed loopback port) and no exemption for loopback.
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("no_proxy", "")
    monkeypatch.delenv("NO_PROXY", raising=False)
    url = f"http://127.0.0.1:{server.server_port}/api/v1/query_range"
    # The stdlib goes through the proxy (a fresh default opener: urlopen's global one keeps
    # the proxies of whenever the process first used it)...
    with pytest.raises(urllib.error.URLError):
        urllib.request.build_opener().open(url, timeout=5)
    with urlopen(url, timeout=5) as r:  # ...ours goes straight to the server
        assert r.status == 200
    assert server.calls == 1


def test_a_panel_query_is_asked_again_after_a_transient_failure(server: Any) -> None:
    client = PromClient(f"http://127.0.0.1:{server.server_port}")
    panel = Panel("Last trade id", (Target("max(ray_streams_last_seq)", "{{symbol}}"),))
    server.failures = 2
    data = query_panel(client, panel, 1000, 1015, 15)
    assert data.has_data and data.error is None and server.calls == 3
    server.calls, server.failures = 0, 5  # still failing after three tries: the error is kept
    data = query_panel(client, panel, 1000, 1015, 15)
    assert not data.has_data and data.error is not None and "503" in data.error
    assert server.calls == 3
