"""What every venue's frame parser produces: canonical events, columns and dead letters.

An adapter's parser (``spark_ray.adapters.<venue>.websocket``) turns raw WebSocket frames into a
:class:`ParsedBatch`; everything after it (the normalizer, the lake, subscribers) sees only these
types and never a venue's format. Validation is strict at this boundary (types, ranges, the
stream name agreeing with the payload) because everything after it trusts the columns. Every
frame ends in exactly one place: a parsed row, a control message, an ignored-but-counted message,
or a :class:`DeadLetter` with its reason. The field checks below are shared by the parsers.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

# The validation limits, shared by every parser (and Binance's vectorized fast path).
MIN_TIME_MS = 946_684_800_000  # 2000-01-01
MAX_TIME_MS = 4_102_444_800_000  # 2100-01-01
MAX_ID = 2**62
SYMBOL_PATTERN = r"^[A-Z0-9]{2,20}$"
MAX_FRAME_BYTES = 256 * 1024
SYMBOL_RE = re.compile(SYMBOL_PATTERN)


class Invalid(ValueError):
    """A frame failed validation; the message is the dead-letter reason."""


@dataclass(frozen=True)
class DeadLetter:
    reason: str
    raw: bytes
    recv_ms: int
    stream: str | None = None


@dataclass
class TradeCols:
    """Trade rows of one dataset (``trades`` or ``agg_trades``), column-wise."""

    symbol: list[str] = field(default_factory=list)
    trade_id: list[int] = field(default_factory=list)
    price: list[float] = field(default_factory=list)
    qty: list[float] = field(default_factory=list)
    maker: list[bool] = field(default_factory=list)
    trade_time: list[int] = field(default_factory=list)
    event_time: list[int | None] = field(default_factory=list)
    recv_time: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.trade_id)

    def append(self, symbol: str, tid: int, price: float, qty: float, maker: bool, ttime: int,
               etime: int | None, recv: int) -> None:
        self.symbol.append(symbol)
        self.trade_id.append(tid)
        self.price.append(price)
        self.qty.append(qty)
        self.maker.append(maker)
        self.trade_time.append(ttime)
        self.event_time.append(etime)
        self.recv_time.append(recv)


@dataclass(frozen=True)
class DepthEvent:
    """A book change with its id range; ``snapshot``: a full book from the stream itself
    (BTCTurk's 431), which replaces the local book instead of changing it."""

    symbol: str
    first_id: int
    last_id: int
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]
    event_time: int | None
    recv_time: int
    snapshot: bool = False


# A book ticker without a venue sequence number: the normalizer numbers its rows.
NO_UPDATE_ID = -1


@dataclass(frozen=True)
class BookTicker:
    symbol: str
    update_id: int
    bid_price: float
    bid_qty: float
    ask_price: float
    ask_qty: float
    recv_time: int


@dataclass(frozen=True)
class KlineEvent:
    symbol: str
    interval: str
    open_time: int
    close_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    trades: int
    closed: bool
    event_time: int
    # Binance sends these too; optional so a venue that omits them still parses.
    quote_volume: float | None = None
    taker_buy_base: float | None = None
    taker_buy_quote: float | None = None


@dataclass
class ParsedBatch:
    """Everything one batch of frames turned into."""

    trades: dict[str, TradeCols] = field(default_factory=dict)  # dataset -> rows
    depth: list[DepthEvent] = field(default_factory=list)
    tickers: list[BookTicker] = field(default_factory=list)
    klines: list[KlineEvent] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    control: list[dict[str, Any]] = field(default_factory=list)
    ignored: int = 0
    frames: int = 0
    # (symbol, stream kind) -> frames, for streams_messages_total
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    # (symbol, stream kind) -> ingest lags in ms (recv - event time)
    lags: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    def cols(self, dataset: str) -> TradeCols:
        c = self.trades.get(dataset)
        if c is None:
            c = self.trades[dataset] = TradeCols()
        return c

    def count(self, symbol: str, stream: str, lag: int | None) -> None:
        key = (symbol, stream)
        self.counts[key] = self.counts.get(key, 0) + 1
        if lag is not None:
            self.lags.setdefault(key, []).append(lag)


# --- field checks ---------------------------------------------------------------------------
def int_field(d: dict[str, Any], k: str, lo: int = 0, hi: int = MAX_ID) -> int:
    v = d.get(k, MISSING)
    if v is MISSING:
        raise Invalid(f"missing_field:{k}")
    if type(v) is not int:
        raise Invalid(f"bad_type:{k}")
    if not lo <= v <= hi:
        raise Invalid(f"bad_value:{k}")
    return v


def time_field(d: dict[str, Any], k: str) -> int:
    return int_field(d, k, MIN_TIME_MS, MAX_TIME_MS)


def dec_field(d: dict[str, Any], k: str, positive: bool = True) -> float:
    """A decimal string (Binance sends prices and quantities as strings)."""
    v = d.get(k, MISSING)
    if v is MISSING:
        raise Invalid(f"missing_field:{k}")
    if type(v) is not str or len(v) > 40:
        raise Invalid(f"bad_type:{k}")
    try:
        f = float(v)
    except ValueError:
        raise Invalid(f"bad_value:{k}") from None
    if not math.isfinite(f) or f < 0 or (positive and f == 0):
        raise Invalid(f"bad_value:{k}")
    return f


def bool_field(d: dict[str, Any], k: str) -> bool:
    v = d.get(k, MISSING)
    if v is MISSING:
        raise Invalid(f"missing_field:{k}")
    if type(v) is not bool:
        raise Invalid(f"bad_type:{k}")
    return v


def symbol_field(d: dict[str, Any], k: str) -> str:
    v = d.get(k, MISSING)
    if v is MISSING:
        raise Invalid(f"missing_field:{k}")
    if type(v) is not str or not SYMBOL_RE.match(v):
        raise Invalid(f"bad_value:{k}")
    return v


def levels_field(d: dict[str, Any], k: str) -> list[tuple[float, float]]:
    v = d.get(k, MISSING)
    if v is MISSING:
        raise Invalid(f"missing_field:{k}")
    if type(v) is not list:
        raise Invalid(f"bad_type:{k}")
    out: list[tuple[float, float]] = []
    for lv in v:
        if type(lv) is not list or len(lv) != 2:
            raise Invalid(f"bad_type:{k}")
        p = dec_field({"p": lv[0]}, "p")
        q = dec_field({"q": lv[1]}, "q", positive=False)
        out.append((p, q))
    return out


class _Missing:
    pass


MISSING: Any = _Missing()


def as_bytes(raw: object) -> bytes:
    if isinstance(raw, bytes):
        return raw
    if isinstance(raw, bytearray):
        return bytes(raw)
    if isinstance(raw, str):
        return raw.encode("utf-8", "replace")
    return repr(raw).encode("utf-8", "replace")


def decode_frame(raw: object, max_frame_bytes: int) -> Any:
    """The JSON document of one frame; :class:`Invalid` names why not (every parser's first
    step, so every venue dead-letters a bad frame with the same reasons)."""
    if not isinstance(raw, bytes | bytearray | str):
        raise Invalid("not_bytes")
    if len(raw) > max_frame_bytes:
        raise Invalid("oversized")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Invalid("bad_json") from None


# Exceptions a hostile document can raise inside a parser's field checks: dead-lettered as
# ``invalid:<type>`` instead of failing the batch.
PARSE_ERRORS = (RecursionError, OverflowError, TypeError, AttributeError)
