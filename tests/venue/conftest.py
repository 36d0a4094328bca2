"""Fixtures for the venue tests: venues on ephemeral loopback ports, stopped at teardown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from spark_ray.venue import Venue

from venue_helpers import FAST


@pytest.fixture
def make_venue() -> Iterator[Callable[..., Venue]]:
    """Start venues on ephemeral loopback ports; all are stopped at teardown."""
    started: list[Venue] = []

    def make(**overrides: Any) -> Venue:
        kw = {**FAST, **overrides}
        v = Venue(**kw).start()
        started.append(v)
        return v

    yield make
    for v in started:
        v.stop()


@pytest.fixture
def venue(make_venue: Callable[..., Venue]) -> Venue:
    return make_venue()
