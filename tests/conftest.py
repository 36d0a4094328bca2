"""Session fixtures: one loopback Ray per test session.

Ray costs ~5 s to start here, so it starts once (session scope), on free ports so it never
collides with a developer's own Ray or with a CLI subprocess that starts its own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from helpers import free_port

# Long end-to-end tests that mostly wait on real timing (alerts firing and resolving, the demo's
# stages, Ray jobs): with ``pytest -n 2 --dist loadgroup`` (make test) they run on one worker
# while everything else runs on the other. Serial runs ignore the groups.
SIDE = ("tests/chaos/test_canary_quick.py", "tests/test_demo.py", "tests/test_drivers.py",
        "tests/cluster/test_ray_up.py", "tests/observe/test_observe_demo.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        side = item.nodeid.split("::", 1)[0] in SIDE
        item.add_marker(pytest.mark.xdist_group("side" if side else "main"))


@pytest.fixture(scope="session")
def ray_session() -> Iterator[object]:
    """A local Ray on 127.0.0.1 shared by every test that needs one; shut down at the end."""
    from spark_ray.config import RayConfig
    from spark_ray.session import connect, disconnect

    cfg = RayConfig(dashboard_port=free_port(), metrics_export_port=free_port(), num_cpus=2)
    session = connect(config=cfg, quiet=True)
    yield session
    disconnect()
