"""``spark-ray backtest``: one strategy on lake data, reports into an evidence bundle."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from spark_ray.config import Settings, redacted
from spark_ray.errors import UserError


def parse_params(items: list[str]) -> dict[str, Any]:
    from spark_ray.strategy.loader import parse_param_value

    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"--param: {item!r} is not NAME=VALUE")
        k, v = item.split("=", 1)
        out[k.strip()] = parse_param_value(v.strip())
    return out


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from spark_ray.app.cli.data import check_interval, parse_symbols, parse_time
    from spark_ray.backtest import run_bars
    from spark_ray.backtest.data import bars_from_store
    from spark_ray.evidence import run_folder
    from spark_ray.fills.costs import CostModel
    from spark_ray.lake import DataStore
    from spark_ray.strategy.loader import load_strategy, make_strategy

    symbols = parse_symbols(args.symbol)
    interval = check_interval(args.interval)
    start = parse_time("--start", args.start) if args.start else None
    end = parse_time("--end", args.end) if args.end else None
    for flag, value in (("--fee-bps", args.fee_bps), ("--slippage-bps", args.slippage_bps)):
        if not 0 <= value <= 1000:
            raise UserError(f"{flag}: {value} must be between 0 and 1000")
    if args.cash <= 0:
        raise UserError(f"--cash: {args.cash} must be positive")
    strategy = make_strategy(load_strategy(args.strategy), parse_params(args.param))
    store = DataStore(args.store or settings.store)
    from datetime import UTC, datetime

    def dt(ms: int | None) -> datetime | None:
        return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)

    data = bars_from_store(store, symbols, interval, dt(start), dt(end), args.exchange)
    costs = CostModel(fee_bps=args.fee_bps, slippage_bps=args.slippage_bps)
    guard = None
    if args.breaker:
        from spark_ray.backtest.guard import guard_from_file

        guard = guard_from_file(Path(args.breaker))
    result = run_bars(data, strategy, cash=args.cash, costs=costs, guard=guard)
    with run_folder(settings.out, command=sys.argv, config=redacted(settings)) as run:
        paths = result.save(run.path, png=not args.no_png)
        for name in paths:
            run.artifacts[name] = {
                "report.json": "parameters, metrics, data fingerprint, engine version, "
                               "conventions",
                "trades.csv": "closed trades: entry/exit time and price, qty, fees, PnL, return",
                "equity.csv": "equity, cash and position per bar",
                "report.png": "price with entries/exits, equity vs buy-and-hold, drawdown",
            }[name]
    width = max(len(k) for k, _ in result.summary_rows())
    for k, v in result.summary_rows():
        print(f"{k:<{width}}  {v}")
    print(f"report: {run.path / 'report.json'}")
    if not args.no_png:
        print(f"chart:  {run.path / 'report.png'}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("backtest", help="backtest a strategy on lake data")
    p.add_argument("--store", default=None, help="lake root (default: config 'store')")
    p.add_argument("--exchange", default="binance")
    p.add_argument("--symbol", required=True, help="symbol, or several comma-separated (aligned)")
    p.add_argument("--interval", required=True)
    p.add_argument("--strategy", default="sma_cross",
                   help="sma_cross, rsi_reversion, donchian_breakout, buy_and_hold, or "
                        "pkg.module:Class")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--fee-bps", type=float, default=10.0)
    p.add_argument("--slippage-bps", type=float, default=0.0)
    p.add_argument("--cash", type=float, default=10_000.0)
    p.add_argument("--start", default=None)
    p.add_argument("--end", default=None)
    p.add_argument("--breaker", default=None, metavar="YAML",
                   help="circuit-breaker rules to apply in simulation")
    p.add_argument("--no-png", action="store_true", help="skip report.png")
    p.add_argument("--out", type=Path, default=None, help="run folders (default runs/)")
    p.set_defaults(handler=_run)
