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
from spark_ray.app.cli.exchanges import (
    JoinValues,
    parse_exchanges,
    per_exchange,
    per_exchange_url,
)
from spark_ray.config import Settings
from spark_ray.errors import CheckFailed, UserError

NEED_CLUSTER = ("needs a running Ray cluster: pass --address HOST:PORT (or set RAY_ADDRESS); "
                "start one with `ray start --head`")


def add_actions(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="streams_command", metavar="ACTION")
    sub.required = False

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--exchange", default="binance", action=JoinValues, sep=",",
                       help=f"one or several of {', '.join(exchange_names())}, comma-separated "
                            "or the flag repeated (one fabric each)")
        q.add_argument("--address", default=None,
                       help="Ray cluster (default: RAY_ADDRESS, else the config's ray.address)")

    up = sub.add_parser(
        "up", help="start the fabric as detached actors that outlive this command",
        description="Start connectors, normalizers, the sink and a supervisor as named, "
                    "detached actors in namespace spark_ray; return once healthy. Refused "
                    "(exit 1) while a fabric for the exchange runs.")
    common(up)
    up.add_argument("--symbols", default="BTCUSDT", action=JoinValues,
                    help="comma-separated, e.g. BTCUSDT,ETHUSDT; several exchanges: "
                         "'binance:BTCUSDT,ETHUSDT;btcturk:BTCTRY,USDTTRY' (or the flag repeated)")
    up.add_argument("--streams", default="trade", action=JoinValues,
                    help="comma-separated: trade, aggTrade, depth, bookTicker, kline_1m; per "
                         "exchange 'trade;binance:trade,bookTicker' (plain: every exchange)")
    up.add_argument("--ws-url", default=None, action=JoinValues, sep=",",
                    help="stream base URL (default: the exchange's); several exchanges: "
                         "EXCHANGE=URL,...")
    up.add_argument("--rest-url", default=None, action=JoinValues, sep=",",
                    help="REST base for backfill and depth snapshots (default: the exchange's); "
                         "several exchanges: EXCHANGE=URL,...")
    up.add_argument("--cross-quote", default="USDT",
                    help="several exchanges: the cross-venue view's reference quote currency")
    up.add_argument("--cross-rate", default=None, action=JoinValues, sep=",",
                    help="how a quote currency converts to the reference: CURRENCY=RATE (fixed) "
                         "or CURRENCY=EXCHANGE:SYMBOL (that book's mid), e.g. TRY=btcturk:USDTTRY;"
                         " default: a carried symbol pairing the two, named in the view")
    up.add_argument("--cross-max-age-s", type=float, default=10.0,
                    help="a venue quote (or rate) older than this leaves the cross-venue view")
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
    from spark_ray.app.fabric import FabricConfig
    from spark_ray.streams.plan import parse_streams, parse_symbols

    exchanges = parse_exchanges(args.exchange)
    symbols = per_exchange("--symbols", args.symbols, exchanges, shared=False)
    kinds = per_exchange("--streams", args.streams, exchanges, shared=True)
    ws_urls = per_exchange_url("--ws-url", args.ws_url, exchanges, ("ws://", "wss://"))
    rest_urls = per_exchange_url("--rest-url", args.rest_url, exchanges,
                                 ("http://", "https://"))
    if args.shards < 1:
        raise UserError("--shards: must be >= 1")
    if not args.timeout > 0:
        raise UserError("--timeout: must be > 0")
    cfgs = []
    for ex in exchanges:
        adapter = get_adapter(ex)
        try:
            syms = parse_symbols(symbols[ex])
        except ValueError as e:
            raise UserError(f"--symbols: {e}") from None
        try:
            streams = parse_streams(kinds[ex], adapter.caps.stream_kinds)
        except ValueError as e:
            raise UserError(f"--streams: {adapter.title}: {e}") from None
        cfgs.append(FabricConfig(
            exchange=ex, symbols=syms, streams=streams,
            ws_url=ws_urls[ex] or adapter.default_ws_url,
            rest_url=rest_urls[ex] or adapter.default_rest_url,
            store=os.path.abspath(args.store or settings.store), shards=args.shards,
            ws_client=args.ws_client, breaker=None if args.breaker == "none" else args.breaker))
    cross = _cross_config(args, cfgs) if len(cfgs) > 1 else None
    _connect(settings, "up")
    from spark_ray.app import fabric_service

    fabrics = fabric_service.up_many(cfgs, _progress, timeout_s=args.timeout, cross=cross)
    for fabric in fabrics:
        print(f"spark-ray streams: up: {fabric_service.describe(fabric)}; actors "
              f"{', '.join(sorted(fabric.names.values()))} (namespace spark_ray, detached); "
              f"`spark-ray streams status` / `down`", flush=True)
    if cross is not None:
        from spark_ray.streams.crossvenue import format_lines

        view = fabric_service.cross_view() or {}
        print(f"spark-ray streams: up: cross-venue view {fabric_service.CROSS_NAME} over "
              f"{','.join(exchanges)} in {cross['reference']}", flush=True)
        for line in format_lines(view) if view else []:
            print(f"  {line}", flush=True)
    return 0


def _cross_config(args: argparse.Namespace, cfgs: list[Any]) -> dict[str, Any]:
    """The cross-venue actor's settings from ``--cross-*`` (exit 2 naming the flag)."""
    from spark_ray.streams.crossvenue import parse_rate

    reference = str(args.cross_quote).strip().upper()
    if not reference.isalnum():
        raise UserError(f"--cross-quote: {args.cross_quote!r} must be a currency like USDT")
    if not args.cross_max_age_s > 0:
        raise UserError("--cross-max-age-s: must be > 0")
    exchanges = [c.exchange for c in cfgs]
    carried = {c.exchange: set(c.symbols) for c in cfgs}
    rates: dict[str, dict[str, Any]] = {}
    for raw in ([] if args.cross_rate is None else str(args.cross_rate).split(",")):
        if not raw.strip():
            continue
        try:
            spec = parse_rate(raw, exchanges)
        except ValueError as e:
            raise UserError(f"--cross-rate: {e}") from None
        if spec.venue is not None and spec.symbol not in carried[spec.venue]:
            raise UserError(f"--cross-rate: {spec.venue} does not carry {spec.symbol}; add it "
                            f"to --symbols {spec.venue}:...")
        rates[spec.currency] = {"currency": spec.currency, "fixed": spec.fixed,
                                "venue": spec.venue, "symbol": spec.symbol}
    return {"exchanges": exchanges, "reference": reference, "rates": rates,
            "max_age_s": float(args.cross_max_age_s)}


def handle_status(args: argparse.Namespace, settings: Settings) -> int:
    if not args.max_age_s > 0:
        raise UserError("--max-age-s: must be > 0")
    exchanges = parse_exchanges(args.exchange)
    _connect(settings, "status")
    from spark_ray.app import fabric_service

    docs: dict[str, dict[str, Any]] = {}
    healthy = True
    absent: list[str] = []
    for ex in exchanges:
        fabric = fabric_service.running(ex)
        if fabric is None:
            absent.append(ex)
            docs[ex] = {"status": "absent", "exchange": ex}
            healthy = False
            continue
        ok, docs[ex] = fabric_service.report(fabric, args.max_age_s)
        healthy = healthy and ok
    cross = fabric_service.cross_view(exchanges)
    if len(exchanges) == 1:
        doc = docs[exchanges[0]]
        if cross is not None:
            doc["cross_venue"] = cross
    else:
        doc = {"status": "ok" if healthy else ("absent" if len(absent) == len(exchanges)
                                               else "unhealthy"),
               "exchanges": exchanges, "fabrics": docs, "cross_venue": cross}
    if absent:
        msg = (f"no fabric for {','.join(absent)} runs on this cluster; start one with "
               f"`spark-ray streams up --exchange {','.join(absent)} --symbols ...`")
        doc["message"] = msg
        if args.json:
            print(json.dumps(doc, indent=2, sort_keys=True, default=str))
        elif len(exchanges) > 1:
            print(format_many(doc))
        raise CheckFailed(f"streams status: {msg}")
    if args.json:
        print(json.dumps(doc, indent=2, sort_keys=True, default=str))
    elif len(exchanges) == 1:
        print(format_report(doc))
    else:
        print(format_many(doc))
    return 0 if healthy else 1


def handle_down(args: argparse.Namespace, settings: Settings) -> int:
    exchanges = parse_exchanges(args.exchange)
    _connect(settings, "down")
    from spark_ray.app import fabric_service

    if fabric_service.cross_down(exchanges):
        print(f"spark-ray streams: down: cross-venue view {fabric_service.CROSS_NAME} stopped")
    for ex in exchanges:
        result = fabric_service.down(ex, _progress)
        if result is None:
            print(f"spark-ray streams: down: no fabric for {ex} runs; nothing to do")
            continue
        out = {"rows_written": result.get("rows_written"), "stored": result.get("stored"),
               "parts_compacted": result.get("parts_compacted")}
        if len(exchanges) > 1:
            out["exchange"] = ex
        print(json.dumps(out, sort_keys=True))
    return 0


def format_many(doc: dict[str, Any]) -> str:
    """Several fabrics: each one's report, then the cross-venue view."""
    from spark_ray.streams.crossvenue import format_lines

    parts = []
    for ex, d in doc["fabrics"].items():
        parts.append(format_report(d) if d["status"] != "absent"
                     else f"fabric {ex}: ABSENT")
    cross = doc.get("cross_venue")
    if cross and "error" in cross:
        parts.append(f"cross-venue view unreachable: {cross['error']}")
    elif cross:
        rates = "; ".join(f"{c}: {r['value']:.6g} per {r['reference']} from {r['source']}"
                          if r["value"] is not None else f"{c}: none ({r['reason']})"
                          for c, r in cross["rates"].items()) or "none needed"
        parts.append(f"cross-venue in {cross['reference_quote']} (quotes older than "
                     f"{cross['max_age_s']:g} s excluded; rates: {rates})")
        parts += [f"  {line}" for line in format_lines(cross)]
    return "\n".join(parts)


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
