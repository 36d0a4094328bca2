"""Orders over real HTTP: filters, balances, market fills against the book, limit orders (taker,
resting, IOC, FOK, maker fills on the tape), cancel, queries and account consistency."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from venue_helpers import TRADING, http, signed

D = Decimal
SYM = "BTCUSDT"


def post(v: Any, **params: Any) -> tuple[int, Any]:
    status, _, body = signed(v.rest_url, "POST", "/api/v3/order", {"symbol": SYM, **params})
    return status, body


def call(v: Any, method: str, path: str, **params: Any) -> tuple[int, Any]:
    status, _, body = signed(v.rest_url, method, path, params)
    return status, body


def depth(v: Any, limit: int = 100) -> tuple[list[tuple[D, D]], list[tuple[D, D]]]:
    _, _, body = http(f"{v.rest_url}/api/v3/depth?symbol={SYM}&limit={limit}")
    return ([(D(p), D(q)) for p, q in body["bids"]], [(D(p), D(q)) for p, q in body["asks"]])


def totals(v: Any) -> dict[str, D]:
    _, acct = call(v, "GET", "/api/v3/account")
    return {b["asset"]: D(b["free"]) + D(b["locked"]) for b in acct["balances"]}


def expected(start: dict[str, str], trades: list[dict[str, Any]]) -> dict[str, D]:
    """Balances implied by the fills: what a buyer pays and gets, minus commissions."""
    bal = {a: D(x) for a, x in start.items()}
    for t in trades:
        q, quote = D(t["qty"]), D(t["quoteQty"])
        bal["BTC"] += q if t["isBuyer"] else -q
        bal["USDT"] += -quote if t["isBuyer"] else quote
        bal[t["commissionAsset"]] -= D(t["commission"])
    return bal


def test_bad_parameters_and_filters_are_rejected_before_the_engine(make_venue: Any) -> None:
    v = make_venue(**TRADING, start_paused=True)
    limit = {"side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
    cases: list[tuple[dict[str, Any], int, str | None]] = [
        ({**limit, "quantity": "0.01", "price": "50000.001"}, -1013,
         "Filter failure: PRICE_FILTER"),
        ({**limit, "quantity": "0.01", "price": "0"}, -1013, "Filter failure: PRICE_FILTER"),
        ({**limit, "quantity": "0.000001", "price": "50000"}, -1013, "Filter failure: LOT_SIZE"),
        ({**limit, "quantity": "0.000015", "price": "50000"}, -1013, "Filter failure: LOT_SIZE"),
        ({**limit, "quantity": "9001", "price": "50000"}, -1013, "Filter failure: LOT_SIZE"),
        ({**limit, "quantity": "0.00001", "price": "50000"}, -1013, "Filter failure: NOTIONAL"),
        ({"side": "BUY", "type": "MARKET", "quantity": "101"}, -1013,
         "Filter failure: MARKET_LOT_SIZE"),
        ({"side": "BUY", "type": "MARKET", "quoteOrderQty": "1"}, -1013,
         "Filter failure: NOTIONAL"),
        ({**limit, "quantity": "0.01", "price": "1.123456789"}, -1111,
         "Parameter 'price' has too much precision."),
        ({**limit, "quantity": "1e-3", "price": "50000"}, -1100, None),
        ({"type": "MARKET", "quantity": "0.01"}, -1102, None),
        ({"side": "HOLD", "type": "MARKET", "quantity": "0.01"}, -1117, "Invalid side."),
        ({"side": "BUY", "type": "BANANA", "quantity": "0.01"}, -1116, "Invalid orderType."),
        ({"side": "BUY", "type": "STOP_LOSS", "quantity": "0.01", "stopPrice": "1"}, -1014,
         "Unsupported order combination."),
        ({"side": "BUY", "type": "LIMIT", "quantity": "0.01", "price": "50000"}, -1102, None),
        ({**limit, "timeInForce": "DAY", "quantity": "0.01", "price": "50000"}, -1115,
         "Invalid timeInForce."),
        ({"side": "BUY", "type": "MARKET", "timeInForce": "GTC", "quantity": "0.01"}, -1114,
         "TimeInForce parameter sent when not required."),
        ({"side": "BUY", "type": "MARKET"}, -1102,
         "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!"),
        ({**limit, "quantity": "0.01", "price": "50000", "newClientOrderId": "bad id!"}, -1100,
         None),
    ]
    for params, code, msg in cases:
        status, body = post(v, **params)
        assert (status, body["code"]) == (400, code), (params, body)
        if msg is not None:
            assert body["msg"] == msg, (params, body)
    status, body = signed(v.rest_url, "POST", "/api/v3/order",
                          {"symbol": "XYZUSDT", **limit, "quantity": "1", "price": "1"})[0::2]
    assert (status, body) == (400, {"code": -1121, "msg": "Invalid symbol."})
    assert v.orders() == []
    assert v.balances("tradeKey1")["USDT"] == {"free": "100000.00000000",
                                                "locked": "0.00000000"}


def test_insufficient_balance_and_locking(make_venue: Any) -> None:
    v = make_venue(**TRADING, start_paused=True)
    insufficient = {"code": -2010, "msg": "Account has insufficient balance for requested action."}
    status, body = post(v, side="BUY", type="LIMIT", timeInForce="GTC", quantity="2",
                        price="55000")  # 110000 USDT > 100000
    assert (status, body) == (400, insufficient)
    status, body = post(v, side="SELL", type="MARKET", quantity="2")  # 2 BTC > 1
    assert (status, body) == (400, insufficient)
    status, body = post(v, side="BUY", type="LIMIT", timeInForce="GTC", quantity="1",
                        price="55000")
    assert status == 200 and body["status"] == "NEW"
    assert v.balances("tradeKey1")["USDT"] == {"free": "45000.00000000",
                                                "locked": "55000.00000000"}
    status, body = post(v, side="BUY", type="LIMIT", timeInForce="GTC", quantity="1",
                        price="50000")  # free 45000 < 50000: the lock counts
    assert (status, body) == (400, insufficient)
    status, body = post(v, side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.6",
                        price="70000")
    assert status == 200
    assert v.balances("tradeKey1")["BTC"] == {"free": "0.40000000", "locked": "0.60000000"}
    status, body = post(v, side="SELL", type="MARKET", quantity="0.5")  # only 0.4 free
    assert (status, body) == (400, insufficient)
    assert [o["status"] for o in v.orders(SYM)] == ["NEW", "NEW"]


def test_market_buy_walks_the_book_level_by_level(make_venue: Any) -> None:
    v = make_venue(**TRADING, start_paused=True)
    _, asks = depth(v, 5)
    qty = asks[0][1] + asks[1][1] + asks[2][1] / 2
    qty = qty.quantize(D("0.00001"))
    status, body = post(v, side="BUY", type="MARKET", quantity=str(qty))
    assert status == 200 and body["status"] == "FILLED", body
    fills = [(D(f["price"]), D(f["qty"])) for f in body["fills"]]
    assert fills == [asks[0], asks[1], (asks[2][0], qty - asks[0][1] - asks[1][1])]
    assert all(f["commissionAsset"] == "BTC" and D(f["commission"]) == D(f["qty"]) / 1000
               for f in body["fills"])
    assert D(body["executedQty"]) == qty and body["price"] == "0.00000000"
    assert D(body["cummulativeQuoteQty"]) == sum(p * q for p, q in fills)
    assert [f["tradeId"] for f in body["fills"]] == [1, 2, 3]
    # The taker consumed the book: two levels gone, the third smaller -- REST and bookTicker.
    _, after = depth(v, 5)
    assert after[0] == (asks[2][0], asks[2][1] - fills[2][1])
    assert after[1:3] == asks[3:5]
    _, _, ticker = http(f"{v.rest_url}/api/v3/ticker/bookTicker?symbol={SYM}")
    assert (D(ticker["askPrice"]), D(ticker["askQty"])) == after[0]
    bal = totals(v)
    assert bal["USDT"] == D(100000) - D(body["cummulativeQuoteQty"])
    assert bal["BTC"] == 1 + qty - sum(D(f["commission"]) for f in body["fills"])


def test_market_order_that_exhausts_the_book_expires(make_venue: Any) -> None:
    v = make_venue(**{**TRADING, "starting_balances": {"USDT": "0", "BTC": "50"}},
                   start_paused=True)
    bids, _ = depth(v)
    available = sum(q for _, q in bids)
    assert len(bids) == 100 and available < 10
    status, body = post(v, side="SELL", type="MARKET", quantity="10", newOrderRespType="RESULT")
    assert status == 200 and body["status"] == "EXPIRED" and "fills" not in body
    assert D(body["executedQty"]) == available and D(body["origQty"]) == 10
    assert D(body["cummulativeQuoteQty"]) == sum(p * q for p, q in bids)
    assert depth(v)[0] == []  # every bid taken
    trades = v.my_trades("tradeKey1")
    assert len(trades) == 100 and all(t["commissionAsset"] == "USDT" for t in trades)
    assert totals(v) == expected({"USDT": "0", "BTC": "50"}, trades)


def test_quote_order_qty_spends_at_most_the_budget(make_venue: Any) -> None:
    v = make_venue(**TRADING, start_paused=True)
    _, asks = depth(v, 1)
    status, body = post(v, side="BUY", type="MARKET", quoteOrderQty="1000")
    assert status == 200 and body["status"] == "FILLED", body
    spent = D(body["cummulativeQuoteQty"])
    assert D(1000) - asks[0][0] * D("0.00001") < spent <= D(1000)
    assert body["origQuoteOrderQty"] == "1000.00000000"
    assert D(body["origQty"]) == D(body["executedQty"]) > 0


def test_limit_orders_take_what_crosses_then_rest_or_expire(make_venue: Any) -> None:
    v = make_venue(**{**TRADING, "starting_balances": {"USDT": "1000000", "BTC": "0"}},
                   start_paused=True)
    _, asks = depth(v, 10)
    crossing = asks[0][1] + asks[1][1]
    qty = crossing + D("0.01")
    limit = asks[1][0]
    # FOK: cannot fill completely at <= limit, so nothing at all.
    status, fok = post(v, side="BUY", type="LIMIT", timeInForce="FOK", quantity=str(qty),
                       price=str(limit))
    assert status == 200 and (fok["status"], fok["executedQty"], fok["fills"]) == (
        "EXPIRED", "0.00000000", [])
    # IOC: takes what crosses, the rest expires; nothing stays locked.
    status, ioc = post(v, side="BUY", type="LIMIT", timeInForce="IOC", quantity=str(qty),
                       price=str(limit))
    assert status == 200 and ioc["status"] == "EXPIRED"
    assert [(D(f["price"]), D(f["qty"])) for f in ioc["fills"]] == asks[:2]
    assert v.balances("tradeKey1")["USDT"]["locked"] == "0.00000000"
    # GTC: the book refilled nothing (market paused), so the next asks are asks[2:].
    _, asks = depth(v, 10)
    qty = asks[0][1] + D("0.02")
    limit = asks[0][0]
    status, gtc = post(v, side="BUY", type="LIMIT", timeInForce="GTC", quantity=str(qty),
                       price=str(limit), newOrderRespType="FULL")
    assert status == 200 and gtc["status"] == "PARTIALLY_FILLED"
    assert [(D(f["price"]), D(f["qty"])) for f in gtc["fills"]] == [asks[0]]
    _, open_orders = call(v, "GET", "/api/v3/openOrders", symbol=SYM)
    assert [o["orderId"] for o in open_orders] == [gtc["orderId"]]
    assert D(v.balances("tradeKey1")["USDT"]["locked"]) == limit * D("0.02")
    # FOK that can fill: FILLED; LIMIT_MAKER that would take: rejected; one that rests: ACK.
    _, asks = depth(v, 10)
    status, fok = post(v, side="BUY", type="LIMIT", timeInForce="FOK",
                       quantity=str(asks[0][1]), price=str(asks[0][0]))
    assert status == 200 and fok["status"] == "FILLED"
    status, body = post(v, side="BUY", type="LIMIT_MAKER", quantity="0.01",
                        price=str(asks[1][0]))
    assert (status, body) == (400, {"code": -2010,
                                    "msg": "Order would immediately match and take."})
    status, body = post(v, side="BUY", type="LIMIT_MAKER", quantity="0.01", price="50000")
    assert status == 200 and set(body) == {"symbol", "orderId", "orderListId", "clientOrderId",
                                           "transactTime"}
    assert totals(v) == expected({"USDT": "1000000", "BTC": "0"}, v.my_trades("tradeKey1"))


def test_cancel_duplicate_client_ids_and_queries(make_venue: Any) -> None:
    v = make_venue(**TRADING, start_paused=True)
    base = {"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.1",
            "price": "50000"}
    status, first = post(v, **base, newClientOrderId="myOrder1")
    assert status == 200 and first["clientOrderId"] == "myOrder1"
    status, body = post(v, **base, newClientOrderId="myOrder1")
    assert (status, body) == (400, {"code": -2010, "msg": "Duplicate order sent."})
    _, by_client = call(v, "GET", "/api/v3/order", symbol=SYM, origClientOrderId="myOrder1")
    _, by_id = call(v, "GET", "/api/v3/order", symbol=SYM, orderId=first["orderId"])
    assert by_client == by_id and by_id["status"] == "NEW" and by_id["isWorking"] is True
    assert by_id["origQty"] == "0.10000000" and by_id["price"] == "50000.00000000"
    status, body = call(v, "DELETE", "/api/v3/order", symbol=SYM, orderId=first["orderId"],
                        cancelRestrictions="ONLY_PARTIALLY_FILLED")
    assert (status, body) == (400, {"code": -2011, "msg":
                                    "Order was not canceled due to cancel restrictions."})
    status, canceled = call(v, "DELETE", "/api/v3/order", symbol=SYM,
                            origClientOrderId="myOrder1", newClientOrderId="cancelMyOrder1")
    assert status == 200 and canceled["status"] == "CANCELED"
    assert (canceled["clientOrderId"], canceled["origClientOrderId"]) == (
        "cancelMyOrder1", "myOrder1")
    assert v.balances("tradeKey1")["USDT"] == {"free": "100000.00000000",
                                                "locked": "0.00000000"}
    status, body = call(v, "DELETE", "/api/v3/order", symbol=SYM, orderId=first["orderId"])
    assert (status, body) == (400, {"code": -2011, "msg": "Unknown order sent."})
    # A closed order's client id can be used again; a query by it finds the newest order.
    status, second = post(v, **base, newClientOrderId="myOrder1")
    assert status == 200 and second["orderId"] != first["orderId"]
    _, by_client = call(v, "GET", "/api/v3/order", symbol=SYM, origClientOrderId="myOrder1")
    assert by_client["orderId"] == second["orderId"]
    _, old = call(v, "GET", "/api/v3/order", symbol=SYM, orderId=first["orderId"])
    assert old["status"] == "CANCELED" and old["clientOrderId"] == "myOrder1"
    status, body = call(v, "GET", "/api/v3/order", symbol=SYM, orderId=999)
    assert (status, body) == (400, {"code": -2013, "msg": "Order does not exist."})
    status, body = call(v, "GET", "/api/v3/order", symbol=SYM, orderId=first["orderId"],
                        origClientOrderId="someoneElse")
    assert (status, body["code"]) == (400, -2013)
    status, body = call(v, "GET", "/api/v3/order", symbol=SYM)
    assert (status, body["code"]) == (400, -1102)
    status, third = post(v, **{**base, "price": "49000"})
    assert status == 200 and len(third["clientOrderId"]) == 22  # generated, Binance-style
    _, all_open = call(v, "GET", "/api/v3/openOrders")
    assert [o["orderId"] for o in all_open] == [second["orderId"], third["orderId"]]
    status, canceled_all = call(v, "DELETE", "/api/v3/openOrders", symbol=SYM)
    assert status == 200 and [c["status"] for c in canceled_all] == ["CANCELED", "CANCELED"]
    status, body = call(v, "DELETE", "/api/v3/openOrders", symbol=SYM)
    assert (status, body["code"]) == (400, -2011)
    _, history = call(v, "GET", "/api/v3/allOrders", symbol=SYM)
    assert [o["status"] for o in history] == ["CANCELED", "CANCELED", "CANCELED"]
    assert [o["status"] for o in v.orders(SYM)] == ["CANCELED", "CANCELED", "CANCELED"]


# A fixed market start makes the synthetic tape (and so every maker fill) reproducible.
TAPE: dict[str, Any] = dict(TRADING, start_paused=True, start_time_ms=1_767_225_600_000,
                            speed=20.0)


def rest_both_sides_and_run(v: Any) -> tuple[Any, Any, D, D]:
    """A BUY a dollar under the bid and a SELL a dollar over the ask, then the market runs
    until the tape has filled both."""
    bids, asks = depth(v, 1)
    buy_px, sell_px = bids[0][0] - D(1), asks[0][0] + D(1)
    _, buy = post(v, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01",
                  price=str(buy_px))
    _, sell = post(v, side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.01",
                   price=str(sell_px))
    assert buy["status"] == sell["status"] == "NEW"
    v.resume()
    deadline = time.monotonic() + 30
    while {o["status"] for o in v.orders(SYM)} != {"FILLED"}:
        assert time.monotonic() < deadline, v.orders(SYM)
        time.sleep(0.05)
    return buy, sell, buy_px, sell_px


def test_resting_orders_fill_as_maker_when_the_tape_crosses(make_venue: Any) -> None:
    v = make_venue(**TAPE)
    buy, sell, buy_px, sell_px = rest_both_sides_and_run(v)
    trades = v.my_trades("tradeKey1", SYM)
    for order, px in ((buy, buy_px), (sell, sell_px)):
        mine = [t for t in trades if t["orderId"] == order["orderId"]]
        assert len(mine) >= 3  # each market trade is smaller: partial fills, then FILLED
        assert all(t["isMaker"] and D(t["price"]) == px for t in mine)
        assert sum(D(t["qty"]) for t in mine) == D("0.01")
    tape = v.ground_truth(SYM).to_pylist()
    assert any(t["price"] < float(buy_px) for t in tape)  # the tape really went through
    assert any(t["price"] > float(sell_px) for t in tape)
    assert totals(v) == expected(TRADING["starting_balances"], trades)
    # myTrades pages: fromId, limit, orderId, time ranges.
    _, page = call(v, "GET", "/api/v3/myTrades", symbol=SYM, fromId=trades[1]["id"], limit=2)
    assert [t["id"] for t in page] == [trades[1]["id"], trades[2]["id"]]
    _, of_buy = call(v, "GET", "/api/v3/myTrades", symbol=SYM, orderId=buy["orderId"])
    assert {t["orderId"] for t in of_buy} == {buy["orderId"]}
    _, all_rows = call(v, "GET", "/api/v3/myTrades", symbol=SYM)
    assert all_rows == trades
    _, windowed = call(v, "GET", "/api/v3/myTrades", symbol=SYM, startTime=trades[0]["time"],
                       endTime=trades[-1]["time"])
    assert windowed == trades
    status, body = call(v, "GET", "/api/v3/myTrades", symbol=SYM, fromId=1, startTime=1)
    assert (status, body["code"]) == (400, -1128)


def test_same_seed_and_start_same_fills(make_venue: Any) -> None:
    runs = []
    for _ in range(2):
        v = make_venue(**TAPE)
        rest_both_sides_and_run(v)
        runs.append([(t["orderId"], t["price"], t["qty"], t["isBuyer"])
                     for t in v.my_trades("tradeKey1", SYM)])
    assert runs[0] == runs[1] and len(runs[0]) >= 6
