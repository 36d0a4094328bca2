"""Turn parsed candles or trades into the canonical schema: UTC, sorted, deduplicated.

A row repeated with identical values is a *duplicate* (dropped, counted). A row whose key
(open time, or trade id) repeats with different values is a *conflict*: counted and reported,
the first-seen row kept, never silently merged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spark_ray.schemas import CANDLE_SCHEMA, TRADE_SCHEMA, constant_strings

CANDLE_VALUES = ("open", "high", "low", "close", "volume", "quote_volume", "trades",
                 "taker_buy_base", "taker_buy_quote")
TRADE_VALUES = ("price", "qty", "is_buyer_maker", "trade_time")


@dataclass
class NormalizeStats:
    """What normalization found; the quality report and import summary show it."""

    rows_in: int = 0
    rows_out: int = 0
    duplicates: int = 0
    conflicts: int = 0
    conflict_keys: list[int] = field(default_factory=list)  # first few keys, for the report

    def merge(self, other: NormalizeStats) -> None:
        self.rows_in += other.rows_in
        self.rows_out += other.rows_out
        self.duplicates += other.duplicates
        self.conflicts += other.conflicts
        self.conflict_keys = (self.conflict_keys + other.conflict_keys)[:20]

    def as_dict(self) -> dict[str, Any]:
        return {"rows_in": self.rows_in, "rows_out": self.rows_out,
                "duplicates": self.duplicates, "conflicts": self.conflicts,
                "conflict_keys": self.conflict_keys}


def _dedup(table: pa.Table, key: str, value_cols: tuple[str, ...]) -> tuple[pa.Table,
                                                                             NormalizeStats]:
    """Stable-sort by ``key`` and drop repeats, telling duplicates from conflicts."""
    stats = NormalizeStats(rows_in=table.num_rows)
    if table.num_rows == 0:
        return table, stats
    keys = table.column(key).combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False)
    order = np.argsort(keys, kind="stable")
    if not np.all(order[1:] > order[:-1]):
        table = table.take(pa.array(order))
        keys = keys[order]
    repeat = np.flatnonzero(keys[1:] == keys[:-1]) + 1  # index of each repeated row
    if repeat.size:
        same = np.ones(repeat.size, dtype=bool)
        for col in value_cols:
            if col not in table.column_names:
                continue
            arr = table.column(col).combine_chunks()
            if pa.types.is_timestamp(arr.type):
                arr = arr.cast(pa.int64())
            vals = arr.to_numpy(zero_copy_only=False)
            a, b = vals[repeat], vals[repeat - 1]
            eq = (a == b) | (np.isnan(a) & np.isnan(b)) if vals.dtype.kind == "f" else a == b
            same &= np.asarray(eq, dtype=bool)
        stats.duplicates = int(same.sum())
        stats.conflicts = int((~same).sum())
        stats.conflict_keys = [int(k) for k in keys[repeat[~same]][:20]]
        keep = np.ones(len(keys), dtype=bool)
        keep[repeat] = False
        table = table.filter(pa.array(keep))
    stats.rows_out = table.num_rows
    return table, stats


def _ts_ms(arr: pa.ChunkedArray | pa.Array) -> pa.Array | pa.ChunkedArray:
    """Any integer-ms or timestamp column as timestamp[ms, UTC]."""
    if pa.types.is_timestamp(arr.type):
        arr = pc.cast(arr, pa.timestamp("ms", tz=arr.type.tz), safe=False).cast(pa.int64())
    return arr.cast(pa.int64()).cast(pa.timestamp("ms", tz="UTC"))


def canonical_candles(table: pa.Table, exchange: str, symbol: str,
                      interval: str) -> tuple[pa.Table, NormalizeStats]:
    """Parsed candles (``open_time`` as int ms or timestamp, OHLCV floats, optional extras)
    -> CANDLE_SCHEMA, sorted by open time, deduplicated."""
    n = table.num_rows
    cols: dict[str, pa.Array] = {
        "exchange": constant_strings(exchange, n),
        "symbol": constant_strings(symbol, n),
        "interval": constant_strings(interval, n),
        "open_time": _ts_ms(table.column("open_time")),
    }
    for f in CANDLE_SCHEMA:
        if f.name in cols:
            continue
        if f.name in table.column_names:
            cols[f.name] = table.column(f.name).cast(f.type)  # chunked: no copy when same type
        else:
            cols[f.name] = pa.nulls(n, f.type)
    out = pa.Table.from_arrays([cols[f.name] for f in CANDLE_SCHEMA], schema=CANDLE_SCHEMA)
    return _dedup(out, "open_time", CANDLE_VALUES)


def canonical_trades(table: pa.Table, exchange: str,
                     symbol: str) -> tuple[pa.Table, NormalizeStats]:
    """Parsed trades (``trade_id``, ``price``, ``qty``, ``is_buyer_maker``, ``trade_time``)
    -> TRADE_SCHEMA, sorted by trade id, deduplicated."""
    n = table.num_rows
    cols: dict[str, pa.Array] = {
        "exchange": constant_strings(exchange, n),
        "symbol": constant_strings(symbol, n),
    }
    for f in TRADE_SCHEMA:
        if f.name in cols:
            continue
        if f.name in table.column_names:
            col = table.column(f.name)
            cols[f.name] = (_ts_ms(col) if pa.types.is_timestamp(f.type)
                            else col.combine_chunks().cast(f.type))
        else:
            cols[f.name] = pa.nulls(n, f.type)
    out = pa.Table.from_arrays([cols[f.name] for f in TRADE_SCHEMA], schema=TRADE_SCHEMA)
    return _dedup(out, "trade_id", TRADE_VALUES)
