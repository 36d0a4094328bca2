"""The live path runs ahead of batch work: actor and trial processes set their CPU priority."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SNIPPET = """
import os, sys
from {module} import {func}
print({func}({arg}), os.getpriority(os.PRIO_PROCESS, 0))
"""


def _run(module: str, func: str, arg: int, start_nice: int = 15) -> tuple[int, int]:
    code = SNIPPET.format(module=module, func=func, arg=arg)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=60, preexec_fn=lambda: os.setpriority(os.PRIO_PROCESS, 0,
                                                                       start_nice))
    returned, actual = out.stdout.split()
    return int(returned), int(actual)


def test_trials_drop_to_the_lowest_priority_without_privilege() -> None:
    # Ray starts workers at nice 15; a trial goes to 19 and never back up.
    assert _run("spark_ray.tune.trainable", "yield_cpu_to_live_work", 19) == (19, 19)
    assert _run("spark_ray.tune.trainable", "yield_cpu_to_live_work", 10) == (15, 15)
    assert _run("spark_ray.tune.trainable", "yield_cpu_to_live_work", 0) == (15, 15)


def test_live_actors_raise_their_priority_when_allowed() -> None:
    returned, actual = _run("spark_ray.actors.priority", "prefer_live_work", -5)
    if os.geteuid() == 0:
        assert (returned, actual) == (-5, -5)
    else:  # no CAP_SYS_NICE: stays where Ray put it, and says so
        assert (returned, actual) == (15, 15)
    assert _run("spark_ray.actors.priority", "prefer_live_work", 0) == (15, 15)


@pytest.mark.parametrize("start", [0, 15])
def test_live_priority_never_lowers(start: int) -> None:
    assert _run("spark_ray.actors.priority", "prefer_live_work", 17, start) == (start, start)
