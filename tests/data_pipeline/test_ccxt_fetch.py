"""History from any ccxt exchange (``data fetch --exchange ccxt:<id>``), tested with ccxt's own
Binance class pointed at the local venue: paging, month split, closed candles only, resume,
rate limits, and clear errors (exit 2 naming the field)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pyarrow.compute as pc
import pytest

from spark_ray.data.ccxt_fetch import make_client, run_ccxt_fetch
from spark_ray.errors import UserError
from spark_ray.http import RetryPolicy
from spark_ray.lake import DataStore
from spark_ray.venue import Venue
from spark_ray.venue.ratelimit import RateLimitConfig

from helpers import run_cli

FEB28 = 1_709_078_400_000  # 2024-02-28T00:00Z
MAR02 = 1_709_337_600_000  # 2024-03-02T00:00Z
NOW = MAR02 + 90_000  # market clock: 00:01:30, so the 00:01 candle is still open


@pytest.fixture(scope="module")
def venue() -> Iterator[Venue]:
    with Venue(symbols=("BTCUSDT", "ETHUSDT"), seed=9, start_time_ms=NOW, speed=0.001,
               history_minutes=3 * 1440 + 2,  # closed candles from 2024-02-28 00:00
               # 6 klines pages per 2 s (plus exchangeInfo and time): ccxt meets 429s
               rate_limit=RateLimitConfig(weight_limit=36, window_s=2.0, ban_after=1000,
                                          ban_s=1.0)) as v:
        yield v


def _truth(v: Venue, symbol: str, start: int, end: int) -> list[list[float]]:
    """The venue's own candles (REST klines, paged, limits obeyed), closed ones only."""
    rows: list[list[float]] = []
    cursor = start
    while cursor < end:
        url = (f"{v.rest_url}/api/v3/klines?symbol={symbol}&interval=1m&startTime={cursor}"
               f"&endTime={end - 1}&limit=1000")
        for _ in range(60):
            try:
                with urllib.request.urlopen(url, timeout=10) as r:
                    page = json.loads(r.read())
                break
            except urllib.error.HTTPError as exc:
                import time

                time.sleep(float(exc.headers.get("Retry-After", "1")))
        rows += [[float(x) for x in k[:6]] for k in page if int(k[0]) + 60_000 <= NOW]
        if len(page) < 1000:
            break
        cursor = int(page[-1][0]) + 60_000
    return rows


def _stored(store: DataStore, symbol: str) -> list[list[float]]:
    t = store.candles(symbol, "1m", exchange="binance")
    times = pc.cast(t.column("open_time"), "int64").to_pylist()
    cols = [t.column(c).to_pylist() for c in ("open", "high", "low", "close", "volume")]
    return [[float(times[i]), *(c[i] for c in cols)] for i in range(t.num_rows)]


def test_ccxt_history_pages_months_resumes_and_obeys_limits(venue: Venue,
                                                            tmp_path: Path) -> None:
    store = DataStore(tmp_path / "lake")
    end = MAR02 + 3_600_000  # past the venue's clock: only closed candles come back
    client = make_client("binance", venue.rest_url)
    first = run_ccxt_fetch(store, "binance", ["BTCUSDT"], "1m", FEB28, MAR02 - 86_400_000,
                           progress=False, client=client,
                           policy=RetryPolicy(max_retries=3))
    assert first.candles == 2 * 1440 and first.jobs == 1  # Feb 28 and 29 (a leap year)
    # Resume: the second run starts after the last stored candle and crosses into March.
    second = run_ccxt_fetch(store, "binance", ["BTCUSDT", "ETHUSDT"], "1m", FEB28, end,
                            progress=False, client=make_client("binance", venue.rest_url))
    assert second.resumed_from["BTCUSDT"] == "2024-02-29T23:59:00Z"
    assert second.resumed_from["ETHUSDT"] is None
    assert second.per_symbol == {"BTCUSDT": 1440 + 1, "ETHUSDT": 3 * 1440 + 1}
    assert second.jobs == 3 and second.requests >= 6 + 2  # pages of <= 1,000, markets, time
    assert first.rate_limited + second.rate_limited > 0  # 429s met and waited out
    for sym in ("BTCUSDT", "ETHUSDT"):
        truth = _truth(venue, sym, FEB28, end)
        assert _stored(store, sym) == truth  # every closed candle, exactly, and no open one
    months = {Path(f).parent.name for f in second.files}
    assert months == {"month=2024-02", "month=2024-03"}, months
    # Nothing left: a third run asks for nothing and writes nothing.
    third = run_ccxt_fetch(store, "binance", ["BTCUSDT"], "1m", FEB28, end, progress=False,
                           client=make_client("binance", venue.rest_url))
    assert third.jobs == 0 and third.candles == 0 and not third.files


def test_bad_exchange_symbol_and_interval_are_named(venue: Venue, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="--exchange: ccxt has no exchange 'binancex'"):
        make_client("binancex")
    client = make_client("binance", venue.rest_url)
    with pytest.raises(UserError, match="--symbols: binance has no spot market DOGEUSDT"):
        run_ccxt_fetch(DataStore(str(tmp_path)), "binance", ["DOGEUSDT"], "1m", FEB28, MAR02,
                       progress=False, client=client)
    with pytest.raises(UserError, match="--interval: binance offers"):
        run_ccxt_fetch(DataStore(str(tmp_path)), "binance", ["BTCUSDT"], "7m", FEB28, MAR02,
                       progress=False, client=client)
    with pytest.raises(UserError, match="--base-url"):
        make_client("binance", "not a url")


def test_cli_fetch_through_ccxt_and_its_errors(venue: Venue, tmp_path: Path) -> None:
    lake, out = tmp_path / "lake", tmp_path / "runs"
    args = ["data", "fetch", "--exchange", "ccxt:binance", "--base-url", venue.rest_url,
            "--symbols", "ETHUSDT", "--interval", "1h", "--start", "2024-03-01",
            "--end", "2024-03-02", "--store", str(lake), "--out", str(out), "--quiet"]
    res = run_cli(*args)
    assert res.code == 0, res.err
    assert "fetched 24 candles from binance (ccxt)" in res.out
    summary = json.loads(next(out.rglob("fetch-summary.json")).read_text())
    assert summary["source"] == "ccxt" and summary["candles"] == 24
    assert DataStore(lake).candles("ETHUSDT", "1h", exchange="binance").num_rows == 24
    bad = run_cli(*[a if a != "ccxt:binance" else "ccxt:nosuchexchange" for a in args])
    assert bad.code == 2 and "--exchange: ccxt has no exchange 'nosuchexchange'" in bad.err
    other = run_cli(*[a if a != "ccxt:binance" else "kraken" for a in args])
    assert other.code == 2 and "--exchange" in other.err and "ccxt:<id>" in other.err
