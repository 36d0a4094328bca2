"""Demo: the operator console on the demo's Ray (``spark-ray console``'s own code), and
screenshots of every page for the evidence bundle.

The console is deployed when the fabric comes up, so an operator can watch the rest of the demo
in a browser; the live pages (overview, streams, trading) are photographed while the trade
stage's executor runs, the others (research, data, alerts, chaos) at the end, when the run
folder holds the backtest, the leaderboard, the review and the canary table. Screenshots need
Playwright and Chromium (``make demo`` installs both); without them the demo says so and goes on.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LIVE_PAGES = ("/", "/streams", "/trading")
RUN_PAGES = ("/research", "/data", "/alerts", "/chaos")


def start(runs: Path, store: str, run_id: str, log: Any = print) -> str:
    """Deploy the console (port 3003, or a free one when taken); return its URL."""
    from spark_ray.app import console_service
    from spark_ray.app.cli.console import settings_for
    from spark_ray.observe.prom import free_port, port_free

    port = (console_service.DEFAULT_PORT if port_free(console_service.DEFAULT_PORT)
            else free_port())
    cfg = settings_for(str(runs), store, None, None)
    url = console_service.up("127.0.0.1", port, cfg, lambda line: None)
    log(f"console: {url}  (research: {url}/research#run={run_id}; mutations "
        f"{'need $SPARK_RAY_CONSOLE_TOKEN' if cfg['token_sha256'] else 'off: no token set'})")
    return url


def chromium() -> str | None:
    """Debian's Chromium (on PATH or in /usr/bin), as the Prometheus binaries are found."""
    from spark_ray.observe.prom import find_binary

    return find_binary("chromium")


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


# Breaker rules for a paper executor that churns on purpose (1 s bars at 10x): no trip on a
# losing streak or on the order rate of ten bars a second.
QUIET_RULES: dict[str, Any] = {"cooldown_s": 3600, "consecutive_losses": {"enabled": False},
                               "order_rate": {"limit": 100_000},
                               "daily_loss": {"limit": 0.5}, "max_drawdown": {"limit": 0.5}}


@contextlib.contextmanager
def paper_platform(root: Path, symbol: str = "BTCUSDT") -> Iterator[dict[str, Any]]:
    """What the console watches, running: the venue, the long-lived fabric (``streams up``'s
    code) and a paper executor joined to it with its breaker, trading a fast SMA cross under an
    approval the chaos canary's way (``synthetic_approval``). Expects Ray connected; everything
    is stopped on exit. Yields the names and handles (``live``, ``run``, ``breaker``,
    ``executor``)."""
    import ray

    from spark_ray.app import fabric_service
    from spark_ray.app.demo import live as live_platform
    from spark_ray.app.trading import TradingRun
    from spark_ray.breaker.models import BreakerConfig
    from spark_ray.chaos.approval import load_synthetic
    from spark_ray.execution.executor import ExecutorConfig
    from spark_ray.execution.spec import ExecutorSpec

    tag = uuid.uuid4().hex[:6]
    breaker, executor = f"breaker:console-{tag}", f"executor:console-{tag}"
    live = live_platform.start(root / "streams-lake", symbols=(symbol,), breaker=breaker,
                               cross_symbols=(), log=lambda line: None)
    run: Any = None
    try:
        live.resume()
        live.wait_fresh([symbol])
        shared = fabric_service.join(live_platform.EXCHANGE, [symbol])
        if shared is None:
            raise RuntimeError("paper platform: the fabric did not come up")
        ap = load_synthetic(root / "params", "sma_cross", {"fast": 2, "slow": 3}, "1s")
        spec = ExecutorSpec(
            config=ExecutorConfig(name=f"console-{tag}", symbols=(symbol,), interval="1s",
                                  cash=10_000.0, warmup_bars=30),
            strategy=ap.strategy, params=ap.params,
            journal_path=str(root / "executor-journal.jsonl"), approved_path=ap.path,
            trusted_keys=ap.trusted_keys,
            approval=ap.approval, rest_url=live.venue.rest_url, ws_url=live.venue.ws_url,
            breaker_name=breaker, control_port=0)
        run = TradingRun(spec, executor, shared.cfg, shared=shared,
                         breaker_config=BreakerConfig.model_validate(QUIET_RULES),
                         breaker_journal=str(root / "breaker-journal.jsonl")).start()
        yield {"live": live, "run": run, "breaker": breaker, "executor": executor}
    finally:
        if run is not None:
            with contextlib.suppress(Exception):
                run.stop(collect=False)
            if run.breaker is not None:
                with contextlib.suppress(Exception):
                    ray.kill(run.breaker, no_restart=True)
        live.kill()
