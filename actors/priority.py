"""CPU priority of the live path: market data and orders before batch work.

On a small machine a Ray Tune sweep takes every core it is given, and Ray starts every worker
at nice 15 while the driver running Tune's controller stays at 0: the kernel then serves the
sweep ahead of the fabric. The latency-bound actors (connector, normalizer, sink, executor,
breaker) ask for a higher priority (``nice`` :data:`LIVE_NICENESS`) when the process may (root
or CAP_SYS_NICE); trials drop to the lowest
(:func:`spark_ray.tune.trainable.yield_cpu_to_live_work`), which needs no privilege.
``benchmarks/bench_platform.py`` measures both against Ray's defaults (fabric + paper executor
+ sweep on 2 cores: event-to-store p99 727 -> 84 ms).
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
