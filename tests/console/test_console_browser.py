"""The console in a real browser (Playwright driving Debian's Chromium) against the live
platform of conftest.py: every page renders without script or API errors, live numbers move,
the breaker is tripped and reset from the page (and not without the token), a backtest chart
and a 1,000-trial leaderboard open, a passed review is approved, a tampered bundle is named.
Screenshots of every page land in the test's folder (the demo puts its own in its bundle)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console_helpers import TOKEN, call

pytestmark = pytest.mark.timeout(600)
PAGES = ["/", "/streams", "/trading", "/research", "/data", "/alerts", "/chaos"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    from spark_ray.app.demo.console import chromium

    exe = chromium()
    if exe is None:
        pytest.fail("chromium is not installed: apt-get install -y chromium (make test does)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = ctx.new_page()
    pg.errors = []  # type: ignore[attr-defined]
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))  # type: ignore[attr-defined]
    pg.on("console", lambda m: pg.errors.append(m.text)  # type: ignore[attr-defined]
          if m.type == "error" else None)
    yield pg
    ctx.close()


def _login(page: Any, token: str = TOKEN) -> None:
    page.fill("#who", "alice")
    page.fill("#token", token)
    page.fill("#reason", "browser test")


def test_every_page_renders_its_data_without_errors(platform: Any, page: Any,
                                                    tmp_path: Path) -> None:
    """(How fast they paint is measured by ``make bench``'s console benchmark.)"""
    for path in PAGES:
        page.goto(platform.url + path, wait_until="load")
        page.wait_for_function("document.querySelector('#updated').textContent.trim() !== '—'",
                               timeout=15_000)
        assert page.locator("#api-error").inner_text().strip() == "", path
        page.screenshot(path=str(tmp_path / f"console{path.replace('/', '-') or '-'}.png"))
    assert page.errors == [], page.errors  # type: ignore[attr-defined]
    assert len(list(tmp_path.glob("*.png"))) == len(PAGES)


def test_overview_and_streams_show_live_numbers(platform: Any, page: Any) -> None:
    page.goto(platform.url + "/")
    page.wait_for_selector('[data-testid="service-fabric:binance"]')
    assert page.locator(f'[data-testid="service-{platform.executor}"]').count() == 1
    page.goto(platform.url + "/streams")
    cell = page.locator('[data-testid="stream-binance-BTCUSDT"] [data-field="stored"]')
    cell.wait_for()
    first = cell.get_attribute("data-value") or cell.inner_text()
    page.wait_for_function(
        "([sel, v]) => { const c = document.querySelector(sel);"
        " return c && (c.dataset.value ?? c.textContent) !== v; }",
        arg=['[data-testid="stream-binance-BTCUSDT"] [data-field="stored"]', first],
        timeout=10_000)
    assert "live" in page.locator('[data-testid="streams-mode"]').inner_text()


def _global_state(platform: Any) -> str:
    d = call(platform.url + "/api/trading")[1]
    (br,) = [b for b in d["breakers"] if b["name"] == platform.breaker]
    return {s["scope"]: s["state"] for s in br["scopes"]}["global"]


def test_trip_and_reset_from_the_page_need_the_token(platform: Any, page: Any) -> None:
    page.goto(platform.url + "/trading")
    trip = page.locator('[data-testid="trip-global"]').first
    trip.wait_for()
    _login(page, "not-the-token")
    trip.click()
    page.wait_for_function("document.querySelector('#action-result').textContent"
                           ".includes('401')", timeout=10_000)
    assert _global_state(platform) == "ARMED"
    _login(page)
    trip.click()
    page.wait_for_function("document.querySelector('#action-result').textContent"
                           ".startsWith('200')", timeout=10_000)
    assert _global_state(platform) == "TRIPPED"
    page.wait_for_selector('li[data-testid="scope-global"][data-state="TRIPPED"]')
    page.locator('[data-testid="reset-global"]').first.click()
    page.wait_for_selector('li[data-testid="scope-global"][data-state="ARMED"]')
    assert _global_state(platform) == "ARMED"
    journal = (platform.runs / "console-journal.jsonl").read_text()
    assert '"who": "alice"' in journal and TOKEN not in journal


def test_backtest_chart_and_leaderboard_open(platform: Any, page: Any) -> None:
    page.goto(platform.url + f"/research#run={platform.ids['backtest']}")
    chart = page.locator('[data-testid="backtest-chart"]')
    chart.locator("canvas").first.wait_for()
    assert chart.get_attribute("data-series") == "4"  # price, equity, entries, exits
    assert int(chart.get_attribute("data-points") or 0) > 1000
    page.goto(platform.url + f"/research#run={platform.ids['big_leaderboard']}")
    page.wait_for_function("([id]) => document.querySelector('[data-testid=\"run-id\"]')"
                           "?.textContent.includes(id)", arg=[platform.ids["big_leaderboard"]])
    rows = page.locator('[data-testid="leaderboard"] tbody tr')
    rows.first.wait_for()
    assert rows.count() == 100
    # every trial's deflated Sharpe beside its raw one, and the sweep's PBO
    head = page.locator('[data-testid="leaderboard"] thead').inner_text()
    assert "OOS SR" in head and "DSR" in head
    assert page.locator('[data-testid="pbo"]').inner_text() == "0.25"
    assert rows.first.locator('[data-col="dsr"]').inner_text() != "—"
    page.locator('[data-testid="leaderboard-show-all"]').click()
    page.wait_for_function("document.querySelectorAll('[data-testid=\"leaderboard\"] tbody tr')"
                           ".length === 1000", timeout=10_000)
    assert page.errors == [], page.errors  # type: ignore[attr-defined]


def test_approve_a_passed_review_not_a_failed_one(platform: Any, page: Any) -> None:
    page.goto(platform.url + f"/research#run={platform.ids['review_fail']}")
    page.locator('[data-testid="approve"]').wait_for()
    assert page.locator('[data-testid="approve"]').is_disabled()
    page.goto(platform.url + f"/research#run={platform.ids['review_pass']}")
    # same document, another run (a hash change): wait until the page shows that run
    page.wait_for_function("([id]) => document.querySelector('[data-testid=\"run-id\"]')"
                           "?.textContent.includes(id)", arg=[platform.ids["review_pass"]])
    _login(page)
    button = page.locator('[data-testid="approve"]')
    button.wait_for()
    assert button.is_enabled()
    button.click()
    page.locator('[data-testid="approved"]').wait_for(timeout=10_000)
    approved = json.loads((platform.runs / platform.ids["review_pass"] / "approved.json")
                          .read_text())
    assert approved["approved_by"] == "alice"


def test_verify_names_the_tampered_file(platform: Any, page: Any) -> None:
    bundle = platform.ids["evidence"]
    target = platform.runs / bundle / "summary.json"
    original = target.read_text()
    page.goto(platform.url + "/chaos")
    page.locator(f'[data-testid="verify-{bundle}"]').click()
    result = page.locator(f'[data-testid="verify-result-{bundle}"]')
    page.wait_for_function(f"document.querySelector('[data-testid=\"verify-result-{bundle}\"]')"
                           "?.textContent.startsWith('OK')", timeout=10_000)
    target.write_text('{"ok": false}\n')
    try:
        page.locator(f'[data-testid="verify-{bundle}"]').click()
        page.wait_for_function(
            f"document.querySelector('[data-testid=\"verify-result-{bundle}\"]')"
            "?.textContent.startsWith('FAILED')", timeout=10_000)
        assert "summary.json" in result.inner_text()
    finally:
        target.write_text(original)


def test_kill_switch_from_the_page_halts_the_executor(platform: Any, page: Any) -> None:
    """Last in this module: the executor stays halted for good."""
    page.goto(platform.url + "/trading")
    kill = page.locator(f'[data-testid="kill-{platform.executor}"]')
    kill.wait_for()
    kill.click()  # no token yet
    page.wait_for_function("document.querySelector('#action-result').textContent"
                           ".includes('401')", timeout=10_000)
    status = {e["name"]: e for e in call(platform.url + "/api/trading")[1]["executors"]}
    assert not status[platform.executor]["halted"]
    _login(page)
    kill.click()
    page.wait_for_function("document.querySelector('#action-result').textContent"
                           ".startsWith('200')", timeout=20_000)
    status = {e["name"]: e for e in call(platform.url + "/api/trading")[1]["executors"]}
    assert "console:alice" in str(status[platform.executor]["halted"])
    entry = [json.loads(x) for x in (platform.runs / "console-journal.jsonl").read_text()
             .splitlines()][-1]
    assert entry["action"] == "executor-kill" and entry["target"]["executor"] == platform.executor
