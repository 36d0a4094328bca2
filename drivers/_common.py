"""Shared bits of the driver scripts: argument parsing, the Ray session, a JSON result line.

Each driver runs the same way locally (``python drivers/x.py``: an embedded loopback Ray, or
the cluster in RAY_ADDRESS) and as a Ray job (``ray job submit --working-dir . -- python
drivers/x.py``: Ray Jobs sets RAY_ADDRESS, so the driver joins the cluster).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from spark_ray.app.session import connect, disconnect
from spark_ray.config import load_settings
from spark_ray.errors import CheckFailed, UserError

RESULT_PREFIX = "SPARK_RAY_RESULT "


Result = dict[str, Any] | tuple[dict[str, Any], int]


def run(description: str, build: Callable[[argparse.ArgumentParser], None],
        job: Callable[[argparse.Namespace], Result], needs_ray: bool = True) -> int:
    """Parse args, attach to Ray if the job needs it, run, print one result line.

    ``job`` returns the result, or ``(result, exit_code)`` when a completed job can still fail
    its check (exit 1 with the result printed, e.g. a chaos experiment that failed)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--address", default=None, help="Ray cluster (default: RAY_ADDRESS)")
    build(parser)
    args = parser.parse_args()
    try:
        # The platform's configuration (spark-ray.yaml, SPARK_RAY_RAY__* variables) decides the
        # ports of a local Ray, as for the CLI.
        session = connect(args.address, config=load_settings().ray, quiet=True) \
            if needs_ray else None
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    code = 0
    try:
        out = job(args)
        result, code = out if isinstance(out, tuple) else (out, 0)
    except (UserError, CheckFailed) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    finally:
        if session is not None and session.started_local:
            disconnect()
    # One machine-readable line, easy to find in `ray job logs`.
    print(RESULT_PREFIX + json.dumps(result, sort_keys=True, default=str), flush=True)
    return code
