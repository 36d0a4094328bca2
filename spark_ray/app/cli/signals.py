"""``spark-ray signals ...``: the signal inventory."""

from __future__ import annotations

import argparse
import json

from spark_ray.config import Settings


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the `signals` subcommand."""
    p = subparsers.add_parser("signals", help="signals: the inventory of features models use")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = sub.add_parser("ls", help="list every signal: name, family, inputs, horizon, meaning")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ls.set_defaults(handler=_ls)


def _ls(args: argparse.Namespace, settings: Settings) -> int:
    from spark_ray.signals.inventory import INVENTORY, table

    if args.json:
        print(json.dumps([s.row() for s in INVENTORY], indent=2))
    else:
        print(table())
    return 0
