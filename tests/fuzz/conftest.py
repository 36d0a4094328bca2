"""Fuzz tests write nothing outside their temp folder: the servers' audit log goes to a temp
file, and the per-source mutation rate limit is raised so fuzzed mutations reach validation."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module", autouse=True)
def fuzz_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    from spark_ray.audit import AUDIT_ENV, RATE_ENV

    env = {AUDIT_ENV: str(tmp_path_factory.mktemp("fuzz-audit") / "audit.jsonl"),
           RATE_ENV: "1000000/1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
