"""Fixtures for the observability tests.

Importing ``observe_helpers`` here (at collection, before the session's Ray starts) sets
``RAY_PROMETHEUS_HOST`` for that Ray's dashboard; see that module.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# Helper modules of this folder import by name under --import-mode=importlib.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

from observe_helpers import need


@pytest.fixture
def promtool() -> str:
    return need("promtool")


@pytest.fixture
def prometheus_bin() -> str:
    return need("prometheus")
