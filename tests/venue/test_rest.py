"""Binance spot REST over real HTTP: paths, parameters, bodies, errors, weights and rate limits."""

from __future__ import annotations

import http.client as http_client
import itertools
import re
import time
import urllib.error
from typing import Any

import pytest

from spark_ray.venue import RateLimitConfig

from venue_helpers import http

DEC8 = re.compile(r"^\d+\.\d{8}$")


def test_ping_time_and_weight_header_on_every_answer(venue: Any) -> None:
    status, headers, body = http(f"{venue.rest_url}/api/v3/ping")
    assert (status, body) == (200, {})
    assert headers["X-MBX-USED-WEIGHT-1M"] == "1"
    status, headers, body = http(f"{venue.rest_url}/api/v3/time")
    assert abs(body["serverTime"] - time.time() * 1000) < 5_000
    assert headers["X-MBX-USED-WEIGHT-1M"] == "2"
    status, headers, body = http(f"{venue.rest_url}/api/v3/depth?symbol=NOPE")
    assert status == 400 and body == {"code": -1121, "msg": "Invalid symbol."}
    assert headers["X-MBX-USED-WEIGHT-1M"] == "7"  # depth weighs 5, even when it fails


def test_exchange_info_filters(venue: Any) -> None:
    status, headers, body = http(f"{venue.rest_url}/api/v3/exchangeInfo")
    assert status == 200 and headers["X-MBX-USED-WEIGHT-1M"] == "20"
    assert [s["symbol"] for s in body["symbols"]] == ["BTCUSDT", "ETHUSDT"]
    assert body["rateLimits"][0] == {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
                                     "intervalNum": 1, "limit": 6000}
    btc = body["symbols"][0]
    assert (btc["baseAsset"], btc["quoteAsset"], btc["status"]) == ("BTC", "USDT", "TRADING")
    filters = {f["filterType"]: f for f in btc["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert DEC8.match(filters["NOTIONAL"]["minNotional"])
    _, _, one = http(f"{venue.rest_url}/api/v3/exchangeInfo?symbol=ETHUSDT")
    assert [s["symbol"] for s in one["symbols"]] == ["ETHUSDT"]
    _, _, two = http(f'{venue.rest_url}/api/v3/exchangeInfo?symbols=["ETHUSDT","BTCUSDT"]')
    assert [s["symbol"] for s in two["symbols"]] == ["ETHUSDT", "BTCUSDT"]
    status, _, err = http(f'{venue.rest_url}/api/v3/exchangeInfo?symbols=["XXXUSDT"]')
    assert status == 400 and err["code"] == -1121


def test_klines_limits_ranges_and_unfinished_candle(venue: Any) -> None:
    url = f"{venue.rest_url}/api/v3/klines?symbol=BTCUSDT&interval=1m"
    _, headers, rows = http(url)
    assert len(rows) == 500 and headers["X-MBX-USED-WEIGHT-1M"] == "2"
    _, _, now = http(f"{venue.rest_url}/api/v3/time")
    last = rows[-1]
    assert last[0] <= now["serverTime"] <= last[6]  # the current unfinished candle is included
    assert all(b[0] - a[0] == 60_000 for a, b in itertools.pairwise(rows))
    assert all(r[6] == r[0] + 59_999 for r in rows)
    for r in rows:
        assert len(r) == 12 and all(DEC8.match(r[i]) for i in (1, 2, 3, 4, 5, 7, 9, 10))
        assert float(r[3]) <= min(float(r[1]), float(r[4])) <= float(r[2])
    _, _, capped = http(url + "&limit=5000")
    assert len(capped) in (601, 602)  # 600 history minutes + the open one(s): under the cap
    start = rows[100][0]
    _, _, page = http(url + f"&startTime={start}&limit=3")
    assert [r[0] for r in page] == [rows[100][0], rows[101][0], rows[102][0]]
    assert page == rows[100:103]
    _, _, window = http(url + f"&startTime={rows[10][0]}&endTime={rows[19][0]}")
    assert [r[0] for r in window] == [r[0] for r in rows[10:20]]
    _, _, before = http(url + f"&endTime={rows[50][0]}&limit=2")
    assert [r[0] for r in before] == [rows[49][0], rows[50][0]]
    _, _, hours = http(f"{venue.rest_url}/api/v3/klines?symbol=BTCUSDT&interval=1h&limit=3")
    assert all(r[0] % 3_600_000 == 0 and r[6] == r[0] + 3_599_999 for r in hours)
    assert sum(r[8] for r in rows if hours[1][0] <= r[0] <= hours[1][6]) == hours[1][8]


def test_klines_cap_at_1000(make_venue: Any) -> None:
    v = make_venue(history_minutes=1500)
    _, _, rows = http(f"{v.rest_url}/api/v3/klines?symbol=ETHUSDT&interval=1m&limit=5000")
    assert len(rows) == 1000


def test_trades_agg_trades_and_historical_trades(venue: Any) -> None:
    venue.wait_for_trades("BTCUSDT", 40)
    base = f"{venue.rest_url}/api/v3"
    _, h, trades = http(f"{base}/trades?symbol=BTCUSDT&limit=10")
    assert h["X-MBX-USED-WEIGHT-1M"] == "25" and len(trades) == 10
    assert list(trades[0]) == ["id", "price", "qty", "quoteQty", "time", "isBuyerMaker",
                               "isBestMatch"]
    ids = [t["id"] for t in trades]
    assert ids == list(range(ids[0], ids[0] + 10))
    _, _, aggs = http(f"{base}/aggTrades?symbol=BTCUSDT&fromId=1&limit=5")
    assert [a["a"] for a in aggs] == [1, 2, 3, 4, 5]
    assert list(aggs[0]) == ["a", "p", "q", "f", "l", "T", "m", "M"]
    assert all(b["f"] == a["l"] + 1 for a, b in itertools.pairwise(aggs))
    t0, t1 = aggs[1]["T"], aggs[3]["T"]
    _, _, by_time = http(f"{base}/aggTrades?symbol=BTCUSDT&startTime={t0}&endTime={t1}")
    assert all(t0 <= a["T"] <= t1 for a in by_time) and by_time[0]["a"] <= aggs[1]["a"]
    status, _, err = http(f"{base}/historicalTrades?symbol=BTCUSDT&fromId=3&limit=2")
    assert status == 401 and err["code"] == -2014
    _, _, hist = http(f"{base}/historicalTrades?symbol=BTCUSDT&fromId=3&limit=2",
                      headers={"X-MBX-APIKEY": "anything"})
    assert [t["id"] for t in hist] == [3, 4]
    truth = venue.ground_truth("BTCUSDT").to_pylist()
    assert float(hist[0]["price"]) == truth[2]["price"]


def test_depth_snapshot(venue: Any) -> None:
    status, h, depth = http(f"{venue.rest_url}/api/v3/depth?symbol=BTCUSDT&limit=10")
    assert status == 200 and h["X-MBX-USED-WEIGHT-1M"] == "5"
    assert list(depth) == ["lastUpdateId", "bids", "asks"]
    assert len(depth["bids"]) == len(depth["asks"]) == 10
    bids = [float(p) for p, _ in depth["bids"]]
    asks = [float(p) for p, _ in depth["asks"]]
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks) and bids[0] < asks[0]
    _, h, _ = http(f"{venue.rest_url}/api/v3/depth?symbol=BTCUSDT&limit=1000")
    assert int(h["X-MBX-USED-WEIGHT-1M"]) == 5 + 50


@pytest.mark.parametrize(
    ("query", "code", "msg"),
    [
        ("klines?interval=1m", -1102,
         "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."),
        ("klines?symbol=BTCUSDT", -1102,
         "Mandatory parameter 'interval' was not sent, was empty/null, or malformed."),
        ("klines?symbol=BTCUSDT&interval=7m", -1120, "Invalid interval."),
        ("klines?symbol=FOOBAR&interval=1m", -1121, "Invalid symbol."),
        ("klines?symbol=btcusdt&interval=1m", -1100,
         "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'."),
        ("klines?symbol=BTCUSDT&interval=1m&limit=abc", -1100,
         "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'."),
        ("klines?symbol=BTCUSDT&interval=1m&startTime=10&endTime=5", -1023,
         "Start time is greater than end time."),
        ("klines?symbol=BTCUSDT&interval=1m&foo=1", -1104,
         "Not all sent parameters were read; read '2' parameter(s) but was sent '3'."),
        ("aggTrades?symbol=BTCUSDT&fromId=1&startTime=1", -1128,
         "Combination of optional parameters invalid."),
    ],
)
def test_binance_error_objects(venue: Any, query: str, code: int, msg: str) -> None:
    status, headers, body = http(f"{venue.rest_url}/api/v3/{query}")
    assert status == 400
    assert body == {"code": code, "msg": msg}
    assert "X-MBX-USED-WEIGHT-1M" in headers


def test_unknown_path_is_404_with_weight_header(venue: Any) -> None:
    status, headers, _ = http(f"{venue.rest_url}/api/v3/nothingHere")
    assert status == 404 and "X-MBX-USED-WEIGHT-1M" in headers


def test_rate_limit_429_retry_after_then_418(make_venue: Any) -> None:
    v = make_venue(rate_limit=RateLimitConfig(weight_limit=30, window_s=30, ban_after=2,
                                              ban_s=90))
    url = f"{v.rest_url}/api/v3/exchangeInfo"  # weight 20
    assert http(url)[0] == 200
    status, headers, body = http(url)
    assert status == 429 and body["code"] == -1003
    assert headers["X-MBX-USED-WEIGHT-1M"] == "40"
    assert 1 <= int(headers["Retry-After"]) <= 30
    assert http(f"{v.rest_url}/api/v3/ping")[0] == 429
    status, headers, body = http(f"{v.rest_url}/api/v3/ping")
    assert status == 418 and body["code"] == -1003 and "banned until" in body["msg"]
    assert 85 <= int(headers["Retry-After"]) <= 90
    assert http(f"{v.rest_url}/api/v3/time")[0] == 418


def test_tickers_avg_price_and_ui_klines(venue: Any) -> None:
    base = f"{venue.rest_url}/api/v3"
    venue.wait_for_trades("BTCUSDT", 3)
    _, h, one = http(f"{base}/ticker/price?symbol=BTCUSDT")
    assert h["X-MBX-USED-WEIGHT-1M"] == "2" and set(one) == {"symbol", "price"}
    _, _, every = http(f"{base}/ticker/price")
    assert [t["symbol"] for t in every] == ["BTCUSDT", "ETHUSDT"]
    _, _, book = http(f"{base}/ticker/bookTicker?symbol=ETHUSDT")
    assert list(book) == ["symbol", "bidPrice", "bidQty", "askPrice", "askQty"]
    assert float(book["bidPrice"]) < float(book["askPrice"])
    _, _, avg = http(f"{base}/avgPrice?symbol=BTCUSDT")
    assert avg["mins"] == 5 and DEC8.match(avg["price"])
    _, _, ui = http(f"{base}/uiKlines?symbol=BTCUSDT&interval=5m&limit=2")
    assert len(ui) == 2 and ui[1][0] - ui[0][0] == 300_000


def test_speed_accelerates_market_time(make_venue: Any) -> None:
    v = make_venue(speed=100.0)
    t0 = time.monotonic()
    a = http(f"{v.rest_url}/api/v3/time")[2]["serverTime"]
    time.sleep(0.3)
    b = http(f"{v.rest_url}/api/v3/time")[2]["serverTime"]
    wall_ms = (time.monotonic() - t0) * 1000
    assert 0.7 * 100 * 300 <= b - a <= 1.1 * 100 * wall_ms


def test_rest_timeout_can_drop_the_connection(venue: Any) -> None:
    venue.inject("rest_timeout", delay_ms=200, drop_connection=True, count=1)
    with pytest.raises((ConnectionError, urllib.error.URLError, http_client.HTTPException)):
        http(f"{venue.rest_url}/api/v3/ping", timeout=5)
    assert http(f"{venue.rest_url}/api/v3/ping")[0] == 200
