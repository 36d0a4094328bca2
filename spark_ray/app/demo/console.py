"""Demo: the operator console on the demo's Ray (``spark-ray console``'s own code), and
screenshots of every page for the evidence bundle.

The console is deployed when the fabric comes up, so an operator can watch the rest of the demo
in a browser; the live pages (overview, streams, trading) are photographed while the trade
stage's executor runs, the others (research, data, alerts, chaos) at the end, when the run
folder holds the backtest, the leaderboard, the review and the canary table. Screenshots need
Playwright and Chromium (``make demo`` installs both); without them the demo says so and goes on.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

LIVE_PAGES = ("/", "/streams", "/trading")
RUN_PAGES = ("/research", "/data", "/alerts", "/chaos")
DEFAULT_PORT = 3003


def start(runs: Path, store: str, run_id: str, log: Any = print) -> str:
    """Deploy the console (port 3003, or a free one when taken); return its URL."""
    from spark_ray.app import console_service
    from spark_ray.app.cli.console import settings_for
    from spark_ray.observe.prom import free_port, port_free

    port = DEFAULT_PORT if port_free(DEFAULT_PORT) else free_port()
    cfg = settings_for(str(runs), store, None, None)
    url = console_service.up("127.0.0.1", port, cfg, lambda line: None)
    log(f"console: {url}  (research: {url}/research#run={run_id}; mutations "
        f"{'need $SPARK_RAY_CONSOLE_TOKEN' if cfg['token_sha256'] else 'off: no token set'})")
    return url


def chromium() -> str | None:
    return shutil.which("chromium") or (
        "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)


def screenshots(url: str, pages: tuple[str, ...], out: Path, run_id: str | None = None,
                settle_s: float = 1.5) -> dict[str, Any]:
    """One PNG per page in ``out`` (``console-<page>.png``), each after the page has rendered
    and ``settle_s`` of live updates; research opens ``run_id``."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {"skipped": "playwright is not installed (pip install playwright)"}
    exe = chromium()
    if exe is None:
        return {"skipped": "chromium is not installed (apt-get install -y chromium)"}
    out.mkdir(parents=True, exist_ok=True)
    shots: list[str] = []
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("pageerror", lambda e: errors.append(str(e)))
            for path in pages:
                target = url + path + (f"#run={run_id}" if path == "/research" and run_id
                                       else "")
                page.goto(target, wait_until="load")
                page.wait_for_function(
                    "document.querySelector('#updated')?.textContent.trim() !== '—'",
                    timeout=15_000)
                page.wait_for_timeout(int(settle_s * 1000))
                name = "console-" + (path.strip("/") or "overview") + ".png"
                page.screenshot(path=str(out / name), full_page=True)
                shots.append(name)
        finally:
            browser.close()
    return {"screenshots": shots, "page_errors": errors}
