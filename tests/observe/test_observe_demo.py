"""The ``make demo`` stage: Prometheus on the running Ray, dashboards as PNG, Prometheus stopped."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from spark_ray.observe.demo import run_demo

from observe_helpers import need


def test_demo_stage_renders_every_dashboard(ray_session: Any, tmp_path: Path) -> None:
    need("prometheus")
    before = _prometheus_pids()
    t0 = time.monotonic()
    summary = run_demo(tmp_path)
    assert time.monotonic() - t0 < 60
    assert summary["ray_metrics_scraped"] is True
    assert summary["targets_up"] >= 1
    # 12 platform alerts, 3 fault alerts of the chaos canary and its 2 recording rules
    assert summary["alert_rules"] == summary["alert_rules_ok"] == 17
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == sorted(summary["dashboards"]) and len(pngs) == 6
    for p in tmp_path.glob("*.png"):
        assert p.read_bytes()[:4] == b"\x89PNG"
    facts = json.loads((tmp_path / "observe.json").read_text())
    assert facts["ray_scraped"] and (tmp_path / "prometheus.yml").is_file()
    assert _prometheus_pids() == before, "the demo left a prometheus running"


def _prometheus_pids() -> set[int]:
    pids = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmd and os.path.basename(cmd[0]) == b"prometheus" and \
                    any(a.startswith(b"--config.file=") and b"spark-ray-observe-" in a
                        for a in cmd):
                pids.add(int(d.name))
    return pids
