"""Read and write the lake: :class:`DataStore` is every reader's and writer's way in.

Two ways to write a partition (see :mod:`spark_ray.lake.layout` for where partitions are):

- **merge** (:meth:`DataStore.write_candles`, :meth:`DataStore.write_trades`; the REST ETL,
  imports, closed klines from the streams): one ``data.parquet`` per partition; new rows are
  merged into it (the lake's rows win conflicts, which are counted) and the file is rewritten
  atomically, so re-running the same input rewrites byte-identical files.
- **append** (:meth:`DataStore.append`; the streaming sink): a small ``part-*.parquet`` per
  (symbol, month) and flush, so a flush never rewrites what is stored;
  :meth:`DataStore.compact` later folds a partition's parts into its ``data.parquet``.

Readers deduplicate what parts and merged files may both hold (:meth:`DataStore.read`), so the
lake reads the same before and after a compaction, and a crash between the two is harmless.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from spark_ray.lake.canonical import NormalizeStats, canonical_candles, canonical_trades
from spark_ray.lake.files import open_root, parquet_bytes, write_atomic
from spark_ray.lake.layout import (
    BOOK,
    CANDLES,
    DATA_FILE,
    DATASETS,
    is_data_file,
    month_bounds,
    partition_dir,
    split_months,
)
from spark_ray.schemas import CANDLE_SCHEMA, constant_strings

WRITE_THREADS = max(2, min(8, os.cpu_count() or 2))
_PART_SEQ = itertools.count(1)  # part names stay unique within a process


@dataclass
class WriteResult:
    files: list[str] = field(default_factory=list)
    rows_written: int = 0
    stats: NormalizeStats = field(default_factory=NormalizeStats)
    # sha256 of the exact bytes written per file, and the partitions' final contents (in
    # order): what an import-time quality report needs without reading the lake back.
    sha256: dict[str, str] = field(default_factory=dict)
    tables: list[pa.Table] = field(default_factory=list)


@dataclass(frozen=True)
class Coverage:
    dataset: str
    exchange: str
    symbol: str
    interval: str | None
    months: int
    rows: int
    first: datetime | None
    last: datetime | None
    bytes: int


class DataStore:
    """Read and write the lake. ``DataStore("lake")`` or ``DataStore("s3://bucket/lake")``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.uri = str(root)
        self.fs, self.root = open_root(self.uri)
        self.local = isinstance(self.fs, pafs.LocalFileSystem)

    def partition(self, dataset: str, exchange: str | None = None, symbol: str | None = None,
                  interval: str | None = None, month: str | None = None) -> str:
        """A folder of this lake (:func:`spark_ray.lake.layout.partition_dir`)."""
        return partition_dir(self.root, dataset, exchange, symbol, interval, month)

    # --- low-level file I/O -----------------------------------------------------------------------
    def _exists(self, path: str) -> bool:
        return self.fs.get_file_info(path).type == pafs.FileType.File

    def read_file(self, path: str, columns: list[str] | None = None) -> pa.Table:
        """One Parquet file of the lake as stored (no partition columns)."""
        return pq.read_table(path, columns=columns, filesystem=self.fs)

    def _write_file(self, path: str, table: pa.Table) -> str:
        """Write ``table`` atomically; returns the sha256 of the bytes written."""
        data = parquet_bytes(table)
        write_atomic(self.fs, path, data)
        return hashlib.sha256(data).hexdigest()

    # --- merge writes: one data.parquet per partition ------------------------------------------
    def _write_partitions(self, canon: pa.Table, dataset: str,
                          directory_of: Callable[[str], str],
                          normalize: Callable[[pa.Table], tuple[pa.Table, NormalizeStats]],
                          constants: dict[str, str], stats: NormalizeStats) -> WriteResult:
        """Merge each month of ``canon`` into its partition file, months in parallel threads.

        Parquet encoding and compression release the GIL, so partitions write concurrently.
        Rows equal to what the lake already holds are re-reads, not input duplicates; rows that
        differ from it are conflicts (the lake's row is kept).
        """
        spec = DATASETS[dataset]
        keep = spec.file_schema().names

        def one(month_part: tuple[str, pa.Table]
                ) -> tuple[tuple[str, str], pa.Table, NormalizeStats | None]:
            month, part = month_part
            path = f"{directory_of(month)}/{DATA_FILE}"
            mstats = None
            if self._exists(path):
                old = _with_constants(self.read_file(path), schema=spec.schema, **constants)
                part, mstats = normalize(pa.concat_tables([old, part]))
            return (path, self._write_file(path, part.select(keep))), part, mstats

        result = WriteResult(stats=stats)
        parts = list(split_months(canon, spec.time))
        with ThreadPoolExecutor(max_workers=min(WRITE_THREADS, max(len(parts), 1))) as pool:
            for (path, digest), table, mstats in pool.map(one, parts):
                result.files.append(path)
                result.sha256[path] = digest
                result.tables.append(table)
                result.rows_written += table.num_rows
                if mstats is not None:
                    stats.conflicts += mstats.conflicts
                    stats.conflict_keys = (stats.conflict_keys + mstats.conflict_keys)[:20]
        return result

    def write_candles(self, table: pa.Table, exchange: str, symbol: str,
                      interval: str) -> WriteResult:
        """Merge parsed candles into the lake, one partition per month."""
        canon, stats = canonical_candles(table, exchange, symbol, interval)
        return self._write_partitions(
            canon, CANDLES,
            lambda month: self.partition(CANDLES, exchange, symbol, interval, month),
            lambda t: canonical_candles(t, exchange, symbol, interval),
            {"exchange": exchange, "symbol": symbol, "interval": interval}, stats)

    def write_trades(self, table: pa.Table, exchange: str, symbol: str,
                     dataset: str = "trades") -> WriteResult:
        """Merge parsed trades (or ``agg_trades``) into the lake, one partition per month."""
        canon, stats = canonical_trades(table, exchange, symbol)
        return self._write_partitions(
            canon, dataset,
            lambda month: self.partition(dataset, exchange, symbol, month=month),
            lambda t: canonical_trades(t, exchange, symbol),
            {"exchange": exchange, "symbol": symbol}, stats)

    # --- append writes: parts, folded later by compact() ------------------------------------------
    def append(self, dataset: str, exchange: str, table: pa.Table) -> list[str]:
        """Store rows of ``dataset`` (any symbols; in its schema, deduplicated already) as one
        new part per (symbol, month), trades in id order; returns the files written."""
        spec = DATASETS[dataset]
        if dataset == CANDLES:
            raise ValueError("candles are merged (write_candles), not appended")
        files = []
        syms = table.column("symbol").to_numpy(zero_copy_only=False)
        for symbol in np.unique(syms).tolist():
            rows = table.take(pa.array(np.flatnonzero(syms == symbol)))
            for month, part in split_months(rows, spec.time):
                if dataset != BOOK:
                    part = part.sort_by([(spec.key, "ascending")])
                name = f"part-{int(time.time() * 1000)}-{os.getpid()}-{next(_PART_SEQ):06d}.parquet"
                path = f"{self.partition(dataset, exchange, symbol, month=month)}/{name}"
                self._write_file(path, part.drop_columns(list(spec.partition_cols)))
                files.append(path)
        return files

    def compact(self, dataset: str, exchange: str, symbol: str) -> int:
        """Fold each month's parts into its ``data.parquet`` (dedup, key order); returns parts
        removed. Crash-safe: the merged file is renamed in before any part is deleted, and
        readers dedup in between."""
        key = DATASETS[dataset].key
        removed = 0
        for month in self.months(dataset, exchange, symbol):
            files = self._data_files(self.partition(dataset, exchange, symbol, month=month))
            parts = [p for p in files if not p.endswith("/" + DATA_FILE)]
            if not parts:
                continue
            tables = [self.read_file(p) for p in files]
            schema = tables[-1].schema
            t = pa.concat_tables([x.cast(schema) for x in tables])
            if dataset == BOOK:
                t = t.sort_by([("source", "ascending"), (key, "ascending")])
            else:
                t = _unique_sorted(t, key)
            self._write_file(f"{self.partition(dataset, exchange, symbol, month=month)}/"
                             f"{DATA_FILE}", t)
            for p in parts:
                self.fs.delete_file(p)
                removed += 1
        return removed

    # --- candles ----------------------------------------------------------------------------------
    def candles(self, symbol: str, interval: str, start: datetime | str | None = None,
                end: datetime | str | None = None, exchange: str = "binance") -> pa.Table:
        """Candles in ``[start, end)`` as a CANDLE_SCHEMA table sorted by open time."""
        lo, hi = _to_ms(start), _to_ms(end)
        paths = []
        for month in self.months(CANDLES, exchange, symbol, interval):
            m_lo, m_hi = month_bounds(month)
            if (lo is not None and m_hi <= lo) or (hi is not None and m_lo >= hi):
                continue
            path = f"{self.partition(CANDLES, exchange, symbol, interval, month)}/{DATA_FILE}"
            if self._exists(path):
                paths.append(path)
        with ThreadPoolExecutor(max_workers=WRITE_THREADS) as pool:
            tables = list(pool.map(self.read_file, paths))
        if not tables:
            return CANDLE_SCHEMA.empty_table()
        t = pa.concat_tables(tables)
        t = _with_constants(t, exchange=exchange, symbol=symbol, interval=interval,
                            schema=CANDLE_SCHEMA)
        return _time_filter(t, "open_time", lo, hi)

    def candles_pandas(self, symbol: str, interval: str, **kw: Any) -> Any:
        """Candles as a pandas DataFrame indexed by open time (UTC)."""
        return self.candles(symbol, interval, **kw).to_pandas().set_index("open_time")

    def candles_numpy(self, symbol: str, interval: str, **kw: Any) -> dict[str, np.ndarray]:
        """Contiguous float64 arrays (``open_time`` as int64 ms) for the backtest and ray.put."""
        t = self.candles(symbol, interval, **kw)
        out = {"open_time": np.ascontiguousarray(
            t.column("open_time").cast(pa.int64()).to_numpy())}
        for name in ("open", "high", "low", "close", "volume"):
            out[name] = np.ascontiguousarray(t.column(name).to_numpy(), dtype=np.float64)
        return out

    def last_open_time(self, symbol: str, interval: str, exchange: str = "binance") -> int | None:
        """Latest stored open time in ms (for resuming a fetch), or None."""
        months = self.months(CANDLES, exchange, symbol, interval)
        for month in reversed(months):
            path = f"{self.partition(CANDLES, exchange, symbol, interval, month)}/{DATA_FILE}"
            if self._exists(path):
                col = self.read_file(path).column("open_time")
                if len(col):
                    return int(pc.max(col).cast(pa.int64()).as_py())
        return None

    # --- trades, aggregate trades, book -----------------------------------------------------------
    def _read_series(self, dataset: str, exchange: str, symbol: str,
                     paths: list[str]) -> pa.Table:
        spec = DATASETS[dataset]
        tables = [_with_constants(self.read_file(p), schema=spec.schema, exchange=exchange,
                                  symbol=symbol) for p in paths]
        return pa.concat_tables(tables) if tables else spec.schema.empty_table()

    def read(self, dataset: str, exchange: str, symbol: str) -> pa.Table:
        """A trade, aggregate-trade or book series as stored (merged files and the parts not
        compacted yet), in its schema, deduplicated on its key, in key order (the book: by
        source, then update id)."""
        if dataset == CANDLES:
            raise ValueError("read candles with DataStore.candles")
        t = self._read_series(dataset, exchange, symbol, list(self.files(dataset, exchange,
                                                                          symbol)))
        key = DATASETS[dataset].key
        if dataset == BOOK:
            return t.sort_by([("source", "ascending"), (key, "ascending")])
        return _unique_sorted(t, key)

    def trades(self, symbol: str, exchange: str = "binance", dataset: str = "trades") -> pa.Table:
        """Trades (or ``agg_trades``) of a symbol in TRADE_SCHEMA: each month's merged
        ``data.parquet`` (what imports and :meth:`compact` write), month by month. :meth:`read`
        also takes the parts a streaming sink has not compacted yet."""
        paths = [f"{self.partition(dataset, exchange, symbol, month=m)}/{DATA_FILE}"
                 for m in self.months(dataset, exchange, symbol)]
        return self._read_series(dataset, exchange, symbol, paths)

    # --- listing ----------------------------------------------------------------------------------
    def _subdirs(self, path: str, key: str) -> list[str]:
        sel = pafs.FileSelector(path, allow_not_found=True)
        prefix = f"{key}="
        return sorted(info.base_name[len(prefix):] for info in self.fs.get_file_info(sel)
                      if info.type == pafs.FileType.Directory
                      and info.base_name.startswith(prefix))

    def _data_files(self, directory: str) -> list[str]:
        sel = pafs.FileSelector(directory, allow_not_found=True)
        return [info.path for info in sorted(self.fs.get_file_info(sel), key=lambda i: i.base_name)
                if info.type == pafs.FileType.File and is_data_file(info.base_name)]

    def symbols(self, dataset: str, exchange: str) -> list[str]:
        return self._subdirs(self.partition(dataset, exchange), "symbol")

    def months(self, dataset: str, exchange: str, symbol: str,
               interval: str | None = None) -> list[str]:
        return self._subdirs(self.partition(dataset, exchange, symbol, interval), "month")

    def files(self, dataset: str, exchange: str, symbol: str,
              interval: str | None = None) -> Iterator[str]:
        """Every visible Parquet file of a series, month by month: data.parquet and parts."""
        for month in self.months(dataset, exchange, symbol, interval):
            yield from self._data_files(self.partition(dataset, exchange, symbol, interval, month))

    def series(self) -> Iterator[tuple[str, str, str, str | None]]:
        """Every (dataset, exchange, symbol, interval) the lake holds."""
        for dataset in ("candles", "trades", "agg_trades"):
            for exchange in self._subdirs(self.partition(dataset), "exchange"):
                for symbol in self.symbols(dataset, exchange):
                    if dataset == CANDLES:
                        for interval in self._subdirs(self.partition(dataset, exchange, symbol),
                                                      "interval"):
                            yield dataset, exchange, symbol, interval
                    else:
                        yield dataset, exchange, symbol, None

    def partition_files(self, dataset: str, exchange: str, symbol: str,
                        interval: str | None) -> list[tuple[str, str]]:
        """(month, file path) of every merged data file in one series."""
        out = []
        for month in self.months(dataset, exchange, symbol, interval):
            path = f"{self.partition(dataset, exchange, symbol, interval, month)}/{DATA_FILE}"
            if self._exists(path):
                out.append((month, path))
        return out

    def sha256(self, path: str) -> str:
        digest = hashlib.sha256()
        with self.fs.open_input_stream(path) as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
        return digest.hexdigest()

    def coverage(self) -> list[Coverage]:
        rows = []
        for dataset, exchange, symbol, interval in self.series():
            files = self.partition_files(dataset, exchange, symbol, interval)
            n, size = 0, 0
            first: int | None = None
            last: int | None = None
            tcol = DATASETS[dataset].time
            for _, path in files:
                meta = pq.read_metadata(path, filesystem=self.fs)
                n += meta.num_rows
                size += self.fs.get_file_info(path).size or 0
                col = self.read_file(path).column(tcol)
                if len(col):
                    lo = int(pc.min(col).cast(pa.int64()).as_py())
                    hi = int(pc.max(col).cast(pa.int64()).as_py())
                    first = lo if first is None else min(first, lo)
                    last = hi if last is None else max(last, hi)
            rows.append(Coverage(dataset, exchange, symbol, interval, len(files), n,
                                 _dt(first), _dt(last), size))
        return rows


def _unique_sorted(t: pa.Table, key: str) -> pa.Table:
    """``t`` in ``key`` order, the first row of each key kept (a table already strictly in key
    order, the usual case, is returned as it is)."""
    ids = t.column(key).to_numpy()
    if len(ids) < 2 or bool((ids[1:] > ids[:-1]).all()):
        return t
    t = t.sort_by([(key, "ascending")])
    ids = t.column(key).to_numpy()
    return t.filter(pa.array(np.concatenate(([True], ids[1:] != ids[:-1]))))


def _dt(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


def _to_ms(v: datetime | str | None) -> int | None:
    if v is None:
        return None
    if isinstance(v, str):
        v = datetime.fromisoformat(v)
    if v.tzinfo is None:
        v = v.replace(tzinfo=UTC)
    return int(v.timestamp() * 1000)


def _time_filter(t: pa.Table, col: str, lo: int | None, hi: int | None) -> pa.Table:
    if lo is None and hi is None:
        return t
    ms = t.column(col).cast(pa.int64())
    mask = None
    if lo is not None:
        mask = pc.greater_equal(ms, lo)
    if hi is not None:
        m2 = pc.less(ms, hi)
        mask = m2 if mask is None else pc.and_(mask, m2)
    return t.filter(mask)


def _with_constants(t: pa.Table, schema: pa.Schema, **constants: str) -> pa.Table:
    """Add the partition columns back and order columns as ``schema``."""
    n = t.num_rows
    cols = []
    for f in schema:
        if f.name in constants:
            cols.append(constant_strings(constants[f.name], n))
        else:
            cols.append(t.column(f.name).cast(f.type))
    return pa.Table.from_arrays(cols, schema=schema)


__all__ = ["Coverage", "DataStore", "WriteResult"]
