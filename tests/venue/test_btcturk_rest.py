"""BTCTurk's public REST and graph API on the venue, as ccxt's ``btcturk`` class uses them.

ccxt is pointed at the venue with only its base URLs changed; what it reads must agree with the
venue's ground truth (the trade ledger, the book, the 1m candles Binance's REST also serves),
since every protocol of the venue reads the same engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import ccxt
import pytest

from spark_ray.venue import Venue

from venue_helpers import http

SYMBOLS = ("BTCTRY", "ETHTRY")


@pytest.fixture(scope="module")
def v() -> Iterator[Venue]:
    with Venue(symbols=SYMBOLS, seed=11, trades_per_second=40, history_minutes=600) as venue:
        venue.wait_for_trades("BTCTRY", 120)
        venue.pause()  # truth at rest: every answer below reads the same market
        yield venue


def _ccxt(v: Venue) -> Any:
    ex = ccxt.btcturk()
    ex.urls["api"] = {"public": v.btcturk_rest_url + "/api/v2",
                      "private": v.btcturk_rest_url + "/api/v1",
                      "graph": v.btcturk_graph_url + "/v1"}
    return ex


def test_ccxt_markets_tickers_book_and_trades_match_the_venue(v: Venue) -> None:
    ex = _ccxt(v)
    markets = ex.load_markets()
    assert set(markets) == {"BTC/TRY", "ETH/TRY"}
    btc = markets["BTC/TRY"]
    assert btc["id"] == "BTCTRY" and btc["spot"] and btc["active"]
    assert btc["precision"]["amount"] == 1e-05 and btc["precision"]["price"] == 1
    assert btc["limits"]["cost"]["min"] == 10

    # ticker: the same 24 h statistics Binance's ticker/24hr computes from the same candles
    _, _, day = http(f"{v.rest_url}/api/v3/ticker/24hr?symbol=BTCTRY")
    t = ex.fetch_ticker("BTC/TRY")
    assert t["last"] == float(day["lastPrice"]) and t["open"] == float(day["openPrice"])
    assert t["high"] == float(day["highPrice"]) and t["low"] == float(day["lowPrice"])
    assert t["bid"] == float(day["bidPrice"]) and t["ask"] == float(day["askPrice"])
    assert t["baseVolume"] == pytest.approx(float(day["volume"]))
    assert t["bid"] < t["ask"] and t["low"] <= t["last"] <= t["high"]
    assert set(ex.fetch_tickers()) == {"BTC/TRY", "ETH/TRY"}

    # order book: Binance's depth snapshot of the same book (ccxt sends no limit: 100 levels)
    book = ex.fetch_order_book("BTC/TRY")
    _, _, depth = http(f"{v.rest_url}/api/v3/depth?symbol=BTCTRY&limit=100")
    assert len(book["bids"]) == 100
    assert book["bids"] == [[float(p), float(q)] for p, q in depth["bids"]]
    assert book["asks"] == [[float(p), float(q)] for p, q in depth["asks"]]

    # trades: the latest 50 of the ledger, ids, prices, sizes and taker sides
    truth = v.ground_truth("BTCTRY").to_pylist()[-50:]
    trades = ex.fetch_trades("BTC/TRY", limit=50)
    assert [int(x["id"]) for x in trades] == [r["trade_id"] for r in truth]
    assert [x["price"] for x in trades] == [r["price"] for r in truth]
    assert [x["amount"] for x in trades] == pytest.approx([r["qty"] for r in truth])
    assert [x["side"] for x in trades] == ["sell" if r["is_buyer_maker"] else "buy"
                                           for r in truth]
    assert [x["timestamp"] for x in trades] == [
        int(r["trade_time"].timestamp() * 1000) for r in truth]


def test_ccxt_ohlcv_matches_the_venue_candles(v: Venue) -> None:
    ex = _ccxt(v)
    ex.load_markets()
    _, _, binance = http(f"{v.rest_url}/api/v3/klines?symbol=BTCTRY&interval=1h&limit=6")
    since = int(binance[0][0])
    candles = ex.fetch_ohlcv("BTC/TRY", "1h", since=since, limit=6)
    assert candles == [[int(k[0]), *(float(x) for x in k[1:6])] for k in binance]
    minutes = ex.fetch_ohlcv("BTC/TRY", "1m", since=since, limit=30)
    assert len(minutes) == 30 and minutes[1][0] - minutes[0][0] == 60_000
    assert all(c[2] >= max(c[1], c[4]) >= min(c[1], c[4]) >= c[3] for c in minutes)


def test_pairs_in_both_spellings_and_btcturk_errors(v: Venue) -> None:
    base = v.btcturk_rest_url
    s1, _, a = http(f"{base}/api/v2/orderbook?pairSymbol=BTC_TRY&limit=5")
    s2, _, b = http(f"{base}/api/v2/orderbook?pairSymbol=BTCTRY&limit=5")
    assert s1 == s2 == 200 and a == b and len(a["data"]["bids"]) == 5
    status, _, body = http(f"{base}/api/v2/trades?pairSymbol=NOPETRY")
    assert status == 404 and body["success"] is False and "NOPETRY" in body["message"]
    for bad in ("limit=0", "limit=abc", "limit=-3"):
        status, _, body = http(f"{base}/api/v2/orderbook?pairSymbol=BTCTRY&{bad}")
        assert status == 400 and body["success"] is False and "limit" in body["message"]
    status, _, body = http(f"{base}/api/v2/trades?pairSymbol=BTCTRY&last=500")
    assert status == 200 and len(body["data"]) == 50  # BTCTurk caps last at 50
    status, _, body = http(f"{base}/api/v2/orderbook")
    assert status == 400 and "pairSymbol" in body["message"]
    status, _, body = http(f"{v.btcturk_graph_url}/v1/klines/history?symbol=BTCTRY"
                           "&resolution=5&from=0&to=1")
    assert status == 400 and body["s"] == "error" and "resolution" in body["errmsg"]
    status, _, body = http(f"{v.btcturk_graph_url}/v1/klines/history?symbol=BTCTRY"
                           "&resolution=60&from=100&to=200")
    assert status == 200 and body == {"s": "no_data"}
    status, _, body = http(f"{base}/api/v2/ticker", method="POST")
    assert status == 405
    with pytest.raises(ccxt.ExchangeError):
        ex = _ccxt(v)
        ex.load_markets()
        ex.publicGetTrades({"pairSymbol": "NOPETRY"})


def test_daily_ohlcs_fold_the_same_minutes(v: Venue) -> None:
    status, _, rows = http(f"{v.btcturk_graph_url}/v1/ohlcs?pair=BTC_TRY")
    _, _, days = http(f"{v.rest_url}/api/v3/klines?symbol=BTCTRY&interval=1d&limit=5")
    assert status == 200 and [r["time"] * 1000 for r in rows] == [int(k[0]) for k in days]
    for r, k in zip(rows, days, strict=True):
        assert (r["open"], r["high"], r["low"], r["close"]) == tuple(float(x) for x in k[1:5])
        assert r["volume"] == pytest.approx(float(k[5]))
        assert r["total"] == pytest.approx(float(k[7]))
