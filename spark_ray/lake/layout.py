"""Where every dataset lives in the lake: the one place that knows the folder names.

::

    candles/exchange=binance/symbol=BTCUSDT/interval=1m/month=2024-01/data.parquet
    trades/exchange=binance/symbol=BTCUSDT/month=2024-01/data.parquet   (+ part-*.parquet)
    agg_trades/exchange=binance/symbol=BTCUSDT/month=2024-01/...        (aggregate trades)
    book/exchange=binance/symbol=BTCUSDT/month=2024-01/part-*.parquet   (top of book)
    _wal/<exchange>/            the streaming sink's write-ahead log (a local lake only)
    _deadletter/<exchange>/     frames the streams normalizer rejected, with why

Partition values live in the folder names only (the hive convention pyarrow.dataset, DuckDB,
polars and Spark read), never in the files. A row's month is the UTC month of its dataset's time
column. Temp files start with ``.`` and end in ``.tmp``; the streams' own folders start with
``_`` and hold no Parquet: readers that glob the tree see neither.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from spark_ray.schemas import BOOK_SCHEMA, CANDLE_SCHEMA, TRADE_SCHEMA

DATA_FILE = "data.parquet"  # a partition's merged (compacted) file
WAL_DIR = "_wal"
DEADLETTER_DIR = "_deadletter"

CANDLES = "candles"
TRADES = "trades"
AGG_TRADES = "agg_trades"
BOOK = "book"


@dataclass(frozen=True)
class Dataset:
    """One dataset of the lake: its schema, the key rows are deduplicated on and the time
    column that names their month."""

    name: str
    schema: pa.Schema
    key: str
    time: str
    partition_cols: tuple[str, ...]  # in folder names, dropped from the files

    def file_schema(self) -> pa.Schema:
        """The schema of the rows inside a partition file."""
        return pa.schema([f for f in self.schema if f.name not in self.partition_cols])


DATASETS: dict[str, Dataset] = {
    CANDLES: Dataset(CANDLES, CANDLE_SCHEMA, "open_time", "open_time",
                     ("exchange", "symbol", "interval")),
    TRADES: Dataset(TRADES, TRADE_SCHEMA, "trade_id", "trade_time", ("exchange", "symbol")),
    AGG_TRADES: Dataset(AGG_TRADES, TRADE_SCHEMA, "trade_id", "trade_time",
                        ("exchange", "symbol")),
    BOOK: Dataset(BOOK, BOOK_SCHEMA, "update_id", "recv_time", ("exchange", "symbol")),
}


def partition_dir(root: str, dataset: str, exchange: str | None = None,
                  symbol: str | None = None, interval: str | None = None,
                  month: str | None = None) -> str:
    """The folder of ``dataset`` down to the deepest key given: with every key, one month of
    one series (candles need an ``interval``, the other datasets have none); without ``month``,
    the series' folder; without ``symbol`` or ``exchange``, the folder listing those."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    if interval is not None and dataset != CANDLES:
        raise ValueError(f"{dataset} has no interval")
    keys: list[tuple[str, str | None]] = [("exchange", exchange), ("symbol", symbol)]
    if dataset == CANDLES:
        keys.append(("interval", interval))
    keys.append(("month", month))
    path = f"{root}/{dataset}"
    for i, (name, value) in enumerate(keys):
        if value is None:
            given = [n for n, v in keys[i + 1:] if v is not None]
            if given:
                raise ValueError(f"{dataset}: {name} missing before {', '.join(given)}")
            break
        path += f"/{name}={value}"
    return path


def partition_month(path: str) -> str | None:
    """The ``YYYY-MM`` month a partition folder or file belongs to, or None."""
    for part in path.split("/"):
        if part.startswith("month="):
            return part[len("month="):]
    return None


def month_key(ms: int) -> str:
    """The ``YYYY-MM`` (UTC) month an epoch-millisecond time falls in."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m")


def month_bounds(month: str) -> tuple[int, int]:
    """[start, end) of a ``YYYY-MM`` month in epoch milliseconds."""
    y, m = (int(x) for x in month.split("-"))
    start = datetime(y, m, 1, tzinfo=UTC)
    end = datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=UTC)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def month_index(ms: np.ndarray) -> np.ndarray:
    """Month number (years since 1970 * 12 + month - 1) per epoch-ms value, vectorized."""
    return ms.astype("datetime64[ms]").astype("datetime64[M]").astype(np.int64)


def month_name(index: int) -> str:
    """``YYYY-MM`` of a :func:`month_index` value."""
    return str(np.datetime64(int(index), "M"))


def is_data_file(name: str) -> bool:
    """A file readers take: Parquet, not hidden (temp files start with ``.``)."""
    return name.endswith(".parquet") and not name.startswith(".")


def split_months(table: pa.Table, time_col: str) -> Iterator[tuple[str, pa.Table]]:
    """``table`` cut into its months (by ``time_col``; a null time counts as 1970-01), each
    month's rows in their order. A table in time order is cut into slices, without copying."""
    if table.num_rows == 0:
        return
    col = table.column(time_col).cast(pa.int64())
    if col.null_count:
        col = col.fill_null(0)
    months = month_index(col.to_numpy())
    if bool((months[1:] >= months[:-1]).all()):
        edges = np.flatnonzero(np.diff(months)) + 1
        starts = np.concatenate([[0], edges])
        ends = np.concatenate([edges, [len(months)]])
        for s, e in zip(starts, ends, strict=True):
            yield month_name(int(months[s])), table.slice(int(s), int(e - s))
        return
    for m in np.unique(months).tolist():
        yield month_name(m), table.take(pa.array(np.flatnonzero(months == m)))
