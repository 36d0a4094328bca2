"""One platform for the console tests: a real local Ray, the venue, the long-lived fabric
(``streams up``'s code), a paper executor joined to it with its breaker, a runs folder of 100
runs and 1,000+ trials, a real lake, and the console deployed on Ray Serve as ``spark-ray
console`` deploys it. Torn down (Serve, executor, breaker, fabric, venue) at the end.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from console_helpers import TOKEN, make_lake, make_runs
from helpers import free_port

QUIET_RULES: dict[str, Any] = {"consecutive_losses": {"enabled": False},
                               "order_rate": {"limit": 100_000},
                               "daily_loss": {"limit": 0.5}, "max_drawdown": {"limit": 0.5}}


@dataclass
class Platform:
    url: str
    ids: dict[str, str]
    runs: Path
    breaker: str
    executor: str
    root: Path


@pytest.fixture(scope="module")
def platform(ray_session: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    import ray
    from ray import serve

    from spark_ray.app import console_service, fabric_service
    from spark_ray.app.cli.console import settings_for
    from spark_ray.app.demo import live as live_platform
    from spark_ray.app.trading import TradingRun
    from spark_ray.breaker.models import BreakerConfig
    from spark_ray.chaos.approval import synthetic_approval
    from spark_ray.console.guard import TOKEN_ENV
    from spark_ray.execution.executor import ExecutorConfig
    from spark_ray.execution.params import load_approved
    from spark_ray.execution.spec import ExecutorSpec

    root = tmp_path_factory.mktemp("console")
    lake = make_lake(root)
    ids = make_runs(root, lake)
    tag = uuid.uuid4().hex[:6]
    breaker = f"breaker:console-{tag}"
    live = live_platform.start(root / "streams-lake", symbols=("BTCUSDT",), breaker=breaker,
                               cross_symbols=(), log=lambda line: None)
    run: TradingRun | None = None
    try:
        live.resume()
        live.wait_fresh(["BTCUSDT"])
        shared = fabric_service.join(live_platform.EXCHANGE, ["BTCUSDT"])
        assert shared is not None
        ap = load_approved(synthetic_approval(root / "params", "sma_cross",
                                              {"fast": 2, "slow": 3}, "1s"))
        spec = ExecutorSpec(
            config=ExecutorConfig(name=f"console-{tag}", symbols=("BTCUSDT",), interval="1s",
                                  cash=10_000.0, warmup_bars=30),
            strategy=ap.strategy, params=ap.params,
            journal_path=str(root / "executor-journal.jsonl"), approved_path=ap.path,
            approval=ap.approval, rest_url=live.venue.rest_url, ws_url=live.venue.ws_url,
            breaker_name=breaker, control_port=0)
        run = TradingRun(spec, f"executor:console-{tag}", shared.cfg, shared=shared,
                         breaker_config=BreakerConfig.model_validate(
                             {"cooldown_s": 3600, **QUIET_RULES}),
                         breaker_journal=str(root / "breaker-journal.jsonl")).start()
        cfg = settings_for(str(root / "runs"), str(lake), None, None, env={TOKEN_ENV: TOKEN})
        url = console_service.up("127.0.0.1", free_port(), cfg, lambda line: None)
        yield Platform(url=url, ids=ids, runs=root / "runs", breaker=breaker,
                       executor=f"executor:console-{tag}", root=root)
    finally:
        with contextlib.suppress(Exception):
            console_service.down(lambda line: None)
        with contextlib.suppress(Exception):
            serve.shutdown()
        if run is not None:
            with contextlib.suppress(Exception):
                run.stop(collect=False)
            if run.breaker is not None:
                with contextlib.suppress(Exception):
                    ray.kill(run.breaker, no_restart=True)
        live.kill()
