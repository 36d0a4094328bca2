"""Fixtures for the chaos-canary tests.

Helper modules of this folder (``fault_alert_cases``) import by name under
--import-mode=importlib, so the folder goes on ``sys.path`` here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def promtool() -> str:
    """promtool's path; a missing one fails under CI=true and skips (with the fix) locally."""
    import os

    from spark_ray.observe.prom import APT_PACKAGE, find_binary

    path = find_binary("promtool")
    if path is None:
        msg = f"promtool not installed (apt-get install -y {APT_PACKAGE}; make test does this)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return path
