"""A real Prometheus on 127.0.0.1, scraping Ray's metrics export with our alert rules loaded.

Ray writes a Prometheus file-service-discovery JSON into its session folder
(``<session>/prom_metrics_service_discovery.json``) listing every node's metrics export address
(plus the dashboard's and autoscaler's) and keeps it current as nodes come and go. The generated
config points ``file_sd_configs`` at that file, so one Prometheus scrapes the whole cluster, with
short scrape/evaluation intervals (Ray itself exports every ~10 s).

The process is ours alone: its own config, rules copy, data dir and log in a state folder, bound
to 127.0.0.1, started detached so ``spark-ray observe up`` can return; ``stop`` signals only the
PID recorded in that folder, and only if that process still runs our config file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess  # nosec B404  # starts the prometheus binary with our argv, no shell
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from spark_ray.httpopen import urlopen
from spark_ray.observe import grafana_dir

LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 9090  # where Ray's dashboard looks for Prometheus when RAY_PROMETHEUS_HOST is unset
SD_FILE_NAME = "prom_metrics_service_discovery.json"
STATE_FILE = "state.json"
DASHBOARD_ENV_FILE = "ray-dashboard.env"
APT_PACKAGE = "prometheus"  # Debian: /usr/bin/prometheus and /usr/bin/promtool


class PrometheusError(RuntimeError):
    """Prometheus missing, failing to start, or answering with an error."""


# --- binaries -----------------------------------------------------------------------------------

def find_binary(name: str) -> str | None:
    """A Debian-packaged binary (``prometheus``, ``promtool``, ``chromium``, ...) on PATH or in
    /usr/bin, Debian's place; else None."""
    found = shutil.which(name)
    if found:
        return found
    debian = Path("/usr/bin") / name
    return str(debian) if debian.is_file() and os.access(debian, os.X_OK) else None


def require_binary(name: str) -> str:
    path = find_binary(name)
    if path is None:
        raise PrometheusError(f"{name} not found: install Debian's '{APT_PACKAGE}' package "
                              f"(apt-get install -y {APT_PACKAGE}; the make targets do this)")
    return path


# --- Ray's service discovery ----------------------------------------------------------------------

def sd_file(session_dir: Path) -> Path:
    """Ray's file-SD JSON for a session (Ray 2.60 writes it at the session root)."""
    return Path(session_dir) / SD_FILE_NAME


def rule_files(grafana: Path | None = None) -> list[Path]:
    """Our alert rule files (``grafana/alerts/*.yml``; the promtool tests live in ``tests/``)."""
    root = (grafana or grafana_dir()) / "alerts"
    return sorted(root.glob("*.yml"))


def render_config(sd_path: Path, rules: Iterable[Path], *, scrape_interval: str = "2s",
                  evaluation_interval: str = "2s", static_targets: Iterable[str] = (),
                  external_labels: dict[str, str] | None = None,
                  alertmanagers: Iterable[str] = ()) -> str:
    """prometheus.yml: scrape Ray via its file-SD JSON (job ``ray``), evaluate our rules.

    ``static_targets`` (host:port) are scraped as job ``static`` (used to scrape e.g. a test
    exporter); Ray's own targets always come from the SD file. ``alertmanagers`` (host:port)
    receive the firing alerts (:mod:`spark_ray.observe.alertmanager` routes them on).
    """
    cfg: dict[str, Any] = {
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,
            "evaluation_interval": evaluation_interval,
            "external_labels": {"monitor": "spark-ray", **(external_labels or {})},
        },
        "rule_files": [str(p) for p in rules],
        "scrape_configs": [
            {
                "job_name": "ray",
                "file_sd_configs": [{"files": [str(sd_path)], "refresh_interval": "5s"}],
            },
        ],
    }
    managers = list(alertmanagers)
    if managers:
        cfg["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": managers}]}]}
    targets = list(static_targets)
    if targets:
        cfg["scrape_configs"].append({"job_name": "static",
                                      "static_configs": [{"targets": targets}]})
    return yaml.safe_dump(cfg, sort_keys=False)


def port_free(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def pick_port(wanted: int | None) -> int:
    """``wanted`` if given (must be free); else 9090 when free (the Ray dashboard's default
    Prometheus address), else any free loopback port."""
    if wanted:
        if not port_free(wanted):
            raise PrometheusError(f"port {wanted} on {LOOPBACK} is in use")
        return wanted
    return DEFAULT_PORT if port_free(DEFAULT_PORT) else free_port()


def dashboard_env(prometheus_url: str, grafana_url: str | None = None) -> dict[str, str]:
    """What the Ray dashboard reads (at Ray start) to show metrics: Prometheus, and Grafana
    when one is configured (else Grafana panels are disabled rather than pointing nowhere)."""
    env = {"RAY_PROMETHEUS_HOST": prometheus_url, "RAY_PROMETHEUS_NAME": "Prometheus"}
    env["RAY_GRAFANA_HOST"] = grafana_url if grafana_url else "DISABLED"
    return env


# --- the process ----------------------------------------------------------------------------------

@dataclass
class PromState:
    pid: int
    port: int
    url: str
    state_dir: str
    config_file: str
    data_dir: str
    log_file: str
    sd_file: str
    rule_files: list[str]
    started: float
    cmdline: list[str] = field(default_factory=list)
    grafana_url: str | None = None

    def save(self) -> Path:
        path = Path(self.state_dir) / STATE_FILE
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, state_dir: Path) -> PromState | None:
        path = Path(state_dir) / STATE_FILE
        if not path.is_file():
            return None
        try:
            return cls(**json.loads(path.read_text()))
        except (ValueError, TypeError):
            return None


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [p.decode(errors="replace") for p in raw.split(b"\0") if p]


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


class Running(Protocol):
    """A process we started and recorded: its PID and the config file it runs."""

    pid: int
    config_file: str


def is_ours(state: Running) -> bool:
    """The recorded PID is alive and is still the Prometheus running our config file."""
    cmd = _cmdline(state.pid)
    return (not _zombie(state.pid) and bool(cmd)
            and any(a == f"--config.file={state.config_file}" for a in cmd))


def start(state_dir: Path, *, sd_path: Path, port: int | None = None,
          rules: Iterable[Path] | None = None, scrape_interval: str = "2s",
          evaluation_interval: str = "2s", static_targets: Iterable[str] = (),
          grafana_url: str | None = None, retention: str = "2d",
          timeout_s: float = 30.0, alertmanagers: Iterable[str] = ()) -> PromState:
    """Start our Prometheus (detached) and wait until it is ready; returns its state."""
    binary = require_binary("prometheus")
    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    old = PromState.load(state_dir)
    if old is not None and is_ours(old):
        raise PrometheusError(f"Prometheus already running from {state_dir} "
                              f"(pid {old.pid}, {old.url}); stop it first")
    rules_dir = state_dir / "rules"
    if rules_dir.exists():
        shutil.rmtree(rules_dir)
    rules_dir.mkdir()
    copied = []
    for r in (rule_files() if rules is None else rules):
        target = rules_dir / Path(r).name
        shutil.copy2(r, target)
        copied.append(target)
    chosen = pick_port(port)
    managers = list(alertmanagers)
    config_file = state_dir / "prometheus.yml"
    config_file.write_text(render_config(sd_path, copied, scrape_interval=scrape_interval,
                                         evaluation_interval=evaluation_interval,
                                         static_targets=static_targets,
                                         alertmanagers=managers))
    data_dir = state_dir / "data"
    data_dir.mkdir(exist_ok=True)
    log_file = state_dir / "prometheus.log"
    url = f"http://{LOOPBACK}:{chosen}"
    cmd = [binary, f"--config.file={config_file}", f"--storage.tsdb.path={data_dir}",
           f"--web.listen-address={LOOPBACK}:{chosen}",
           f"--storage.tsdb.retention.time={retention}", "--web.enable-lifecycle",
           f"--web.external-url={url}/"]
    if managers:
        # Prometheus finds its Alertmanagers a few seconds after start, and an alert that fires
        # before that counts as sent: the default 1 m resend delay would hold it back for a
        # minute. Alertmanager deduplicates the resends.
        cmd.append("--rules.alert.resend-delay=5s")
    with log_file.open("ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,  # nosec B603  # argv: binary from find_binary, our own flags/paths; no shell
                                stdin=subprocess.DEVNULL, start_new_session=True, cwd=state_dir)
    state = PromState(pid=proc.pid, port=chosen, url=url, state_dir=str(state_dir),
                      config_file=str(config_file), data_dir=str(data_dir), log_file=str(log_file),
                      sd_file=str(sd_path), rule_files=[str(p) for p in copied],
                      started=time.time(), cmdline=cmd, grafana_url=grafana_url)
    state.save()
    env_lines = "".join(f"{k}={v}\n" for k, v in dashboard_env(url, grafana_url).items())
    (state_dir / DASHBOARD_ENV_FILE).write_text(env_lines)
    client = PromClient(url)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_file.read_text(errors="replace")[-2000:]
            raise PrometheusError(f"prometheus exited with {proc.returncode}:\n{tail}")
        if client.ready():
            return state
        time.sleep(0.2)
    stop(state)
    raise PrometheusError(f"prometheus not ready on {url} after {timeout_s:.0f} s")


def stop(state: Running, timeout_s: float = 10.0) -> bool:
    """SIGTERM (then SIGKILL) the recorded PID if it is still our Prometheus (or Alertmanager).
    True if stopped."""
    if not is_ours(state):
        _reap(state.pid)
        return False
    try:
        os.kill(state.pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _reap(state.pid)
        if _zombie(state.pid) or not _cmdline(state.pid):
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(state.pid, signal.SIGKILL)
    time.sleep(0.2)
    _reap(state.pid)
    return True


def _reap(pid: int) -> None:
    """Collect the exit status if the process is our child (tests, demo), so no zombie lingers."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


# --- the HTTP API ---------------------------------------------------------------------------------

class PromClient:
    """The few Prometheus HTTP API calls we need (``/api/v1/...``), stdlib only."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def _get(self, path: str, **params: Any) -> Any:
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        full = f"{self.url}{path}" + (f"?{query}" if query else "")
        try:
            with urlopen(full, timeout=self.timeout_s) as r:
                body = json.loads(r.read())
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")[:500]
            raise PrometheusError(f"GET {path}: HTTP {e.code}: {detail}") from None
        except (OSError, ValueError) as e:
            raise PrometheusError(f"GET {path}: {e}") from None
        if body.get("status") != "success":
            raise PrometheusError(f"GET {path}: {body.get('error', body)}")
        return body["data"]

    def ready(self) -> bool:
        try:
            with urlopen(f"{self.url}/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        data = self._get("/api/v1/query", query=expr, time=at)
        result = data["result"]
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": result}]
        return list(result)

    def query_range(self, expr: str, start: float, end: float,
                    step: float) -> list[dict[str, Any]]:
        data = self._get("/api/v1/query_range", query=expr, start=start, end=end, step=step)
        return list(data["result"])

    def alerts(self) -> list[dict[str, Any]]:
        return list(self._get("/api/v1/alerts")["alerts"])

    def rules(self) -> list[dict[str, Any]]:
        return list(self._get("/api/v1/rules")["groups"])

    def targets(self) -> list[dict[str, Any]]:
        return list(self._get("/api/v1/targets")["activeTargets"])

    def alert_state(self, name: str) -> str:
        """``firing``, ``pending`` or ``inactive`` (no active instance) for an alert name."""
        states = {a["state"] for a in self.alerts() if a["labels"].get("alertname") == name}
        for s in ("firing", "pending"):
            if s in states:
                return s
        return "inactive"

    def wait_for(self, check: Callable[[], Any], timeout_s: float,
                 interval_s: float = 1.0) -> Any:
        """Poll ``check`` until it returns something truthy; returns it (or the last falsy)."""
        deadline = time.monotonic() + timeout_s
        last: Any = None
        while True:
            try:
                last = check()
            except PrometheusError:
                last = None
            if last or time.monotonic() >= deadline:
                return last
            time.sleep(interval_s)

    def wait_ray_scraped(self, timeout_s: float = 40.0, metric: str = "ray_node_cpu_count",
                         ) -> bool:
        """True once a Ray target is up and ``metric`` (any Ray series by default) has data."""
        def check() -> bool:
            up = [t for t in self.targets()
                  if t["labels"].get("job") == "ray" and t["health"] == "up"]
            return bool(up) and bool(self.query(f"count({metric})"))

        return bool(self.wait_for(check, timeout_s))
