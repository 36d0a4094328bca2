"""One platform for the console tests: a real local Ray, the venue, the long-lived fabric
(``streams up``'s code), a paper executor joined to it with its breaker (the demo's
``paper_platform``), a runs folder of 100 runs and 1,000+ trials, a real lake, and the console
deployed on Ray Serve as ``spark-ray console`` deploys it. Torn down (Serve, executor, breaker,
fabric, venue) at the end.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from console_helpers import TOKEN, make_lake, make_runs
from helpers import free_port


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
    from ray import serve

    from spark_ray.app import console_service
    from spark_ray.app.cli.console import settings_for
    from spark_ray.app.demo.console import paper_platform
    from spark_ray.console.guard import TOKEN_ENV

    root = tmp_path_factory.mktemp("console")
    lake = make_lake(root)
    ids = make_runs(root, lake)
    with paper_platform(root) as parts:
        try:
            cfg = settings_for(str(root / "runs"), str(lake), None, None,
                               env={TOKEN_ENV: TOKEN})
            url = console_service.up("127.0.0.1", free_port(), cfg, lambda line: None)
            yield Platform(url=url, ids=ids, runs=root / "runs", breaker=parts["breaker"],
                           executor=parts["executor"], root=root)
        finally:
            with contextlib.suppress(Exception):
                console_service.down(lambda line: None)
            with contextlib.suppress(Exception):
                serve.shutdown()
