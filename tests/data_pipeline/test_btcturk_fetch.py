"""Candle history from BTCTurk's graph API (``data fetch --exchange btcturk``), against the venue
serving BTCTurk's API on loopback: pages, months, resume, pacing, quality and the CLI's errors."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pyarrow.compute as pc
import pytest

from spark_ray.adapters.registry import get_adapter
from spark_ray.data.fetch import FetchError, FetchSummary
from spark_ray.data.paged_fetch import run_paged_fetch
from spark_ray.data.quality import check_store
from spark_ray.errors import UserError
from spark_ray.http import RetryPolicy
from spark_ray.lake import DataStore
from spark_ray.venue import Venue

from helpers import run_cli

FEB28 = 1_709_078_400_000  # 2024-02-28T00:00Z
MAR02 = 1_709_337_600_000  # 2024-03-02T00:00Z
NOW = MAR02 + 90_000  # market clock: 00:01:30, so the 00:01 candle is still open
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def venue() -> Iterator[Venue]:
    with Venue(symbols=("BTCTRY", "ETHTRY"), seed=9, start_time_ms=NOW, speed=0.001,
               history_minutes=3 * 1440 + 2) as v:  # closed candles from 2024-02-28 00:00
        yield v


def _truth(v: Venue, symbol: str, interval: str, start: int, end: int) -> list[list[float]]:
    """The venue's own closed candles, read through its Binance klines (the same engine)."""
    step = {"1m": 60_000, "1h": 3_600_000}[interval]
    rows: list[list[float]] = []
    cursor = start
    while cursor < end:
        url = (f"{v.rest_url}/api/v3/klines?symbol={symbol}&interval={interval}"
               f"&startTime={cursor}&endTime={end - 1}&limit=1000")
        with _OPENER.open(url, timeout=10) as r:
            page = json.loads(r.read())
        rows += [[float(x) for x in k[:6]] for k in page if int(k[0]) + step <= NOW]
        if len(page) < 1000:
            break
        cursor = int(page[-1][0]) + step
    return rows


def _stored(store: DataStore, symbol: str, interval: str) -> list[list[float]]:
    t = store.candles(symbol, interval, exchange="btcturk")
    times = pc.cast(t.column("open_time"), "int64").to_pylist()
    cols = [t.column(c).to_pylist() for c in ("open", "high", "low", "close", "volume")]
    return [[float(times[i]), *(c[i] for c in cols)] for i in range(t.num_rows)]


def test_pages_months_resume_and_pace(venue: Venue, tmp_path: Path) -> None:
    adapter = get_adapter("btcturk")
    store = DataStore(str(tmp_path))

    def fetch(spacing: float, start: int = FEB28) -> tuple[FetchSummary, float]:
        t0 = time.monotonic()
        s = asyncio.run(run_paged_fetch(store, "btcturk", adapter.kline_history(
            venue.btcturk_rest_url), ["BTCTRY"], "1m", start, MAR02 + 86_400_000,
            progress=False, spacing_s=spacing))
        return s, time.monotonic() - t0

    # 2024-02-29, 03-01 and 03-02 00:00 of 1m candles (00:01 is still open): 2 month jobs
    first, _ = fetch(0.0, start=FEB28 + 86_400_000)
    assert first.jobs == 2 and first.candles == 2 * 1440 + 1
    # A second run resumes after the last stored candle (as the Binance ETL's plan does):
    # nothing is fetched again, only the pairs and the clock are asked for, 0.25 s apart.
    again, took = fetch(0.25)
    assert again.jobs == 0 and again.candles == 0 and again.requests == 2
    assert took >= 0.25
    assert _stored(store, "BTCTRY", "1m") == _truth(venue, "BTCTRY", "1m",
                                                   FEB28 + 86_400_000, MAR02 + 60_000)

    fresh = DataStore(str(tmp_path / "paced"))
    t0 = time.monotonic()
    s = asyncio.run(run_paged_fetch(fresh, "btcturk", adapter.kline_history(
        venue.btcturk_rest_url), ["ETHTRY"], "1m", FEB28, MAR02, progress=False,
        spacing_s=0.2))
    took = time.monotonic() - t0
    # Feb 28-29: 2,880 bars = 3 pages; Mar 1: 1,440 bars = 2 pages; + pairs + clock
    assert s.requests == 7 and s.candles == 3 * 1440 and s.jobs == 2
    assert took >= 6 * 0.2 and s.limiter == {"request_spacing_s": 0.2}
    assert _stored(fresh, "ETHTRY", "1m") == _truth(venue, "ETHTRY", "1m", FEB28, MAR02)
    rep = {r.symbol: r for r in check_store(fresh)}["ETHTRY"]
    assert rep.missing == 0 and rep.duplicates == 0 and rep.present == 3 * 1440

    with pytest.raises(UserError, match="--interval: BTCTurk offers 1m, 15m, 30m, 1h, 4h, 1d"):
        asyncio.run(run_paged_fetch(fresh, "btcturk", adapter.kline_history(
            venue.btcturk_rest_url), ["ETHTRY"], "5m", FEB28, MAR02, progress=False,
            title="BTCTurk"))
    with pytest.raises(UserError, match="--symbols: btcturk has no pair DOGETRY"):
        asyncio.run(run_paged_fetch(fresh, "btcturk", adapter.kline_history(
            venue.btcturk_rest_url), ["DOGETRY"], "1m", FEB28, MAR02, progress=False,
            spacing_s=0.0))


def test_cli_fetch_from_btcturk_resumes_and_names_bad_flags(venue: Venue,
                                                             tmp_path: Path) -> None:
    lake, out = tmp_path / "lake", tmp_path / "runs"
    args = ["data", "fetch", "--exchange", "btcturk", "--base-url", venue.btcturk_rest_url,
            "--symbols", "BTC_TRY", "--interval", "1h", "--start", "2024-02-28",
            "--end", "2024-03-02", "--store", str(lake), "--out", str(out), "--quiet"]
    res = run_cli(*args)
    assert res.code == 0, res.err
    assert "fetched 72 candles from BTCTurk in 2 symbol-month jobs" in res.out
    summary = json.loads(next(out.rglob("fetch-summary.json")).read_text())
    assert summary["exchange"] == "btcturk" and summary["candles"] == 72
    assert _stored(DataStore(lake), "BTCTRY", "1h") == _truth(venue, "BTCTRY", "1h", FEB28,
                                                             MAR02)
    again = run_cli(*args)
    assert again.code == 0, again.err
    assert "fetched 0 candles from BTCTurk in 0 symbol-month jobs" in again.out
    assert "BTCTRY               0 candles  (resumed after 2024-03-01T23:00:00Z)" in again.out
    check = run_cli("data", "check", "--store", str(lake), "--out", str(out))
    assert check.code == 0 and "btcturk/BTCTRY/1h" in check.out

    def with_(flag: str, value: str) -> list[str]:
        i = args.index(flag)
        return [*args[:i + 1], value, *args[i + 2:]]

    bad = run_cli(*with_("--interval", "5m"))
    assert bad.code == 2 and "--interval: BTCTurk offers 1m, 15m, 30m, 1h, 4h, 1d, 1w" in bad.err
    bad = run_cli(*with_("--symbols", "DOGE_TRY"))
    assert bad.code == 2 and "--symbols: BTCTurk has no pair DOGETRY" in bad.err
    bad = run_cli(*with_("--start", "yesterday"))
    assert bad.code == 2 and "--start" in bad.err
    bad = run_cli(*with_("--exchange", "nosuch"))
    assert bad.code == 2 and "--exchange" in bad.err and "btcturk" in bad.err
    bad = run_cli(*with_("--base-url", "not a url"))
    assert bad.code == 2 and "--base-url" in bad.err


def test_transient_5xx_are_retried_and_a_lasting_one_gives_up(venue: Venue,
                                                             tmp_path: Path) -> None:
    adapter = get_adapter("btcturk")
    policy = RetryPolicy(max_retries=3, base_delay_s=0.01, max_delay_s=0.05)
    fid = venue.inject("rest_error", status=503, count=2, path="/btcturk/v1/klines",
                       symbol="BTCTRY")
    try:
        store = DataStore(str(tmp_path / "a"))
        s = asyncio.run(run_paged_fetch(store, "btcturk", adapter.kline_history(
            venue.btcturk_rest_url), ["BTCTRY"], "1h", FEB28, MAR02, progress=False,
            spacing_s=0.0, policy=policy))
    finally:
        venue.clear_faults(fid)
    assert s.retries == 2 and s.candles == 72
    assert _stored(store, "BTCTRY", "1h") == _truth(venue, "BTCTRY", "1h", FEB28, MAR02)
    fid = venue.inject("rest_error", status=500, path="/btcturk/v1/klines")
    try:
        with pytest.raises(FetchError, match="gave up after 3 retries"):
            asyncio.run(run_paged_fetch(DataStore(str(tmp_path / "b")), "btcturk",
                                        adapter.kline_history(venue.btcturk_rest_url),
                                        ["BTCTRY"], "1h", FEB28, MAR02, progress=False,
                                        spacing_s=0.0, policy=policy))
    finally:
        venue.clear_faults(fid)
