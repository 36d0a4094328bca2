"""The breaker's demo stage: scripted drawdown, block, cooldown, re-arm, crash recovery."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from spark_ray.actors.naming import lookup
from spark_ray.app.demo.breaker import run_demo
from spark_ray.breaker.journal import read_journal


def test_demo_trips_on_the_drawdown_and_recovers(ray_session: Any, tmp_path: Path) -> None:
    summary: dict[str, Any] = run_demo(tmp_path)
    steps = [t.split(" ", 1)[1] for t in summary["transitions"]]
    assert steps[0].startswith("ARMED->TRIPPED trip max_drawdown (drawdown 10.6% > 10.0%)")
    assert steps[1].startswith("TRIPPED->COOLDOWN cooldown")
    assert steps[2].startswith("COOLDOWN->ARMED arm")
    assert steps[3].startswith("ARMED->TRIPPED trip manual")
    assert steps[4].startswith("TRIPPED->ARMED reset")
    assert summary["orders_blocked"] == summary["blocked_journaled"] == 4
    assert summary["orders_allowed"] == 7
    assert summary["recovered"]["state"] == "TRIPPED"
    assert summary["final_state"] == "ARMED"
    assert summary["executor_notices"][0].startswith("max_drawdown")
    deadline = time.monotonic() + 10  # the demo kills its actor; the name frees shortly after
    while lookup(str(summary["actor"])) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert lookup(str(summary["actor"])) is None
    events, skipped = read_journal(tmp_path / "journal.jsonl")
    assert skipped == 0 and len(events) == summary["journal_events"]
    assert json.loads((tmp_path / "summary.json").read_text())["final_state"] == "ARMED"
