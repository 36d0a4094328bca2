"""``spark-ray breaker status|trip|reset|dry-run``: the kill switch, talking to the cluster's
breaker.

``trip``, ``reset`` and ``dry-run`` act on one scope (``--scope``: ``global`` by default,
``account:NAME``, ``strategy:NAME``, ``symbol:SYMBOL``); ``status`` prints the scope tree.
Where the cluster has no breaker yet it starts one (detached), so the kill switch always works.
Exit codes: 0 ok, 1 the breaker could not be reached, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

from spark_ray.config import Settings
from spark_ray.errors import CheckFailed, UserError

NOTE = ("With no --address and no RAY_ADDRESS this starts a local Ray just for the command, and "
        "a breaker started there dies with it: point --address at your cluster.")
REACH_TIMEOUT_S = 60.0
PROBE_TIMEOUT_S = 5.0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``breaker`` and its actions on the top-level ``spark-ray`` parser."""
    p = subparsers.add_parser(
        "breaker", help="circuit breaker kill switch: status, trip, reset, dry-run",
        description="Talk to the cluster's circuit breaker (starting one, detached, if there is "
                    "none). " + NOTE)
    sub = p.add_subparsers(dest="breaker_command", metavar="ACTION")
    sub.required = True

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--address", default=None,
                       help="Ray cluster to join (default: RAY_ADDRESS, else a local loopback "
                            "Ray, where a new breaker dies when the command ends)")
        q.add_argument("--name", default="breaker",
                       help="breaker actor name in namespace spark_ray (default: breaker)")
        q.add_argument("--json", action="store_true", help="print the status as JSON")
        q.set_defaults(handler=handle)

    def scope(q: argparse.ArgumentParser) -> None:
        q.add_argument("--scope", default="global",
                       help="global (default), account:NAME, strategy:NAME or symbol:SYMBOL")

    common(sub.add_parser("status", help="print the state (ARMED, TRIPPED, COOLDOWN), why, and "
                                         "the scope tree", description=NOTE))
    trip = sub.add_parser("trip", help="trip a scope now (blocks its orders until reset; "
                                       "position-reducing orders still pass)",
                          description=NOTE)
    trip.add_argument("--reason", required=True, help="why (journaled with your user name)")
    scope(trip)
    common(trip)
    reset = sub.add_parser("reset", help="re-arm a scope (clears its conditions)",
                           description=NOTE)
    reset.add_argument("--reason", required=True, help="why (journaled with your user name)")
    scope(reset)
    common(reset)
    dry = sub.add_parser("dry-run", help="switch dry-run on or off on the running breaker "
                                         "(journaled: survives a restart)", description=NOTE)
    dry.add_argument("switch", choices=("on", "off"), help="on: evaluate and journal, block "
                                                          "nothing in the scope; off: enforce")
    dry.add_argument("--reason", default="", help="why (journaled with your user name)")
    scope(dry)
    common(dry)


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # a container user with no passwd entry
        return os.environ.get("USER") or "unknown"


def _breaker_config(settings: Settings) -> Any:
    """The ``breaker`` config section if the settings carry one, else the defaults."""
    from spark_ray.breaker.models import BreakerConfig

    section = getattr(settings, "breaker", None)
    return section if isinstance(section, BreakerConfig) else BreakerConfig()


def _call(fn: Callable[[], Any]) -> Any:
    """Retry while the breaker is (re)starting; give up after REACH_TIMEOUT_S."""
    import ray
    from ray.exceptions import GetTimeoutError, RayActorError, RayError

    deadline = time.monotonic() + REACH_TIMEOUT_S
    while True:
        try:
            return ray.get(fn(), timeout=max(1.0, deadline - time.monotonic()))
        except (RayActorError, GetTimeoutError) as exc:
            if time.monotonic() >= deadline:
                raise CheckFailed(f"breaker: not reachable: {type(exc).__name__}: {exc}") \
                    from None
            time.sleep(0.5)
        except RayError as exc:  # the call itself failed inside the breaker
            raise CheckFailed(f"breaker: call failed: {type(exc).__name__}: {exc}") from None


def _probe(address: str | None) -> None:
    """Fail fast (exit 1) on a cluster address nobody answers: ``ray.init`` would retry forever,
    and a kill switch that hangs is worse than one that says it could not reach the breaker."""
    if not address:
        return
    m = re.fullmatch(r"\[?([A-Za-z0-9_.:-]+?)\]?:(\d+)", address.strip())
    if m is None:
        return  # ray://, auto, ...: leave it to Ray
    try:
        socket.create_connection((m.group(1), int(m.group(2))), timeout=PROBE_TIMEOUT_S).close()
    except OSError as exc:
        raise CheckFailed(f"breaker: could not reach Ray at {address}: {exc}") from None


def _mutate(action: str, breaker: Any, name: str, who: str, reason: str, scope: str,
            args: argparse.Namespace) -> Any:
    """trip, reset or dry-run, appended to the audit log (ok, refused or error)."""
    from spark_ray.audit import AuditLog, audited

    target: dict[str, Any] = {"breaker": name, "scope": scope}
    if action == "dry-run":
        target["on"] = args.switch == "on"
    with audited(AuditLog(), who, f"breaker-{action}", target, reason=reason):
        if action == "trip":
            return _call(lambda: breaker.trip.remote(reason, who, scope))
        if action == "reset":
            return _call(lambda: breaker.reset.remote(reason, who, scope))
        on = args.switch == "on"
        return _call(lambda: breaker.set_dry_run.remote(on, who, reason, scope))


def handle(args: argparse.Namespace, settings: Settings) -> int:
    """Connect, find or start the breaker, run the action, print the status."""
    action = args.breaker_command
    reason = getattr(args, "reason", None)
    if action in ("trip", "reset") and not (reason or "").strip():
        raise UserError(f"breaker {action}: --reason must not be empty")
    who = f"cli:{_user()}"
    config = _breaker_config(settings)
    scope = "global"
    if action in ("trip", "reset", "dry-run"):
        from spark_ray.breaker.scopes import parse_scope

        try:
            scope = parse_scope(args.scope)
        except ValueError as exc:
            raise UserError(f"breaker {action}: --scope: {exc}") from None

    from spark_ray.actors.naming import actor_name
    from spark_ray.app.session import connect, disconnect

    try:
        name = actor_name(*args.name.split(":"))
    except ValueError as exc:
        raise UserError(f"breaker: --name: {exc}") from None
    _probe(settings.ray.address or os.environ.get("RAY_ADDRESS"))
    try:
        session = connect(config=settings.ray)
    except Exception as exc:  # ConnectionError, timeouts, ...: Ray is not there
        raise CheckFailed(f"breaker: could not reach Ray: {type(exc).__name__}: {exc}") from None
    try:
        from spark_ray.actors.breaker import get_breaker

        if session.started_local:
            print(f"spark-ray: note: {NOTE}", file=sys.stderr)
        try:
            breaker, started = get_breaker(name, config=config)
        except Exception as exc:
            raise CheckFailed(f"breaker: could not find or start {name!r}: {exc}") from None
        if started:
            print(f"spark-ray: no breaker {name!r} on this cluster: started one (detached)",
                  file=sys.stderr)
        if action == "status":
            snap = _call(lambda: breaker.status.remote())
        else:
            snap = _mutate(action, breaker, name, who, reason or "", scope, args)
    finally:
        if session.started_local:
            disconnect()
    if args.json:
        print(json.dumps(snap, indent=2, sort_keys=True, default=str))
    else:
        from spark_ray.breaker.status import format_status

        print(format_status(snap))
    return 0
