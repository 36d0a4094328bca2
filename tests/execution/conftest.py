"""Fixtures for the executor tests: approved parameter files, venues with trading accounts,
circuit breakers with their own journals, fabrics and executors, all torn down afterwards.

Helpers are fixtures (not a module) because pytest runs with ``--import-mode=importlib``.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from spark_ray.chaos.approval import synthetic_approval
from spark_ray.venue import Venue

from helpers import signer

KEY, SECRET = "execKey1", "execSecret1-do-not-leak"
# Light, fast venues: the market clock runs 10x the wall clock, so 1s bars close ten a second
# and the synthetic price path turns (and SMA(2)/SMA(3) cross) every few seconds.
FAST: dict[str, Any] = dict(symbols=("BTCUSDT",), seed=11, history_minutes=30, speed=10.0,
                            trades_per_second=40, api_keys={KEY: SECRET},
                            starting_balances={"USDT": "10000"})
# Breaker rules a churning test strategy would trip on purpose-free: losing streaks, and the
# order rate of ten bars a second.
QUIET_RULES: dict[str, Any] = {"consecutive_losses": {"enabled": False},
                               "order_rate": {"limit": 100_000},
                               "daily_loss": {"limit": 0.5}, "max_drawdown": {"limit": 0.5}}


@pytest.fixture
def venue_keys() -> tuple[str, str]:
    """The venue account's API key and secret (tests only)."""
    return KEY, SECRET


@pytest.fixture
def approved(tmp_path: Path) -> Callable[..., Path]:
    def make(strategy: str = "sma_cross", params: dict[str, Any] | None = None,
             interval: str = "1s", folder: str = "params") -> Path:
        return synthetic_approval(tmp_path / folder, strategy, params or {"fast": 2, "slow": 3},
                                  interval, note="executor tests", signer=signer("ci"))

    return make


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
def make_breaker(ray_session: Any, tmp_path: Path) -> Iterator[Callable[..., tuple[str, Any]]]:
    import ray

    from spark_ray.actors.breaker import get_breaker
    from spark_ray.breaker.models import BreakerConfig

    made: list[Any] = []

    def make(config: dict[str, Any] | None = None) -> tuple[str, Any]:
        name = f"breaker:t{uuid.uuid4().hex[:8]}"
        cfg = BreakerConfig.model_validate({"cooldown_s": 3600, **QUIET_RULES, **(config or {})})
        handle, _ = get_breaker(name, config=cfg,
                                journal_path=tmp_path / f"{name.replace(':', '-')}.jsonl")
        made.append(handle)
        return name, handle

    yield make
    for h in made:
        with contextlib.suppress(Exception):
            ray.kill(h, no_restart=True)


@pytest.fixture
def make_fabric(ray_session: Any, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    from spark_ray.app.fabric import Fabric, FabricConfig

    started: list[Any] = []

    def make(venue: Venue, **overrides: Any) -> Any:
        kw: dict[str, Any] = dict(
            symbols=list(venue.config.symbols), streams=["trade"], ws_url=venue.ws_url,
            rest_url=venue.rest_url, store=str(tmp_path / "lake"),
            namespace=f"test-{uuid.uuid4().hex[:10]}", grace_ms=150, idle_check_ms=1000,
            sink_flush_ms=300, ping_s=1.0, flush_ms=5.0)
        kw.update(overrides)
        f = Fabric(FabricConfig(**kw)).start()
        started.append(f)
        return f

    yield make
    for f in started:
        f.kill()


@pytest.fixture
def make_executor(ray_session: Any, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Start a named ExecutorActor (namespace spark_ray, unique name); stopped and killed
    afterwards. Returns (handle, spec)."""
    import ray

    from spark_ray.actors.executor import start_executor
    from spark_ray.execution.executor import ExecutorConfig
    from spark_ray.execution.params import load_approved
    from spark_ray.execution.spec import ExecutorSpec

    made: list[Any] = []

    def make(approved_path: Path, venue: Venue, breaker_name: str, *, live: bool = False,
             name: str | None = None, journal: Path | None = None,
             broker_options: dict[str, Any] | None = None, signals_model: str | None = None,
             **cfg: Any) -> Any:
        from spark_ray.adapters import get_adapter
        from spark_ray.secrets import write_secrets_file

        ap = load_approved(approved_path)
        creds = None
        if live:  # the actor reads the key from a 0600 secrets file on its node
            names = get_adapter("binance").credential_refs()
            secrets = tmp_path / f"secrets-{uuid.uuid4().hex[:8]}"
            write_secrets_file(secrets, {names.key.env: KEY, names.secret.env: SECRET})
            creds = get_adapter("binance").credential_refs(str(secrets))
        name = name or f"executor:t{uuid.uuid4().hex[:8]}"
        config = ExecutorConfig(**{"name": name.replace(":", "-"), "symbols": ("BTCUSDT",),
                                   "interval": "1s", "mode": "live" if live else "paper",
                                   "cash": 5_000.0, "warmup_bars": 30, **cfg})
        broker_options = {"timeout_s": 1.0, "attempts": 4, "backoff_s": 0.05,
                          "recv_window_ms": 1_000, **(broker_options or {})} if live else {}
        spec = ExecutorSpec(
            config=config, strategy=ap.strategy, params=ap.params,
            journal_path=str(journal or tmp_path / f"{name.replace(':', '-')}.jsonl"),
            approved_path=ap.path, approval=ap.approval,
            broker="binance" if live else "paper", rest_url=venue.rest_url, ws_url=venue.ws_url,
            credentials=creds, breaker_name=breaker_name,
            control_port=0, broker_options=broker_options, signals_model=signals_model)
        handle = start_executor(spec, name)
        made.append(handle)
        return handle, spec

    yield make
    for h in made:
        with contextlib.suppress(Exception):
            ray.get(h.stop.remote(), timeout=30)
        with contextlib.suppress(Exception):
            ray.kill(h, no_restart=True)


@pytest.fixture
def wait_for() -> Callable[..., Any]:
    def wait(fn: Callable[[], Any], timeout: float = 30.0, every: float = 0.1,
             what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = fn()
            if last:
                return last
            time.sleep(every)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")

    return wait
