"""Chaos canary job: inject faults into a live stack, prove alerts fire and clear, nothing lost.

    python drivers/chaos.py --quick --out runs                 # lag_spike, seq_gap, drop, ...
    python drivers/chaos.py --experiments seq_gap,kill_normalizer --out runs

The same canary as ``spark-ray chaos run`` (:mod:`spark_ray.chaos.runner`): a venue simulator,
the streams fabric, a circuit breaker and a real Prometheus with the alert rules (``--prometheus
URL`` to use yours), one evidence bundle with the table. Locally it starts its own loopback Ray
(exporting metrics every 2 s); as a Ray job it joins the cluster. Exit 1 when an experiment
failed (the result line is printed either way), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import run


def build(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="only the experiments marked quick")
    p.add_argument("--experiments", default=None, metavar="A,B,C", help="ids, in this order")
    p.add_argument("--experiments-dir", type=Path, default=None,
                   help="folder of experiment YAML files (default: the shipped ones)")
    p.add_argument("--out", type=Path, default=Path("runs"))
    p.add_argument("--rate", type=float, default=40.0, help="venue trades/s per symbol")
    p.add_argument("--prometheus", default=None, metavar="URL",
                   help="a Prometheus with the alert rules loaded (default: start one)")


def job(args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    from spark_ray.app.cli.chaos import select
    from spark_ray.chaos.runner import run_chaos
    from spark_ray.chaos.stack import StackConfig
    from spark_ray.config import load_settings
    from spark_ray.errors import UserError
    from spark_ray.observe.prom import PrometheusError, find_binary

    if not args.rate > 0:
        raise UserError("--rate: must be > 0")
    exps = select(args)  # names an unknown id, file or field before anything starts
    if args.prometheus is None and find_binary("prometheus") is None:
        raise UserError("prometheus not found: install Debian's 'prometheus' package, or pass "
                        "--prometheus URL")
    try:
        res = run_chaos(exps, args.out, address=args.address, ray_config=load_settings().ray,
                        stack_cfg=StackConfig(trades_per_second=args.rate,
                                              prometheus_url=args.prometheus),
                        command=sys.argv)
    except PrometheusError as e:
        raise UserError(f"prometheus: {e}") from None
    rows = [{"experiment": m.experiment, "status": m.status, "alert": m.alert,
             "detection_s": m.to_dict()["detection_s"], "recovery_s": m.to_dict()["recovery_s"],
             "lost": m.lost, "duplicates": m.duplicates, "reasons": m.reasons}
            for m in res.results]
    return {"run": str(res.run_dir), "exit_code": res.exit_code, "experiments": rows,
            "lake": res.final_lake}, res.exit_code


if __name__ == "__main__":
    # The canary attaches to Ray itself (a local one must export metrics every 2 s).
    sys.exit(run(__doc__.splitlines()[0], build, job, needs_ray=False))
