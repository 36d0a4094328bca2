"""Actor naming and get-or-create on the real Ray."""

from __future__ import annotations

import pytest
import ray

from spark_ray.actors import actor_name, get_or_create
from spark_ray.actors.naming import lookup


@ray.remote
class _Box:
    def __init__(self, value: int) -> None:
        self.value = value

    def get(self) -> int:
        return self.value


def test_actor_name_scheme() -> None:
    assert actor_name("normalizer", "binance", 0) == "normalizer:binance:0"
    with pytest.raises(ValueError):
        actor_name("bad name")


def test_get_or_create_returns_the_same_actor(ray_session: object) -> None:
    name = actor_name("test-box", "a")
    assert lookup(name) is None
    first = get_or_create(_Box, name, 1)
    second = get_or_create(_Box, name, 2)  # exists: the constructor args are not used
    assert ray.get(second.get.remote()) == 1
    assert first._actor_id == second._actor_id
    assert lookup(name) is not None
    ray.kill(first, no_restart=True)
