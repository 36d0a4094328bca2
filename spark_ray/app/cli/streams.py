"""``spark-ray streams`` (run the fabric with its control plane), ``spark-ray streams
up|status|down`` (the long-lived fabric) and ``spark-ray slo``.

    spark-ray streams up --exchange binance --symbols BTCUSDT,ETHUSDT --store lake \
        --address 127.0.0.1:6379
    spark-ray streams status [--json] --address 127.0.0.1:6379
    spark-ray streams down --address 127.0.0.1:6379

Exit codes: 0 ok (slo: every target PASS; status: healthy; down: stopped or nothing ran),
1 slo targets missed, status unhealthy or no fabric running, up refused because a fabric for
the exchange already runs (the message names it) or it did not become healthy,
2 usage or configuration error (including up/status/down without a cluster to talk to).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from spark_ray.adapters.registry import exchange_names, get_adapter
from spark_ray.config import Settings
from spark_ray.errors import UserError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``streams`` and ``slo`` on the top-level ``spark-ray`` parser."""
    p = subparsers.add_parser(
        "streams", help="run the streams fabric: connectors -> normalizers -> Parquet sink",
        description="Start the connector, normalizer and sink actors (named, restartable) and "
                    "a control plane with /health, /metrics and POST /chaos. Runs until "
                    "Ctrl-C (or --duration).")
    p.add_argument("--exchange", choices=exchange_names(), default="binance")
    p.add_argument("--symbols", default="BTCUSDT", help="comma-separated, e.g. BTCUSDT,ETHUSDT")
    p.add_argument("--streams", default="trade",
                   help="comma-separated: trade, aggTrade, depth, bookTicker, kline_1m")
    p.add_argument("--ws-url", default=None,
                   help="stream base URL (default: the exchange's own)")
    p.add_argument("--rest-url", default=None, help="REST base for backfill and depth snapshots")
    p.add_argument("--store", default=None, help="lake root (default: the config's store)")
    p.add_argument("--address", default=None, help="Ray cluster to join (default: local)")
    p.add_argument("--shards", type=int, default=1, help="normalizer shards (symbol groups)")
    p.add_argument("--host", default="127.0.0.1", help="control plane host (loopback)")
    p.add_argument("--port", type=int, default=4601, help="control plane port (0: any free)")
    p.add_argument("--tls-cert", default=None,
                   help="serve the control plane over HTTPS with this PEM certificate chain "
                        "(with --tls-key); off loopback without it, tokens are refused")
    p.add_argument("--tls-key", default=None, help="the certificate's PEM private key (0600)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--namespace", default="spark_ray", help="Ray namespace of the actors")
    p.add_argument("--ws-client", choices=("aiohttp", "websockets"), default="aiohttp",
                   help="WebSocket library the connectors read with (aiohttp: ~4x less CPU)")
    p.add_argument("--breaker", default="breaker",
                   help="circuit breaker (namespace spark_ray) fed per-symbol market-data "
                        "health; 'none': no feed")
    p.set_defaults(handler=handle_streams)
    from spark_ray.app.cli import streams_service

    streams_service.add_actions(p)

    s = subparsers.add_parser(
        "slo", help="run the venue simulator and the fabric; write p95-summary.json",
        description="Start a local venue at --rate msg/s, run the fabric for --duration "
                    "seconds, pause the market, drain, and compare the lake with the venue's "
                    "ground truth. Writes p95-summary.json into an evidence bundle.")
    s.add_argument("--duration", type=float, default=300.0)
    s.add_argument("--rate", type=float, default=5000.0, help="total trades per second")
    s.add_argument("--symbols", default="BTCUSDT,ETHUSDT")
    s.add_argument("--store", default=None,
                   help="lake root for the run (default: a temporary folder, removed)")
    s.add_argument("--address", default=None, help="Ray cluster to join (default: local)")
    s.add_argument("--out", type=Path, default=None, help="where the run folder goes")
    s.add_argument("--chaos", action="store_true",
                   help="half-way, inject a gap, duplicates and a disconnect at the venue")
    s.set_defaults(handler=handle_slo)


def _symbols(raw: str) -> list[str]:
    from spark_ray.streams.plan import parse_symbols

    try:
        return parse_symbols(raw)
    except ValueError as e:
        raise UserError(f"--symbols: {e}") from None


def _connect(settings: Settings, address: str | None) -> Any:
    from spark_ray.app import session

    cfg = settings.ray.model_copy(update={"address": address}) if address else settings.ray
    return session.connect(config=cfg)


def handle_streams(args: argparse.Namespace, settings: Settings) -> int:
    from spark_ray.app import session
    from spark_ray.app.fabric import FabricConfig
    from spark_ray.streams.control import ControlPlane, fabric_chaos
    from spark_ray.streams.plan import parse_streams

    symbols = _symbols(args.symbols)
    adapter = get_adapter(args.exchange)
    try:
        streams = parse_streams(args.streams, adapter.caps.stream_kinds)
    except ValueError as e:
        raise UserError(f"--streams: {adapter.title}: {e}") from None
    if args.shards < 1:
        raise UserError("--shards: must be >= 1")
    if not 0 <= args.port <= 65535:
        raise UserError("--port: outside 0..65535")
    if args.duration is not None and args.duration <= 0:
        raise UserError("--duration: must be > 0")
    from spark_ray.tls import tls_files

    tls = tls_files(args.tls_cert, args.tls_key)
    if tls is not None:
        tls.server_context()  # a bad certificate or key exits 2 before anything starts
    cfg = FabricConfig(
        exchange=args.exchange, symbols=symbols, streams=streams,
        ws_url=args.ws_url or adapter.default_ws_url,
        rest_url=args.rest_url or adapter.default_rest_url,
        store=args.store or settings.store, shards=args.shards, namespace=args.namespace,
        ws_client=args.ws_client, breaker=None if args.breaker == "none" else args.breaker)
    sess = _connect(settings, args.address)
    try:
        fabric = _start_foreground(cfg)
    except BaseException:
        if sess.started_local:
            session.disconnect()
        raise
    plane = ControlPlane(fabric.status, fabric_chaos(fabric), exchange=cfg.exchange,
                         host=args.host, port=args.port, tls=tls).start()
    print(f"spark-ray streams: {len(fabric.connectors)} connector(s) -> "
          f"{len(fabric.normalizers)} normalizer(s) -> {fabric.names['sink']}; lake {cfg.store}; "
          f"control plane {plane.url} (/health, /metrics, POST /chaos)", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    t0 = time.monotonic()
    try:
        while not stop.wait(1.0):
            if args.duration is not None and time.monotonic() - t0 >= args.duration:
                break
            try:
                fabric.supervise()
            except Exception as e:  # keep serving /health, which reports it
                print(f"spark-ray streams: supervise: {type(e).__name__}", file=sys.stderr)
    finally:
        result = fabric.stop(compact=True)
        plane.stop()
        print(json.dumps({"rows_written": result.get("rows_written"),
                          "stored": result.get("stored")}, sort_keys=True), flush=True)
        if sess.started_local:
            session.disconnect()
    return 0


def _start_foreground(cfg: Any) -> Any:
    """This command's own fabric. Refused (exit 1) in the namespace of a running long-lived
    fabric, whose actors it would otherwise take over by name (and stop on exit); next to one on
    the same lake in another namespace, its sink is refused the WAL
    (:class:`~spark_ray.app.fabric.FabricWalLocked`, exit 1, naming the holder)."""
    from spark_ray.actors.naming import NAMESPACE
    from spark_ray.app import fabric_service
    from spark_ray.app.fabric import Fabric
    from spark_ray.errors import CheckFailed

    if cfg.namespace == NAMESPACE:
        running = fabric_service.running(cfg.exchange)
        if running is not None:
            raise CheckFailed(
                f"streams: the long-lived {fabric_service.describe(running)} runs in namespace "
                f"{NAMESPACE}; `spark-ray streams status` shows it, `spark-ray streams down` "
                "stops it, or run this one with its own --namespace and --store")
    return Fabric(cfg).start()


def handle_slo(args: argparse.Namespace, settings: Settings) -> int:
    from spark_ray.app import session
    from spark_ray.evidence import run_folder

    symbols = _symbols(args.symbols)
    if args.duration <= 0:
        raise UserError("--duration: must be > 0")
    if args.rate <= 0:
        raise UserError("--rate: must be > 0")
    sess = _connect(settings, args.address)
    out = args.out or settings.out
    tmp = None if args.store else tempfile.mkdtemp(prefix="spark-ray-slo-")
    store = args.store or os.path.join(tmp or "", "lake")
    try:
        with run_folder(Path(out), config={"duration": args.duration, "rate": args.rate,
                                           "symbols": symbols}) as run:
            summary = slo_run(symbols, args.rate, args.duration, store, chaos=args.chaos)
            run.write_json("p95-summary.json", summary,
                           "SLO summary: p95s, loss, duplicates, gaps, rate, PASS/FAIL")
            run.exit_code = 0 if summary["result"] == "PASS" else 1
            print(json.dumps({k: summary[k] for k in (
                "result", "ingest_lag_p95_ms", "event_to_store_p95_ms", "messages", "lost",
                "lake_duplicates", "unrepaired_gaps", "achieved_rate_msg_s", "verdict")},
                sort_keys=True), flush=True)
            print(f"spark-ray slo: evidence in {run.path}", flush=True)
            code = run.exit_code
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        if sess.started_local:
            session.disconnect()
    return code


def slo_run(symbols: list[str], rate: float, duration: float, store: str,
            chaos: bool = False, process_venue: bool = True) -> dict[str, Any]:
    """A venue at ``rate`` trades/s in total, the fabric on it for ``duration`` s, checked."""
    import uuid

    from spark_ray.app.fabric import FabricConfig
    from spark_ray.app.slo import measured_run
    from spark_ray.venue import Venue

    per_symbol = rate / len(symbols)
    with Venue(symbols=tuple(symbols), seed=7, trades_per_second=per_symbol, history_minutes=60,
               process=process_venue) as venue:
        cfg = FabricConfig(symbols=symbols, streams=["trade"], ws_url=venue.ws_url,
                           rest_url=venue.rest_url, store=store,
                           namespace=f"slo-{uuid.uuid4().hex[:8]}", idle_check_ms=2000)

        def inject(fabric: Any) -> None:
            venue.inject("gap", symbol=symbols[0], count=50)
            venue.inject("duplicate", probability=0.05, duration_s=1.0)
            venue.inject("disconnect")

        summary = measured_run(venue, cfg, duration, chaos=inject if chaos else None,
                               progress=lambda line: print(f"slo: {line}", flush=True))
    summary["target_rate_msg_s"] = rate
    summary["chaos"] = chaos
    return summary
