"""Binance request-parameter checks as plain functions: each failure is Binance's code."""

from __future__ import annotations

import pytest

from spark_ray.venue.params import (
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


def _code(fn: object, *args: object, **kw: object) -> int:
    with pytest.raises(RestError) as e:
        fn(*args, **kw)
    return e.value.code


def test_each_check_answers_with_binances_code() -> None:
    specs = {"BTCUSDT": object()}
    assert mandatory_param({"side": "BUY"}, "side") == "BUY"
    assert _code(mandatory_param, {"side": ""}, "side") == -1102
    assert long_param({}, "fromId") is None and long_param({"fromId": "7"}, "fromId") == 7
    assert _code(long_param, {"fromId": "-7"}, "fromId") == -1100
    assert _code(long_param, {}, "timestamp", mandatory=True) == -1102
    assert limit_param({}, 500, 1000) == 500 and limit_param({"limit": "5000"}, 500, 1000) == 1000
    assert _code(limit_param, {"limit": "0"}, 500, 1000) == -1130
    assert symbol_param(specs, {"symbol": "BTCUSDT"}) == "BTCUSDT"
    assert _code(symbol_param, specs, {"symbol": "btc usdt"}) == -1100
    assert _code(symbol_param, specs, {"symbol": "ETHUSDT"}) == -1121
    check_known({"symbol": "X"}, ("symbol", "limit"))
    assert _code(check_known, {"symbol": "X", "limt": "5"}, ("symbol", "limit")) == -1104
    assert time_range({"startTime": "1", "endTime": "2"}) == (1, 2)
    assert _code(time_range, {"startTime": "2", "endTime": "1"}) == -1023
    assert decimal_param({"price": "1.5"}, "price") == 150_000_000
    assert _code(decimal_param, {"price": "1,5"}, "price") == -1100
    assert _code(decimal_param, {"price": "0.000000001"}, "price") == -1111
    assert enum_param({}, "newOrderRespType", ("ACK", "FULL"), "FULL") == "FULL"
    assert _code(enum_param, {"newOrderRespType": "X"}, "newOrderRespType", ("ACK",), "ACK") \
        == -1100
    assert _code(not_sent, {"price": "1"}, "price") == -1106
    assert bool_param({"omitZeroBalances": "true"}, "omitZeroBalances") is True
    assert bool_param({}, "omitZeroBalances") is False
    assert _code(bool_param, {"omitZeroBalances": "yes"}, "omitZeroBalances") == -1130
