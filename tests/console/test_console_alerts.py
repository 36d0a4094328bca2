"""Alerts as the console shows them: a real Prometheus fires a rule, a real Alertmanager
(Debian's package, started by ``observe up``'s code) routes it to the console's webhook and to
an operator webhook (a real HTTP server here), and the page's API silences and acknowledges."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from console_helpers import TOKEN, call
from helpers import free_port

pytestmark = pytest.mark.timeout(600)

RULE = """groups:
- name: console-test
  rules:
  - alert: ConsoleTestAlert
    expr: vector(1)
    labels: {severity: warning}
    annotations: {summary: "always firing, for the console test"}
"""


class Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Hook.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def alerting(ray_session: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from ray import serve

    from spark_ray.app import console_service
    from spark_ray.app.cli.console import settings_for
    from spark_ray.console.guard import TOKEN_ENV
    from spark_ray.observe import alertmanager, prom

    root = tmp_path_factory.mktemp("alerts")
    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    port = free_port()
    console = f"http://127.0.0.1:{port}"
    (root / "rule.yml").write_text(RULE)
    (root / "sd.json").write_text("[]")
    (root / "runs").mkdir()
    started: list[Any] = []
    try:
        # The console first: Alertmanager's first notification must find it answering.
        am_port, prom_port = free_port(), free_port()
        cfg = settings_for(str(root / "runs"), None, f"http://127.0.0.1:{prom_port}",
                           f"http://127.0.0.1:{am_port}", env={TOKEN_ENV: TOKEN})
        url = console_service.up("127.0.0.1", port, cfg, lambda line: None)
        am = alertmanager.start(root / "am", console_url=console, token=TOKEN,
                                webhook_url=f"http://127.0.0.1:{hook.server_port}/hook",
                                port=am_port)
        started.append(am)
        pr = prom.start(root / "prom", sd_path=root / "sd.json", port=prom_port,
                        rules=[root / "rule.yml"], scrape_interval="1s",
                        evaluation_interval="1s", alertmanagers=[f"127.0.0.1:{am.port}"])
        started.append(pr)
        yield {"url": url, "am": am, "prom": pr, "root": root}
    finally:
        with contextlib.suppress(Exception):
            console_service.down(lambda line: None)
        with contextlib.suppress(Exception):
            serve.shutdown()
        for s in started:
            prom.stop(s)
        hook.shutdown()
        hook.server_close()


def _wait(fn: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.5)
    return fn()


def test_alertmanager_routes_to_console_and_webhook(alerting: dict[str, Any]) -> None:
    url = alerting["url"]

    def firing() -> list[dict[str, Any]]:
        doc = call(url + "/api/alerts")[1]
        return [a for a in doc["alerts"] if a["name"] == "ConsoleTestAlert"]

    (alert,) = _wait(firing)
    assert alert["severity"] == "warning" and not alert["silenced"]
    assert call(url + "/api/alerts")[1]["source"] == "alertmanager"
    # routed: the operator's webhook and the console's (with the token) both got it
    assert _wait(lambda: any(a["labels"]["alertname"] == "ConsoleTestAlert"
                             for n in Hook.received for a in n["alerts"]))
    assert _wait(lambda: any(n["name"] == "ConsoleTestAlert" for n in
                             call(url + "/api/alerts")[1]["notifications"]))
    health = {s["name"]: s for s in call(url + "/api/health")[1]["services"]}
    assert health["prometheus"]["ok"] and health["alertmanager"]["ok"]
    assert any(a["name"] == "ConsoleTestAlert" for a in call(url + "/api/health")[1]["alerts"])
    cfg = Path(alerting["am"].config_file).read_text()
    assert TOKEN not in cfg and "credentials_file" in cfg


def test_silence_and_acknowledge_need_the_token(alerting: dict[str, Any]) -> None:
    url = alerting["url"]
    body = {"alert": "ConsoleTestAlert", "minutes": 5, "who": "carol", "reason": "known"}
    assert call(url + "/api/alerts/ack", "POST", body)[0] == 401
    assert call(url + "/api/alerts/silence", "POST", body, token="nope")[0] == 401
    code, res = call(url + "/api/alerts/ack", "POST", body, token=TOKEN)
    assert code == 200, res
    code, res = call(url + "/api/alerts/silence", "POST", body, token=TOKEN)
    assert code == 200 and res["result"]["silence_id"], res

    def silenced() -> dict[str, Any] | None:
        a = [x for x in call(url + "/api/alerts")[1]["alerts"] if x["name"] == "ConsoleTestAlert"]
        return a[0] if a and a[0]["silenced"] else None

    alert = _wait(silenced, 30)
    assert alert and alert["acknowledged"]["who"] == "carol"
    journal = (alerting["root"] / "runs" / "console-journal.jsonl").read_text()
    assert "alert-ack" in journal and "alert-silence" in journal


def test_console_finds_what_observe_up_started(alerting: dict[str, Any]) -> None:
    """``spark-ray console`` without --prometheus/--alertmanager uses the ones ``observe up``
    recorded, when their recorded PIDs still run them."""
    from spark_ray.app.cli.console import observed

    root = alerting["root"]
    assert observed(root / "prom") == (alerting["prom"].url, None)
    assert observed(root / "am") == (None, alerting["am"].url)
    assert observed(root / "nothing-here") == (None, None)
