"""The quick subset of the chaos canary, end to end, as a user runs it: ``spark-ray chaos run
--quick`` in its own process (its own loopback Ray reporting metrics every 2 s, a real
Prometheus with our alert rules, the venue simulator, the streams fabric, the breaker).

lag_spike, seq_gap, drop and kill_normalizer must each be detected by their alert within the
declared time, resolve after the fault, and lose and duplicate nothing (lake vs the venue's
ground truth). A negative control rides along: a 3 s stall cannot make the heartbeat 15 s stale,
so its alert never fires: it must FAIL, and with it the run must exit 1 (a canary that cannot
fail proves nothing). About 3.5 minutes: detection waits on real export, scrape and rule timing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from spark_ray.chaos.experiments import EXPERIMENTS_DIR
from spark_ray.evidence import verify

from helpers import cli_env, run_cli

pytestmark = pytest.mark.slow

QUICK = ["lag_spike", "seq_gap", "drop", "kill_normalizer"]
CONTROL = """\
id: control_never_fires
description: A 3 s stall cannot make the heartbeat 15 s stale (negative control).
quick: true
fault: {kind: venue, target: stall}
duration_s: 3
expect_alert: StreamsHeartbeatStale
max_detect_s: 4
max_recover_s: 10
"""


def test_quick_subset_detects_recovers_and_loses_nothing(tmp_path: Path) -> None:
    from spark_ray.observe.prom import find_binary

    if find_binary("prometheus") is None:
        pytest.skip("prometheus not installed (apt-get install -y prometheus; make test does "
                    "this)")
    exps = tmp_path / "experiments"
    shutil.copytree(EXPERIMENTS_DIR, exps)
    (exps / "99_control.yaml").write_text(CONTROL)
    out = tmp_path / "runs"
    res = run_cli("chaos", "run", "--quick", "--experiments-dir", str(exps), "--out", str(out),
                  env=cli_env(), timeout=540)
    assert res.code == 1, res.out[-3000:] + res.err[-3000:]
    (run_dir,) = out.iterdir()
    table = json.loads((run_dir / "chaos-table.json").read_text())
    rows = {r["experiment"]: r for r in table["rows"]}
    assert list(rows) == [*QUICK, "control_never_fires"]
    for eid in QUICK:
        r = rows[eid]
        assert r["status"] == "PASS", (eid, r["reasons"], res.out[-4000:])
        assert r["alert_fired_at"] and r["resolved_at"]
        assert r["lost"] == 0 and r["duplicates"] == 0
        detail = json.loads((run_dir / "experiments" / f"{eid}.json").read_text())
        assert detail["details"]["alerts"], eid  # the alert timeline is in the evidence
    ctl = rows["control_never_fires"]
    assert ctl["status"] == "FAIL"
    assert "StreamsHeartbeatStale never fired" in ctl["reasons"][0]
    assert ctl["alert_fired_at"] is None
    # What the run printed is the table it wrote; the bundle is complete and intact.
    md = (run_dir / "chaos-table.md").read_text()
    assert md in res.out
    assert "| kill_normalizer |" in md and "4/5 passed" in md
    lake = json.loads((run_dir / "lake-final.json").read_text())
    assert lake["lost"] == 0 and lake["duplicates"] == 0 and lake["published"] > 1000
    for name in ("prometheus.yml", "rules/spark-ray.yml", "rules/spark-ray-faults.yml",
                 "venue-fault-log.json", "declared/03_drop.yaml"):
        assert (run_dir / name).is_file(), name
    assert verify(run_dir).ok
    assert json.loads((run_dir / "run.json").read_text())["exit_code"] == 1
