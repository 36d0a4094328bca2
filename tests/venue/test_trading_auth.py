"""Signed endpoints over real HTTP: API keys, HMAC signatures, timing window, weights, headers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from spark_ray.adapters.binance.auth import sign
from spark_ray.venue import Venue

from venue_helpers import KEY, SECRET, TRADING, raw_call, signed

ORDER = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
         "quantity": "0.01", "price": "50000"}


@pytest.fixture(scope="module")
def v() -> Iterator[Venue]:
    with Venue(**TRADING) as venue:
        yield venue


def test_signature_in_query_in_body_and_mixed(v: Venue) -> None:
    status, _, body = signed(v.rest_url, "GET", "/api/v3/account")
    assert status == 200 and body["accountType"] == "SPOT"
    assert {b["asset"]: b["free"] for b in body["balances"]} == {
        "BTC": "1.00000000", "USDT": "100000.00000000"}
    status, _, body = signed(v.rest_url, "POST", "/api/v3/order/test", ORDER, in_body=True)
    assert (status, body) == (200, {})
    # Binance's example 3: part in the query string, part in the body; the signature covers
    # query + body concatenated with no '&' between them.
    query = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC"
    body_text = f"quantity=0.01&price=50000&recvWindow=5000&timestamp={int(time.time() * 1000)}"
    sig = sign(query + body_text, SECRET)
    status, _, body = raw_call(v.rest_url, "POST", "/api/v3/order/test", query=query,
                               body=f"{body_text}&signature={sig}",
                               headers={"X-MBX-APIKEY": KEY})
    assert (status, body) == (200, {})
    # ... and the signature over query + "&" + body is not the same thing.
    sig = sign(query + "&" + body_text, SECRET)
    status, _, body = raw_call(v.rest_url, "POST", "/api/v3/order/test", query=query,
                               body=f"{body_text}&signature={sig}",
                               headers={"X-MBX-APIKEY": KEY})
    assert (status, body["code"]) == (400, -1022)
    # The signature is not case sensitive.
    ts = int(time.time() * 1000)
    query = f"timestamp={ts}"
    status, _, _ = raw_call(v.rest_url, "GET", "/api/v3/account",
                            query=f"{query}&signature={sign(query, SECRET).upper()}",
                            headers={"X-MBX-APIKEY": KEY})
    assert status == 200


def test_bad_missing_signatures_and_keys(v: Venue) -> None:
    status, _, body = signed(v.rest_url, "GET", "/api/v3/account", secret="not-the-secret")
    assert (status, body) == (400, {"code": -1022,
                                    "msg": "Signature for this request is not valid."})
    ts = int(time.time() * 1000)
    status, _, body = raw_call(v.rest_url, "GET", "/api/v3/account", query=f"timestamp={ts}",
                               headers={"X-MBX-APIKEY": KEY})
    assert status == 400 and body == {
        "code": -1102,
        "msg": "Mandatory parameter 'signature' was not sent, was empty/null, or malformed."}
    # A parameter changed after signing.
    query = f"symbol=BTCUSDT&timestamp={ts}"
    status, _, body = raw_call(v.rest_url, "GET", "/api/v3/openOrders",
                               query=f"symbol=ETHUSDT&timestamp={ts}&signature="
                                     f"{sign(query, SECRET)}",
                               headers={"X-MBX-APIKEY": KEY})
    assert (status, body["code"]) == (400, -1022)
    status, _, body = signed(v.rest_url, "GET", "/api/v3/account", key=None)
    assert (status, body) == (401, {"code": -2014, "msg": "API-key format invalid."})
    status, _, body = signed(v.rest_url, "GET", "/api/v3/account", key="someoneElse")
    assert (status, body) == (401, {"code": -2015,
                                    "msg": "Invalid API-key, IP, or permissions for action."})
    status, _, body = signed(v.rest_url, "GET", "/api/v3/account", key="bad key!")
    assert (status, body["code"]) == (401, -2014)


def test_timestamp_window_both_directions(v: Venue) -> None:
    now = int(time.time() * 1000)
    status, _, body = signed(v.rest_url, "GET", "/api/v3/account", timestamp_ms=now + 3_000)
    assert (status, body) == (400, {
        "code": -1021, "msg": "Timestamp for this request was 1000ms ahead of the server's time."})
    status, _, body = signed(v.rest_url, "GET", "/api/v3/account", timestamp_ms=now - 8_000)
    assert (status, body) == (400, {
        "code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."})
    status, _, body = signed(v.rest_url, "GET", "/api/v3/account", timestamp_ms=now - 8_000,
                             recv_window_ms=None)  # default window 5000 ms
    assert (status, body["code"]) == (400, -1021)
    status, _, body = signed(v.rest_url, "GET", "/api/v3/account", timestamp_ms=now - 8_000,
                             recv_window_ms=20_000)
    assert status == 200, body
    status, _, body = signed(v.rest_url, "GET", "/api/v3/account", recv_window_ms=60_001)
    assert (status, body["code"]) == (400, -1102) and "60000" in body["msg"]
    status, _, body = raw_call(v.rest_url, "GET", "/api/v3/account",
                               query=f"signature={sign('', SECRET)}",
                               headers={"X-MBX-APIKEY": KEY})
    assert (status, body["code"]) == (400, -1102) and "'timestamp'" in body["msg"]


def test_timestamps_on_the_market_clock_pass_too(make_venue: Any) -> None:
    """A replay-like market two years back: a client synced with /api/v3/time and one on its
    own clock are both in the window; a timestamp on neither clock is not."""
    old = make_venue(**TRADING, start_time_ms=1_700_000_000_000)
    _, _, body = raw_call(old.rest_url, "GET", "/api/v3/time")
    server_time = body["serverTime"]
    assert server_time < time.time() * 1000 - 86_400_000
    assert signed(old.rest_url, "GET", "/api/v3/account", timestamp_ms=server_time)[0] == 200
    assert signed(old.rest_url, "GET", "/api/v3/account")[0] == 200
    status, _, body = signed(old.rest_url, "GET", "/api/v3/account",
                             timestamp_ms=server_time - 86_400_000)
    assert (status, body["code"]) == (400, -1021)


def test_parameters_query_wins_duplicates_and_unknown(v: Venue) -> None:
    ts = int(time.time() * 1000)
    query = "symbol=NOPEUSDT"
    body_text = ("symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price=50000"
                 f"&timestamp={ts}")
    status, _, body = raw_call(v.rest_url, "POST", "/api/v3/order/test", query=query,
                               body=f"{body_text}&signature={sign(query + body_text, SECRET)}",
                               headers={"X-MBX-APIKEY": KEY})
    assert (status, body) == (400, {"code": -1121, "msg": "Invalid symbol."})  # query wins
    query = f"symbol=BTCUSDT&symbol=BTCUSDT&timestamp={ts}"
    status, _, body = raw_call(v.rest_url, "GET", "/api/v3/openOrders",
                               query=f"{query}&signature={sign(query, SECRET)}",
                               headers={"X-MBX-APIKEY": KEY})
    assert (status, body["code"]) == (400, -1101)
    status, _, body = signed(v.rest_url, "GET", "/api/v3/account", {"colour": "red"})
    assert (status, body["code"]) == (400, -1104)


def test_test_order_validates_without_trading(v: Venue) -> None:
    status, _, body = signed(v.rest_url, "POST", "/api/v3/order/test", ORDER)
    assert (status, body) == (200, {})
    status, _, body = signed(v.rest_url, "POST", "/api/v3/order/test",
                             {**ORDER, "computeCommissionRates": "true"})
    assert status == 200
    assert body["standardCommissionForOrder"] == {"maker": "0.00100000", "taker": "0.00100000"}
    status, _, body = signed(v.rest_url, "POST", "/api/v3/order/test",
                             {**ORDER, "quantity": "0.000001"})
    assert (status, body) == (400, {"code": -1013, "msg": "Filter failure: LOT_SIZE"})
    assert v.orders() == []  # nothing reached the matching engine


def test_weights_and_order_count_headers(v: Venue) -> None:
    _, h1, _ = signed(v.rest_url, "GET", "/api/v3/account")
    _, h2, _ = signed(v.rest_url, "GET", "/api/v3/account")
    assert int(h2["X-MBX-USED-WEIGHT-1M"]) - int(h1["X-MBX-USED-WEIGHT-1M"]) == 20
    _, h3, _ = signed(v.rest_url, "GET", "/api/v3/openOrders")
    assert int(h3["X-MBX-USED-WEIGHT-1M"]) - int(h2["X-MBX-USED-WEIGHT-1M"]) == 80
    counts = []
    for _ in range(2):
        status, headers, body = signed(v.rest_url, "POST", "/api/v3/order",
                                       {**ORDER, "price": "40000", "quantity": "0.001"})
        assert status == 200, body
        counts.append(int(headers["X-MBX-ORDER-COUNT-10S"]))
        assert int(headers["X-MBX-ORDER-COUNT-1D"]) >= counts[-1]
    assert counts[1] == counts[0] + 1


def test_order_rate_limit_per_account(make_venue: Any) -> None:
    v = make_venue(**TRADING, start_paused=True)
    order = {**ORDER, "price": "40000", "quantity": "0.001"}
    for i in range(100):
        status, headers, body = signed(v.rest_url, "POST", "/api/v3/order", order)
        assert status == 200 and headers["X-MBX-ORDER-COUNT-10S"] == str(i + 1), body
    status, headers, body = signed(v.rest_url, "POST", "/api/v3/order", order)
    assert (status, body) == (429, {"code": -1015, "msg": "Too many new orders; current limit "
                                                          "is 100 orders per 10 SECOND."})
    assert "Retry-After" not in headers and len(v.orders()) == 100
    assert signed(v.rest_url, "GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"})[0] == 200


def test_user_stream_endpoints_need_only_the_key(v: Venue) -> None:
    headers = {"X-MBX-APIKEY": KEY}
    status, _, body = raw_call(v.rest_url, "POST", "/api/v3/userDataStream", headers=headers)
    assert status == 200 and len(body["listenKey"]) == 60 and body["listenKey"].isalnum()
    lk = body["listenKey"]
    _, _, again = raw_call(v.rest_url, "POST", "/api/v3/userDataStream", headers=headers)
    assert again == {"listenKey": lk}  # one active key per account, extended
    assert raw_call(v.rest_url, "PUT", "/api/v3/userDataStream", query=f"listenKey={lk}",
                    headers=headers)[:3:2] == (200, {})
    status, _, body = raw_call(v.rest_url, "PUT", "/api/v3/userDataStream",
                               body="listenKey=" + "x" * 60, headers=headers)
    assert (status, body) == (400, {"code": -1125, "msg": "This listenKey does not exist."})
    assert raw_call(v.rest_url, "DELETE", "/api/v3/userDataStream", body=f"listenKey={lk}",
                    headers=headers)[:3:2] == (200, {})
    status, _, body = raw_call(v.rest_url, "DELETE", "/api/v3/userDataStream",
                               query=f"listenKey={lk}", headers=headers)
    assert (status, body["code"]) == (400, -1125)
    status, _, body = raw_call(v.rest_url, "POST", "/api/v3/userDataStream")
    assert (status, body["code"]) == (401, -2014)


def test_a_venue_without_keys_refuses_all_trading(make_venue: Any) -> None:
    plain = make_venue(api_keys={})
    status, _, body = signed(plain.rest_url, "GET", "/api/v3/account")
    assert (status, body["code"]) == (401, -2015)
    status, _, body = raw_call(plain.rest_url, "POST", "/api/v3/userDataStream",
                               headers={"X-MBX-APIKEY": KEY})
    assert (status, body["code"]) == (401, -2015)
    status, _, body = raw_call(plain.rest_url, "POST", "/api/v3/klines")
    assert (status, body["code"]) == (405, -1000)  # public endpoints: GET only, as before
