"""Binance market-stream names: parsing and validation (`btcusdt@kline_1m`, `btcusdt@depth@100ms`).

Stream names are lowercase on Binance; anything else is "Invalid request: invalid stream". A
well-formed name for a symbol the venue does not list is accepted and simply stays silent, as on
Binance.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from spark_ray.schemas import INTERVAL_MS

_INTERVALS = "|".join(re.escape(i) for i in INTERVAL_MS)
_STREAM_RE = re.compile(
    r"^(?P<sym>[a-z0-9]{2,20})@(?:"
    r"(?P<trade>trade)|(?P<agg>aggTrade)|(?P<bt>bookTicker)"
    rf"|kline_(?P<interval>{_INTERVALS})"
    r"|depth(?P<levels>5|10|20)?(?:@(?P<speed>100ms|1000ms))?"
    r")$"
)


@dataclass(frozen=True)
class StreamKey:
    """A parsed stream: symbol (upper case), kind and its parameters."""

    name: str
    symbol: str
    kind: str  # trade | aggTrade | kline | depth | bookTicker
    interval: str | None = None
    levels: int | None = None  # partial book depth (5/10/20); None for diff depth
    speed_ms: int = 1000


def parse_stream(name: str) -> StreamKey | None:
    """The stream a name denotes, or None when Binance would call it invalid."""
    m = _STREAM_RE.match(name)
    if m is None:
        return None
    sym = m.group("sym").upper()
    if m.group("trade"):
        return StreamKey(name, sym, "trade")
    if m.group("agg"):
        return StreamKey(name, sym, "aggTrade")
    if m.group("bt"):
        return StreamKey(name, sym, "bookTicker")
    interval = m.group("interval")
    if interval:
        return StreamKey(name, sym, "kline", interval=interval)
    levels = m.group("levels")
    speed = 100 if m.group("speed") == "100ms" else 1000
    return StreamKey(name, sym, "depth", levels=int(levels) if levels else None, speed_ms=speed)
