"""The operator console in Chromium: how fast every page paints and shows its data with 100
runs and 1,000+ trials in the runs folder, how fast its API answers, and whether a live page
holds for 10 minutes without growing memory in the browser or the server.

Peer, in the same run and browser: the Ray dashboard's own page, what operators watched before
(first contentful paint, same cluster). The platform's targets (issue: operator console): first
paint of any page under 1 s; the streams and trading pages live for 10 minutes with the
browser's JS heap, DOM nodes and listeners and the Serve replica's RSS flat. Real parts only:
a local Ray, the venue, the fabric, a paper executor with its breaker, the console on Ray Serve.
``SOAK_S`` (default 600) shortens the soak for a trial run. Prints one JSON object.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "console")]

PAGES = ["/", "/streams", "/trading", "/research", "/data", "/alerts", "/chaos"]
APIS = ["/api/health", "/api/streams", "/api/trading", "/api/runs", "/api/data", "/api/chaos",
        "/api/evidence"]
SOAK_S = float(os.environ.get("SOAK_S", "600"))
LOADS = 5  # warm loads per page


def say(msg: str) -> None:
    print(f"bench_console: {msg}", file=sys.stderr, flush=True)


def paint(page: Any, url: str, ready: str | None) -> dict[str, float | None]:
    """First contentful paint and the time until the page shows its data (``ready``; a
    single-page app such as Ray's dashboard: until the network is idle)."""
    t0 = time.perf_counter()
    page.goto(url, wait_until="load" if ready else "networkidle")
    if ready:
        page.wait_for_function(ready, timeout=30_000)
    shown = (time.perf_counter() - t0) * 1000.0
    fcp = page.evaluate("performance.getEntriesByName('first-contentful-paint')[0]?.startTime"
                        " ?? null")
    return {"fcp_ms": fcp, "data_ms": round(shown, 1)}


def pages(browser: Any, base: str, dashboard: str | None) -> dict[str, Any]:
    ready = "document.querySelector('#updated')?.textContent.trim() !== '—'"
    out: dict[str, Any] = {}
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    for path in PAGES:
        cold = paint(page, base + path, ready)
        warm = [paint(page, base + path, ready) for _ in range(LOADS)]
        fcps = [w["fcp_ms"] for w in warm if w["fcp_ms"] is not None]
        out[path] = {"first_load_fcp_ms": cold["fcp_ms"],
                     "fcp_ms_median": round(statistics.median(fcps), 1) if fcps else None,
                     "fcp_ms_max": round(max(fcps), 1) if fcps else None,
                     "data_shown_ms_median": round(statistics.median(
                         w["data_ms"] for w in warm if w["data_ms"] is not None), 1)}
    peer = None
    if dashboard:
        url = dashboard if dashboard.startswith("http") else f"http://{dashboard}"
        cold = paint(page, url, None)
        warm = [paint(page, url, None) for _ in range(LOADS)]
        fcps = [w["fcp_ms"] for w in warm if w["fcp_ms"] is not None]
        peer = {"url_path": "/", "first_load_fcp_ms": cold["fcp_ms"],
                "fcp_ms_median": round(statistics.median(fcps), 1) if fcps else None,
                "fcp_ms_max": round(max(fcps), 1) if fcps else None,
                "network_idle_ms_median": round(statistics.median(
                    w["data_ms"] for w in warm if w["data_ms"] is not None), 1)}
    ctx.close()
    return {"ours": out, "peer_ray_dashboard": peer}


def api_latency(base: str, n: int = 30) -> dict[str, Any]:
    out = {}
    for path in APIS:
        ms = []
        for _ in range(n):
            t0 = time.perf_counter()
            with urllib.request.urlopen(base + path, timeout=30) as r:
                r.read()
            ms.append((time.perf_counter() - t0) * 1000.0)
        ms.sort()
        out[path] = {"p50_ms": round(ms[len(ms) // 2], 1),
                     "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 1)}
    return out


def replica_pid() -> int | None:
    """The console's Serve replica (Ray titles it ``ray::ServeReplica:spark-ray-console:...``);
    only read, never signalled."""
    import psutil

    for proc in psutil.process_iter(["cmdline"]):
        if any("ServeReplica:spark-ray-console" in part for part in proc.info["cmdline"] or []):
            return int(proc.pid)
    return None


def soak(browser: Any, base: str, seconds: float) -> dict[str, Any]:
    import psutil

    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    tabs = {}
    for path in ("/streams", "/trading"):
        pg = ctx.new_page()
        pg.goto(base + path, wait_until="load")
        cdp = ctx.new_cdp_session(pg)
        cdp.send("Performance.enable")
        tabs[path] = (pg, cdp)
    pid = replica_pid()
    proc = psutil.Process(pid) if pid else None
    samples: list[dict[str, Any]] = []
    t0 = time.monotonic()
    while True:
        elapsed = time.monotonic() - t0
        row: dict[str, Any] = {"t_s": round(elapsed)}
        for path, (_pg, cdp) in tabs.items():
            cdp.send("HeapProfiler.collectGarbage")
            m = {x["name"]: x["value"] for x in cdp.send("Performance.getMetrics")["metrics"]}
            row[path] = {"js_heap_mb": round(m["JSHeapUsedSize"] / 2**20, 2),
                         "dom_nodes": int(m["Nodes"]),
                         "listeners": int(m["JSEventListeners"])}
        if proc is not None:
            row["replica_rss_mb"] = round(proc.memory_info().rss / 2**20, 1)
        samples.append(row)
        if elapsed >= seconds:
            break
        time.sleep(min(30.0, max(1.0, seconds / 20)))
    ctx.close()

    def growth(key: str, path: str | None = None) -> dict[str, Any]:
        # after the first minute (caches and the JIT settle), first vs last vs max
        vals = [(s[path][key] if path else s.get(key)) for s in samples
                if s["t_s"] >= min(60, seconds / 4)]
        vals = [v for v in vals if v is not None]
        return {"start": vals[0], "end": vals[-1], "max": max(vals),
                "growth_pct": round(100.0 * (vals[-1] - vals[0]) / vals[0], 1) if vals[0]
                else None} if vals else {}

    summary: dict[str, Any] = {
        p: {k: growth(k, p) for k in ("js_heap_mb", "dom_nodes", "listeners")} for p in tabs}
    summary["replica_rss_mb"] = growth("replica_rss_mb")
    return {"seconds": round(time.monotonic() - t0), "summary": summary, "samples": samples}


def main() -> None:
    from playwright.sync_api import sync_playwright
    from ray import serve

    from spark_ray.app import console_service
    from spark_ray.app.cli.console import settings_for
    from spark_ray.app.demo.console import chromium, paper_platform
    from spark_ray.app.session import connect, disconnect
    from spark_ray.config import RayConfig
    from spark_ray.console.guard import TOKEN_ENV

    from console_helpers import TOKEN, make_lake, make_runs
    from helpers import free_port

    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        root = Path(tmp)
        session = connect(config=RayConfig(dashboard_port=free_port(),
                                           metrics_export_port=free_port()), quiet=True)
        try:
            lake = make_lake(root)
            say("runs folder: 100 runs, 1,000+ trials")
            ids = make_runs(root, lake)
            with paper_platform(root):
                cfg = settings_for(str(root / "runs"), str(lake), None, None,
                                   env={TOKEN_ENV: TOKEN})
                base = console_service.up("127.0.0.1", free_port(), cfg, lambda line: None)
                with urllib.request.urlopen(base + "/api/runs", timeout=30) as r:
                    runs = json.loads(r.read())
                trials = sum(x["summary"].get("optimization", {}).get("trials", 0)
                             for x in runs["runs"])
                exe = chromium()
                if exe is None:
                    raise SystemExit("chromium is not installed (apt-get install -y chromium)")
                with sync_playwright() as p:
                    browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
                    say("page paints (ours and the Ray dashboard's)")
                    paints = pages(browser, base, session.dashboard_url)
                    say("API latency")
                    api = api_latency(base)
                    say(f"soak: /streams and /trading live for {SOAK_S:g} s")
                    held = soak(browser, base, SOAK_S)
                    browser.close()
                console_service.down(lambda line: None)
                serve.shutdown()
        finally:
            disconnect()
    ours = paints["ours"]
    worst = max(v["fcp_ms_max"] or 0.0 for v in ours.values())
    first = max(v["first_load_fcp_ms"] or 0.0 for v in ours.values())
    print(json.dumps({
        "what": "operator console pages in Chromium (Playwright), Ray Serve app, 2 cores",
        "runs_folder": {"runs": runs["count"], "trials": trials,
                        "big_leaderboard": ids["big_leaderboard"]},
        "pages": paints, "api": api, "soak": held,
        "targets": {"first_paint_under_1s": {"worst_warm_fcp_ms": worst,
                                             "worst_first_load_fcp_ms": first,
                                             "pass": worst < 1000 and first < 1000},
                    "soak_seconds": held["seconds"]},
    }, indent=2))


if __name__ == "__main__":
    main()
