"""Binance spot SIGNED (TRADE, USER_DATA) and USER_STREAM REST endpoints of the venue.

Pure request -> answer functions over a :class:`TradingDesk`; the server adds rate limits,
faults and WebSocket delivery. Follows the Binance spot REST docs:

- Parameters arrive in the query string and/or an ``application/x-www-form-urlencoded`` body
  (the query string wins when both carry one). ``signature`` = hex HMAC-SHA256 of the query
  string followed by the body (without the signature itself), keyed by the API secret; checked
  with the shared :mod:`spark_ray.adapters.binance.auth`. The key travels in ``X-MBX-APIKEY``.
- Checks in this order: key missing/malformed -2014 (401), unknown key -2015 (401), signature
  missing -1102, ``timestamp`` missing -1102, ``recvWindow`` > 60000 -1102, bad signature -1022,
  then timing: rejected with -1021 unless ``timestamp < serverTime + 1000`` and
  ``serverTime - timestamp <= recvWindow`` (default 5000). serverTime is the wall clock, or the
  market clock of ``/api/v3/time`` (either passes): a client that syncs its clock with
  ``/api/v3/time`` and one that uses its own both work, even when a replayed or paused market
  runs behind the wall clock. For a live synthetic market at speed 1 the two agree.
- Every error is ``{"code": -NNNN, "msg": "..."}`` with Binance's message and HTTP status
  (400; 401 for key problems; 429 for the order rate limit).
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from urllib.parse import parse_qsl

from spark_ray.adapters.binance.auth import (
    API_KEY_HEADER,
    DEFAULT_RECV_WINDOW_MS,
    MAX_RECV_WINDOW_MS,
    verify,
)
from spark_ray.venue.exchange_info import ORDER_LIMIT_10S, ORDER_LIMIT_DAY
from spark_ray.venue.formats import dumps, rest_error
from spark_ray.venue.orders import NewOrder
from spark_ray.venue.params import (
    Params,
    RestAnswer,
    RestError,
    bool_param,
    check_known,
    decimal_param,
    enum_param,
    limit_param,
    long_param,
    mandatory_param,
    not_sent,
    symbol_param,
    time_range,
)
from spark_ray.venue.trading import TradingDesk, wall_ms
from spark_ray.venue.userstream import ListenKeys

_KEY_RE = re.compile(r"^[A-Za-z0-9]{1,128}$")
_CLIENT_ID_RE = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
_CLIENT_ID_RANGE = r"^[\.A-Z\:/a-z0-9_-]{1,36}$"
_ALL_TYPES = ("LIMIT", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT",
              "TAKE_PROFIT_LIMIT", "LIMIT_MAKER")
_STP_MODES = ("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT")
_AUTH = ("recvWindow", "timestamp", "signature")
_ORDER_PARAMS = ("symbol", "side", "type", "timeInForce", "quantity", "quoteOrderQty", "price",
                 "newClientOrderId", "strategyId", "strategyType", "stopPrice", "trailingDelta",
                 "icebergQty", "newOrderRespType", "selfTradePreventionMode", *_AUTH)
ORDER_PATH = "/api/v3/order"
STREAM_PATH = "/api/v3/userDataStream"


class Security(Enum):
    SIGNED = "SIGNED"  # TRADE and USER_DATA: key + signature + timestamp
    USER_STREAM = "USER_STREAM"  # key only


@dataclass(frozen=True)
class SignedRequest:
    """Parameters of one request, and what the signature was computed over."""

    params: dict[str, str]
    total: str  # query string + body, without the signature parameter
    duplicate: str | None = None


def parse_request(raw_query: str, body: str) -> SignedRequest:
    """Merge query-string and body parameters (query wins) and rebuild Binance's totalParams."""
    params: dict[str, str] = {}
    duplicate = None
    for k, v in parse_qsl(raw_query, keep_blank_values=True):
        if k in params:
            duplicate = k
        params[k] = v
    seen_body: set[str] = set()
    for k, v in parse_qsl(body, keep_blank_values=True):
        if k in seen_body:
            duplicate = k
        seen_body.add(k)
        params.setdefault(k, v)
    total = _strip_signature(raw_query) + _strip_signature(body)
    return SignedRequest(params, total, duplicate)


def _strip_signature(raw: str) -> str:
    return "&".join(p for p in raw.split("&") if not p.startswith("signature="))


def parse_new_order(desk: TradingDesk, params: Params) -> NewOrder:
    """Validate POST /api/v3/order parameters (the -11xx checks) into a :class:`NewOrder`."""
    check_known(params, _ORDER_PARAMS)
    symbol = symbol_param(desk.specs, params)
    side = mandatory_param(params, "side")
    if side not in ("BUY", "SELL"):
        raise RestError(-1117, "Invalid side.")
    otype = mandatory_param(params, "type")
    if otype not in _ALL_TYPES:
        raise RestError(-1116, "Invalid orderType.")
    if otype not in ("LIMIT", "MARKET", "LIMIT_MAKER"):
        raise RestError(-1014, "Unsupported order combination.")
    for unsupported in ("stopPrice", "trailingDelta", "icebergQty"):
        if params.get(unsupported) not in (None, ""):
            raise RestError(-1014, "Unsupported order combination.")
    tif = params.get("timeInForce")
    if otype == "LIMIT":
        tif = mandatory_param(params, "timeInForce")
        if tif not in ("GTC", "IOC", "FOK"):
            raise RestError(-1115, "Invalid timeInForce.")
    elif tif not in (None, ""):
        raise RestError(-1114, "TimeInForce parameter sent when not required.")
    qty = decimal_param(params, "quantity")
    quote = decimal_param(params, "quoteOrderQty")
    price = decimal_param(params, "price")
    if otype == "MARKET":
        not_sent(params, "price")
        if qty is None and quote is None:
            raise RestError(-1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both "
                                   "were empty/null!")
        if qty is not None and quote is not None:
            raise RestError(-1106, "Parameter 'quoteOrderQty' sent when not required.")
    else:
        mandatory_param(params, "quantity")
        mandatory_param(params, "price")
        not_sent(params, "quoteOrderQty")
    client_id = params.get("newClientOrderId")
    if client_id is not None and not _CLIENT_ID_RE.match(client_id):
        raise RestError(-1100, "Illegal characters found in parameter 'newClientOrderId'; legal "
                               f"range is '{_CLIENT_ID_RANGE}'.")
    resp_default = "FULL" if otype in ("MARKET", "LIMIT") else "ACK"
    resp = enum_param(params, "newOrderRespType", ("ACK", "RESULT", "FULL"), resp_default)
    stp = enum_param(params, "selfTradePreventionMode", _STP_MODES, "EXPIRE_MAKER")
    long_param(params, "strategyId")
    strategy_type = long_param(params, "strategyType")
    if strategy_type is not None and strategy_type < 1_000_000:
        raise RestError(-1134, "`strategyType` was less than 1000000.")
    return NewOrder(symbol=symbol, side=side, type=otype, time_in_force=tif or "GTC", qty=qty,
                    quote_qty=quote, price=price, client_order_id=client_id, resp_type=resp,
                    stp=stp)


def _order_ref(params: Params) -> tuple[int | None, str | None]:
    order_id = long_param(params, "orderId")
    client_id = params.get("origClientOrderId") or None
    if order_id is None and client_id is None:
        raise RestError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both "
                               "were empty/null!")
    return order_id, client_id


@dataclass
class _OrderCount:
    window: deque[float] = field(default_factory=deque)
    day: int = -1
    day_count: int = 0


Handler = Callable[["SignedApi", str, Params], Any]


class SignedApi:
    """The trading endpoints: authenticate, then answer from the desk."""

    def __init__(self, desk: TradingDesk, listen_keys: ListenKeys, *,
                 wall: Callable[[], int] = wall_ms,
                 market_clock: Callable[[], int] | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.desk = desk
        self.listen_keys = listen_keys
        self.wall = wall
        self.market_clock = market_clock
        self.monotonic = monotonic
        self._orders: dict[str, _OrderCount] = {}

    @staticmethod
    def handles(path: str) -> bool:
        return path in PATHS

    @staticmethod
    def weight(method: str, path: str, params: Params) -> int:
        """Request weight (Binance spot, current values)."""
        if path == "/api/v3/openOrders" and method == "GET":
            return 6 if params.get("symbol") else 80
        if path == "/api/v3/myTrades":
            return 5 if params.get("orderId") else 20
        if path == "/api/v3/order/test" and _truthy(params.get("computeCommissionRates")):
            return 20
        return WEIGHTS.get((method, path), 1)

    # --- auth ---------------------------------------------------------------------------
    def authenticate(self, method: str, path: str, req: SignedRequest,
                     headers: Mapping[str, str]) -> str:
        """The caller's API key, or RestError with Binance's code and HTTP status."""
        route = ROUTES.get((method, path))
        if route is None:
            raise RestError(-1000, "Method not allowed.", status=405)
        key = headers.get(API_KEY_HEADER, "")
        if not key or not _KEY_RE.match(key):
            raise RestError(-2014, "API-key format invalid.", status=401)
        secret = self.desk.secrets.get(key)
        if secret is None:
            raise RestError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)
        if req.duplicate is not None:
            raise RestError(-1101, f"Duplicate values for parameter '{req.duplicate}'.")
        if route[0] is Security.USER_STREAM:
            return key
        params = req.params
        signature = mandatory_param(params, "signature")
        timestamp = long_param(params, "timestamp", mandatory=True)
        assert timestamp is not None  # nosec B101  # mandatory=True already raised if absent
        recv_window = long_param(params, "recvWindow")
        if recv_window is None:
            recv_window = DEFAULT_RECV_WINDOW_MS
        if recv_window > MAX_RECV_WINDOW_MS:
            raise RestError(-1102, f"'recvWindow' contains unexpected value. Cannot be greater "
                                   f"than '{MAX_RECV_WINDOW_MS}'.")
        if not verify(req.total, signature, secret):
            raise RestError(-1022, "Signature for this request is not valid.")
        late = _too_late(timestamp, self.wall(), recv_window)
        if late is not None and self.market_clock is not None \
                and _too_late(timestamp, self.market_clock(), recv_window) is None:
            late = None
        if late is not None:
            raise RestError(-1021, late)
        return key

    def count_order(self, key: str) -> dict[str, str]:
        """Count a new order against the account's ORDERS limits; the X-MBX-ORDER-COUNT headers.
        Past a limit: 429 with -1015 (no Retry-After, as on Binance)."""
        c = self._orders.setdefault(key, _OrderCount())
        now = self.monotonic()
        while c.window and c.window[0] <= now - 10.0:
            c.window.popleft()
        day = self.wall() // 86_400_000
        if day != c.day:
            c.day, c.day_count = day, 0
        if len(c.window) >= ORDER_LIMIT_10S:
            raise RestError(-1015, f"Too many new orders; current limit is {ORDER_LIMIT_10S} "
                                   "orders per 10 SECOND.", status=429)
        if c.day_count >= ORDER_LIMIT_DAY:
            raise RestError(-1015, f"Too many new orders; current limit is {ORDER_LIMIT_DAY} "
                                   "orders per DAY.", status=429)
        c.window.append(now)
        c.day_count += 1
        return {"X-MBX-ORDER-COUNT-10S": str(len(c.window)),
                "X-MBX-ORDER-COUNT-1D": str(c.day_count)}

    # --- answering ----------------------------------------------------------------------
    def answer(self, method: str, path: str, params: Params, key: str) -> RestAnswer:
        """Run an authenticated request; Binance error objects for bad input."""
        route = ROUTES.get((method, path))
        if route is None:
            return RestAnswer(405, rest_error(-1000, "Method not allowed."))
        try:
            return RestAnswer(200, dumps(route[1](self, key, params)))
        except RestError as e:
            return RestAnswer(e.status, rest_error(e.code, e.msg))

    # --- endpoints ----------------------------------------------------------------------
    def new_order(self, key: str, params: Params) -> Any:
        req = parse_new_order(self.desk, params)
        return self.desk.place(key, req).body(req.resp_type)

    def test_order(self, key: str, params: Params) -> Any:
        extra = {k: v for k, v in params.items() if k != "computeCommissionRates"}
        req = parse_new_order(self.desk, extra)
        self.desk.check(req)
        if bool_param(params, "computeCommissionRates"):
            return self.desk.commission_rates(key)
        return {}

    def query_order(self, key: str, params: Params) -> Any:
        check_known(params, ("symbol", "orderId", "origClientOrderId", *_AUTH))
        symbol = symbol_param(self.desk.specs, params)
        order_id, client_id = _order_ref(params)
        order = self.desk.find(key, symbol, order_id, client_id)
        if order is None:
            raise RestError(-2013, "Order does not exist.")
        return order.query()

    def cancel_order(self, key: str, params: Params) -> Any:
        check_known(params, ("symbol", "orderId", "origClientOrderId", "newClientOrderId",
                              "cancelRestrictions", *_AUTH))
        symbol = symbol_param(self.desk.specs, params)
        order_id, client_id = _order_ref(params)
        new_id = params.get("newClientOrderId") or None
        if new_id is not None and not _CLIENT_ID_RE.match(new_id):
            raise RestError(-1100, "Illegal characters found in parameter 'newClientOrderId'; "
                                   f"legal range is '{_CLIENT_ID_RANGE}'.")
        restrictions = params.get("cancelRestrictions") or None
        if restrictions not in (None, "ONLY_NEW", "ONLY_PARTIALLY_FILLED"):
            raise RestError(-1145, "`cancelRestrictions` has to be either `ONLY_NEW` or "
                                   "`ONLY_PARTIALLY_FILLED`.")
        order, cancel_id, now = self.desk.cancel(key, symbol, order_id, client_id, new_id,
                                                 restrictions)
        return order.canceled(now, cancel_id)

    def cancel_all(self, key: str, params: Params) -> Any:
        check_known(params, ("symbol", *_AUTH))
        symbol = symbol_param(self.desk.specs, params)
        orders = self.desk.open_orders(key, symbol)
        if not orders:
            raise RestError(-2011, "Unknown order sent.")
        out = []
        for o in orders:
            order, cancel_id, now = self.desk.cancel(key, symbol, o.order_id, None)
            out.append(order.canceled(now, cancel_id))
        return out

    def open_orders(self, key: str, params: Params) -> Any:
        check_known(params, ("symbol", *_AUTH))
        symbol = symbol_param(self.desk.specs, params) if params.get("symbol") else None
        return [o.query() for o in self.desk.open_orders(key, symbol)]

    def all_orders(self, key: str, params: Params) -> Any:
        check_known(params, ("symbol", "orderId", "startTime", "endTime", "limit", *_AUTH))
        symbol = symbol_param(self.desk.specs, params)
        order_id = long_param(params, "orderId")
        start, end = time_range(params)
        if start is not None and end is not None and end - start > 86_400_000:
            raise RestError(-1127, "More than 24 hours between startTime and endTime.")
        limit = limit_param(params, 500, 1000)
        return [o.query() for o in self.desk.all_orders(key, symbol, order_id, start, end, limit)]

    def account(self, key: str, params: Params) -> Any:
        check_known(params, ("omitZeroBalances", *_AUTH))
        return self.desk.account_info(key, omit_zero=bool_param(params, "omitZeroBalances"))

    def margin_pairs(self, key: str, params: Params) -> Any:
        """Cross and isolated margin pairs: none, the venue is spot only. Answered (not 404) because
        ccxt's Binance class lists them while loading markets whenever it holds an API key."""
        check_known(params, ("symbol", *_AUTH))
        return []

    def my_trades(self, key: str, params: Params) -> Any:
        check_known(params, ("symbol", "orderId", "startTime", "endTime", "fromId", "limit",
                              *_AUTH))
        symbol = symbol_param(self.desk.specs, params)
        order_id = long_param(params, "orderId")
        from_id = long_param(params, "fromId")
        start, end = time_range(params)
        if from_id is not None and (start is not None or end is not None):
            raise RestError(-1128, "Combination of optional parameters invalid.")
        if start is not None and end is not None and end - start > 86_400_000:
            raise RestError(-1127, "More than 24 hours between startTime and endTime.")
        limit = limit_param(params, 500, 1000)
        spec = self.desk.specs[symbol]
        return [f.row(spec) for f in self.desk.my_trades(
            key, symbol, order_id=order_id, from_id=from_id, start=start, end=end, limit=limit)]

    def stream_start(self, key: str, params: Params) -> Any:
        check_known(params, ())
        return {"listenKey": self.listen_keys.create(key, self.monotonic())}

    def stream_keepalive(self, key: str, params: Params) -> Any:
        check_known(params, ("listenKey",))
        listen_key = mandatory_param(params, "listenKey")
        if not self.listen_keys.keepalive(listen_key, key, self.monotonic()):
            raise RestError(-1125, "This listenKey does not exist.")
        return {}

    def stream_close(self, key: str, params: Params) -> Any:
        check_known(params, ("listenKey",))
        listen_key = mandatory_param(params, "listenKey")
        if not self.listen_keys.close(listen_key, key):
            raise RestError(-1125, "This listenKey does not exist.")
        return {}


def _too_late(timestamp: int, server_time: int, recv_window: int) -> str | None:
    """Binance's timing rule; the -1021 message when the request is not in its window."""
    if timestamp >= server_time + 1000:
        return "Timestamp for this request was 1000ms ahead of the server's time."
    if server_time - timestamp > recv_window:
        return "Timestamp for this request is outside of the recvWindow."
    return None


def _truthy(value: str | None) -> bool:
    return value in ("true", "TRUE", "True")


ROUTES: dict[tuple[str, str], tuple[Security, Handler]] = {
    ("POST", ORDER_PATH): (Security.SIGNED, SignedApi.new_order),
    ("POST", "/api/v3/order/test"): (Security.SIGNED, SignedApi.test_order),
    ("GET", ORDER_PATH): (Security.SIGNED, SignedApi.query_order),
    ("DELETE", ORDER_PATH): (Security.SIGNED, SignedApi.cancel_order),
    ("GET", "/api/v3/openOrders"): (Security.SIGNED, SignedApi.open_orders),
    ("DELETE", "/api/v3/openOrders"): (Security.SIGNED, SignedApi.cancel_all),
    ("GET", "/api/v3/allOrders"): (Security.SIGNED, SignedApi.all_orders),
    ("GET", "/api/v3/account"): (Security.SIGNED, SignedApi.account),
    ("GET", "/api/v3/myTrades"): (Security.SIGNED, SignedApi.my_trades),
    ("GET", "/sapi/v1/margin/allPairs"): (Security.SIGNED, SignedApi.margin_pairs),
    ("GET", "/sapi/v1/margin/isolated/allPairs"): (Security.SIGNED, SignedApi.margin_pairs),
    ("POST", STREAM_PATH): (Security.USER_STREAM, SignedApi.stream_start),
    ("PUT", STREAM_PATH): (Security.USER_STREAM, SignedApi.stream_keepalive),
    ("DELETE", STREAM_PATH): (Security.USER_STREAM, SignedApi.stream_close),
}
PATHS = frozenset(path for _, path in ROUTES)
WEIGHTS: dict[tuple[str, str], int] = {
    ("POST", ORDER_PATH): 1,
    ("POST", "/api/v3/order/test"): 1,
    ("GET", ORDER_PATH): 4,
    ("DELETE", ORDER_PATH): 1,
    ("DELETE", "/api/v3/openOrders"): 1,
    ("GET", "/api/v3/allOrders"): 20,
    ("GET", "/api/v3/account"): 20,
    ("POST", STREAM_PATH): 2,
    ("PUT", STREAM_PATH): 2,
    ("DELETE", STREAM_PATH): 2,
}
