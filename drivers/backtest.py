"""Backtest job: one strategy on lake data; reports into an evidence bundle.

    python drivers/backtest.py --store lake --symbol ETHBTC --interval 5m \
        --strategy sma_cross --param fast=10 --param slow=30 --out runs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import run


def build(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", required=True)
    p.add_argument("--symbol", required=True)
    p.add_argument("--interval", required=True)
    p.add_argument("--strategy", default="sma_cross")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--fee-bps", type=float, default=10.0)
    p.add_argument("--out", type=Path, default=Path("runs"))


def job(args: argparse.Namespace) -> dict[str, Any]:
    import spark_ray.backtest as bt
    from spark_ray.app.cli.backtest import parse_params
    from spark_ray.evidence import run_folder
    from spark_ray.lake import DataStore

    res = bt.backtest(DataStore(args.store), args.symbol, args.interval, args.strategy,
                      parse_params(args.param), fee_bps=args.fee_bps)
    with run_folder(args.out) as folder:
        res.save(folder.path)
    m = res.metrics
    return {"run": str(folder.path), "trades": m["trades"], "total_return": m["total_return"],
            "sharpe": m["sharpe"], "max_drawdown": m["max_drawdown"]}


if __name__ == "__main__":
    # A backtest runs in this process; it needs no cluster.
    sys.exit(run(__doc__.splitlines()[0], build, job, needs_ray=False))
