"""REST kline fetch against the local venue simulator: paging, month split, resume, rate limits,
transient errors, and the still-open candle never stored."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from spark_ray.app.etl import FetchError, run_fetch
from spark_ray.app.session import Session
from spark_ray.http import RetryPolicy
from spark_ray.lake import DataStore
from spark_ray.venue import Venue
from spark_ray.venue.ratelimit import RateLimitConfig

from helpers import cli_env, run_cli

FEB20 = 1_708_387_200_000  # 2024-02-20T00:00Z
MAR02 = 1_709_337_600_000  # 2024-03-02T00:00Z
NOW = MAR02 + 90_000  # market clock: 00:01:30, so the 00:01 candle is still open


@pytest.fixture(scope="module")
def venue() -> Iterator[Venue]:
    with Venue(symbols=("BTCUSDT", "ETHUSDT"), seed=5, start_time_ms=NOW, speed=0.001,
               history_minutes=11 * 1440 + 1,  # closed candles from 2024-02-20 00:00
               # 12 klines pages per 3 s: the 34 pages of the first test hit it even when a
               # busy machine slows the fetch down (a 1 s window did not, under load)
               rate_limit=RateLimitConfig(weight_limit=24, window_s=3.0, ban_after=3,
                                          ban_s=2.0)) as v:
        yield v


def _venue_klines(v: Venue, symbol: str, start: int, end: int) -> list[list[object]]:
    rows: list[list[object]] = []
    cursor = start
    while cursor < end:
        url = (f"{v.rest_url}/api/v3/klines?symbol={symbol}&interval=1m&startTime={cursor}"
               f"&endTime={end - 1}&limit=1000")
        for _ in range(50):
            try:
                with urllib.request.urlopen(url, timeout=10) as r:
                    page = json.loads(r.read())
                break
            except urllib.error.HTTPError as exc:  # our own reference reads obey limits too
                import time

                time.sleep(float(exc.headers.get("Retry-After", "1")))
        rows.extend(page)
        if len(page) < 1000:
            break
        cursor = int(page[-1][0]) + 60_000
    return rows


def test_fetch_pages_months_excludes_open_candle_and_obeys_limits(
        ray_session: Session, venue: Venue, tmp_path: Path) -> None:
    store = DataStore(tmp_path / "lake")
    summary = run_fetch(store, ["BTCUSDT", "ETHUSDT"], "1m", FEB20, MAR02 + 3_600_000,
                        base_url=venue.rest_url, progress=False,
                        policy=RetryPolicy(base_delay_s=0.05))
    # 2024-02-20 .. 2024-03-02 00:00 closed: 11 days; 00:00 closed too, 00:01 still open.
    expected = 11 * 1440 + 1
    assert summary.per_symbol == {"BTCUSDT": expected, "ETHUSDT": expected}
    assert summary.jobs == 4  # 2 symbols x (Feb, Mar)
    assert summary.rate_limited > 0, "the venue's tiny weight budget must have been hit"
    for symbol in ("BTCUSDT", "ETHUSDT"):
        t = store.candles(symbol, "1m")
        assert t.num_rows == expected
        assert t.column("open_time")[-1].as_py().isoformat() == "2024-03-02T00:00:00+00:00"
        truth = _venue_klines(venue, symbol, FEB20, MAR02 + 60_000)
        assert len(truth) == expected
        assert t.column("close").to_pylist() == [float(r[4]) for r in truth]
        assert t.column("volume").to_pylist() == [float(r[5]) for r in truth]
        assert t.column("trades").to_pylist() == [int(r[8]) for r in truth]
    assert store.months("candles", "binance", "BTCUSDT", "1m") == ["2024-02", "2024-03"]


def test_fetch_resumes_where_the_lake_ends(ray_session: Session, venue: Venue,
                                           tmp_path: Path) -> None:
    store = DataStore(tmp_path / "lake")
    first = run_fetch(store, ["BTCUSDT"], "1m", FEB20, FEB20 + 5 * 86_400_000,
                      base_url=venue.rest_url, progress=False)
    assert first.candles == 5 * 1440 and first.resumed_from == {"BTCUSDT": None}
    again = run_fetch(store, ["BTCUSDT"], "1m", FEB20, FEB20 + 5 * 86_400_000,
                      base_url=venue.rest_url, progress=False)
    assert again.candles == 0 and again.requests == 0 and again.jobs == 0
    more = run_fetch(store, ["BTCUSDT"], "1m", FEB20, FEB20 + 6 * 86_400_000,
                     base_url=venue.rest_url, progress=False)
    assert more.candles == 1440
    assert more.resumed_from["BTCUSDT"] == "2024-02-24T23:59:00Z"
    assert store.candles("BTCUSDT", "1m").num_rows == 6 * 1440


def test_fetch_retries_transient_errors(ray_session: Session, venue: Venue,
                                        tmp_path: Path) -> None:
    fid = venue.inject("rest_error", status=503, count=3, path="/api/v3/klines")
    try:
        store = DataStore(tmp_path / "lake")
        summary = run_fetch(store, ["ETHUSDT"], "1m", FEB20, FEB20 + 86_400_000,
                            base_url=venue.rest_url, progress=False,
                            policy=RetryPolicy(base_delay_s=0.05))
    finally:
        venue.clear_faults(fid)
    assert summary.retries == 3
    assert summary.candles == 1440


def test_fetch_gives_up_after_max_retries(ray_session: Session, venue: Venue,
                                          tmp_path: Path) -> None:
    fid = venue.inject("rest_error", status=502, path="/api/v3/klines")
    try:
        with pytest.raises(FetchError, match="gave up after 2 retries"):
            run_fetch(DataStore(tmp_path / "lake"), ["ETHUSDT"], "1m", FEB20,
                      FEB20 + 86_400_000, base_url=venue.rest_url, progress=False,
                      policy=RetryPolicy(max_retries=2, base_delay_s=0.01))
    finally:
        venue.clear_faults(fid)


def test_fetch_cli_and_bad_symbol(ray_session: Session, venue: Venue, tmp_path: Path) -> None:
    env = cli_env()
    args = ["data", "fetch", "--store", str(tmp_path / "lake"), "--out", str(tmp_path / "runs"),
            "--base-url", venue.rest_url, "--interval", "1h", "--start", "2024-02-25",
            "--end", "2024-02-27", "--address", ray_session.address, "--quiet"]
    ok = run_cli(*args, "--symbols", "BTCUSDT", env=env, cwd=tmp_path)
    assert ok.code == 0, ok.err
    assert "fetched 48 candles" in ok.out
    (run,) = (tmp_path / "runs").iterdir()
    assert json.loads((run / "fetch-summary.json").read_text())["candles"] == 48
    bad = run_cli(*args, "--symbols", "NOPEUSDT", env=env, cwd=tmp_path)
    assert bad.code == 1
    assert "Invalid symbol" in bad.err and "Traceback" not in bad.err
    usage = run_cli(*args, "--symbols", "btc usdt", env=env, cwd=tmp_path)
    assert usage.code == 2 and "--symbols" in usage.err
