"""The ``make demo`` observability stage: a real Prometheus on the demo's Ray, dashboards as PNG.

Ray is already connected by the caller. Starts Prometheus on a free loopback port against the
current Ray session (its file service discovery, our alert rules), waits until Ray's metrics are
scraped; with ``traffic`` (the default) runs the streams fabric on the local venue simulator for
~25 s (with a short injected lag spike and a tripped breaker, so the pictures show something),
renders every dashboard to ``out_dir/<dashboard>.png`` from Prometheus' query results, records
the alert rules' health and active alerts, stops everything it started and returns a summary.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from spark_ray.app.session import current_session_dir
from spark_ray.observe import prom
from spark_ray.observe.render import render_all

SCRAPE_WAIT_S = 35.0


def run_demo(out_dir: Path, minutes: float | None = None, traffic: bool = True,
             traffic_s: float = 30.0) -> dict[str, Any]:
    """``minutes``: the pictures' time window (default: since Prometheus started)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    state_dir = Path(tempfile.mkdtemp(prefix="spark-ray-observe-"))
    sd = prom.sd_file(current_session_dir())
    state = prom.start(state_dir, sd_path=sd, port=prom.free_port())
    try:
        client = prom.PromClient(state.url)
        scraped = client.wait_ray_scraped(SCRAPE_WAIT_S)
        streamed = _traffic(state_dir, traffic_s) if traffic else {}
        # One more scrape after the first, so rates have two points.
        time.sleep(3.0)
        window = minutes or (time.time() - state.started) / 60 + 0.1
        results = render_all(client, out_dir, minutes=window)
        rules = [{"alert": r["name"], "health": r["health"], "state": r.get("state")}
                 for g in client.rules() for r in g["rules"]]
        alerts = client.alerts()
        targets = [{"url": t["scrapeUrl"], "health": t["health"]} for t in client.targets()]
        series = len(client._get("/api/v1/label/__name__/values"))
    finally:
        prom.stop(state)
        shutil.copy2(state.config_file, out_dir / "prometheus.yml")
        shutil.rmtree(state_dir, ignore_errors=True)
    facts = {"prometheus": state.url, "ray_scraped": scraped, "targets": targets,
             "traffic": streamed,
             "metric_names": series, "rules": rules, "active_alerts": alerts,
             "dashboards": results}
    (out_dir / "observe.json").write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n")
    panels = [p for r in results for p in r["panels"].values()]
    return {
        "prometheus_version": _version(),
        "ray_metrics_scraped": scraped,
        "traffic": {k: v for k, v in streamed.items() if k != "status"},
        "targets_up": sum(1 for t in targets if t["health"] == "up"),
        "alert_rules": len(rules),
        "alert_rules_ok": sum(1 for r in rules if r["health"] == "ok"),
        "alerts_active": sorted({a["labels"]["alertname"] for a in alerts}),
        "dashboards": [Path(r["png"]).name for r in results],
        "panels_with_data": f"{sum(1 for p in panels if p['has_data'])}/{len(panels)}",
        "seconds": round(time.monotonic() - t0, 1),
    }


def _version() -> str | None:
    import subprocess

    binary = prom.find_binary("prometheus")
    if binary is None:
        return None
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    first = (out.stdout or out.stderr).splitlines()
    return first[0] if first else None


def _traffic(work: Path, seconds: float) -> dict[str, Any]:
    """The streams fabric on the venue simulator for ``seconds``, a 3 s lag spike in the middle,
    and a breaker tripped then re-armed; everything stopped (actors killed) at the end."""
    import uuid

    import ray

    from spark_ray.actors.breaker import CircuitBreakerActor
    from spark_ray.app.fabric import Fabric, FabricConfig
    from spark_ray.venue import Venue

    namespace = f"observe-demo-{uuid.uuid4().hex[:6]}"
    venue = Venue(symbols=("BTCUSDT", "ETHUSDT"), seed=7, history_minutes=30,
                  trades_per_second=40).start()
    fabric = breaker = None
    try:
        fabric = Fabric(FabricConfig(
            symbols=["BTCUSDT", "ETHUSDT"], streams=["trade"], ws_url=venue.ws_url,
            rest_url=venue.rest_url, store=str(work / "lake"), namespace=namespace,
            sink_flush_ms=300, ping_s=1.0,
            start_ids={f"trades:{s}": venue.config.first_trade_id
                       for s in venue.config.symbols})).start()
        name = "breaker:observe-demo"
        breaker = CircuitBreakerActor.options(
            name=name, namespace=namespace).remote(None, str(work / "breaker.jsonl"), name)
        ray.get(breaker.trip.remote("observe demo: show a trip", "demo"), timeout=60)
        ray.get(breaker.allow.remote({"symbol": "BTCUSDT", "side": "buy", "qty": 0.1}),
                timeout=30)
        ray.get(fabric.connectors[0].chaos.remote("duplicate", 20), timeout=30)
        # Ray exports every ~10 s: a spike shorter than that may fall between two exports.
        time.sleep(seconds * 0.4)
        venue.inject("latency", delay_ms=3000, duration_s=seconds * 0.4)
        time.sleep(seconds * 0.6)
        ray.get(breaker.reset.remote("observe demo: done", "demo"), timeout=30)
        stats = fabric.slo_stats()
        return {"seconds": seconds, "frames": stats["totals"]["frames"],
                "ingest_lag_p95_ms": stats["lag"].quantile(0.95),
                "event_to_db_p95_ms": stats["event_to_db"].quantile(0.95),
                "status": {}}
    finally:
        if fabric is not None:
            fabric.kill()
        if breaker is not None:
            ray.kill(breaker, no_restart=True)
        venue.stop()
