"""Session fixtures: one loopback Ray per test session.

Ray costs ~5 s to start here, so it starts once (session scope), on free ports so it never
collides with a developer's own Ray or with a CLI subprocess that starts its own.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import free_port

APPROVERS = ("alice", "bob", "ci")


@pytest.fixture(scope="session", autouse=True)
def session_audit_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every mutation the tests make is audited into the session's own log, never the
    operator's ``~/.spark-ray/audit.jsonl``; set before Ray starts, so actors use it too.

    The mutation rate limit (10 per 10 s per address) is lifted for the session: tests drive
    many mutations from 127.0.0.1 in bursts no operator makes. tests/audit/ checks the limit
    with limiters (or an environment) of its own."""
    from spark_ray.audit import AUDIT_ENV, RATE_ENV

    path = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    with pytest.MonkeyPatch.context() as mp:  # restored at the session's end
        mp.setenv(AUDIT_ENV, str(path))
        mp.setenv(RATE_ENV, "100000/1")
        yield path


@pytest.fixture(scope="session", autouse=True)
def approver_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The session's approvers, as on an operator's machine: a private key each (made by the
    real keygen) and a trusted-keys file naming them, found through the environment. Set
    before Ray starts, so actors on this node read the same files."""
    from spark_ray.approval.signing import KEYS_DIR_ENV, TRUSTED_KEYS_ENV, keygen

    root = tmp_path_factory.mktemp("approvers")
    lines = [keygen(name, root / "keys")[2] for name in APPROVERS]
    (root / "trusted_keys").write_text("\n".join(lines) + "\n")
    with pytest.MonkeyPatch.context() as mp:  # restored at the session's end
        mp.setenv(KEYS_DIR_ENV, str(root / "keys"))
        mp.setenv(TRUSTED_KEYS_ENV, str(root / "trusted_keys"))
        yield root


@pytest.fixture(scope="session")
def ray_session() -> Iterator[object]:
    """A local Ray on 127.0.0.1 shared by every test that needs one; shut down at the end."""
    from spark_ray.app.session import connect, disconnect
    from spark_ray.config import RayConfig

    cfg = RayConfig(dashboard_port=free_port(), metrics_export_port=free_port(), num_cpus=2)
    session = connect(config=cfg, quiet=True)
    yield session
    disconnect()


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop running in a thread: async servers (control planes) started from a
    synchronous test with ``asyncio.run_coroutine_threadsafe``."""
    lp = asyncio.new_event_loop()
    t = threading.Thread(target=lp.run_forever, daemon=True)
    t.start()
    yield lp
    lp.call_soon_threadsafe(lp.stop)
    t.join(10)
    lp.close()
