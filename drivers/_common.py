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

from spark_ray.errors import CheckFailed, UserError
from spark_ray.session import connect, disconnect

RESULT_PREFIX = "SPARK_RAY_RESULT "


def run(description: str, build: Callable[[argparse.ArgumentParser], None],
        job: Callable[[argparse.Namespace], dict[str, Any]], needs_ray: bool = True) -> int:
    """Parse args, attach to Ray if the job needs it, run, print one result line."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--address", default=None, help="Ray cluster (default: RAY_ADDRESS)")
    build(parser)
    args = parser.parse_args()
    session = connect(args.address, quiet=True) if needs_ray else None
    try:
        result = job(args)
    except (UserError, CheckFailed) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 1)
    finally:
        if session is not None and session.started_local:
            disconnect()
    # One machine-readable line, easy to find in `ray job logs`.
    print(RESULT_PREFIX + json.dumps(result, sort_keys=True, default=str), flush=True)
    return 0
