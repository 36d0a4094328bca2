"""The sink's core: dedup against everything stored, write-ahead log, then the lake.

The lake (:mod:`spark_ray.lake`) owns where and how rows are stored: trades, aggregate trades and
book rows are appended as ``part-*.parquet`` files (:meth:`DataStore.append`, folded later by
:meth:`DataStore.compact`), closed klines are merged into the candle partitions the REST ETL
writes (one row a minute per symbol: no parts needed). This module decides *which* rows go
there, once: dedup key (exchange, symbol, trade id) for trades, (exchange, symbol, source,
update id) for the book, (exchange, symbol, interval, open time) for candles, so WAL replays and
at-least-once re-sends never duplicate.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spark_ray.lake import DataStore
from spark_ray.lake.layout import AGG_TRADES, BOOK, CANDLES, DATASETS, TRADES, WAL_DIR
from spark_ray.recent_ids import RecentIds
from spark_ray.schemas import TRADE_SCHEMA
from spark_ray.streams.ids import IdRanges
from spark_ray.streams.wal import WalOwner, WriteAheadLog

TRADE_DATASETS = (TRADES, AGG_TRADES)
APPENDED = (*TRADE_DATASETS, BOOK)  # stored as parts; candles are merged


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class WriteAck:
    accepted: int = 0
    duplicates: int = 0
    latencies_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))
    commit_ms: int = 0
    # the same latencies per symbol, for metrics labelled by symbol
    by_symbol: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class FlushJob:
    tables: dict[str, list[pa.Table]]
    segments: list[Path]
    files: list[str] = field(default_factory=list)
    rows: int = 0
    candle_rows: int = 0


class StreamStore:
    """Owns one exchange's streaming datasets in a lake root. Not thread-safe: one writer, and
    one per WAL directory (the WAL is locked; :class:`~spark_ray.streams.wal.WalLocked` names
    the holder when another store has it)."""

    def __init__(self, root: str, exchange: str, wal_dir: str | None = None,
                 flush_rows: int = 200_000, flush_ms: int = 1_000,
                 owner: WalOwner | None = None) -> None:
        self.lake = DataStore(root)
        self.exchange = exchange
        if wal_dir is None:
            if not self.lake.local:
                raise ValueError("a non-local lake needs a local wal_dir")
            wal_dir = os.path.join(self.lake.root, WAL_DIR, exchange)
        # Lock first: a second writer stops here, before it reads the lake or replays anything.
        self.wal = WriteAheadLog(wal_dir, owner)
        self.flush_rows = flush_rows
        self.flush_ms = flush_ms
        self.ids: dict[tuple[str, str], IdRanges] = {}
        self.marks: dict[tuple[str, str], RecentIds] = {}  # book: (symbol, source) -> ids
        # candles: (symbol, interval) -> last stored open time (ms), read from the lake lazily
        self.candle_marks: dict[tuple[str, str], int] = {}
        self.candles_written = 0
        self.buffer: dict[str, list[pa.Table]] = {}
        self.buffered_rows = 0
        self.buffer_since_ms = 0
        self.parts_written = 0
        self.rows_written = 0
        self.duplicates = 0
        self.flushes = 0
        self._load_ids()
        self.replayed_rows, self.torn_segments = self._replay()

    # --- start-up -----------------------------------------------------------------------------
    def _load_ids(self) -> None:
        for dataset in APPENDED:
            for symbol in self.lake.symbols(dataset, self.exchange):
                cols = ["update_id", "source"] if dataset == BOOK else ["trade_id"]
                for path in self.lake.files(dataset, self.exchange, symbol):
                    self._remember(dataset, symbol, self.lake.read_file(path, columns=cols))

    def _remember(self, dataset: str, symbol: str, t: pa.Table) -> None:
        if dataset == BOOK:
            for src, uid in zip(t.column("source").to_pylist(), t.column("update_id").to_pylist(),
                                strict=True):
                self._marks(symbol, src).add(uid)
        else:
            self.ids.setdefault((dataset, symbol), IdRanges()).add_ids(
                t.column("trade_id").to_numpy())

    def _marks(self, symbol: str, source: str) -> RecentIds:
        m = self.marks.get((symbol, source))
        if m is None:
            m = self.marks[(symbol, source)] = RecentIds()
        return m

    def _replay(self) -> tuple[int, int]:
        logged, torn = self.wal.replay()
        n = 0
        for dataset, tables in logged.items():
            for t in tables:
                kept = self._dedup(dataset, t)
                self._commit(dataset, kept)
                if kept.num_rows:
                    self.buffer.setdefault(dataset, []).append(kept)
                    n += kept.num_rows
        if logged:
            self.buffered_rows = n
            self.flush()  # into Parquet now, and the log starts empty
        return n, torn

    # --- the write path ---------------------------------------------------------------------
    def _dedup(self, dataset: str, t: pa.Table) -> pa.Table:
        """Rows of ``t`` not stored (or logged) yet. Pure: :meth:`_commit` records them, only
        once they are durable (a failed WAL append must not make a retry look duplicate)."""
        if t.num_rows == 0:
            return t
        if dataset == CANDLES:
            mask = self._fresh_candles(t)
        elif dataset == BOOK:
            batch: set[tuple[str, str, int]] = set()  # repeats within this table
            keep = []
            for sym, src, uid in zip(t.column("symbol").to_pylist(),
                                     t.column("source").to_pylist(),
                                     t.column("update_id").to_pylist(), strict=True):
                ok = (sym, src, uid) not in batch and self._marks(sym, src).fresh(uid)
                if ok:
                    batch.add((sym, src, uid))
                keep.append(ok)
            mask = np.asarray(keep, dtype=bool)
        else:
            syms = t.column("symbol").to_numpy(zero_copy_only=False)
            ids = t.column("trade_id").to_numpy()
            mask = np.zeros(t.num_rows, dtype=bool)
            for s in np.unique(syms).tolist():
                idx = np.flatnonzero(syms == s)
                ranges = self.ids.get((dataset, s))
                sub = ids[idx]
                fresh = ~ranges.contains_mask(sub) if ranges is not None else np.ones(
                    len(sub), dtype=bool)
                _, first = np.unique(sub, return_index=True)  # first occurrence in the batch
                once = np.zeros(len(sub), dtype=bool)
                once[first] = True
                mask[idx[fresh & once]] = True
        dups = int(t.num_rows - np.count_nonzero(mask))
        self.duplicates += dups
        return t if dups == 0 else t.filter(pa.array(mask))

    def _candle_mark(self, symbol: str, interval: str) -> int:
        key = (symbol, interval)
        if key not in self.candle_marks:
            last = self.lake.last_open_time(symbol, interval, self.exchange)
            self.candle_marks[key] = -1 if last is None else last
        return self.candle_marks[key]

    def _open_times(self, t: pa.Table) -> list[tuple[str, str, int]]:
        return list(zip(t.column("symbol").to_pylist(), t.column("interval").to_pylist(),
                        t.column("open_time").cast(pa.int64()).to_pylist(), strict=True))

    def _fresh_candles(self, t: pa.Table) -> np.ndarray:
        """Candles newer than the last one stored for their series (klines close in order;
        a resend or a replay repeats older ones)."""
        seen: dict[tuple[str, str], int] = {}
        keep = []
        for sym, iv, ot in self._open_times(t):
            key = (sym, iv)
            ok = ot > seen.get(key, self._candle_mark(sym, iv))
            if ok:
                seen[key] = ot
            keep.append(ok)
        return np.asarray(keep, dtype=bool)

    def _commit(self, dataset: str, t: pa.Table) -> None:
        """Remember durable rows as stored (the dedup state)."""
        if dataset == CANDLES:
            for sym, iv, ot in self._open_times(t):
                if ot > self._candle_mark(sym, iv):
                    self.candle_marks[(sym, iv)] = ot
            return
        if dataset == BOOK:
            for sym, src, uid in zip(t.column("symbol").to_pylist(),
                                     t.column("source").to_pylist(),
                                     t.column("update_id").to_pylist(), strict=True):
                self._marks(sym, src).add(uid)
            return
        syms = t.column("symbol").to_numpy(zero_copy_only=False)
        ids = t.column("trade_id").to_numpy()
        for s in np.unique(syms).tolist():
            self.ids.setdefault((dataset, s), IdRanges()).add_ids(ids[syms == s])

    def write(self, tables: dict[str, pa.Table]) -> WriteAck:
        """Dedup, log durably, buffer for Parquet. When this returns the rows are committed."""
        ack = WriteAck()
        fresh: dict[str, pa.Table] = {}
        stamp = now_ms()
        for dataset, t in tables.items():
            if dataset not in DATASETS:
                raise ValueError(f"unknown dataset {dataset!r}")
            if t is None or t.num_rows == 0:
                continue
            schema = DATASETS[dataset].schema
            t = t.cast(schema) if t.schema != schema else t
            n0 = t.num_rows
            t = self._dedup(dataset, t)
            ack.duplicates += n0 - t.num_rows
            if t.num_rows == 0:
                continue
            if dataset in TRADE_DATASETS:
                i = t.schema.get_field_index("stored_time")
                t = t.set_column(i, "stored_time",
                                 pa.array(np.full(t.num_rows, stamp, dtype=np.int64))
                                 .cast(TRADE_SCHEMA.field("stored_time").type))
            fresh[dataset] = t
        if not fresh:
            return ack
        self.wal.append(fresh)
        ack.commit_ms = now_ms()
        for dataset, t in fresh.items():
            self._commit(dataset, t)
        lat: list[np.ndarray] = []
        for dataset, t in fresh.items():
            if not self.buffer.get(dataset):
                self.buffer.setdefault(dataset, [])
            self.buffer[dataset].append(t)
            ack.accepted += t.num_rows
            if dataset in TRADE_DATASETS:
                ev = pc.coalesce(t.column("event_time"), t.column("trade_time"))
                ms = ev.cast(pa.int64()).to_numpy(zero_copy_only=False)
                d = ack.commit_ms - ms.astype(np.float64)
                lat.append(d)
                syms = t.column("symbol").to_numpy(zero_copy_only=False)
                for sym in dict.fromkeys(syms.tolist()) if len(syms) else ():
                    part = d[syms == sym]
                    prev = ack.by_symbol.get(sym)
                    ack.by_symbol[sym] = part if prev is None else np.concatenate([prev, part])
        if self.buffered_rows == 0:
            self.buffer_since_ms = ack.commit_ms
        self.buffered_rows += ack.accepted
        ack.latencies_ms = np.concatenate(lat) if lat else np.zeros(0)
        return ack

    def flush_due(self, now: int | None = None) -> bool:
        if self.buffered_rows == 0:
            return False
        now = now_ms() if now is None else now
        return self.buffered_rows >= self.flush_rows or now - self.buffer_since_ms >= self.flush_ms

    def flush(self) -> list[str]:
        """Buffered rows -> one Parquet part per (dataset, symbol, month); then empty the WAL."""
        job = self.begin_flush()
        if job is None:
            self.wal.truncate()
            return []
        files = self.write_flush(job)
        self.end_flush(job)
        return files

    # A flush in three steps so the actor can write Parquet off its event loop while new
    # batches keep landing in a fresh buffer and fresh WAL segments:
    def begin_flush(self) -> FlushJob | None:
        """Take the buffer and seal the WAL segments that cover it (on the writer's thread)."""
        if not self.buffered_rows:
            return None
        job = FlushJob({d: ts for d, ts in self.buffer.items() if ts}, self.wal.seal())
        self.buffer = {}
        self.buffered_rows = 0
        return job

    def write_flush(self, job: FlushJob) -> list[str]:
        """The Parquet writes (any thread; one flush at a time)."""
        for dataset, tables in job.tables.items():
            t = pa.concat_tables(tables)
            if dataset == CANDLES:
                self._write_candles(t, job)
                continue
            files = self.lake.append(dataset, self.exchange, t)
            job.files += files
            job.rows += t.num_rows
            self.parts_written += len(files)
        return job.files

    def _write_candles(self, t: pa.Table, job: FlushJob) -> None:
        """Merge into the ETL's candle partitions (atomic rewrite of each month's file)."""
        for sym, iv in dict.fromkeys(zip(t.column("symbol").to_pylist(),
                                         t.column("interval").to_pylist(), strict=True)):
            mask = pc.and_(pc.equal(t.column("symbol"), sym), pc.equal(t.column("interval"), iv))
            rows = t.filter(mask)
            job.files += self.lake.write_candles(rows, self.exchange, sym, iv).files
            job.rows += rows.num_rows
            job.candle_rows += rows.num_rows

    def end_flush(self, job: FlushJob) -> None:
        """The rows are in Parquet: drop the sealed segments (a crash before this replays them,
        and the dedup against the lake drops them again)."""
        self.wal.drop(job.segments)
        self.rows_written += job.rows
        self.candles_written += job.candle_rows
        self.flushes += 1

    def close(self) -> list[str]:
        """Flush everything, and let go of the WAL once it is empty, so the next fabric on
        this lake need not wait for this process to exit (writing again locks it again)."""
        files = self.flush() if self.buffered_rows else []
        self.wal.close()
        if not self.wal.segments():
            self.wal.release()
        return files

    # --- queries ------------------------------------------------------------------------------
    def coverage(self, dataset: str, symbols: list[str] | None = None) -> dict[str, list[tuple[
            int, int]]]:
        return {s: r.pairs() for (d, s), r in self.ids.items()
                if d == dataset and (symbols is None or s in symbols)}

    def stats(self) -> dict[str, Any]:
        return {
            "rows_written": self.rows_written, "parts_written": self.parts_written,
            "buffered_rows": self.buffered_rows, "duplicates": self.duplicates,
            "flushes": self.flushes, "wal_appends": self.wal.appends, "wal_bytes": self.wal.bytes,
            "replayed_rows": self.replayed_rows, "torn_segments": self.torn_segments,
            "wal_dir": str(self.wal.dir), "wal_segments": len(self.wal.segments()),
            "wal_holder": self.wal.holder(),
            "candles_written": self.candles_written,
            "stored": {f"{d}:{s}": r.count() for (d, s), r in self.ids.items()},
        }


__all__ = ["StreamStore", "WriteAck"]
