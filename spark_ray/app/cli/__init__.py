"""The ``spark-ray`` command line: subcommands grouped by capability.

Exit codes: 0 ok, 1 a check ran and failed, 2 usage or configuration error (message, no
traceback). Commands that produce artifacts take ``--out DIR`` and write a run folder there.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import yaml

from spark_ray import __version__
from spark_ray.config import Settings, load_settings, redacted
from spark_ray.errors import CheckFailed, UserError

Handler = Callable[[argparse.Namespace, Settings], int]


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {"ray.address": getattr(args, "address", None), "out": getattr(args, "out", None)}
    return load_settings(getattr(args, "config", None), overrides)


# --- evidence -----------------------------------------------------------------------------------

def _evidence_pack(args: argparse.Namespace, settings: Settings) -> int:
    from spark_ray.evidence import pack

    run, arc = pack(args.files, settings.out, with_archive=args.archive, command=sys.argv)
    print(f"run folder: {run.path}")
    if arc:
        print(f"archive:    {arc}")
    return 0


def _evidence_verify(args: argparse.Namespace, settings: Settings) -> int:
    from spark_ray.evidence import verify

    report = verify(Path(args.path))
    if report.ok:
        print(f"{args.path}: intact ({report.checked} files match the manifest)")
        return 0
    raise CheckFailed(f"{args.path}: NOT intact\n  " + "\n  ".join(report.lines()))


# --- config, cluster, demo ----------------------------------------------------------------------

def _config_show(args: argparse.Namespace, settings: Settings) -> int:
    data = redacted(settings)
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        print(yaml.safe_dump(data, sort_keys=True), end="")
    return 0


def _cluster_status(args: argparse.Namespace, settings: Settings) -> int:
    import ray

    from spark_ray.app.session import connect, disconnect

    session = connect(config=settings.ray)
    try:
        nodes = ray.nodes()
        print(f"address:   {session.address}")
        print(f"dashboard: {session.dashboard_url or 'disabled'}")
        print(f"nodes:     {sum(1 for n in nodes if n.get('Alive'))} alive of {len(nodes)}")
        for n in nodes:
            state = "ALIVE" if n.get("Alive") else "DEAD"
            res = ", ".join(f"{k}={v:g}" for k, v in sorted(n.get("Resources", {}).items())
                            if not k.startswith("node:"))
            print(f"  {n.get('NodeManagerAddress')}  {state}  {res}")
    finally:
        if session.started_local:
            disconnect()
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from spark_ray.app.demo import run_demo

    return run_demo(settings, quick=args.quick)


# --- parser -------------------------------------------------------------------------------------

def _add_out(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=None,
                   help="folder for run folders (default: config 'out', normally runs/)")


def _add_address(p: argparse.ArgumentParser) -> None:
    p.add_argument("--address", default=None,
                   help="Ray cluster to join (default: RAY_ADDRESS, else a local loopback Ray)")


def build_parser() -> argparse.ArgumentParser:
    summary = ("Spark-Ray: a crypto trading platform on Ray. Exit codes: 0 ok, 1 a check "
               "failed, 2 usage or configuration error.")
    parser = argparse.ArgumentParser(prog="spark-ray", description=summary)
    parser.add_argument("--version", action="version", version=f"spark-ray {__version__}")
    parser.add_argument("--config", type=Path, default=None,
                        help="YAML config file (default: $SPARK_RAY_CONFIG or ./spark-ray.yaml)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    demo = sub.add_parser("demo", help="run the platform end to end on an embedded local Ray")
    _add_out(demo)
    demo.add_argument("--quick", action="store_true", help="smallest sizes (used by tests)")
    demo.set_defaults(handler=_demo)

    ev = sub.add_parser("evidence", help="evidence bundles: pack files, verify a bundle")
    ev_sub = ev.add_subparsers(dest="evidence_command", metavar="ACTION")
    ev_sub.required = True
    ev_pack = ev_sub.add_parser("pack", help="bundle files into a new run folder")
    _add_out(ev_pack)
    ev_pack.add_argument("--archive", action="store_true", help="also write <NONCE>.tar.gz")
    ev_pack.add_argument("files", nargs="+", type=Path, metavar="FILE")
    ev_pack.set_defaults(handler=_evidence_pack)
    ev_verify = ev_sub.add_parser("verify",
                                  help="check a run folder or archive against its manifest")
    ev_verify.add_argument("path", type=Path, metavar="PATH")
    ev_verify.set_defaults(handler=_evidence_verify)

    cfg = sub.add_parser("config", help="configuration")
    cfg_sub = cfg.add_subparsers(dest="config_command", metavar="ACTION")
    cfg_sub.required = True
    cfg_show = cfg_sub.add_parser("show", help="print the effective config (secrets masked)")
    cfg_show.add_argument("--json", action="store_true", help="JSON instead of YAML")
    cfg_show.set_defaults(handler=_config_show)

    cl = sub.add_parser("cluster", help="the Ray cluster")
    cl_sub = cl.add_subparsers(dest="cluster_command", metavar="ACTION")
    cl_sub.required = True
    cl_status = cl_sub.add_parser("status", help="nodes and resources (starts a local Ray if none)")
    _add_address(cl_status)
    cl_status.set_defaults(handler=_cluster_status)

    _register_capabilities(sub)
    return parser


def _register_capabilities(sub: argparse._SubParsersAction) -> None:
    """Subcommands owned by capability packages; each registers its own flags."""
    from spark_ray.app.cli import (
        audit,
        backtest,
        breaker,
        chaos,
        console,
        data,
        observe,
        optimize,
        signals,
        streams,
        trade,
        venue,
    )

    for module in (venue, data, backtest, optimize, breaker, streams, observe, trade, chaos,
                   console, signals, audit):
        module.add_parser(sub)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args, _settings(args)))
    except UserError as exc:
        print(f"spark-ray: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except CheckFailed as exc:
        print(f"spark-ray: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("spark-ray: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
