"""Streams + paper trading job: live trades into the lake, an approved strategy trading them.

    python drivers/streams_trade.py --approved runs/<NONCE>/approved.json --seconds 60 \
        --store lake --out runs [--symbols BTCUSDT] [--interval 1s]

The market is the local venue simulator (started here on ``--venue-host``, seeded, its clock
``--speed`` times the wall clock) unless ``--ws-url``/``--rest-url`` name a venue. The streams
fabric (connector -> normalizer -> sink) spreads over the cluster's nodes; the executor runs next
to its normalizer (:func:`spark_ray.app.placement.colocate_with`) on paper, guarded by the cluster's
named circuit breaker (``--breaker``, started detached if absent, with the ``breaker:`` section
of the configuration). It trades only parameters that pass ``spark-ray params check``.

When a long-lived fabric runs (``spark-ray streams up``), the executor joins it for its symbols
(no simulator, no second exchange connection; exit 2 if it lacks a symbol) unless
``--own-fabric``; at the end it leaves that fabric running.

At the end: the executor stops (open orders canceled), the fabric drains and compacts the lake,
and a run folder gets the orders, fills, positions, where each actor ran and, with the
simulator, the lake checked against the venue's ground truth. On a multi-node cluster give
``--venue-host`` an address the other nodes reach (the head's), or a venue of your own.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import run


def build(p: argparse.ArgumentParser) -> None:
    p.add_argument("--approved", type=Path, required=True, help="approved.json to trade")
    p.add_argument("--symbols", default="BTCUSDT", help="comma-separated (default BTCUSDT)")
    p.add_argument("--interval", default=None,
                   help="bar interval (default: the approved candidate's, else 1s)")
    p.add_argument("--seconds", type=float, default=60.0, help="how long to trade")
    p.add_argument("--store", default="lake")
    p.add_argument("--out", type=Path, default=Path("runs"))
    p.add_argument("--cash", type=float, default=10_000.0)
    p.add_argument("--warmup-bars", type=int, default=100)
    p.add_argument("--breaker", default="breaker", help="the circuit breaker's actor name")
    p.add_argument("--ws-url", default=None, help="a venue's WebSocket URL (default: simulator)")
    p.add_argument("--rest-url", default=None, help="the same venue's REST URL")
    p.add_argument("--venue-host", default="127.0.0.1", help="where the simulator listens")
    p.add_argument("--speed", type=float, default=10.0, help="simulator clock / wall clock")
    p.add_argument("--rate", type=float, default=40.0, help="simulator trades/s per symbol")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--own-fabric", action="store_true",
                   help="start a fabric for this run even when a long-lived one runs")


def _start_executor(spec: Any, name: str, normalizer: Any) -> Any:
    """``start_executor`` with the executor placed next to ``normalizer``."""
    import ray

    from spark_ray.actors.executor import ExecutorActor
    from spark_ray.actors.naming import NAMESPACE, get_or_create
    from spark_ray.app.placement import colocate_with
    from spark_ray.errors import CheckFailed, UserError

    spec.validate()
    handle = get_or_create(ExecutorActor, name, spec, name, NAMESPACE,
                           **colocate_with(normalizer))
    st: dict[str, Any] = ray.get(handle.start.remote(), timeout=120)
    if not st.get("started"):
        ray.kill(handle, no_restart=True)
        reason = st.get("start_error") or "did not start"
        raise (CheckFailed if reason.startswith("refusing") else UserError)(reason)
    return handle


def job(args: argparse.Namespace) -> dict[str, Any]:
    import ray

    from spark_ray.actors.breaker import get_breaker
    from spark_ray.app.cli.data import parse_symbols
    from spark_ray.app.fabric import Fabric, FabricConfig
    from spark_ray.app.placement import placement
    from spark_ray.config import load_settings
    from spark_ray.errors import UserError
    from spark_ray.evidence import run_folder
    from spark_ray.execution.executor import ExecutorConfig
    from spark_ray.execution.params import load_approved
    from spark_ray.execution.spec import ExecutorSpec
    from spark_ray.lake import DataStore
    from spark_ray.venue import Venue

    if not args.seconds > 0:
        raise UserError("--seconds: must be > 0")
    if (args.ws_url is None) != (args.rest_url is None):
        raise UserError("--ws-url and --rest-url: give both (one venue) or neither")
    symbols = parse_symbols(args.symbols)
    approved = load_approved(args.approved)  # refuses (exit 1) unless `params check` passes
    interval = args.interval or approved.interval or "1s"
    settings = load_settings()
    tag = uuid.uuid4().hex[:8]

    venue = None
    fabric = None
    executor = None
    shared = None
    if not args.own_fabric:
        from spark_ray.app import fabric_service

        shared = fabric_service.join("binance", symbols)  # UserError (exit 2): lacks a symbol
        if shared is not None and args.ws_url is not None \
                and args.ws_url.rstrip("/") != shared.cfg.ws_url.rstrip("/"):
            raise UserError(f"--ws-url: differs from the running "
                            f"{fabric_service.describe(shared)}; pass --own-fabric")
    with run_folder(args.out, config={"approved": str(args.approved), "symbols": symbols,
                                      "interval": interval, "seconds": args.seconds}) as folder:
        try:
            if shared is not None:
                ws_url, rest_url = shared.cfg.ws_url, shared.cfg.rest_url
                fabric = shared
            elif args.ws_url is None:
                # Paused until the fabric listens; the fabric answers for every trade from the
                # first one (anything it missed it backfills over REST).
                venue = Venue(symbols=tuple(symbols), seed=args.seed, host=args.venue_host,
                              history_minutes=30, speed=args.speed, trades_per_second=args.rate,
                              start_paused=True).start()
                ws_url, rest_url = venue.ws_url, venue.rest_url
                start_ids = {f"trades:{s}": venue.config.first_trade_id for s in symbols}
            else:
                ws_url, rest_url, start_ids = args.ws_url, args.rest_url, {}
            if fabric is None:
                fabric = Fabric(FabricConfig(symbols=symbols, streams=["trade"], ws_url=ws_url,
                                             rest_url=rest_url, store=args.store,
                                             namespace=f"streams-trade-{tag}",
                                             start_ids=start_ids)).start()
            breaker, started = get_breaker(args.breaker, config=settings.breaker)
            name = f"executor:paper-{tag}"
            spec = ExecutorSpec(
                config=ExecutorConfig(name=name.replace(":", "-"), symbols=tuple(symbols),
                                      interval=interval, mode="paper", cash=args.cash,
                                      warmup_bars=args.warmup_bars),
                strategy=approved.strategy, params=approved.params,
                journal_path=str(folder.file("executor-journal.jsonl",
                                             "the executor's order journal").resolve()),
                approved_path=approved.path, approval=approved.approval, broker="paper",
                rest_url=rest_url, breaker_name=args.breaker, control_port=0)
            executor = _start_executor(spec, name, fabric.normalizers[0])
            ray.get([n.subscribe.remote(executor, "on_market_data")
                     for n in fabric.normalizers], timeout=60)
            where = placement({"sink": fabric.sink, "normalizer": fabric.normalizers[0],
                               "connector": fabric.connectors[0], "executor": executor,
                               "breaker": breaker})

            if venue is not None:
                venue.resume()
            deadline = time.monotonic() + args.seconds
            while time.monotonic() < deadline:
                time.sleep(1.0)
                with contextlib.suppress(ray.exceptions.RayError):
                    if shared is None:  # a shared fabric's supervisor does this itself
                        fabric.supervise()  # restarted connectors come back idle: start them

            if venue is not None:  # the market closes; the lake catches up with it
                venue.pause()
                fabric.wait_stored({f"trades:{s}": venue.trade_count(s) for s in symbols}, 60)
            final = ray.get(executor.stop.remote(), timeout=60)
            orders = ray.get(executor.orders.remote(), timeout=30)
            fills = ray.get(executor.fills.remote(), timeout=30)
            positions = ray.get(executor.positions.remote(), timeout=30)
            if shared is not None:  # leave the long-lived fabric running for everyone else
                fabric.unsubscribe(executor)
                stored = {"joined": fabric.names.get("supervisor", "fabric")}
            else:
                stored = fabric.stop(compact=True)
            fabric = None
            folder.write_json("orders.json", orders, "every order the executor placed")
            folder.write_json("fills.json", fills, "every paper fill")
            folder.write_json("positions.json", positions, "positions and cash per symbol")
            folder.write_json("status.json", {"executor": final, "sink": stored,
                                              "placement": where},
                              "executor and sink at the end, where each actor ran")
            lake: dict[str, Any] = {}
            if venue is not None:
                for s in symbols:
                    ids = DataStore(args.store).read("trades", "binance", s)["trade_id"]
                    got = ids.to_pylist()
                    truth = set(venue.ground_truth_ids(s))
                    lake[s] = {"stored": len(got), "duplicates": len(got) - len(set(got)),
                               "lost": len(truth - set(got))}
                folder.write_json("lake-check.json", lake,
                                  "the lake against the venue simulator's ground truth")
        finally:
            if executor is not None:
                with contextlib.suppress(Exception):
                    ray.kill(executor, no_restart=True)
            if fabric is not None and shared is None:
                fabric.kill()
            elif fabric is not None and executor is not None:
                with contextlib.suppress(Exception):
                    fabric.unsubscribe(executor)
            if venue is not None:
                venue.stop()
    return {"run": str(folder.path), "strategy": approved.strategy, "params": approved.params,
            "interval": interval, "orders": final.get("orders", {}), "fills": len(fills),
            "positions": {s: {"qty": p.get("qty"), "cash": p.get("cash")}
                          for s, p in positions.items()},
            "breaker": {"name": args.breaker, "started_here": started},
            "placement": where,
            "executor_next_to_normalizer": where["executor"] == where["normalizer"],
            "fabric": "joined" if shared is not None else "own",
            "lake": lake}


if __name__ == "__main__":
    sys.exit(run(__doc__.splitlines()[0], build, job))
