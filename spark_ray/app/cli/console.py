"""``spark-ray console``: the operator console on the cluster (Ray Serve), and ``console down``.

    SPARK_RAY_CONSOLE_TOKEN=... spark-ray console --address 127.0.0.1:6379 --runs runs \
        --store lake [--port 3003] [--host 127.0.0.1] [--prometheus http://127.0.0.1:9090]
    spark-ray console down --address 127.0.0.1:6379

Returns once the console answers (it then runs on the cluster, without this command). Exit
codes: 0 ok, 1 it did not answer in time, 2 usage or configuration error (including no cluster
to talk to).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from spark_ray.app.cli.streams_service import NEED_CLUSTER
from spark_ray.config import Settings
from spark_ray.errors import CheckFailed, UserError
from spark_ray.httpopen import require_http_url


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "console", help="the operator console (web pages + JSON API) on Ray Serve",
        description="Deploy the operator console as the Ray Serve application "
                    "'spark-ray-console' on the cluster and print its URL once it answers. "
                    "Mutations (breaker trip/reset/dry-run, approve, silence) need "
                    "SPARK_RAY_CONSOLE_TOKEN, read here; only its SHA-256 reaches the cluster.")
    p.add_argument("--address", default=None,
                   help="Ray cluster (default: RAY_ADDRESS, else the config's ray.address)")
    p.add_argument("--port", type=int, default=3003, help="HTTP port (Ray Serve's proxy)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback)")
    p.add_argument("--tls-cert", default=None,
                   help="serve HTTPS (Ray Serve's proxy) with this PEM certificate chain, with "
                        "--tls-key; off loopback without it, every mutation is refused")
    p.add_argument("--tls-key", default=None, help="the certificate's PEM private key (0600)")
    p.add_argument("--tls-ca", default=None,
                   help="CA file to verify the console's certificate by (default: system CAs)")
    p.add_argument("--runs", default="runs", help="runs folder the research and chaos pages read")
    p.add_argument("--store", default=None, help="lake root (default: the config's store)")
    p.add_argument("--keys-dir", default=None,
                   help="approvers' private keys the page's approve signs with (default: "
                        "$SPARK_RAY_KEYS_DIR or ~/.config/spark-ray/keys on the console's node)")
    p.add_argument("--prometheus", default=None,
                   help="Prometheus URL (health and alerts; default: the one `spark-ray observe "
                        "up` runs, when it runs)")
    p.add_argument("--alertmanager", default=None,
                   help="Alertmanager URL (alerts, silences; default: the one `observe up "
                        "--alertmanager` runs, when it runs)")
    p.add_argument("--observe-state-dir", type=Path, default=None,
                   help="where `observe up` keeps its state (default ~/.spark-ray/observe)")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="seconds to wait for the console to answer")
    p.set_defaults(handler=handle_up)
    sub = p.add_subparsers(dest="console_command", metavar="ACTION")
    sub.required = False
    d = sub.add_parser("down", help="remove the console from the cluster")
    d.add_argument("--address", default=None, help="Ray cluster (default: RAY_ADDRESS)")
    d.set_defaults(handler=handle_down)


def _connect(settings: Settings, address: str | None, action: str) -> Any:
    from spark_ray.app import session

    address = address or settings.ray.address or os.environ.get("RAY_ADDRESS")
    if not address:
        raise UserError(f"--address: console{action} {NEED_CLUSTER}")
    try:
        return session.connect(address, config=settings.ray, quiet=True)
    except Exception as exc:  # nobody there
        raise CheckFailed(f"console{action}: could not reach Ray at {address}: "
                          f"{type(exc).__name__}: {exc}") from None


def _progress(line: str) -> None:
    print(f"spark-ray console: {line}", file=sys.stderr, flush=True)


def settings_for(runs: str, store: str | None, prometheus: str | None,
                 alertmanager: str | None, env: dict[str, str] | None = None,
                 keys_dir: str | None = None, refuse_plain_tokens: bool = False
                 ) -> dict[str, Any]:
    """The replica's settings: absolute paths, URLs, and the token's SHA-256 only; the audit
    log and the mutation rate limit as this command's environment names them."""
    from spark_ray.audit import RATE_ENV, default_path, parse_rate
    from spark_ray.console.guard import TokenHash

    require_http_url("--prometheus", prometheus)
    require_http_url("--alertmanager", alertmanager)
    source = {**os.environ, **(env or {})}
    rate = source.get(RATE_ENV) or None
    try:
        parse_rate(rate)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return {"runs": str(Path(runs).resolve()),
            "store": str(Path(store).resolve()) if store and "://" not in store else store,
            "prometheus": prometheus, "alertmanager": alertmanager,
            "keys_dir": str(Path(keys_dir).resolve()) if keys_dir else None,
            "audit_log": str(default_path(source).resolve()), "mutation_rate": rate,
            "refuse_plain_tokens": refuse_plain_tokens,
            "token_sha256": TokenHash.from_env(env).sha256}


def observed(state_dir: Path | None) -> tuple[str | None, str | None]:
    """The URLs of the Prometheus and Alertmanager that ``observe up`` started and that still
    run (their recorded PIDs, checked), else None."""
    from spark_ray.app.cli.observe import DEFAULT_STATE_DIR
    from spark_ray.observe import alertmanager, prom

    folder = Path(state_dir or DEFAULT_STATE_DIR).expanduser()
    ps, am = prom.PromState.load(folder), alertmanager.AlertmanagerState.load(folder)
    return (ps.url if ps is not None and prom.is_ours(ps) else None,
            am.url if am is not None and prom.is_ours(am) else None)


def handle_up(args: argparse.Namespace, settings: Settings) -> int:
    from spark_ray.app import console_service
    from spark_ray.console.guard import TOKEN_ENV

    if not 1 <= args.port <= 65535:
        raise UserError("--port: outside 1..65535")
    if args.timeout <= 0:
        raise UserError("--timeout: must be > 0")
    found_prom, found_am = observed(args.observe_state_dir)
    prometheus = args.prometheus or found_prom
    manager = args.alertmanager or found_am
    for name, url, given in (("prometheus", prometheus, args.prometheus),
                             ("alertmanager", manager, args.alertmanager)):
        if url and not given:
            _progress(f"{name}: {url} (started by `spark-ray observe up`)")
    from spark_ray.tls import plain_token_risk, tls_files

    tls = tls_files(args.tls_cert, args.tls_key)
    plain = plain_token_risk(args.host, tls)
    cfg = settings_for(args.runs, args.store or settings.store, prometheus, manager,
                       keys_dir=args.keys_dir, refuse_plain_tokens=plain)
    if plain:
        _progress(f"warning: --host {args.host} is not loopback and there is no TLS: the "
                  "console is reachable from the network over plain HTTP, read-only (every "
                  "mutation is refused; give --tls-cert/--tls-key)")
    if cfg["token_sha256"] is None:
        _progress(f"{TOKEN_ENV} is not set: the console is read-only (every mutation gets 401)")
    _connect(settings, args.address, "")
    url = console_service.up(args.host, args.port, cfg, _progress, timeout_s=args.timeout,
                             tls=tls, ca=args.tls_ca)
    print(url, flush=True)
    return 0


def handle_down(args: argparse.Namespace, settings: Settings) -> int:
    from spark_ray.app import console_service

    _connect(settings, args.address, " down")
    if not console_service.down(_progress):
        _progress("no console was running")
    return 0
