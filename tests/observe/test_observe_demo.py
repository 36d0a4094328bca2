"""The ``make demo`` stage: Prometheus on the running Ray, dashboards as PNG, Prometheus stopped."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from spark_ray.app.demo.observe import run_demo

from observe_helpers import need


@pytest.mark.alone
def test_demo_stage_renders_every_dashboard(ray_session: Any, tmp_path: Path) -> None:
    need("prometheus")
    summary = run_demo(tmp_path)
    assert summary["ray_metrics_scraped"] is True
    assert summary["targets_up"] >= 1
    # 15 platform alerts, 3 fault alerts of the chaos canary and its 2 recording rules
    assert summary["alert_rules"] == summary["alert_rules_ok"] == 20
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == sorted(summary["dashboards"]) and len(pngs) == 7
    for p in tmp_path.glob("*.png"):
        assert p.read_bytes()[:4] == b"\x89PNG"
    facts = json.loads((tmp_path / "observe.json").read_text())
    assert facts["ray_scraped"] and (tmp_path / "prometheus.yml").is_file()
    assert not _orphan_prometheus_pids(), "the demo left a prometheus running"


def _orphan_prometheus_pids() -> set[int]:
    """Our Prometheus processes whose state folder is gone: left behind by a finished demo
    (a parallel test's own Prometheus still has its folder)."""
    pids = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            conf = [a.split(b"=", 1)[1] for a in cmd if a.startswith(b"--config.file=")]
            if cmd and os.path.basename(cmd[0]) == b"prometheus" and conf and \
                    b"spark-ray-observe-" in conf[0] and not Path(os.fsdecode(conf[0])).exists():
                pids.add(int(d.name))
    return pids
