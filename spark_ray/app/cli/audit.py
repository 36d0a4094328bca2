"""``spark-ray audit tail``: the last entries of the audit log (every operator mutation: who,
when, what, from where, the outcome), human-readable columns or JSON lines, ``--follow`` for
what comes next.

Exit codes: 0 ok (an absent default log prints nothing), 2 bad arguments (the flag is named).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from spark_ray.config import Settings
from spark_ray.errors import UserError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``audit`` and ``audit tail`` on the top-level ``spark-ray`` parser."""
    p = subparsers.add_parser(
        "audit", help="the audit log of every mutation (breaker, kill, approve, chaos, venue "
                      "admin, console)",
        description="Every mutation is appended to one audit log: $SPARK_RAY_AUDIT_LOG, else "
                    "~/.spark-ray/audit.jsonl.")
    sub = p.add_subparsers(dest="audit_command", metavar="ACTION")
    sub.required = True
    tail = sub.add_parser("tail", help="print the last N entries (and follow with --follow)")
    tail.add_argument("--log", type=Path, default=None,
                      help="the audit log (default: $SPARK_RAY_AUDIT_LOG, else "
                           "~/.spark-ray/audit.jsonl)")
    tail.add_argument("-n", dest="n", default="20", metavar="N",
                      help="how many of the last entries (default 20)")
    tail.add_argument("--follow", "-f", action="store_true",
                      help="keep printing entries as they are appended (Ctrl-C ends)")
    tail.add_argument("--json", action="store_true", help="one JSON object per line")
    tail.set_defaults(handler=handle_tail)


def _target(target: Any) -> str:
    if not isinstance(target, dict):
        return str(target)
    return " ".join(f"{k}={json.dumps(v) if isinstance(v, dict | list) else v}"
                    for k, v in target.items())


def line(entry: dict[str, Any]) -> str:
    """One entry as columns: time, who, action, outcome, source, target, reason."""
    reason = entry.get("reason") or ""
    return (f"{entry.get('ts', '?'):27}  {entry.get('who', '?'):20}  "
            f"{entry.get('action', '?'):26}  {entry.get('outcome', '?'):24}  "
            f"{entry.get('source', '?'):16}  {_target(entry.get('target'))}"
            + (f"  reason={reason!r}" if reason else ""))


HEADER = (f"{'TIME (UTC)':27}  {'WHO':20}  {'ACTION':26}  {'OUTCOME':24}  {'SOURCE':16}  "
          "TARGET")


def handle_tail(args: argparse.Namespace, settings: Settings) -> int:
    from spark_ray.audit import AuditLog

    try:
        n = int(args.n)
    except ValueError:
        raise UserError(f"-n: {args.n!r} is not a whole number") from None
    if n < 0:
        raise UserError("-n: must be >= 0")
    if args.log is not None and not args.log.is_file():
        raise UserError(f"--log: {args.log}: no such file")
    if args.log is not None and args.log.is_dir():
        raise UserError(f"--log: {args.log} is a folder")
    audit = AuditLog(args.log)

    def show(entry: dict[str, Any]) -> None:
        print(json.dumps(entry, sort_keys=True) if args.json else line(entry), flush=True)

    entries = audit.tail(n)
    if not args.json and (entries or args.follow):
        print(HEADER)
    for entry in entries:
        show(entry)
    if not entries and not args.follow:
        print(f"spark-ray audit: no entries in {audit.path}", file=sys.stderr)
    if args.follow:
        try:
            for entry in audit.follow():
                show(entry)
        except KeyboardInterrupt:
            return 0
    return 0
