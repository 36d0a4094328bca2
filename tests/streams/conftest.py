"""Fixtures for the streams tests: venues on ephemeral loopback ports and fabrics in their own
Ray namespace, all stopped (actors killed) at teardown."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from spark_ray.app.fabric import Fabric, FabricConfig
from spark_ray.venue import Venue

# Light, fast venues; tests override what they exercise.
FAST: dict[str, Any] = dict(symbols=("BTCUSDT", "ETHUSDT"), seed=5, history_minutes=60,
                            trades_per_second=200, start_paused=True)


@pytest.fixture
def make_venue() -> Iterator[Callable[..., Venue]]:
    started: list[Venue] = []

    def make(**overrides: Any) -> Venue:
        v = Venue(**{**FAST, **overrides}).start()
        started.append(v)
        return v

    yield make
    for v in started:
        v.stop()


@pytest.fixture
def make_fabric(ray_session: Any, tmp_path: Path) -> Iterator[Callable[..., Fabric]]:
    started: list[Fabric] = []

    def make(venue: Venue, **overrides: Any) -> Fabric:
        kw: dict[str, Any] = dict(
            symbols=list(venue.config.symbols), streams=["trade"], ws_url=venue.ws_url,
            rest_url=venue.rest_url, store=str(tmp_path / "lake"),
            namespace=f"test-{uuid.uuid4().hex[:10]}", grace_ms=150, idle_check_ms=1000,
            sink_flush_ms=300, ping_s=1.0,
            start_ids={f"trades:{s}": venue.config.first_trade_id for s in venue.config.symbols},
        )
        if overrides.get("exchange") == "btcturk":  # the venue's BTCTurk protocol and REST
            kw.update(ws_url=venue.btcturk_ws_url, rest_url=venue.btcturk_rest_url)
        kw.update(overrides)
        f = Fabric(FabricConfig(**kw)).start()
        started.append(f)
        return f

    yield make
    for f in started:
        f.kill()
