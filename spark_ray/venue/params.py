"""Binance REST request parameters: the checks and error objects every endpoint shares.

Validation follows Binance: a missing mandatory parameter is -1102, bad characters -1100, too
much precision -1111, an unknown symbol -1121, unknown parameters -1104, a bad time range -1023;
each a :class:`RestError` with Binance's message and HTTP status. Used by the public endpoints
(:mod:`~spark_ray.venue.rest`) and the signed ones (:mod:`~spark_ray.venue.signed`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from spark_ray.venue.accounts import E8

LONG_RE = re.compile(r"^[0-9]{1,20}$")
_SYMBOL_RE = re.compile(r"^[A-Z0-9-_.]{1,20}$")
_DECIMAL_RE = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_DECIMAL_RANGE = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"


class RestError(Exception):
    """A Binance error object: {"code": code, "msg": msg} with an HTTP status."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status


@dataclass(frozen=True)
class RestAnswer:
    status: int
    body: bytes


Params = Mapping[str, str]


def mandatory_param(params: Params, name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise RestError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, "
                               "or malformed.")
    return value


def long_param(params: Params, name: str, *, mandatory: bool = False) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        if mandatory:
            mandatory_param(params, name)
        return None
    if not LONG_RE.match(value):
        raise RestError(-1100, f"Illegal characters found in parameter '{name}'; legal range is "
                               "'^[0-9]{1,20}$'.")
    return int(value)


def limit_param(params: Params, default: int, maximum: int) -> int:
    limit = long_param(params, "limit")
    if limit is None:
        return default
    if limit < 1:
        raise RestError(-1130, "Data sent for parameter 'limit' is not valid.")
    return min(limit, maximum)


def symbol_param(specs: Mapping[str, object], params: Params) -> str:
    symbol = mandatory_param(params, "symbol")
    if not _SYMBOL_RE.match(symbol):
        raise RestError(-1100, "Illegal characters found in parameter 'symbol'; legal range is "
                               "'^[A-Z0-9-_.]{1,20}$'.")
    if symbol not in specs:
        raise RestError(-1121, "Invalid symbol.")
    return symbol


def check_known(params: Params, allowed: Sequence[str]) -> None:
    unknown = [k for k in params if k not in allowed]
    if unknown:
        read = len(params) - len(unknown)
        raise RestError(-1104, f"Not all sent parameters were read; read '{read}' parameter(s) "
                               f"but was sent '{len(params)}'.")


def time_range(params: Params) -> tuple[int | None, int | None]:
    start = long_param(params, "startTime")
    end = long_param(params, "endTime")
    if start is not None and end is not None and start > end:
        raise RestError(-1023, "Start time is greater than end time.")
    return start, end


def decimal_param(params: Params, name: str) -> int | None:
    """A DECIMAL parameter in 1e-8 units; None when absent. -1100 bad text, -1111 precision."""
    value = params.get(name)
    if value is None or value == "":
        return None
    if not _DECIMAL_RE.match(value):
        raise RestError(-1100, f"Illegal characters found in parameter '{name}'; legal range is "
                               f"'{_DECIMAL_RANGE}'.")
    scaled = Decimal(value) * E8
    if scaled != scaled.to_integral_value():
        raise RestError(-1111, f"Parameter '{name}' has too much precision.")
    return int(scaled)


def enum_param(params: Params, name: str, allowed: tuple[str, ...], default: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        return default
    if value not in allowed:
        raise RestError(-1100, f"Illegal characters found in parameter '{name}'; legal range is "
                               f"'{', '.join(allowed)}'.")
    return value


def not_sent(params: Params, *names: str) -> None:
    for n in names:
        if params.get(n) not in (None, ""):
            raise RestError(-1106, f"Parameter '{n}' sent when not required.")


def bool_param(params: Params, name: str) -> bool:
    value = params.get(name)
    if value in (None, "", "false", "FALSE", "False"):
        return False
    if value in ("true", "TRUE", "True"):
        return True
    raise RestError(-1130, f"Data sent for parameter '{name}' is not valid.")
