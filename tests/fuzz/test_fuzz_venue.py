"""Fuzzing the venue simulator (aiohttp, one port): every route with random methods, paths,
query strings, headers and bodies; signed trading calls with random (validly signed) parameters;
raw malformed HTTP on a plain socket; random WebSocket messages to the Binance and BTCTurk
handlers. Each run: no 5xx, no hang (socket timeouts), the venue still serves afterwards, and
its log has at most one line per bad request and no traceback."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import websockets.exceptions
from hypothesis import given
from hypothesis import strategies as st
from websockets.sync.client import connect

from spark_ray.adapters.binance.auth import sign
from spark_ray.venue import Venue
from spark_ray.venue.ratelimit import RateLimitConfig

from fuzz_helpers import (
    BODIES,
    CONTENT_TYPES,
    HEADERS,
    JSON,
    JSON_CTYPES,
    METHODS,
    NUMBERS,
    QUERY,
    RAW_BAD,
    SEGMENT,
    Tally,
    exchange,
    fuzz_settings,
    get_json,
    mutation_bodies,
    recorded_log,
    request,
    run_checked,
    truncated,
)

KEY, SECRET = "fuzzKey1", "fuzzSecret1"  # test-only credentials of this venue
ROUTES = [
    "/api/v3/ping", "/api/v3/time", "/api/v3/exchangeInfo", "/api/v3/depth", "/api/v3/trades",
    "/api/v3/historicalTrades", "/api/v3/aggTrades", "/api/v3/klines", "/api/v3/uiKlines",
    "/api/v3/avgPrice", "/api/v3/ticker/24hr", "/api/v3/ticker/price",
    "/api/v3/ticker/bookTicker", "/api/v3/ticker", "/api/v3/order", "/api/v3/order/test",
    "/api/v3/openOrders", "/api/v3/allOrders", "/api/v3/account", "/api/v3/myTrades",
    "/api/v3/userDataStream", "/sapi/v1/margin/allPairs", "/sapi/v1/margin/isolated/allPairs",
    "/btcturk/api/v2/server/exchangeinfo", "/btcturk/api/v2/ticker", "/btcturk/api/v2/orderbook",
    "/btcturk/api/v2/trades", "/btcturk/v1/klines/history", "/btcturk/v1/ohlcs",
    "/admin/status", "/admin/connections", "/admin/faults", "/admin/faults/1", "/admin/fault-log",
    "/admin/ground-truth", "/admin/pause", "/admin/resume", "/admin/server-shutdown",
    "/admin/orders", "/admin/my-trades", "/admin/balances", "/ws", "/stream", "/btcturk", "/",
]
PARAM_NAMES = ["symbol", "symbols", "limit", "interval", "startTime", "endTime", "fromId",
               "pairSymbol", "pair", "resolution", "from", "to", "last", "side", "type",
               "quantity", "quoteOrderQty", "price", "timeInForce", "orderId",
               "origClientOrderId", "newClientOrderId", "listenKey", "format", "key", "windowSize",
               "stopPrice", "icebergQty", "newOrderRespType", "selfTradePreventionMode",
               "recvWindow", "timestamp", "signature", "type", "streams", "timeZone"]
PARAM_VALUES = st.one_of(
    st.sampled_from(["BTCUSDT", "btcusdt", "ETHUSDT", "BTC_USDT", "1m", "1s", "3d", "BUY", "SELL",
                     "LIMIT", "MARKET", "GTC", "IOC", "FOK", "0", "-1", "1e9", "NaN", "inf",
                     "0.00000001", "99999999999999999999999", '["BTCUSDT"]', '["x"', "", "true",
                     "FULL", "ids", "2024-01-01"]),
    st.integers(-2**70, 2**70).map(str),
    st.text(max_size=25),
)
PARAMS = st.lists(st.tuples(st.sampled_from(PARAM_NAMES), PARAM_VALUES), max_size=6)


def _qs(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in pairs)


@pytest.fixture(scope="module")
def venue() -> Iterator[Venue]:
    v = Venue(symbols=("BTCUSDT", "ETHUSDT"), seed=11, trades_per_second=40,
              history_minutes=120, api_keys={KEY: SECRET},
              starting_balances={"USDT": "100000", "BTC": "1"},
              rate_limit=RateLimitConfig(weight_limit=10**9), max_incoming_per_s=50).start()
    yield v
    v.stop()


def assert_serving(v: Venue) -> None:
    """A good request still gets its answer."""
    assert get_json(v.port, "/api/v3/ping")[0] == 200
    status, body = get_json(v.port, "/admin/status", [("X-Admin-Token", v.admin_token or "")])
    assert status == 200 and body["symbols"] == ["BTCUSDT", "ETHUSDT"], body


def _clear_faults(v: Venue) -> None:
    request(v.port, "DELETE", "/admin/faults", [("X-Admin-Token", v.admin_token or "")])
    request(v.port, "POST", "/admin/resume", [("X-Admin-Token", v.admin_token or "")])


def test_every_route_with_random_requests(venue: Venue) -> None:
    tally = Tally()
    token = venue.admin_token or ""

    @fuzz_settings(400)
    @given(method=METHODS, route=st.sampled_from(ROUTES), tail=st.one_of(
        st.just([]), st.just([]), st.lists(SEGMENT, max_size=2)),
           query=st.one_of(PARAMS.map(_qs), QUERY), headers=HEADERS, ctype=CONTENT_TYPES,
           body=BODIES, auth=st.sampled_from(["none", "admin", "wrong", "apikey"]))
    def run(method: str, route: str, tail: list[str], query: str, headers: list[Any],
            ctype: str, body: bytes, auth: str) -> None:
        path = "/".join([route.rstrip("/") or "", *tail]) if tail else route
        hs = list(headers)
        if ctype:
            hs.append(("Content-Type", ctype))
        hs += {"none": [], "admin": [("X-Admin-Token", token)],
               "wrong": [("X-Admin-Token", "x" * 32)], "apikey": [("X-MBX-APIKEY", KEY)]}[auth]
        target = f"{path}?{query}" if query else path
        a = request(venue.port, method, target, hs, body)
        tally.saw(a.status, f"{method} {target} {hs} {body[:100]!r}")
        if a.status is not None and 400 <= a.status < 500 and a.body:
            assert len(a.body) < 100_000  # an error names the problem, briefly
        if route.startswith("/admin/") and auth == "admin" and a.status == 200:
            _clear_faults(venue)  # an injected fault would make later answers 5xx on purpose

    run_checked(run, tally)
    assert_serving(venue)


def test_signed_trading_calls_with_random_parameters(venue: Venue) -> None:
    """Validly signed, so the parameters reach the trading desk's validation."""
    tally = Tally()

    @fuzz_settings(250)
    @given(method=st.sampled_from(["GET", "POST", "DELETE", "PUT"]),
           path=st.sampled_from(["/api/v3/order", "/api/v3/order/test", "/api/v3/openOrders",
                                 "/api/v3/allOrders", "/api/v3/account", "/api/v3/myTrades"]),
           params=PARAMS, in_body=st.booleans(), ts_offset=st.sampled_from([0, 0, -10**6]))
    def run(method: str, path: str, params: list[tuple[str, str]], in_body: bool,
            ts_offset: int) -> None:
        pairs = [(k, v) for k, v in params if k not in ("timestamp", "signature")]
        pairs.append(("timestamp", str(int(time.time() * 1000) + ts_offset)))
        total = _qs(pairs)
        sig = sign(total, SECRET)
        hs = [("X-MBX-APIKEY", KEY)]
        if in_body and method != "GET":
            hs.append(("Content-Type", "application/x-www-form-urlencoded"))
            a = request(venue.port, method, f"{path}?signature={sig}", hs, total.encode())
        else:
            a = request(venue.port, method, f"{path}?{total}&signature={sig}", hs)
        tally.saw(a.status, f"{method} {path} {total}")

    run_checked(run, tally)
    assert_serving(venue)


FAULT_BODIES = mutation_bodies({
    "kind": st.sampled_from(["latency", "gap", "drop", "duplicate", "malformed", "disconnect",
                             "rest_error", "rest_latency", "order_error", "order_timeout",
                             "explode"]),
    "symbol": st.sampled_from(["BTCUSDT", "btcusdt", "NOPE"]), "connection": NUMBERS,
    "streams": st.lists(st.sampled_from(["trade", "depth", "x"]), max_size=2),
    "probability": NUMBERS, "count": NUMBERS, "duration_s": NUMBERS, "delay_ms": NUMBERS,
    "variant": st.text(max_size=10), "size_bytes": NUMBERS, "status": NUMBERS, "path": SEGMENT,
    "close_code": NUMBERS, "interval_s": NUMBERS, "drop_connection": st.booleans(),
    "placed": st.booleans(), "seed": NUMBERS}, required=("kind",))


def test_admin_fault_injection_with_random_bodies(venue: Venue) -> None:
    """With the admin token: the fault spec reaches validation; a bad one is a 400 naming the
    field, a good one is injected (and cleared again)."""
    tally = Tally()
    token = venue.admin_token or ""

    @fuzz_settings(250)
    @given(ctype=JSON_CTYPES, body=FAULT_BODIES)
    def run(ctype: str, body: bytes) -> None:
        hs = [("X-Admin-Token", token)] + ([("Content-Type", ctype)] if ctype else [])
        a = request(venue.port, "POST", "/admin/faults", hs, body)
        tally.saw(a.status, f"POST /admin/faults {ctype} {body[:200]!r}")
        if a.status == 400:
            assert b'"error"' in a.body, a.body[:300]
        elif a.status == 200:
            _clear_faults(venue)

    rec = run_checked(run, tally)
    assert "step failed" not in rec.text() and "housekeeping failed" not in rec.text()
    assert_serving(venue)


def test_raw_malformed_http(venue: Venue) -> None:
    """Over-long request lines and headers, bad header bytes, bad methods and versions, invalid
    Content-Length and chunking, truncated bodies: a 4xx or a closed connection, never a hang."""
    tally = Tally()
    token = venue.admin_token or ""

    @fuzz_settings(200)
    @given(data=st.one_of(RAW_BAD, RAW_BAD, truncated("/admin/faults", [("X-Admin-Token", token)]),
                          truncated("/api/v3/order", [("X-MBX-APIKEY", KEY)])))
    def run(data: bytes) -> None:
        a = exchange(venue.port, data)
        tally.saw(a.status, repr(data[:200]))
        if a.status is not None and a.status >= 400:
            assert a.body.strip(), "a bad request is told what is wrong"

    run_checked(run, tally)
    assert_serving(venue)


def test_a_flood_of_bad_requests_leaves_a_few_log_lines(venue: Venue) -> None:
    """The security report's case: thousands of malformed requests, each a 400; the log keeps a
    handful of one-line entries (rate-limited), not a traceback per request."""
    bad = [b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
           b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
           b"POST /api/v3/order HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
           b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"]
    n = 1000
    with recorded_log() as rec:
        for i in range(n):
            assert exchange(venue.port, bad[i % len(bad)]).status in (400, None)
    assert "Traceback" not in rec.text()
    assert rec.lines <= 12, rec.text()
    assert_serving(venue)


# --- WebSocket --------------------------------------------------------------------------------
STREAM_NAMES = st.one_of(
    st.sampled_from(["btcusdt@trade", "btcusdt@aggTrade", "btcusdt@bookTicker", "btcusdt@ticker",
                     "ethusdt@kline_1m", "btcusdt@depth", "btcusdt@depth5@100ms", "BTCUSDT@trade",
                     "xxxyyy@trade", "btcusdt@kline_7m", "@", "", "a" * 300]),
    st.text(max_size=30))
WS_MESSAGES = st.one_of(
    st.fixed_dictionaries({"method": st.one_of(st.sampled_from(
        ["SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY"]),
        JSON), "params": st.one_of(st.lists(STREAM_NAMES, max_size=4), JSON,
                                   st.lists(JSON, max_size=3)),
        "id": st.one_of(st.integers(-2**70, 2**70), st.text(max_size=40), JSON)}).map(json.dumps),
    JSON.map(json.dumps),
    st.text(max_size=200),
    st.binary(max_size=200),
)
BT_MESSAGES = st.one_of(
    st.fixed_dictionaries({"type": st.one_of(st.just(151), JSON),
                           "channel": st.one_of(st.sampled_from(
                               ["trade", "ticker", "obdiff", "orderbook"]), JSON),
                           "event": st.one_of(st.sampled_from(
                               ["BTCUSDT", "ETHUSDT", "XYZ", "", "a" * 200]), JSON),
                           "join": st.one_of(st.booleans(), JSON)}).map(
        lambda b: json.dumps([151, b])),
    JSON.map(lambda v: json.dumps([151, v])),
    JSON.map(json.dumps),
    st.text(max_size=200),
    st.binary(max_size=200),
)


def _ws(port: int, path: str) -> Any:
    return connect(f"ws://127.0.0.1:{port}{path}", open_timeout=5, close_timeout=2,
                   max_size=2**24, proxy=None)


def _await_reply(ws: Any, needle: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"no reply containing {needle!r}"
        msg = ws.recv(timeout=left)
        if isinstance(msg, str) and needle in msg:
            return


def test_binance_websocket_with_random_paths_and_messages(venue: Venue) -> None:
    tally = Tally()

    @fuzz_settings(120)
    @given(path=st.one_of(
        st.lists(STREAM_NAMES, max_size=3).map(lambda ns: "/ws/" + "/".join(
            quote(n, safe="@") for n in ns)),
        st.lists(STREAM_NAMES, max_size=3).map(lambda ns: "/stream?streams=" + quote(
            "/".join(ns), safe="/@")),
        st.just("/ws")), messages=st.lists(WS_MESSAGES, max_size=3))
    def run(path: str, messages: list[Any]) -> None:
        try:
            ws = _ws(venue.port, path)
        except websockets.exceptions.InvalidStatus as e:
            tally.saw(e.response.status_code, path)
            return
        with ws:
            tally.saw(101, path)
            for m in messages:
                ws.send(m)
                tally.requests += 1
            ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": "fzcheck"}))
            _await_reply(ws, '"fzcheck"')

    run_checked(run, tally)
    assert_serving(venue)


def test_btcturk_websocket_with_random_messages(venue: Venue) -> None:
    tally = Tally()

    @fuzz_settings(120)
    @given(messages=st.lists(BT_MESSAGES, max_size=3), path=st.sampled_from(
        ["/btcturk", "/btcturk?x=1", "/btcturk/"]))
    def run(messages: list[Any], path: str) -> None:
        try:
            ws = _ws(venue.port, path)
        except websockets.exceptions.InvalidStatus as e:
            tally.saw(e.response.status_code, path)
            return
        with ws:
            tally.saw(101, path)
            for m in messages:
                ws.send(m)
                tally.requests += 1
            ws.send(json.dumps([151, {"type": 151, "channel": "fzcheck", "event": "NOPAIR",
                                      "join": False}]))
            _await_reply(ws, "leave|fzcheck:NOPAIR")

    run_checked(run, tally)
    assert_serving(venue)


def _frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True,
           rsv: int = 0) -> bytes:
    """One client frame as bytes, whatever its bits say (bad opcodes, unmasked, RSV set)."""
    b0 = (0x80 if fin else 0) | (rsv & 0x7) << 4 | (opcode & 0x0F)
    n = len(payload)
    head = bytes([b0]) + (bytes([(0x80 if mask else 0) | n]) if n < 126 else
                          bytes([(0x80 if mask else 0) | 126]) + n.to_bytes(2, "big"))
    if not mask:
        return head + payload
    key = b"\x01\x02\x03\x04"
    return head + key + bytes(c ^ key[i % 4] for i, c in enumerate(payload))


RAW_FRAMES = st.lists(st.one_of(
    st.builds(_frame, st.integers(0, 15), st.binary(max_size=200), fin=st.booleans(),
              mask=st.booleans(), rsv=st.integers(0, 7)),
    st.builds(_frame, st.sampled_from([0x1, 0x9, 0x8]), st.binary(max_size=130)),
    st.binary(min_size=1, max_size=40),
), min_size=1, max_size=4).map(b"".join)


def test_raw_websocket_frames(venue: Venue) -> None:
    """Bad opcodes, unmasked frames, RSV bits, invalid UTF-8 text, bad close codes, truncated
    frames: the venue closes or carries on, never hangs, and logs no traceback."""
    from venue_helpers import RawWS

    tally = Tally()

    @fuzz_settings(150)
    @given(path=st.sampled_from(["/ws/btcusdt@trade", "/btcturk", "/stream?streams=btcusdt@depth"]),
           frames=RAW_FRAMES)
    def run(path: str, frames: bytes) -> None:
        ws = RawWS("127.0.0.1", venue.port, path, timeout=5.0)
        try:
            assert ws.status == 101
            tally.saw(101, path)
            with contextlib.suppress(OSError):
                ws.sock.sendall(frames)
                ws.sock.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + 5.0
            with contextlib.suppress(OSError):  # read until the venue closes: no hang
                while ws.sock.recv(1 << 16):
                    assert time.monotonic() < deadline, "the venue kept the connection"
        finally:
            ws.sock.close()

    run_checked(run, tally)
    assert_serving(venue)
