"""Demo stage: the long-lived fabric comes up (``streams up``), takes live trades with a gap and
duplicates injected half-way, and reports itself the way ``spark-ray streams status`` does.
BTCTurk's fabric runs beside Binance's (one ``streams up --exchange binance,btcturk``), and the
stage prints the cross-venue line: BTC on both venues in USDT, spread and basis in bps.

Once the cross-venue lines are shown, BTCTurk's fabric and the view go down (``streams down
--exchange btcturk``): the later stages measure Binance's SLO on 2 cores without a second feed.
Binance's fabric is left running (market paused) for the later stages to join; the demo's
``streams-down`` stage drains it and checks the lake against the venue's ground truth.
``run_demo`` expects Ray to be connected already (the platform demo does that).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from spark_ray.app.demo.live import LivePlatform


def run_demo(out_dir: Path, live: LivePlatform, seconds: float = 5.0) -> dict[str, Any]:
    """Stream ``seconds`` of trades through ``live``'s fabric; write ``status.txt`` and
    ``status.json`` (the ``streams status`` report) and ``p95-summary.json`` into ``out_dir``;
    leave the market paused and the fabric up."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    symbols = live.symbols
    fabric = live.fabric
    live.resume()
    t0 = time.monotonic()
    injected = False
    connections: set[int] = set()  # distinct ids (a reconnect adds one)
    peak = 0  # most open at once
    while (elapsed := time.monotonic() - t0) < seconds:
        if not injected and elapsed >= seconds / 2:
            live.venue.inject("gap", symbol=symbols[0], count=25)
            live.venue.inject("duplicate", probability=0.1, duration_s=1.0)
            injected = True
        open_now = live.connections()
        connections.update(int(c["id"]) for c in open_now)
        peak = max(peak, len(open_now))
        time.sleep(0.25)
    # Until the gap is repaired and every symbol is fresh: what `streams status` calls healthy.
    deadline = time.monotonic() + 30.0
    while True:
        ok, doc, text = live.report(max_age_s=5.0)
        if ok or time.monotonic() >= deadline:
            break
        time.sleep(1.0)
    cross = _cross_venue(out_dir, live)
    side_by_side = [f.cfg.exchange for f in live.others]
    stats = fabric.slo_stats()
    live.pause()
    others_down = live.down_others()
    (out_dir / "status.txt").write_text(text + "\n")
    (out_dir / "status.json").write_text(json.dumps(doc, indent=2, sort_keys=True,
                                                    default=str) + "\n")
    lag, e2s = stats["lag"], stats["event_to_db"]
    stored = {k: v for k, v in fabric.stored_counts().items() if k.startswith("trades:")}
    summary = {
        "seconds": round(seconds, 1), "stored": stored, "totals": stats["totals"],
        "ingest_lag": lag.summary(), "event_to_store": e2s.summary(),
        "status": doc["status"], "status_reasons": {s: v["reason"] for s, v in
                                                    doc["symbols"].items() if "reason" in v},
    }
    (out_dir / "p95-summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True,
                                                         default=str) + "\n")
    print("   " + text.replace("\n", "\n   "), flush=True)
    for line in cross:
        print(f"   cross-venue: {line}", flush=True)
    for exchange, rows in others_down.get("rows_written", {}).items():
        print(f"   streams down --exchange {exchange}: drained ({rows} rows); the later stages "
              "run on binance alone", flush=True)
    return {
        "fabric": doc["fabric"], "namespace": fabric.cfg.namespace,
        "detached": fabric.cfg.detached, "actors": live.actor_names,
        "status": doc["status"], "stored": stored,
        "repaired_rows": stats["totals"]["repaired_rows"],
        "unrepaired_gaps": stats["totals"]["gaps_unrepaired"],
        "ingest_lag_p95_ms": lag.quantile(0.95), "event_to_store_p95_ms": e2s.quantile(0.95),
        "market_data_connections_peak": peak,
        "market_data_connection_ids": sorted(connections), "shards": fabric.cfg.shards,
        "lake": fabric.cfg.store, "status_report": str(out_dir / "status.txt"),
        "cross_venue": cross, "side_by_side": side_by_side, "others_down": others_down,
    }


def _cross_venue(out_dir: Path, live: LivePlatform, timeout_s: float = 10.0) -> list[str]:
    """The cross-venue lines (``streams status`` with several exchanges), once some asset is
    quoted by more than one venue (or after ``timeout_s``); the view goes to cross-venue.json."""
    from spark_ray.streams.crossvenue import format_lines

    deadline = time.monotonic() + timeout_s
    view = live.cross_view()
    while view is not None and time.monotonic() < deadline and not any(
            len(a["venues"]) > 1 for a in view.get("assets", {}).values()):
        time.sleep(0.5)
        view = live.cross_view()
    if view is None:
        return []
    (out_dir / "cross-venue.json").write_text(json.dumps(view, indent=2, sort_keys=True,
                                                         default=str) + "\n")
    return format_lines(view) if "assets" in view else [f"unavailable: {view}"]
