"""The ``make demo`` chaos stage: one quick experiment against the live stack, and its table.

Uses the Ray this process is attached to (the demo's; else starts a local loopback one), starts
the canary's own venue, fabric, breaker and Prometheus, runs ``lag_spike`` (the classic: a 3 s
lag spike must raise StreamsIngestLagHigh and clear it, losing nothing), writes the table and
the measurement into ``out_dir`` and prints the table. About a minute.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

DEMO_EXPERIMENT = "lag_spike"


def run_demo(out_dir: Path, experiment: str = DEMO_EXPERIMENT) -> dict[str, Any]:
    from spark_ray.chaos.experiments import EXPERIMENTS_DIR, load_experiments
    from spark_ray.chaos.runner import run_experiments
    from spark_ray.chaos.verdict import table_json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    exps = load_experiments(EXPERIMENTS_DIR, [experiment])
    work = Path(tempfile.mkdtemp(prefix="spark-ray-chaos-demo-"))
    try:
        res = run_experiments(exps, work, log=lambda s: print(f"chaos: {s}", flush=True))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    (out_dir / "chaos-table.md").write_text(res.markdown)
    (out_dir / "chaos-table.json").write_text(table_json(res.results))
    (m,) = res.results
    (out_dir / f"{m.experiment}.json").write_text(
        json.dumps(m.to_dict(), indent=2, default=str) + "\n")
    print(res.markdown, flush=True)
    return {"experiment": m.experiment, "status": m.status, "alert": m.alert,
            "detection_s": m.to_dict()["detection_s"], "recovery_s": m.to_dict()["recovery_s"],
            "heal_s": m.to_dict()["heal_s"], "lost": m.lost, "duplicates": m.duplicates,
            "reasons": m.reasons, "lake": {k: res.final_lake.get(k) for k in
                                           ("published", "stored", "lost", "duplicates")}}
