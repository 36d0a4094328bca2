"""Demo stage: live trades from the venue simulator through the fabric into a lake, checked.

``run_demo`` expects Ray to be connected already (the platform demo does that).
"""

from __future__ import annotations

import json
import pathlib
import uuid

from spark_ray.app.fabric import FabricConfig
from spark_ray.app.slo import measured_run
from spark_ray.venue import Venue


def run_demo(out_dir: pathlib.Path, seconds: float = 5.0) -> dict[str, object]:
    """Stream ``seconds`` of BTCUSDT/ETHUSDT trades (with a gap and duplicates injected half-way)
    into ``out_dir/lake``; write ``out_dir/p95-summary.json``; return the summary's headline."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    symbols = ["BTCUSDT", "ETHUSDT"]
    with Venue(symbols=tuple(symbols), seed=7, trades_per_second=250,
               history_minutes=60) as venue:
        cfg = FabricConfig(symbols=symbols, streams=["trade", "bookTicker"], ws_url=venue.ws_url,
                           rest_url=venue.rest_url, store=str(out_dir / "lake"),
                           namespace=f"demo-{uuid.uuid4().hex[:8]}", idle_check_ms=1000)

        def chaos(fabric: object) -> None:
            venue.inject("gap", symbol="BTCUSDT", count=25)
            venue.inject("duplicate", probability=0.1, duration_s=1.0)

        summary = measured_run(venue, cfg, seconds, drain_timeout_s=30.0, chaos=chaos)
    (out_dir / "p95-summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True,
                                                         default=str) + "\n")
    print(f"streams: {summary['messages']} trades -> lake, lost {summary['lost']}, lake "
          f"duplicates {summary['lake_duplicates']}, repaired rows "
          f"{summary['totals']['repaired_rows']}, ingest lag p95 "
          f"{summary['ingest_lag_p95_ms']} ms, event-to-store p95 "
          f"{summary['event_to_store_p95_ms']} ms -> {summary['result']}", flush=True)
    return {k: summary[k] for k in ("result", "messages", "lost", "lake_duplicates",
                                    "unrepaired_gaps", "ingest_lag_p95_ms",
                                    "event_to_store_p95_ms", "achieved_rate_msg_s")} | {
        "repaired_rows": summary["totals"]["repaired_rows"],
        "lake": str(out_dir / "lake"), "summary": str(out_dir / "p95-summary.json")}
