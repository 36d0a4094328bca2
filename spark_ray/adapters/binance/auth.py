"""Binance SIGNED-endpoint authentication, shared by the venue (verifies) and the broker (signs).

Binance signs ``totalParams`` = the query string followed by the request body, with
HMAC-SHA256 keyed by the API secret, hex encoded, sent as the ``signature`` parameter; the key
travels in the ``X-MBX-APIKEY`` header. One definition here keeps both sides byte-compatible.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

API_KEY_HEADER = "X-MBX-APIKEY"
DEFAULT_RECV_WINDOW_MS = 5_000
MAX_RECV_WINDOW_MS = 60_000


def sign(total_params: str, secret: str) -> str:
    """Hex HMAC-SHA256 of ``total_params`` (query string + body) keyed by ``secret``."""
    return hmac.new(secret.encode(), total_params.encode(), hashlib.sha256).hexdigest()


def signed_query(params: Mapping[str, Any], secret: str, *, timestamp_ms: int | None = None,
                 recv_window_ms: int | None = DEFAULT_RECV_WINDOW_MS) -> str:
    """``params`` + ``timestamp`` (+ ``recvWindow``) url-encoded, with ``signature`` last."""
    items = [(k, _text(v)) for k, v in params.items() if v is not None]
    if recv_window_ms is not None:
        items.append(("recvWindow", str(recv_window_ms)))
    items.append(("timestamp", str(timestamp_ms if timestamp_ms is not None
                                   else int(time.time() * 1000))))
    query = urlencode(items)
    return f"{query}&signature={sign(query, secret)}"


def verify(total_params_without_signature: str, signature: str, secret: str) -> bool:
    """Constant-time check of a received signature."""
    return hmac.compare_digest(sign(total_params_without_signature, secret), signature.lower())


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):  # shortest exact decimal, never scientific notation (1e-08)
        text = format(Decimal(repr(v)), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    return str(v)
