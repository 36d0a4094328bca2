"""Optimization job: a Ray Tune sweep over scenarios (runs on the cluster's CPUs).

    python drivers/optimize.py --store lake --strategy rsi_reversion \
        --scenarios tune/scenarios-real.yaml --trials 200 --out runs
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
    p.add_argument("--strategy", required=True)
    p.add_argument("--scenarios", required=True, type=Path)
    p.add_argument("--space", type=Path, default=None)
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--search", default="random")
    p.add_argument("--scheduler", default="fifo")
    p.add_argument("--out", type=Path, default=Path("runs"))


def job(args: argparse.Namespace) -> dict[str, Any]:
    from spark_ray.evidence import run_folder
    from spark_ray.lake import DataStore
    from spark_ray.tune import load_scenarios
    from spark_ray.tune.api import optimize
    from spark_ray.tune.spaces import builtin_space, load_space

    space = load_space(args.space or builtin_space(args.strategy))
    with run_folder(args.out) as folder:
        board = optimize(DataStore(args.store), args.strategy, space,
                         load_scenarios(args.scenarios), trials=args.trials,
                         search=args.search, scheduler=args.scheduler,
                         storage=folder.path / "tune", verbose=0)
        board.save(folder.path)
    return {"run": str(folder.path), "trials": len(board.rows),
            "best": board.best["overall"]["params"],
            "objective": board.best["overall"]["objective"]}


if __name__ == "__main__":
    sys.exit(run(__doc__.splitlines()[0], build, job))
