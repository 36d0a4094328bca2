"""Session fixtures: one loopback Ray per test session.

Ray costs ~5 s to start here, so it starts once (session scope), on free ports so it never
collides with a developer's own Ray or with a CLI subprocess that starts its own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from helpers import free_port


@pytest.fixture(scope="session")
def ray_session() -> Iterator[object]:
    """A local Ray on 127.0.0.1 shared by every test that needs one; shut down at the end."""
    from spark_ray.app.session import connect, disconnect
    from spark_ray.config import RayConfig

    cfg = RayConfig(dashboard_port=free_port(), metrics_export_port=free_port(), num_cpus=2)
    session = connect(config=cfg, quiet=True)
    yield session
    disconnect()
