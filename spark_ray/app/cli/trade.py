"""``spark-ray trade``: trade approved parameters on live data, paper or live.

    spark-ray trade --params approved.json --symbols BTCUSDT --paper \\
        [--ws-url ws://127.0.0.1:8400] [--rest-url http://127.0.0.1:8400] [--duration 60]
    SPARK_RAY_BINANCE_API_KEY=... SPARK_RAY_BINANCE_API_SECRET=... \\
        spark-ray trade --params approved.json --symbols BTCUSDT --live

Starts (or joins) Ray, the circuit breaker, the executor (with its control plane on
127.0.0.1:4001: /health, /positions, /orders, POST /kill with Bearer $SPARK_RAY_EXECUTOR_TOKEN)
and the streams fabric feeding it; runs until Ctrl-C or ``--duration``; writes orders, fills,
trades and positions into a run folder. Default URLs are Binance's own.

Market data: when a long-lived fabric runs for the exchange (``spark-ray streams up``), the
executor joins it (subscribes; no second exchange connection); it starts its own fabric only
when none runs, or with ``--own-fabric``. A running fabric that lacks one of ``--symbols`` is
an error (exit 2) rather than a second connection.

Breaker scopes: ``--account NAME`` (executors on one account add their equity up: one drawdown and
daily-loss limit for all of them) and ``--strategy NAME`` (its own drawdown; default the executor's
``--name``) say which scopes this executor's orders and equity belong to, besides ``global`` and
``symbol:SYMBOL`` for each traded symbol.

Exit codes: 0 ok, 1 the parameters are not approved (the reason is printed), 2 bad arguments,
missing keys, or symbols the running fabric does not carry.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from spark_ray.adapters.registry import ADAPTERS, get_adapter
from spark_ray.config import Settings
from spark_ray.errors import UserError

TRADING_VENUES = tuple(name for name, a in ADAPTERS.items() if a.caps.trading)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "trade", help="trade approved parameters on live data (paper or live)",
        description="Run the executor on the approved parameters (spark-ray params check must "
                    "pass) over the live stream, under the circuit breaker. Live trading needs "
                    "--live and SPARK_RAY_BINANCE_API_KEY / SPARK_RAY_BINANCE_API_SECRET.")
    p.add_argument("--params", required=True, type=Path, help="approved.json")
    p.add_argument("--trusted-keys", default=None, type=Path,
                   help="approvers whose signed approvals are traded (default: "
                        "$SPARK_RAY_TRUSTED_KEYS or ~/.config/spark-ray/trusted_keys)")
    p.add_argument("--symbols", required=True, help="comma-separated, e.g. BTCUSDT,ETHUSDT")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--paper", action="store_true", help="fill with the backtest's model")
    mode.add_argument("--live", action="store_true", help="real orders (signed REST)")
    p.add_argument("--tls-cert", default=None,
                   help="serve the control plane over HTTPS with this PEM certificate chain "
                        "(a path on the executor's node; with --tls-key)")
    p.add_argument("--tls-key", default=None, help="the certificate's PEM private key (0600)")
    p.add_argument("--secrets-file", default=None,
                   help="a 0600 file of NAME=value lines (API key and secret, control token), "
                        "read by the executor on its node when the environment lacks them "
                        "(default: $SPARK_RAY_SECRETS_FILE); values never travel through Ray")
    p.add_argument("--exchange", choices=TRADING_VENUES, default="binance",
                   help="the venue whose data, filters and (with --live) orders are traded")
    p.add_argument("--ws-url", default=None,
                   help="stream base URL (default: the exchange's, e.g. "
                        f"{get_adapter('binance').default_ws_url})")
    p.add_argument("--rest-url", default=None,
                   help="REST base URL (default: the exchange's, e.g. "
                        f"{get_adapter('binance').default_rest_url})")
    p.add_argument("--interval", default=None,
                   help="bar interval (default: the candidate's scenario interval, else 1m)")
    p.add_argument("--cash", type=float, default=10_000.0,
                   help="quote currency to trade, split evenly across symbols")
    p.add_argument("--fee-bps", type=float, default=10.0, help="paper taker fee (bps)")
    p.add_argument("--warmup-bars", type=int, default=500, help="REST klines before trading")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--name", default="executor", help="executor actor name (namespace spark_ray)")
    p.add_argument("--journal", default=None,
                   help="journal path (default $SPARK_RAY_EXECUTOR_JOURNAL, else "
                        "~/.spark-ray/executor/<name>/journal.jsonl)")
    p.add_argument("--breaker", default="breaker", help="circuit breaker actor name")
    p.add_argument("--account", default="default",
                   help="the breaker's account scope for this executor: executors on one "
                        "account add their equity up and share its drawdown and daily-loss "
                        "limits; `breaker trip/reset --scope account:NAME` acts on it "
                        "(default: default)")
    p.add_argument("--strategy", default=None,
                   help="the breaker's strategy scope: its own equity and drawdown inside the "
                        "account; `--scope strategy:NAME` (default: the executor's --name)")
    p.add_argument("--flatten-on-trip", action="store_true",
                   help="market-sell positions when the breaker trips")
    p.add_argument("--host", default="127.0.0.1", help="control plane host (loopback)")
    p.add_argument("--port", type=int, default=4001, help="control plane port (0: any free)")
    p.add_argument("--store", default=None, help="lake root for the streamed trades")
    p.add_argument("--address", default=None, help="Ray cluster to join (default: local)")
    p.add_argument("--out", type=Path, default=None, help="where the run folder goes")
    p.add_argument("--signals-model", default=None, type=Path, metavar="DIR",
                   help="an approved signal model (spark-ray signals approve): a signal actor "
                        "scores it on the live trades and the executor's bars carry its "
                        "signals (what signal_fusion trades on)")
    p.add_argument("--own-fabric", action="store_true",
                   help="start this run's own fabric even when a long-lived one runs")
    p.set_defaults(handler=handle)


def _symbols(raw: str) -> list[str]:
    from spark_ray.streams.plan import parse_symbols

    try:
        return parse_symbols(raw)
    except ValueError as e:
        raise UserError(f"--symbols: {e}") from None


def flag_errors(err: ValidationError) -> str:
    """A config's validation errors as the flags that set the fields: ``--cash: Input should be
    greater than 0 (got -5.0)``."""
    return "; ".join(f"--{str(e['loc'][0]).replace('_', '-') if e['loc'] else 'config'}: "
                     f"{e['msg']} (got {e['input']!r})" for e in err.errors())


def build_spec(args: argparse.Namespace, settings: Settings) -> tuple[Any, str, Any]:
    """Validate every argument (UserError names the flag) and check the approval (CheckFailed
    with the reason); returns (spec, actor name, approved params)."""
    from spark_ray.actors.naming import actor_name
    from spark_ray.execution.control import TOKEN_ENV
    from spark_ray.execution.executor import ExecutorConfig
    from spark_ray.execution.journal import resolve_journal_path
    from spark_ray.execution.params import load_approved
    from spark_ray.execution.spec import ExecutorSpec

    symbols = _symbols(args.symbols)
    if args.duration is not None and not args.duration > 0:
        raise UserError("--duration: must be > 0")
    if not 0 <= args.port <= 65535:
        raise UserError("--port: outside 0..65535")
    if args.warmup_bars < 0:
        raise UserError("--warmup-bars: must be >= 0")
    adapter = get_adapter(args.exchange)
    args.ws_url = args.ws_url or adapter.default_ws_url
    args.rest_url = args.rest_url or adapter.default_rest_url
    for flag, url, schemes in (("--ws-url", args.ws_url, ("ws://", "wss://")),
                               ("--rest-url", args.rest_url, ("http://", "https://"))):
        if not url.startswith(schemes):
            raise UserError(f"{flag}: {url!r} must start with {' or '.join(schemes)}")
    try:
        name = actor_name(*args.name.split(":"))
    except ValueError as exc:
        raise UserError(f"--name: {exc}") from None
    from spark_ray.secrets import SecretRef
    from spark_ray.tls import tls_files

    creds = adapter.credential_refs(args.secrets_file) if args.live else None
    if creds is not None:
        creds.resolve()  # refuse here, naming what is missing; the actor reads them itself
    approved = load_approved(args.params, args.trusted_keys)
    token_ref = SecretRef(TOKEN_ENV, args.secrets_file)
    token = token_ref.read()
    try:
        config = ExecutorConfig(
            name=name.replace(":", "-"), symbols=tuple(symbols),
            interval=args.interval or approved.interval or "1m",
            mode="live" if args.live else "paper", cash=args.cash, fee_bps=args.fee_bps,
            warmup_bars=args.warmup_bars, flatten_on_trip=args.flatten_on_trip,
            account=args.account, strategy=args.strategy or "")
    except ValidationError as exc:
        raise UserError(flag_errors(exc)) from None
    spec = ExecutorSpec(
        config=config, strategy=approved.strategy, params=approved.params,
        journal_path=str(resolve_journal_path(args.journal, name)),
        approved_path=approved.path, trusted_keys=approved.trusted_keys,
        approval=approved.approval, broker=args.exchange if args.live else "paper",
        exchange=args.exchange, rest_url=args.rest_url, ws_url=args.ws_url,
        credentials=creds, breaker_name=args.breaker, control_host=args.host,
        control_port=args.port, control_token=token_ref if token else None,
        control_tls=tls_files(args.tls_cert, args.tls_key),
        signals_model=_signals_model(args.signals_model, approved)).validate()
    return spec, name, approved


def _signals_model(folder: Path | None, approved: Any) -> str | None:
    """The model folder to serve, checked here so a refusal says why before anything starts:
    approved (``signals check``), intact, and the one the parameters were approved with."""
    from spark_ray.backtest.data import needs_signals
    from spark_ray.errors import CheckFailed
    from spark_ray.signals.artifact import TamperedModel
    from spark_ray.strategy.loader import load_strategy

    bound = approved.signals_model or {}
    if folder is None:
        if bound or needs_signals(load_strategy(approved.strategy)):
            raise UserError(f"--signals-model: {approved.strategy} trades on a signal model's "
                            "output; give the approved model folder")
        return None
    if not (folder / "model.json").is_file():
        raise UserError(f"--signals-model: {folder} holds no model.json")
    from spark_ray.actors.signal import load_served_model

    try:
        model = load_served_model(str(folder))
    except (TamperedModel, ValueError) as exc:
        raise CheckFailed(f"--signals-model: refusing to serve {folder}: {exc}") from None
    if bound and bound.get("model_sha256") != model.card["model_sha256"]:
        raise CheckFailed(f"--signals-model: {folder} is not the model {approved.path} was "
                          f"approved with (sha256 {model.card['model_sha256'][:12]}... vs "
                          f"{str(bound.get('model_sha256'))[:12]}...)")
    return str(folder.resolve())


def _join(spec: Any, ws_given: str | None) -> Any:
    """The running long-lived fabric for the run's symbols, or None (then the run starts its
    own). UserError (exit 2) when it lacks a symbol or streams from another --ws-url."""
    from spark_ray.app import fabric_service

    shared = fabric_service.join(spec.exchange, list(spec.config.symbols))
    if shared is None:
        return None
    if ws_given is not None and ws_given.rstrip("/") != shared.cfg.ws_url.rstrip("/"):
        raise UserError(f"--ws-url: {ws_given} differs from the running "
                        f"{fabric_service.describe(shared)}; pass --own-fabric to stream "
                        "from it separately")
    print(f"spark-ray trade: joining the running {fabric_service.describe(shared)}",
          file=sys.stderr, flush=True)
    return shared


def handle(args: argparse.Namespace, settings: Settings) -> int:
    from spark_ray.app import session
    from spark_ray.app.fabric import FabricConfig
    from spark_ray.app.trading import TradingRun, summary, write_outputs
    from spark_ray.config import redacted
    from spark_ray.evidence import run_folder

    ws_given = args.ws_url
    spec, name, approved = build_spec(args, settings)
    cfg = settings.ray.model_copy(update={"address": args.address}) if args.address else \
        settings.ray
    sess = session.connect(config=cfg)
    fabric = FabricConfig(exchange=spec.exchange, symbols=list(spec.config.symbols),
                          streams=["trade"],
                          ws_url=args.ws_url, rest_url=args.rest_url,
                          store=args.store or settings.store,
                          namespace=f"trade-{uuid.uuid4().hex[:8]}", breaker=args.breaker)
    try:
        shared = None if args.own_fabric else _join(spec, ws_given)
    except BaseException:
        if sess.started_local:
            session.disconnect()
        raise
    run = TradingRun(spec, name, fabric, breaker_config=settings.breaker, shared=shared)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    out: dict[str, Any] = {}
    code = 0
    try:
        with run_folder(Path(args.out or settings.out), command=sys.argv,
                        config={"trade": {**spec.config.as_dict(), "strategy": spec.strategy,
                                          "params": spec.params, "broker": spec.broker,
                                          "rest_url": spec.rest_url, "ws_url": spec.ws_url,
                                          "approved": approved.path},
                                "settings": redacted(settings)}) as folder:
            run.start()
            st = run.supervise()
            print(f"spark-ray trade: {spec.config.mode} {spec.strategy} {spec.params} on "
                  f"{','.join(spec.config.symbols)} ({spec.config.interval} bars); executor "
                  f"{name} (breaker {args.breaker}, scopes account:{spec.config.account} "
                  f"strategy:{spec.config.strategy_id}); control plane "
                  f"{st.get('control_url')} (/health, /positions, "
                  f"/orders, POST /kill); journal {spec.journal_path}; market data: "
                  f"{'joined fabric:' + spec.exchange if shared else 'own fabric'}", flush=True)
            t0 = time.monotonic()
            next_report = t0 + 10
            while not stop.wait(1.0):
                if args.duration is not None and time.monotonic() - t0 >= args.duration:
                    break
                try:
                    st = run.supervise()
                except Exception as exc:  # keep running; /health reports the actors
                    print(f"spark-ray trade: supervise: {type(exc).__name__}", file=sys.stderr)
                    continue
                if time.monotonic() >= next_report:
                    next_report += 10
                    print(json.dumps({"orders": st.get("orders", {}).get("FILLED"),
                                      "equity": st.get("equity"), "halted": st.get("halted")}),
                          flush=True)
            out = run.stop()
            paths = write_outputs(out, folder.path)
            for key, p in paths.items():
                folder.artifacts[p.name] = f"trade: {key}"
            folder.write_json("summary.json", summary(out), "headline of the trading run")
            print(json.dumps(summary(out), sort_keys=True, default=str), flush=True)
            print(f"spark-ray trade: evidence in {folder.path}", flush=True)
    finally:
        if run.executor is not None:
            run.stop(collect=False)
        if sess.started_local:
            session.disconnect()
    return code
