"""``spark-ray streams up|status|down``: the long-lived fabric (see
:mod:`spark_ray.app.fabric_service`). Registered under ``spark-ray streams``, whose own flags
still run a foreground fabric when no action is given.

Each action talks to a running cluster (``--address``, ``RAY_ADDRESS`` or the config's
``ray.address``): a Ray started just for the command would take the fabric down with it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from spark_ray.adapters.registry import exchange_names, get_adapter
from spark_ray.config import Settings
from spark_ray.errors import CheckFailed, UserError

NEED_CLUSTER = ("needs a running Ray cluster: pass --address HOST:PORT (or set RAY_ADDRESS); "
                "start one with `ray start --head`")


def add_actions(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="streams_command", metavar="ACTION")
    sub.required = False

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--exchange", choices=exchange_names(), default="binance")
        q.add_argument("--address", default=None,
                       help="Ray cluster (default: RAY_ADDRESS, else the config's ray.address)")

    up = sub.add_parser(
        "up", help="start the fabric as detached actors that outlive this command",
        description="Start connectors, normalizers, the sink and a supervisor as named, "
                    "detached actors in namespace spark_ray; return once healthy. Refused "
                    "(exit 1) while a fabric for the exchange runs.")
    common(up)
    up.add_argument("--symbols", default="BTCUSDT", help="comma-separated, e.g. BTCUSDT,ETHUSDT")
    up.add_argument("--streams", default="trade",
                    help="comma-separated: trade, aggTrade, depth, bookTicker, kline_1m")
    up.add_argument("--ws-url", default=None, help="stream base URL (default: the exchange's)")
    up.add_argument("--rest-url", default=None,
                    help="REST base for backfill and depth snapshots (default: the exchange's)")
    up.add_argument("--store", default=None, help="lake root (default: the config's store)")
    up.add_argument("--shards", type=int, default=1, help="normalizer shards (symbol groups)")
    up.add_argument("--ws-client", choices=("aiohttp", "websockets"), default="aiohttp")
    up.add_argument("--breaker", default="breaker",
                    help="circuit breaker fed per-symbol market-data health ('none': no feed)")
    up.add_argument("--timeout", type=float, default=120.0,
                    help="seconds to wait for the fabric to become healthy")
    up.set_defaults(handler=handle_up)

    st = sub.add_parser("status", help="health of every fabric actor and of every symbol",
                        description="Exit 0 healthy, 1 unhealthy or no fabric running.")
    common(st)
    st.add_argument("--json", action="store_true", help="the status document as JSON")
    st.add_argument("--max-age-s", type=float, default=30.0,
                    help="a symbol silent longer than this is unhealthy")
    st.set_defaults(handler=handle_status)

    dn = sub.add_parser("down", help="drain into the lake, seal the WAL, stop the actors",
                        description="Idempotent: exit 0 when no fabric runs.")
    common(dn)
    dn.set_defaults(handler=handle_down)
    _keep_parent_values(p, (up, st, dn))


def _keep_parent_values(parent: argparse.ArgumentParser,
                        actions: tuple[argparse.ArgumentParser, ...]) -> None:
    """``streams --symbols X up`` means X: argparse lets a subcommand's defaults overwrite the
    values given before it, so a flag both define defaults to "not given" in the subcommand
    (the parent's value, or its default, stands)."""
    shared = {a.dest for a in parent._actions if a.option_strings}
    for q in actions:
        for a in q._actions:
            if a.dest in shared and a.dest != "help":
                a.default = argparse.SUPPRESS


def _connect(settings: Settings, action: str) -> Any:
    from spark_ray.app import session

    address = settings.ray.address or os.environ.get("RAY_ADDRESS")
    if not address:
        raise UserError(f"--address: streams {action} {NEED_CLUSTER}")
    try:
        return session.connect(address, config=settings.ray, quiet=True)
    except Exception as exc:  # ConnectionError, timeouts: nobody there
        raise CheckFailed(f"streams {action}: could not reach Ray at {address}: "
                          f"{type(exc).__name__}: {exc}") from None


def _progress(line: str) -> None:
    print(f"spark-ray streams: {line}", file=sys.stderr, flush=True)


def handle_up(args: argparse.Namespace, settings: Settings) -> int:
    from spark_ray.app.cli.streams import _symbols
    from spark_ray.app.fabric import FabricConfig
    from spark_ray.streams.plan import parse_streams

    symbols = _symbols(args.symbols)
    adapter = get_adapter(args.exchange)
    try:
        streams = parse_streams(args.streams, adapter.caps.stream_kinds)
    except ValueError as e:
        raise UserError(f"--streams: {adapter.title}: {e}") from None
    if args.shards < 1:
        raise UserError("--shards: must be >= 1")
    if not args.timeout > 0:
        raise UserError("--timeout: must be > 0")
    for flag, url, schemes in (("--ws-url", args.ws_url, ("ws://", "wss://")),
                               ("--rest-url", args.rest_url, ("http://", "https://"))):
        if url is not None and not url.startswith(schemes):
            raise UserError(f"{flag}: {url!r} must start with {' or '.join(schemes)}")
    cfg = FabricConfig(
        exchange=args.exchange, symbols=symbols, streams=streams,
        ws_url=args.ws_url or adapter.default_ws_url,
        rest_url=args.rest_url or adapter.default_rest_url,
        store=os.path.abspath(args.store or settings.store), shards=args.shards,
        ws_client=args.ws_client, breaker=None if args.breaker == "none" else args.breaker)
    _connect(settings, "up")
    from spark_ray.app import fabric_service

    fabric = fabric_service.up(cfg, _progress, timeout_s=args.timeout)
    print(f"spark-ray streams: up: {fabric_service.describe(fabric)}; actors "
          f"{', '.join(sorted(fabric.names.values()))} (namespace spark_ray, detached); "
          f"`spark-ray streams status` / `down`", flush=True)
    return 0


def handle_status(args: argparse.Namespace, settings: Settings) -> int:
    if not args.max_age_s > 0:
        raise UserError("--max-age-s: must be > 0")
    _connect(settings, "status")
    from spark_ray.app import fabric_service

    fabric = fabric_service.running(args.exchange)
    if fabric is None:
        msg = (f"no fabric for {args.exchange} runs on this cluster; start one with "
               f"`spark-ray streams up --exchange {args.exchange} --symbols ...`")
        if args.json:
            print(json.dumps({"status": "absent", "exchange": args.exchange, "message": msg}))
        raise CheckFailed(f"streams status: {msg}")
    ok, doc = fabric_service.report(fabric, args.max_age_s)
    if args.json:
        print(json.dumps(doc, indent=2, sort_keys=True, default=str))
    else:
        print(format_report(doc))
    return 0 if ok else 1


def handle_down(args: argparse.Namespace, settings: Settings) -> int:
    _connect(settings, "down")
    from spark_ray.app import fabric_service

    result = fabric_service.down(args.exchange, _progress)
    if result is None:
        print(f"spark-ray streams: down: no fabric for {args.exchange} runs; nothing to do")
        return 0
    print(json.dumps({"rows_written": result.get("rows_written"),
                      "stored": result.get("stored"),
                      "parts_compacted": result.get("parts_compacted")}, sort_keys=True))
    return 0


def format_report(doc: dict[str, Any]) -> str:
    """The status document for people: actors, then one line per symbol."""
    lines = [f"fabric {doc['exchange']}: {doc['status'].upper()}  lake {doc['store']}  "
             f"ws {doc['ws_url']}"]
    for name, a in sorted(doc["actors"].items()):
        mark = "ok " if a.get("ok") else "BAD"
        extra = ", ".join(f"{k}={v}" for k, v in sorted(a.items())
                          if k not in ("ok", "reason") and v is not None)
        lines.append(f"  {mark} {name}: {a.get('reason', '')}{'; ' if a.get('reason') else ''}"
                     f"{extra}")
    lines.append(f"  WAL depth: {doc['wal']['buffered_rows']} row(s) logged, not yet in Parquet")
    b = doc["breaker"]
    lines.append(f"  breaker feed: {b['name'] or 'off'} (reachable: {b['reachable']}, "
                 f"reports {b['reports']}, dropped {b['dropped']})")
    lines.append("  symbol     age_s   msg/s    lag_s  offset_s  gaps  unrepaired  errors")
    for sym, s in sorted(doc["symbols"].items()):
        lines.append(f"  {sym:<9} {s['last_message_age_s']:>6.1f} {s['rate_msg_s']:>7.1f} "
                     f"{_num(s['ingest_lag_s']):>8} {_num(s['clock_offset_s']):>9} "
                     f"{s['gaps']:>5} {s['unrepaired_gaps']:>11} {s['venue_errors']:>7}"
                     f"{'  <- ' + s['reason'] if s.get('reason') else ''}")
    return "\n".join(lines)


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"
