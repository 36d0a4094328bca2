"""`spark-ray venue`: run the local Binance-compatible venue until interrupted.

    spark-ray venue --host 127.0.0.1 --port 8400 --symbols BTCUSDT,ETHUSDT \
        [--store DIR [--lake-exchange bist] | --seed N] [--speed 1.0] [--trades-per-second N]

Replay serves any exchange's stored 1m candles over Binance's protocol (whatever the data's
origin); for an exchange with a trading calendar (bist: XIST) the market is closed outside its
sessions: no trades, no klines for those minutes, and the clock jumps to the next open.

Bad flags raise UserError naming the flag (CLI exit 2). The admin endpoint is enabled only when
SPARK_RAY_VENUE_TOKEN is set. Trading (signed endpoints, user data streams) is enabled only for the
API keys in SPARK_RAY_VENUE_API_KEYS ("key:secret,key2:secret2"; secrets come from the environment
only and are never printed); each account starts with --balances.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from spark_ray.config import Settings
from spark_ray.errors import UserError
from spark_ray.tls import tls_files
from spark_ray.venue.config import API_KEYS_ENV, TOKEN_ENV, VenueConfig, field_errors
from spark_ray.venue.ratelimit import RateLimitConfig

if TYPE_CHECKING:
    from spark_ray.venue.server import VenueServer


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the `venue` subcommand."""
    p = subparsers.add_parser(
        "venue",
        help="run a local Binance-compatible exchange (REST + WebSocket) on loopback",
        description="Serve Binance spot's public REST API and market streams (and a BTCTurk "
        "feed at /btcturk) from a synthetic or replayed market, with fault injection for "
        f"chaos tests (admin endpoint enabled by {TOKEN_ENV}).",
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", default="8400", help="port (default 8400; 0 picks a free one)")
    p.add_argument("--tls-cert", default=None,
                   help="serve HTTPS/WSS with this PEM certificate chain (with --tls-key); off "
                        "loopback without it, the admin token is refused")
    p.add_argument("--tls-key", default=None, help="the certificate's PEM private key (0600)")
    p.add_argument("--symbols", default="BTCUSDT,ETHUSDT",
                   help="comma-separated symbols (default BTCUSDT,ETHUSDT)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--store", "--lake", dest="store", default=None,
                     help="replay 1m candles from this Parquet lake instead of a synthetic market")
    p.add_argument("--lake-exchange", default="binance",
                   help="whose candles to replay: the lake's exchange= partition (default "
                   "binance; e.g. bist, served over Binance's protocol, closed outside its "
                   "sessions)")
    src.add_argument("--seed", default=None, help="seed of the synthetic market (default 0)")
    p.add_argument("--speed", default="1.0", help="market time per wall time (default 1.0)")
    p.add_argument("--trades-per-second", default=None,
                   help="trades per second per symbol (default 20; replay: the stored counts)")
    p.add_argument("--start", default=None,
                   help="market start time, epoch ms (default now; replay: first candle)")
    p.add_argument("--ping-interval", default="20", help="seconds between server pings (20)")
    p.add_argument("--pong-timeout", default="60",
                   help="seconds without pong before a disconnect (60)")
    p.add_argument("--max-lifetime", default="86400",
                   help="seconds before a connection gets serverShutdown and is closed (86400)")
    p.add_argument("--weight-limit", default="6000", help="REST request weight per minute (6000)")
    p.add_argument("--balances", default="USDT=100000",
                   help="starting balances of every trading account, ASSET=AMOUNT,... "
                   f"(default USDT=100000; keys from {API_KEYS_ENV})")
    p.add_argument("--maker-fee", default="0.001", help="maker commission rate (0.001 = 0.1%%)")
    p.add_argument("--taker-fee", default="0.001", help="taker commission rate (0.001 = 0.1%%)")
    p.set_defaults(handler=run)


def _number(flag: str, raw: str, kind: type[int] | type[float], *, positive: bool) -> float:
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise UserError(f"{flag}: {raw!r} is not a number") from None
    if positive and not value > 0:
        raise UserError(f"{flag}: must be > 0, got {raw}")
    return value


def _exchange(raw: str) -> str:
    """A lake partition name: lower-case letters, digits, '_' or '-' (it names a folder)."""
    name = str(raw).strip()
    if not name or not all(c.isascii() and (c.isalnum() or c in "_-") for c in name) \
            or name != name.lower():
        raise UserError(f"--lake-exchange: {raw!r} is not an exchange name like binance or bist")
    return name


def config_from_args(args: argparse.Namespace) -> VenueConfig:
    """Parse the flags into a VenueConfig (which checks them); UserError names the flag."""
    symbols = tuple(s.strip() for s in str(args.symbols).split(",") if s.strip())
    port = int(_number("--port", args.port, int, positive=False))
    host = str(args.host)
    if not host:
        raise UserError("--host: empty")
    seed = int(_number("--seed", args.seed, int, positive=False)) if args.seed is not None else 0
    tps = (_number("--trades-per-second", args.trades_per_second, float, positive=False)
           if args.trades_per_second is not None else None)
    start = (int(_number("--start", args.start, int, positive=True))
             if getattr(args, "start", None) is not None else None)
    balances: dict[str, str] = {}
    for part in (x.strip() for x in str(getattr(args, "balances", "USDT=100000")).split(",")):
        if not part:
            continue
        asset, sep, amount = part.partition("=")
        if not sep or not asset or not amount:
            raise UserError(f"--balances: {part!r} is not ASSET=AMOUNT, e.g. USDT=100000")
        balances[asset.strip()] = amount.strip()
    tls = tls_files(getattr(args, "tls_cert", None), getattr(args, "tls_key", None))
    if tls is not None:
        tls.server_context()  # a bad certificate or key exits 2 naming the flag, up front
    try:
        return VenueConfig(
            host=host,
            port=port,
            symbols=symbols,
            seed=seed,
            store=Path(args.store) if args.store is not None else None,
            store_exchange=_exchange(getattr(args, "lake_exchange", "binance")),
            speed=_number("--speed", args.speed, float, positive=False),
            trades_per_second=tps,
            start_time_ms=start,
            ping_interval_s=_number("--ping-interval", getattr(args, "ping_interval", "20"),
                                    float, positive=False),
            pong_timeout_s=_number("--pong-timeout", getattr(args, "pong_timeout", "60"), float,
                                   positive=False),
            max_lifetime_s=_number("--max-lifetime", getattr(args, "max_lifetime", "86400"),
                                   float, positive=False),
            api_keys=None,  # from the environment only, checked by VenueConfig
            tls_cert=getattr(args, "tls_cert", None), tls_key=getattr(args, "tls_key", None),
            starting_balances=balances,
            maker_commission=_number("--maker-fee", getattr(args, "maker_fee", "0.001"), float,
                                     positive=False),
            taker_commission=_number("--taker-fee", getattr(args, "taker_fee", "0.001"), float,
                                     positive=False),
            rate_limit=replace(
                RateLimitConfig(),
                weight_limit=int(_number("--weight-limit", getattr(args, "weight_limit", "6000"),
                                         int, positive=True)),
            ),
        )
    except ValidationError as e:
        raise UserError("; ".join(f"{_flag(name)}: {reason}"
                                  for name, reason in field_errors(e))) from None


_FLAGS = {"trades_per_second": "--trades-per-second", "ping_interval_s": "--ping-interval",
          "pong_timeout_s": "--pong-timeout", "max_lifetime_s": "--max-lifetime",
          "starting_balances": "--balances", "maker_commission": "--maker-fee",
          "taker_commission": "--taker-fee", "start_time_ms": "--start",
          "store_exchange": "--lake-exchange",
          "api_keys": API_KEYS_ENV}  # keys come from the environment, not a flag


def _flag(name: str) -> str:
    """The flag (or environment variable) that sets a VenueConfig field."""
    return _FLAGS.get(name, "--" + name.replace("_", "-"))


def _flag_message(msg: str) -> str:
    """Venue errors name fields ("store: ..."); the CLI names flags ("--store: ...")."""
    name, sep, rest = msg.partition(": ")
    if sep and name.isidentifier():
        return f"{_flag(name)}: {rest}"
    return msg


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Serve until SIGINT/SIGTERM; print the URLs first. Exit 0 on interrupt."""
    cfg = config_from_args(args)
    from spark_ray.venue.server import VenueServer

    try:
        server = VenueServer(cfg)
    except ValueError as e:
        raise UserError(_flag_message(str(e))) from None
    return asyncio.run(_serve(server))


async def _serve(server: VenueServer) -> int:
    try:
        await server.start()
    except OSError as e:
        raise UserError(f"--port: cannot listen on {server.host}:{server.config.port}: "
                        f"{e.strerror or e}") from None
    host, port = server.host, server.port
    print(f"venue REST:    http://{host}:{port}/api/v3/", flush=True)
    print(f"venue streams: ws://{host}:{port}/ws/<stream>  ws://{host}:{port}/stream?streams=",
          flush=True)
    print(f"BTCTurk feed:  ws://{host}:{port}/btcturk", flush=True)
    print(f"symbols: {','.join(server.engine.specs)}  speed: {server.config.speed:g}  "
          f"admin: {'enabled' if server.token else f'disabled (set {TOKEN_ENV})'}", flush=True)
    n_keys = len(server.desk.accounts)
    print(f"trading: {f'{n_keys} api key(s)' if n_keys else f'disabled (set {API_KEYS_ENV})'}"
          f"  user data: ws://{host}:{port}/ws/<listenKey>", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()
    print("venue stopped", file=sys.stderr, flush=True)
    return 0
