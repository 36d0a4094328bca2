"""The venue as widely used third-party Binance clients see it: ccxt (REST and its WebSocket
classes) and python-binance (REST client and socket manager), pointed at a venue on loopback.

Each client is used as its users use it, with only its base URLs changed; what it cannot do
against the venue is what a user of ours would hit first.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import ccxt
import ccxt.pro
import pytest
from binance import AsyncClient, BinanceSocketManager, Client
from binance.exceptions import BinanceAPIException

from spark_ray.venue import Venue

from venue_helpers import FAST, connect, http, recv_json

KEY, SECRET = "thirdPartyKey", "thirdPartySecret"  # test-only credentials of this venue


@pytest.fixture(scope="module")
def v() -> Iterator[Venue]:
    with Venue(**{**FAST, "symbols": ("BTCUSDT", "ETHUSDT")}, api_keys={KEY: SECRET},
               starting_balances={"USDT": "100000", "BTC": "1"}) as venue:
        yield venue


def _ccxt_urls(api: dict[str, Any], venue: Venue) -> None:
    """Point ccxt's Binance spot URLs (REST and WebSocket) at the venue."""
    for k in ("public", "private", "v3"):
        api[k] = venue.rest_url + "/api/v3"
    api["v1"] = venue.rest_url + "/api/v1"
    api["sapi"] = venue.rest_url + "/sapi/v1"
    if isinstance(api.get("ws"), dict):
        api["ws"]["spot"] = venue.ws_url + "/ws"


# Spot only: ccxt's Binance class otherwise also loads futures and options markets.
_CCXT_OPTIONS = {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]},
                 "fetchCurrencies": False}


def _ccxt(venue: Venue, secret: str = SECRET) -> Any:
    ex = ccxt.binance({"apiKey": KEY, "secret": secret, "options": dict(_CCXT_OPTIONS)})
    _ccxt_urls(ex.urls["api"], venue)
    return ex


def test_ccxt_market_data(v: Venue) -> None:
    ex = _ccxt(v)
    markets = ex.load_markets()  # with a key, ccxt also lists margin pairs: the venue has none
    assert {"BTC/USDT", "ETH/USDT"} <= set(markets)
    btc = markets["BTC/USDT"]
    assert btc["spot"] and btc["precision"]["amount"] == 1e-05 and btc["limits"]["cost"]["min"]
    candles = ex.fetch_ohlcv("BTC/USDT", "1m", limit=5)
    assert len(candles) == 5 and all(c[2] >= max(c[1], c[4]) >= min(c[1], c[4]) >= c[3]
                                     for c in candles)
    assert candles == sorted(candles) and candles[1][0] - candles[0][0] == 60_000
    trades = ex.fetch_trades("BTC/USDT", limit=20)
    assert trades and all(t["side"] in ("buy", "sell") and t["amount"] > 0 for t in trades)
    book = ex.fetch_order_book("BTC/USDT", 10)
    assert len(book["bids"]) == 10 and book["bids"][0][0] < book["asks"][0][0]
    ticker = ex.fetch_ticker("BTC/USDT")  # GET /api/v3/ticker/24hr
    assert ticker["bid"] < ticker["ask"] and ticker["low"] <= ticker["last"] <= ticker["high"]
    assert ticker["baseVolume"] > 0 and ticker["quoteVolume"] > 0
    tickers = ex.fetch_tickers(["BTC/USDT", "ETH/USDT"])
    assert set(tickers) == {"BTC/USDT", "ETH/USDT"}
    assert set(ex.fetch_bids_asks(["BTC/USDT"])) == {"BTC/USDT"}  # ticker/bookTicker


def test_ccxt_trading_and_errors(v: Venue) -> None:
    ex = _ccxt(v)
    ex.load_markets()
    balance = ex.fetch_balance()
    assert balance["USDT"]["free"] == 100_000.0
    bought = ex.create_order("BTC/USDT", "market", "buy", 0.001)
    assert bought["status"] == "closed" and bought["filled"] == 0.001
    resting = ex.create_order("BTC/USDT", "limit", "buy", 0.001, 40_000.0)
    assert resting["status"] == "open"
    assert [o["id"] for o in ex.fetch_open_orders("BTC/USDT")] == [resting["id"]]
    assert ex.fetch_order(resting["id"], "BTC/USDT")["price"] == 40_000.0
    assert ex.cancel_order(resting["id"], "BTC/USDT")["status"] == "canceled"
    assert ex.fetch_open_orders("BTC/USDT") == []
    mine = ex.fetch_my_trades("BTC/USDT")
    assert mine and mine[-1]["order"] == bought["id"] and mine[-1]["fee"]["cost"] > 0
    assert ex.fetch_balance()["BTC"]["total"] > 1.0
    # Binance's error codes reach ccxt's exception classes.
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order("BTC/USDT", "limit", "buy", 10, 59_000.0)
    with pytest.raises(ccxt.OrderNotFound):
        ex.cancel_order("999999", "BTC/USDT")
    with pytest.raises(ccxt.BadRequest, match="NOTIONAL"):  # -1013, as ccxt maps it
        ex.create_order("BTC/USDT", "limit", "buy", 0.00001, 40_000.0)
    with pytest.raises(ccxt.AuthenticationError):  # -1022 bad signature
        _ccxt(v, secret="not-the-secret").fetch_balance()


def test_ccxt_websocket_classes(v: Venue) -> None:
    async def main() -> dict[str, Any]:
        ex = ccxt.pro.binance({"options": dict(_CCXT_OPTIONS)})
        _ccxt_urls(ex.urls["api"], v)
        try:  # ccxt connects to /ws/<n> and SUBSCRIBEs there, one connection per stream hash
            got = {
                "trades": await asyncio.wait_for(ex.watch_trades("BTC/USDT"), 15),
                "book": await asyncio.wait_for(ex.watch_order_book("BTC/USDT"), 15),
                "ohlcv": await asyncio.wait_for(ex.watch_ohlcv("BTC/USDT", "1m"), 15),
                "ticker": await asyncio.wait_for(ex.watch_ticker("BTC/USDT"), 15),
            }
            # The book is kept from the REST snapshot plus diffs: it moves and stays uncrossed.
            book = await asyncio.wait_for(ex.watch_order_book("BTC/USDT"), 15)
            got["book_nonce"] = (got["book"]["nonce"], book["nonce"])
            return got
        finally:
            await ex.close()

    got = asyncio.run(main())
    assert got["trades"] and got["trades"][0]["symbol"] == "BTC/USDT"
    assert got["book"]["bids"][0][0] < got["book"]["asks"][0][0]
    assert got["ohlcv"] and len(got["ohlcv"][-1]) == 6
    assert got["ticker"]["symbol"] == "BTC/USDT" and got["ticker"]["last"] > 0
    assert got["book_nonce"][1] >= got["book_nonce"][0]


def _binance_client(venue: Venue) -> Client:
    c = Client(KEY, SECRET, ping=False)  # no ping: it would go to api.binance.com first
    c.API_URL = venue.rest_url + "/api"
    return c


def test_python_binance_rest(v: Venue) -> None:
    c = _binance_client(v)
    assert {s["symbol"] for s in c.get_exchange_info()["symbols"]} == {"BTCUSDT", "ETHUSDT"}
    assert len(c.get_klines(symbol="BTCUSDT", interval="1m", limit=3)) == 3
    assert len(c.get_recent_trades(symbol="BTCUSDT", limit=5)) >= 1
    assert c.get_order_book(symbol="BTCUSDT", limit=5)["lastUpdateId"] > 0
    day = c.get_ticker(symbol="BTCUSDT")
    assert float(day["lowPrice"]) <= float(day["lastPrice"]) <= float(day["highPrice"])
    assert float(c.get_symbol_ticker(symbol="BTCUSDT")["price"]) > 0
    best = c.get_orderbook_ticker(symbol="BTCUSDT")
    assert float(best["bidPrice"]) < float(best["askPrice"])
    assert c.get_avg_price(symbol="BTCUSDT")["mins"] == 5
    assert {b["asset"] for b in c.get_account()["balances"]} >= {"BTC", "USDT"}
    assert c.order_market_sell(symbol="BTCUSDT", quantity="0.002")["status"] == "FILLED"
    o = c.order_limit_sell(symbol="BTCUSDT", quantity="0.001", price="90000")
    assert [x["orderId"] for x in c.get_open_orders(symbol="BTCUSDT")] == [o["orderId"]]
    assert c.cancel_order(symbol="BTCUSDT", orderId=o["orderId"])["status"] == "CANCELED"
    assert any(not t["isBuyer"] for t in c.get_my_trades(symbol="BTCUSDT"))
    with pytest.raises(BinanceAPIException) as e:
        c.cancel_order(symbol="BTCUSDT", orderId=987654)
    assert (e.value.status_code, e.value.code) == (400, -2011)


def test_python_binance_socket_manager(v: Venue) -> None:
    async def main() -> tuple[dict[str, Any], set[str], dict[str, Any]]:
        ac = AsyncClient(KEY, SECRET)  # the constructor does not ping (create() would)
        ac.API_URL = v.rest_url + "/api"
        bm = BinanceSocketManager(ac)
        bm.STREAM_URL = v.ws_url + "/"
        try:
            async with bm.trade_socket("BTCUSDT") as s:
                trade = await asyncio.wait_for(s.recv(), 15)
            seen: set[str] = set()
            async with bm.multiplex_socket(["btcusdt@aggTrade", "ethusdt@depth@100ms"]) as s:
                while len(seen) < 2:
                    seen.add((await asyncio.wait_for(s.recv(), 15))["stream"])
            async with bm.symbol_ticker_socket("BTCUSDT") as s:  # <symbol>@ticker
                ticker = await asyncio.wait_for(s.recv(), 15)
            return trade, seen, ticker
        finally:
            await ac.close_connection()

    trade, seen, ticker = asyncio.run(main())
    assert trade["e"] == "trade" and trade["s"] == "BTCUSDT"
    assert seen == {"btcusdt@aggTrade", "ethusdt@depth@100ms"}
    assert ticker["e"] == "24hrTicker" and float(ticker["c"]) > 0 and ticker["n"] > 0


# --- the endpoints and ids these clients needed, checked against Binance's documentation -----
def test_ticker_24hr_agrees_with_the_minute_klines(v: Venue) -> None:
    base = v.rest_url + "/api/v3"
    status, headers, day = http(base + "/ticker/24hr?symbol=BTCUSDT")
    assert status == 200 and set(day) == {
        "symbol", "priceChange", "priceChangePercent", "weightedAvgPrice", "prevClosePrice",
        "lastPrice", "lastQty", "bidPrice", "bidQty", "askPrice", "askQty", "openPrice",
        "highPrice", "lowPrice", "volume", "quoteVolume", "openTime", "closeTime", "firstId",
        "lastId", "count"}
    _, _, kl = http(base + f"/klines?symbol=BTCUSDT&interval=1m&startTime={day['openTime']}"
                           "&limit=1000")
    # Minutes closed when the ticker was read: the running minute goes on trading after it.
    traded = [k for k in kl if k[8] > 0 and k[6] < day["closeTime"]]
    assert float(day["highPrice"]) >= max(float(k[2]) for k in traded)
    assert float(day["lowPrice"]) <= min(float(k[3]) for k in traded)
    assert day["firstId"] <= day["lastId"] and day["count"] >= sum(k[8] for k in traded) > 0
    change = float(day["lastPrice"]) - float(day["openPrice"])
    assert abs(float(day["priceChange"]) - change) < 1e-6
    assert abs(float(day["priceChangePercent"]) - 100 * change / float(day["openPrice"])) < 1e-3
    _, _, mini = http(base + '/ticker/24hr?symbols=["BTCUSDT","ETHUSDT"]&type=MINI')
    assert [m["symbol"] for m in mini] == ["BTCUSDT", "ETHUSDT"]
    assert "bidPrice" not in mini[0] and "lastPrice" in mini[0]
    status, _, err = http(base + "/ticker/24hr?symbol=BTCUSDT&type=HUGE")
    assert status == 400 and err["code"] == -1139
    # Weight (Binance spot docs): 2 for one symbol, 80 for all symbols.
    used = int(headers["X-MBX-USED-WEIGHT-1M"])
    _, h2, _ = http(base + "/ticker/24hr")
    assert int(h2["X-MBX-USED-WEIGHT-1M"]) - used >= 80


@pytest.mark.parametrize(
    ("rid", "ok"),
    [(7, True), (-5, True), (2**63 - 1, True), (2**63, False), (None, True),
     ("e2a85d9f-07a5-4f94-8d5f-789dc3deb097", True), ("sub_1", True), ("a" * 37, False),
     ("two words", False), (True, False), (1.5, False)],
)
def test_stream_request_ids_as_binance_accepts_them(v: Venue, rid: Any, ok: bool) -> None:
    async def main() -> Any:
        async with connect(f"{v.ws_url}/ws") as ws:
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@trade"],
                                      "id": rid}))
            return await recv_json(ws)

    reply = asyncio.run(main())
    if ok:
        assert reply == {"result": None, "id": rid}
    else:
        assert reply["error"]["code"] == 2 and "request ID" in reply["error"]["msg"]
