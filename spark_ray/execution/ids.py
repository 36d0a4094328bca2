"""Deterministic client order ids: one id per intent, so a retried submit cannot place a second
order.

An *intent* is one decision of one strategy on one bar: "on the 12:00:05 bar, order #0 of this
executor's sma_cross(fast=2, slow=3) buys BTCUSDT". Its client order id is a pure function of the
executor's strategy key, the symbol, the bar's open time and the intent's sequence number within
that bar; a retry after a timeout, a replay after a crash, or a second decision of the same bar
after a restart all produce the same id, and the journal and the venue both refuse a second
order under it. The id is readable (``sr-<key>-<bar>-<seq>``) and matches Binance's
``^[a-zA-Z0-9-_]{1,36}$``.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

CID_RE = re.compile(r"^[a-zA-Z0-9-_]{1,36}$")
PREFIX = "sr"
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def base36(n: int) -> str:
    if n < 0:
        raise ValueError(f"base36 of a negative number: {n}")
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _DIGITS[r] + out
        if n == 0:
            return out


def strategy_key(executor: str, strategy: str, params: dict[str, Any]) -> str:
    """8 hex chars naming (executor, strategy, params): ids of two executors never collide."""
    blob = json.dumps([executor, strategy, params], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:8]


def client_order_id(key: str, symbol: str, bar_time_ms: int, seq: int, tag: str = "") -> str:
    """The id of intent ``seq`` (``tag`` ``F`` for a flatten) of ``symbol``'s bar at
    ``bar_time_ms``. The symbol enters through a 2-char hash so the id stays short."""
    sym = hashlib.sha256(symbol.encode()).hexdigest()[:2]
    cid = f"{PREFIX}-{key}-{sym}{base36(bar_time_ms)}-{tag}{seq}"
    if not CID_RE.match(cid):
        raise ValueError(f"client order id {cid!r} does not match {CID_RE.pattern}")
    return cid


def is_ours(cid: str, key: str) -> bool:
    """True for ids this executor (same strategy key) generated."""
    return cid.startswith(f"{PREFIX}-{key}-")
