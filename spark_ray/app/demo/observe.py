"""The ``make demo`` observability stage: a real Prometheus on the demo's Ray, dashboards as PNG.

Ray is already connected by the caller. Starts Prometheus on a free loopback port against the
current Ray session (its file service discovery, our alert rules), waits until Ray's metrics are
scraped; with ``traffic`` (the default) runs the platform under its own load on the local venue
simulator (:mod:`spark_ray.app.load`: fabric, a paper executor and a small Tune sweep together,
and a tripped breaker so the trading pictures show something), renders every dashboard to
``out_dir/<dashboard>.png`` from Prometheus' query results, records the alert rules' health and
active alerts, stops everything it started and returns a summary. It fails (``SLOMissed``, a
message naming each SLO, its value and its limit) when the platform missed its SLO
(:func:`spark_ray.app.slo.platform_objectives`: event-to-store p95 <= 300 ms, ...). It used to
inject a 3 s latency spike over 40% of its traffic: that alone made the rendered p95 4.7 s.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from spark_ray.app import slo
from spark_ray.app.session import current_session_dir
from spark_ray.observe import prom
from spark_ray.observe.render import render_all

SCRAPE_WAIT_S = 35.0


def run_demo(out_dir: Path, minutes: float | None = None, traffic: bool = True,
             traffic_s: float = 30.0, lake: Any | None = None,
             live: Any | None = None) -> dict[str, Any]:
    """``minutes``: the pictures' time window (default: since Prometheus started); ``lake``:
    candles for the Tune sweep that runs beside the fabric (none: no sweep); ``live``: the
    demo's running long-lived fabric (:class:`spark_ray.app.demo.live.LivePlatform`), which the
    load's executor joins instead of starting its own (none: the load brings its own). Raises
    :class:`spark_ray.app.slo.SLOMissed` (after writing the pictures and facts) when the
    platform missed its SLO under that load."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    state_dir = Path(tempfile.mkdtemp(prefix="spark-ray-observe-"))
    sd = prom.sd_file(current_session_dir())
    state = prom.start(state_dir, sd_path=sd, port=prom.free_port())
    try:
        client = prom.PromClient(state.url)
        scraped = client.wait_ray_scraped(SCRAPE_WAIT_S)
        streamed = _traffic(state_dir, traffic_s, lake, live) if traffic else {}
        # The stat the Streams Fabric dashboard shows, as Prometheus answers it now.
        shown = client.query(_p95_stat())
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
    missed = slo.misses(streamed) if traffic else []
    facts = {"prometheus": state.url, "ray_scraped": scraped, "targets": targets,
             "traffic": streamed, "slo_missed": missed,
             "dashboard_event_to_store_p95_ms": [r["value"][1] for r in shown] if traffic else [],
             "metric_names": series, "rules": rules, "active_alerts": alerts,
             "dashboards": results}
    (out_dir / "observe.json").write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n")
    if missed:
        raise slo.SLOMissed("observe stage (fabric + executor + Tune sweep) missed its SLO: "
                            + "; ".join(missed))
    panels = [p for r in results for p in r["panels"].values()]
    return {
        "prometheus_version": _version(),
        "ray_metrics_scraped": scraped,
        "traffic": {k: streamed[k] for k in ("seconds", "msg_per_s", "event_to_store_p95_ms",
                                             "ingest_lag_p95_ms", "unrepaired_gaps", "sweep",
                                             "fabric", "joined", "market_data_connections")
                    if k in streamed},
        "slo": slo.enforce(streamed, "observe stage") if traffic else "not measured",
        "targets_up": sum(1 for t in targets if t["health"] == "up"),
        "alert_rules": len(rules),
        "alert_rules_ok": sum(1 for r in rules if r["health"] == "ok"),
        "alerts_active": sorted({a["labels"]["alertname"] for a in alerts}),
        "dashboards": [Path(r["png"]).name for r in results],
        "panels_with_data": f"{sum(1 for p in panels if p['has_data'])}/{len(panels)}",
        "seconds": round(time.monotonic() - t0, 1),
    }


def _p95_stat() -> str:
    from spark_ray.observe.dashboards import STREAMS_FABRIC

    (panel,) = [p for p in STREAMS_FABRIC.panels if p.title == "Event-to-store p95"]
    return panel.targets[0].expr


def _version() -> str | None:
    import subprocess  # nosec B404  # runs the prometheus binary, fixed argv, no shell

    binary = prom.find_binary("prometheus")
    if binary is None:
        return None
    out = subprocess.run([binary, "--version"], capture_output=True,  # nosec B603  # no shell
                         text=True, timeout=10)  # binary from prom.find_binary, fixed flags
    first = (out.stdout or out.stderr).splitlines()
    return first[0] if first else None


def _traffic(state_dir: Path, seconds: float, lake: Any | None,
             live: Any | None = None) -> dict[str, Any]:
    """The platform under its own load for at least ``seconds``: fabric, a paper executor and
    (with ``lake``) a small Tune sweep together, and a breaker tripped then re-armed so the
    trading pictures show something. No injected latency: the stage measures the platform's SLO
    (the chaos stage injects faults). Everything is stopped at the end."""
    import uuid

    import ray

    from spark_ray.actors.breaker import CircuitBreakerActor
    from spark_ray.app.load import LoadSpec, run_platform_load

    breaker: Any = None

    def trip(fabric: Any) -> None:
        nonlocal breaker
        name = f"breaker:observe-demo-{uuid.uuid4().hex[:6]}"
        breaker = CircuitBreakerActor.options(name=name, namespace=fabric.cfg.namespace).remote(
            None, str(state_dir / "breaker.jsonl"), name)
        ray.get(breaker.trip.remote("observe demo: show a trip", "demo"), timeout=60)
        ray.get(breaker.allow.remote({"symbol": "BTCUSDT", "side": "buy", "qty": 0.1}),
                timeout=30)

    spec = LoadSpec(min_seconds=seconds, tune_trials=6)
    try:
        if live is not None:  # the running fabric: the market runs for the load, then pauses
            spec = LoadSpec(symbols=tuple(live.symbols), min_seconds=seconds, tune_trials=6)
            live.resume()
            try:
                live.wait_fresh(list(live.symbols))
                measured = run_platform_load(state_dir / "load", lake, spec, during=trip,
                                             shared=live.fabric)
                measured["market_data_connections"] = len(live.connections())
            finally:
                live.pause()
        else:
            measured = run_platform_load(state_dir / "load", lake, spec, during=trip)
        if breaker is not None:
            ray.get(breaker.reset.remote("observe demo: done", "demo"), timeout=30)
    finally:
        if breaker is not None:
            ray.kill(breaker, no_restart=True)
    return measured
