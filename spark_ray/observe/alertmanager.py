"""A real Alertmanager on 127.0.0.1 (Debian's ``prometheus-alertmanager``), started like our
Prometheus: Prometheus sends it the firing alerts, and it routes every one to the operator
console's webhook and, when given, to the operator's own webhook (a chat bridge, a pager).

The console's webhook needs the operator token: Alertmanager reads it from a 0600
``console-token`` file in its state folder (``credentials_file``), never from its config, so the
config can be shown and copied. Clustering (gossip on 0.0.0.0:9094 by default) is switched off:
one Alertmanager per platform, nothing listening beyond loopback.
"""

from __future__ import annotations

import os
import subprocess  # nosec B404  # starts the alertmanager binary with our argv, no shell
import time
import urllib.error
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from spark_ray.httpopen import urlopen
from spark_ray.observe.prom import (
    LOOPBACK,
    PrometheusError,
    find_binary,
    free_port,
    is_ours,
    pick_port,
    port_free,
)

APT_PACKAGE = "prometheus-alertmanager"
BINARIES = ("prometheus-alertmanager", "alertmanager")
DEFAULT_PORT = 9093
STATE_FILE = "alertmanager-state.json"
TOKEN_FILE = "console-token"  # nosec B105  # a file name (written 0600), not a token


@dataclass
class AlertmanagerState:
    pid: int
    port: int
    url: str
    state_dir: str
    config_file: str
    log_file: str
    receivers: list[str] = field(default_factory=list)
    started: float = 0.0

    def save(self) -> Path:
        path = Path(self.state_dir) / STATE_FILE
        path.write_text(yaml.safe_dump(asdict(self)))
        return path

    @classmethod
    def load(cls, state_dir: Path) -> AlertmanagerState | None:
        path = Path(state_dir) / STATE_FILE
        try:
            return cls(**yaml.safe_load(path.read_text())) if path.is_file() else None
        except (ValueError, TypeError, yaml.YAMLError):
            return None


def require_binary() -> str:
    for name in BINARIES:
        found = find_binary(name)
        if found:
            return found
    raise PrometheusError(f"alertmanager not found: install Debian's '{APT_PACKAGE}' package "
                          f"(apt-get install -y {APT_PACKAGE}; the make targets do this)")


def render_config(console_url: str | None, token_file: Path | None,
                  webhook_url: str | None, group_wait: str = "1s",
                  group_interval: str = "5s", repeat_interval: str = "1h") -> str:
    """alertmanager.yml: every alert to the console (``/api/alerts/webhook``, with the token
    from ``token_file``) and to ``webhook_url``; resolved alerts are sent too."""
    receivers: list[dict[str, Any]] = []
    routes: list[dict[str, Any]] = []
    if console_url:
        hook: dict[str, Any] = {"url": console_url.rstrip("/") + "/api/alerts/webhook",
                                "send_resolved": True}
        if token_file is not None:
            hook["http_config"] = {"authorization": {"type": "Bearer",
                                                     "credentials_file": str(token_file)}}
        receivers.append({"name": "console", "webhook_configs": [hook]})
        routes.append({"receiver": "console", "continue": True})
    if webhook_url:
        receivers.append({"name": "operator-webhook", "webhook_configs": [
            {"url": webhook_url, "send_resolved": True}]})
        routes.append({"receiver": "operator-webhook", "continue": True})
    receivers.append({"name": "none"})
    cfg = {"route": {"receiver": "none", "group_by": ["alertname"],
                     "group_wait": group_wait, "group_interval": group_interval,
                     "repeat_interval": repeat_interval, "routes": routes},
           "receivers": receivers}
    return yaml.safe_dump(cfg, sort_keys=False)


def start(state_dir: Path, *, console_url: str | None = None, token: str | None = None,
          webhook_url: str | None = None, port: int | None = None,
          timeout_s: float = 30.0) -> AlertmanagerState:
    """Start our Alertmanager (detached) and wait until it is ready."""
    binary = require_binary()
    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    old = AlertmanagerState.load(state_dir)
    if old is not None and is_ours(old):
        raise PrometheusError(f"Alertmanager already running from {state_dir} "
                              f"(pid {old.pid}, {old.url}); stop it first")
    token_file = None
    if token:
        token_file = state_dir / TOKEN_FILE
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token)
    chosen = pick_port(port) if port else (DEFAULT_PORT if port_free(DEFAULT_PORT)
                                           else free_port())
    config_file = state_dir / "alertmanager.yml"
    config_file.write_text(render_config(console_url, token_file, webhook_url))
    data_dir = state_dir / "data"
    data_dir.mkdir(exist_ok=True)
    log_file = state_dir / "alertmanager.log"
    url = f"http://{LOOPBACK}:{chosen}"
    cmd = [binary, f"--config.file={config_file}", f"--storage.path={data_dir}",
           f"--web.listen-address={LOOPBACK}:{chosen}", "--cluster.listen-address=",
           f"--web.external-url={url}/"]
    with log_file.open("ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,  # nosec B603  # argv: binary from find_binary, our own flags/paths; no shell
                                stdin=subprocess.DEVNULL, start_new_session=True, cwd=state_dir)
    state = AlertmanagerState(
        pid=proc.pid, port=chosen, url=url, state_dir=str(state_dir),
        config_file=str(config_file), log_file=str(log_file),
        receivers=[r for r, on in (("console", console_url), ("operator-webhook", webhook_url))
                   if on], started=time.time())
    state.save()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_file.read_text(errors="replace")[-2000:]
            raise PrometheusError(f"alertmanager exited with {proc.returncode}:\n{tail}")
        if ready(url):
            return state
        time.sleep(0.2)
    from spark_ray.observe.prom import stop

    stop(state)
    raise PrometheusError(f"alertmanager not ready on {url} after {timeout_s:.0f} s")


def ready(url: str) -> bool:
    try:
        with urlopen(f"{url}/-/ready", timeout=2) as resp:
            return resp.status == 200
    except (OSError, urllib.error.URLError):
        return False
