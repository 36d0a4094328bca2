"""CPU priority of the live path: market data and orders before batch work.

On a small machine a Ray Tune sweep takes every core it is given, and Ray starts every worker
at nice 15 while the driver running Tune's controller stays at 0: the kernel then serves the
sweep ahead of the fabric, whose event-to-store p95 rose from 45 ms (fabric + executor) to
1,458 ms with a 6-trial sweep on 2 cores. The latency-bound actors (connector, normalizer, sink,
executor, breaker) ask for a higher priority (``nice`` :data:`LIVE_NICENESS`) when the process
may (root or CAP_SYS_NICE): 62 ms p95 in the same run. Trials also drop to the lowest priority
(:func:`spark_ray.tune.trainable.yield_cpu_to_live_work`), which needs no privilege.
``SPARK_RAY_LIVE_NICENESS`` overrides the value (0: leave Ray's default).
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

# nice(2): -20 highest, 0 default. -5 is ahead of batch work without starving Ray's own daemons.
LIVE_NICENESS = int(os.environ.get("SPARK_RAY_LIVE_NICENESS", "-5"))


def prefer_live_work(niceness: int = LIVE_NICENESS) -> int:
    """Raise this process's CPU priority to ``niceness`` if allowed; returns the niceness now."""
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if not niceness or niceness >= current:
        return current
    try:
        os.setpriority(os.PRIO_PROCESS, 0, niceness)
    except OSError:  # no privilege: run at the default priority (the sweep still yields)
        log.debug("cannot raise priority to nice %d; staying at %d", niceness, current)
        return current
    return niceness
