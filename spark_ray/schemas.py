"""Canonical Arrow schemas for market data (see DESIGN.md, "Canonical data").

Every producer (REST ETL, archive import, streams normalizer, venue replay) emits exactly these
schemas, so the lake, the backtest and the executor read one shape whatever the source.
"""

from __future__ import annotations

import pyarrow as pa

TIMESTAMP_MS_UTC = pa.timestamp("ms", tz="UTC")

CANDLE_SCHEMA = pa.schema(
    [
        pa.field("exchange", pa.string(), nullable=False),
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("interval", pa.string(), nullable=False),
        pa.field("open_time", TIMESTAMP_MS_UTC, nullable=False),
        pa.field("open", pa.float64(), nullable=False),
        pa.field("high", pa.float64(), nullable=False),
        pa.field("low", pa.float64(), nullable=False),
        pa.field("close", pa.float64(), nullable=False),
        pa.field("volume", pa.float64(), nullable=False),
        pa.field("quote_volume", pa.float64()),
        pa.field("trades", pa.int64()),
        pa.field("taker_buy_base", pa.float64()),
        pa.field("taker_buy_quote", pa.float64()),
    ]
)

TRADE_SCHEMA = pa.schema(
    [
        pa.field("exchange", pa.string(), nullable=False),
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("trade_id", pa.int64(), nullable=False),
        pa.field("price", pa.float64(), nullable=False),
        pa.field("qty", pa.float64(), nullable=False),
        pa.field("is_buyer_maker", pa.bool_(), nullable=False),
        pa.field("trade_time", TIMESTAMP_MS_UTC, nullable=False),
        pa.field("event_time", TIMESTAMP_MS_UTC),
        pa.field("recv_time", TIMESTAMP_MS_UTC),
        pa.field("stored_time", TIMESTAMP_MS_UTC),
    ]
)

# Top of the book (depth and bookTicker updates), as the streams normalizer emits and the lake
# stores it.
BOOK_SCHEMA = pa.schema(
    [
        pa.field("exchange", pa.string(), nullable=False),
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),  # depth | bookTicker
        pa.field("update_id", pa.int64(), nullable=False),
        pa.field("bid_price", pa.float64()),
        pa.field("bid_qty", pa.float64()),
        pa.field("ask_price", pa.float64()),
        pa.field("ask_qty", pa.float64()),
        pa.field("event_time", TIMESTAMP_MS_UTC),
        pa.field("recv_time", TIMESTAMP_MS_UTC),
    ]
)

# Binance kline intervals and their length in milliseconds ("1M" is calendar-based: None).
INTERVAL_MS: dict[str, int | None] = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
    "1M": None,
}


def iso_ms(ms: int) -> str:
    """Epoch milliseconds as ``YYYY-MM-DDTHH:MM:SSZ`` (UTC), the form reports and CLIs show."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def constant_strings(value: str, n: int) -> pa.Array:
    """A string column holding ``value`` n times, built from buffers (``[value] * n`` is ~50x
    slower, and partition columns are this on every read)."""
    import numpy as np

    raw = value.encode()
    offsets = np.arange(n + 1, dtype=np.int32) * len(raw)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets.tobytes()),
                                                  pa.py_buffer(raw * n)])


def interval_ms(interval: str) -> int:
    """Length of a fixed-size kline interval in milliseconds; ValueError names unknown ones."""
    if interval not in INTERVAL_MS:
        raise ValueError(f"unknown interval {interval!r}; expected one of {', '.join(INTERVAL_MS)}")
    ms = INTERVAL_MS[interval]
    if ms is None:
        raise ValueError(f"interval {interval!r} has no fixed length")
    return ms
