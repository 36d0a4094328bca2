"""``spark-ray observe up|down|status``: our own Prometheus on 127.0.0.1 for a Ray session.

``up`` finds the Ray session (``--session-dir``; else the cluster at ``--address`` /
``RAY_ADDRESS`` / config ``ray.address``, asked for its session folder; else the newest local
session, ``/tmp/ray/session_latest``), writes a Prometheus config that scrapes Ray through the
file service discovery Ray keeps in that session, loads ``grafana/alerts/*.yml``, starts
``prometheus`` detached on 127.0.0.1 (port 9090 when free, the Ray dashboard's default, else a free
one, or ``--port``) and prints the URLs and what the Ray dashboard needs (``RAY_PROMETHEUS_HOST``,
``RAY_GRAFANA_HOST`` when ``--grafana-url`` is given). State (PID, port, config, data, log) lives
in ``--state-dir`` (default ``~/.spark-ray/observe``); ``down`` stops only the PID recorded there.

Exit codes: 0 ok; 1 ``status`` found no running Prometheus, or it failed to start; 2 usage,
configuration, or prometheus not installed.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from spark_ray.app.session import current_session_dir
from spark_ray.config import Settings
from spark_ray.errors import CheckFailed, UserError
from spark_ray.httpopen import require_http_url
from spark_ray.observe import grafana_dir, prom

DEFAULT_STATE_DIR = Path.home() / ".spark-ray" / "observe"
_RAY_TMP_ROOT = "/tmp"  # nosec B108  # Ray's own default temp root; only read, to find its session
RAY_TEMP_DIR = Path(os.environ.get("RAY_TMPDIR", _RAY_TMP_ROOT)) / "ray"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``observe`` and its actions on the top-level ``spark-ray`` parser."""
    p = subparsers.add_parser(
        "observe", help="Prometheus on Ray's metrics, with alert rules: up, down, status",
        description=__doc__.split("\n\n")[1] if __doc__ else None)
    sub = p.add_subparsers(dest="observe_command", metavar="ACTION")
    sub.required = True

    def state_dir(q: argparse.ArgumentParser) -> None:
        q.add_argument("--state-dir", type=Path, default=None,
                       help=f"where PID, config, data and log live (default {DEFAULT_STATE_DIR})")
        q.set_defaults(handler=handle)

    up = sub.add_parser("up", help="start Prometheus scraping the Ray session's metrics")
    up.add_argument("--address", default=None,
                    help="Ray cluster whose session to scrape (default: RAY_ADDRESS, config "
                         "ray.address, else the newest local session)")
    up.add_argument("--session-dir", type=Path, default=None,
                    help="Ray session folder to scrape (skips asking a cluster)")
    up.add_argument("--port", type=int, default=None,
                    help="Prometheus port on 127.0.0.1 (default 9090 if free, else a free one)")
    up.add_argument("--scrape-interval", default="2s",
                    help="scrape and rule evaluation interval (default 2s; Ray exports every 10s)")
    up.add_argument("--grafana-url", default=os.environ.get("RAY_GRAFANA_HOST"),
                    help="a Grafana for the Ray dashboard to embed (default: $RAY_GRAFANA_HOST)")
    up.add_argument("--alertmanager", action="store_true",
                    help="also start Alertmanager (Debian's prometheus-alertmanager) on "
                         "127.0.0.1 and send it Prometheus's alerts")
    up.add_argument("--alertmanager-port", type=int, default=None,
                    help="Alertmanager port (default 9093 if free, else a free one)")
    up.add_argument("--console-url", default=None,
                    help="operator console Alertmanager routes every alert to (its "
                         "/api/alerts/webhook, with $SPARK_RAY_CONSOLE_TOKEN)")
    up.add_argument("--webhook", default=None,
                    help="your own webhook Alertmanager also routes every alert to")
    state_dir(up)
    state_dir(sub.add_parser("down", help="stop the Prometheus that 'up' started"))
    status = sub.add_parser("status", help="is it running; targets, firing alerts")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    state_dir(status)


def _state_dir(args: argparse.Namespace) -> Path:
    return Path(args.state_dir or DEFAULT_STATE_DIR).expanduser()


def resolve_session_dir(args: argparse.Namespace, settings: Settings) -> Path:
    if getattr(args, "session_dir", None):
        path = Path(args.session_dir)
        if not path.is_dir():
            raise UserError(f"--session-dir {path}: no such folder")
        return path
    address = settings.ray.address or os.environ.get("RAY_ADDRESS")
    if address:
        from spark_ray.app.session import connect, disconnect

        connect(address, config=settings.ray, quiet=True)
        try:
            return current_session_dir()
        finally:
            disconnect()
    latest = RAY_TEMP_DIR / "session_latest"
    if latest.exists():
        return latest.resolve()
    raise UserError("no Ray session found: start Ray first (e.g. `ray start --head "
                    "--node-ip-address 127.0.0.1`), or give --address or --session-dir")


def handle(args: argparse.Namespace, settings: Settings) -> int:
    action = args.observe_command
    if action == "up":
        return _up(args, settings)
    if action == "down":
        return _down(args)
    return _status(args)


def _up(args: argparse.Namespace, settings: Settings) -> int:
    if prom.find_binary("prometheus") is None:
        raise UserError(f"prometheus is not installed: apt-get install -y {prom.APT_PACKAGE} "
                        "(make demo / make test install it when missing)")
    for flag, url in (("--console-url", args.console_url), ("--webhook", args.webhook)):
        require_http_url(flag, url)
        if url and not args.alertmanager:
            raise UserError(f"{flag}: needs --alertmanager (it is Alertmanager that routes)")
    session_dir = resolve_session_dir(args, settings)
    sd = prom.sd_file(session_dir)
    manager = None
    if args.alertmanager:
        from spark_ray.console.guard import TOKEN_ENV
        from spark_ray.observe import alertmanager

        try:
            manager = alertmanager.start(_state_dir(args), console_url=args.console_url,
                                         token=os.environ.get(TOKEN_ENV) or None,
                                         webhook_url=args.webhook,
                                         port=args.alertmanager_port)
        except prom.PrometheusError as e:
            raise CheckFailed(f"observe up: {e}") from None
    try:
        state = prom.start(_state_dir(args), sd_path=sd, port=args.port,
                           scrape_interval=args.scrape_interval,
                           evaluation_interval=args.scrape_interval,
                           grafana_url=args.grafana_url,
                           alertmanagers=[f"{prom.LOOPBACK}:{manager.port}"] if manager else [])
    except prom.PrometheusError as e:
        if manager is not None:
            prom.stop(manager)
        raise CheckFailed(f"observe up: {e}") from None
    env = prom.dashboard_env(state.url, args.grafana_url)
    os.environ.update(env)  # a Ray this process starts later picks it up
    print(f"prometheus: {state.url}  (pid {state.pid}, state {state.state_dir})")
    print(f"alerts:     {state.url}/alerts   api: {state.url}/api/v1/alerts")
    print(f"targets:    {state.url}/targets  (Ray file-SD: {sd})")
    if manager is not None:
        print(f"alertmanager: {manager.url}  (pid {manager.pid}; routes to "
              f"{', '.join(manager.receivers) or 'nobody'})")
    print(f"rules:      {', '.join(Path(r).name for r in state.rule_files)}")
    print(f"grafana:    dashboards {grafana_dir() / 'dashboards'}, provisioning "
          f"{grafana_dir() / 'provisioning'} (SPARK_RAY_PROMETHEUS_URL={state.url})")
    print("ray dashboard: it reads these when Ray starts (written to "
          f"{Path(state.state_dir) / prom.DASHBOARD_ENV_FILE}):")
    for k, v in env.items():
        print(f"  export {k}={v}")
    if state.port != prom.DEFAULT_PORT:
        print("  (port is not 9090, so a Ray already running without RAY_PROMETHEUS_HOST will "
              "not find this Prometheus until it restarts with the variable set)")
    return 0


def _down(args: argparse.Namespace) -> int:
    from spark_ray.observe import alertmanager

    manager = alertmanager.AlertmanagerState.load(_state_dir(args))
    if manager is not None:
        if prom.stop(manager):
            print(f"observe: stopped alertmanager pid {manager.pid} ({manager.url})")
        (Path(manager.state_dir) / alertmanager.STATE_FILE).unlink(missing_ok=True)
    state = prom.PromState.load(_state_dir(args))
    if state is None:
        print(f"observe: nothing recorded in {_state_dir(args)}; nothing to stop")
        return 0
    if prom.stop(state):
        print(f"observe: stopped prometheus pid {state.pid} ({state.url})")
    else:
        print(f"observe: pid {state.pid} is no longer our prometheus; nothing to stop")
    (Path(state.state_dir) / prom.STATE_FILE).unlink(missing_ok=True)
    return 0


def status_info(state_dir: Path) -> dict[str, Any]:
    state = prom.PromState.load(state_dir)
    if state is None:
        return {"running": False, "state_dir": str(state_dir)}
    info: dict[str, Any] = {"running": prom.is_ours(state), "pid": state.pid, "url": state.url,
                            "state_dir": state.state_dir, "sd_file": state.sd_file,
                            "rule_files": state.rule_files}
    if info["running"]:
        client = prom.PromClient(state.url, timeout_s=5)
        info["ready"] = client.ready()
        try:
            targets = client.targets()
            info["targets"] = [{"url": t["scrapeUrl"], "health": t["health"]} for t in targets]
            info["firing"] = sorted({a["labels"]["alertname"] for a in client.alerts()
                                     if a["state"] == "firing"})
        except prom.PrometheusError as e:
            info["error"] = str(e)
    return info


def _status(args: argparse.Namespace) -> int:
    info = status_info(_state_dir(args))
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True))
    elif not info["running"]:
        print(f"observe: no prometheus running from {info['state_dir']}")
    else:
        print(f"prometheus: {info['url']} (pid {info['pid']}, ready: {info.get('ready')})")
        for t in info.get("targets", []):
            print(f"  target {t['url']}: {t['health']}")
        print(f"  firing: {', '.join(info.get('firing', [])) or 'none'}")
    return 0 if info["running"] else 1
