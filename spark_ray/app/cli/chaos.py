"""``spark-ray chaos run|list``: the chaos canary from the command line.

Exit codes: 0 every experiment passed (or is PENDING: its component is not built yet), 1 an
experiment failed, 2 bad arguments (an unknown experiment id is named) or a bad experiment file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spark_ray.chaos.experiments import Experiment
from spark_ray.config import Settings
from spark_ray.errors import UserError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``chaos`` on the top-level ``spark-ray`` parser."""
    p = subparsers.add_parser(
        "chaos", help="chaos canary: inject faults, prove alerts fire and clear, nothing lost",
        description="Run declared fault experiments (chaos/experiments/*.yaml) against the "
                    "venue simulator, the streams fabric, the circuit breaker and a real "
                    "Prometheus; measure time to alert and to resolve, loss and duplicates.")
    sub = p.add_subparsers(dest="chaos_command", metavar="ACTION")
    sub.required = True
    run = sub.add_parser("run", help="run experiments; table + evidence bundle; exit 1 on a "
                                     "failed experiment")
    _selection(run)
    run.add_argument("--out", type=Path, default=None,
                     help="folder for the run folder (default: config 'out', normally runs/)")
    run.add_argument("--address", default=None,
                     help="Ray cluster to join (default: RAY_ADDRESS, else a local loopback "
                          "Ray reporting metrics every 2 s)")
    run.add_argument("--prometheus", default=None, metavar="URL",
                     help="use this Prometheus (with our alert rules loaded) instead of "
                          "starting one")
    run.add_argument("--rate", type=float, default=40.0,
                     help="venue trades per second per symbol (default 40)")
    run.set_defaults(handler=handle_run)
    ls = sub.add_parser("list", help="the declared experiments (id, fault, expected alert)")
    _selection(ls)
    ls.set_defaults(handler=handle_list)


def _selection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--experiments", default=None, metavar="A,B,C",
                   help="ids to run, in this order (default: all)")
    p.add_argument("--quick", action="store_true",
                   help="only the quick subset (lag_spike, seq_gap, drop, kill_normalizer)")
    p.add_argument("--experiments-dir", type=Path, default=None,
                   help="folder of experiment YAML files (default: the shipped ones)")


def select(args: argparse.Namespace) -> list[Experiment]:
    """The experiments the flags name, checked (UserError naming the id, file or field)."""
    from spark_ray.chaos.experiments import EXPERIMENTS_DIR, load_experiments, preflight

    if args.experiments is not None and args.quick:
        raise UserError("--quick and --experiments: give one or the other")
    ids = None
    if args.experiments is not None:
        ids = [i.strip() for i in args.experiments.split(",") if i.strip()]
        if not ids:
            raise UserError("--experiments: give at least one id, e.g. lag_spike,drop")
        if len(set(ids)) != len(ids):
            raise UserError("--experiments: an id is repeated")
    exps = load_experiments(args.experiments_dir or EXPERIMENTS_DIR, ids)
    if args.quick:
        exps = [e for e in exps if e.quick]
        if not exps:
            raise UserError("--quick: no experiment is marked quick")
    preflight(exps)
    return exps


def handle_list(args: argparse.Namespace, settings: Settings) -> int:
    for e in select(args):
        f = e.fault
        fault = " ".join([f"{f.kind}:{f.target}", *(f"{k}={v}" for k, v in f.params.items()),
                          *([f"for {e.duration_s:g}s"] if e.duration_s else [])])
        why = e.missing_requirement()
        print(f"{e.id:18} {'quick ' if e.quick else '      '}{fault} -> {e.expect_alert}"
              f"{' (PENDING: ' + why + ')' if why else ''}")
    return 0


def handle_run(args: argparse.Namespace, settings: Settings) -> int:
    from spark_ray.chaos.runner import run_chaos
    from spark_ray.chaos.stack import StackConfig
    from spark_ray.observe.prom import PrometheusError, find_binary

    if not args.rate > 0:
        raise UserError("--rate: must be > 0")
    exps = select(args)
    if args.prometheus is None and find_binary("prometheus") is None:
        raise UserError("prometheus not found: install Debian's 'prometheus' package "
                        "(apt-get install -y prometheus), or pass --prometheus URL")
    cfg = StackConfig(trades_per_second=args.rate, prometheus_url=args.prometheus)
    try:
        res = run_chaos(exps, args.out or Path(settings.out), address=args.address,
                        ray_config=settings.ray, stack_cfg=cfg, command=sys.argv)
    except PrometheusError as e:
        raise UserError(f"prometheus: {e}") from None
    return res.exit_code
