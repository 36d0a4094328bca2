"""``SinkActor``: normalized batches -> write-ahead log (fsync) -> Parquet parts in the lake.

A thin shell over :class:`spark_ray.streams.store.StreamStore`. ``write`` returns only after the
rows are deduplicated against everything stored and fsync'd in the WAL: that return is the
acknowledgement the whole chain waits for. Parquet parts are written every ``flush_ms`` (or
``flush_rows``); on (re)start the WAL is replayed into the lake, deduplicated, so a kill at any
instant neither loses nor duplicates a row. ``streams_event_to_db_ms`` is exchange event time to
that durable commit.

The sink locks its WAL directory for its life (:mod:`spark_ray.streams.wal`): a second sink on
the same lake and exchange fails to start with a message naming the holder; a restart of this
actor (same actor id) waits for its previous process to exit, then replays.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pyarrow as pa
import ray
from ray.util.metrics import Histogram

from spark_ray.actors.priority import prefer_live_work
from spark_ray.streams import metrics as m
from spark_ray.streams.metrics import LatencyHist, sample
from spark_ray.streams.normalize import warmup_trades
from spark_ray.streams.store import StreamStore
from spark_ray.streams.wal import WalOwner

log = logging.getLogger(__name__)


@ray.remote(num_cpus=0, max_restarts=-1)
class SinkActor:
    def __init__(self, root: str, exchange: str, wal_dir: str | None = None,
                 flush_rows: int = 200_000, flush_ms: int = 1_000, name: str = "sink",
                 namespace: str = "") -> None:
        """``namespace``: the Ray namespace the actor is named in, recorded in the WAL's lock
        file so a refused second sink can name the fabric holding it (the runtime context
        only knows the job's namespace)."""
        prefer_live_work()
        self.root = root
        self.exchange = exchange
        self.name = name
        t0 = time.perf_counter()
        ctx = ray.get_runtime_context()
        owner = WalOwner(name=name, namespace=namespace,
                         incarnation=ctx.get_actor_id() or "")
        self.store = StreamStore(root, exchange, wal_dir, flush_rows, flush_ms, owner)
        self.recovery_s = round(time.perf_counter() - t0, 3)
        self.e2db = LatencyHist()
        self.writes = 0
        self._flusher: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()
        self._h = Histogram(m.EVENT_TO_DB, "Exchange event time to durable commit (ms).",
                            boundaries=m.MS_BOUNDARIES, tag_keys=m.LABELS)
        self._h.set_default_tags({"exchange": exchange, "symbol": "all", "stream": "all"})
        if self.store.replayed_rows:
            log.info("%s: replayed %d rows from the WAL", name, self.store.replayed_rows)

    def _ensure_flusher(self) -> None:
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        period = max(0.01, self.store.flush_ms / 4000)
        while True:
            await asyncio.sleep(period)
            if self.store.flush_due():
                await self._flush()

    async def _flush(self) -> None:
        """Parquet off the event loop: writes keep being acknowledged (WAL + fsync) meanwhile,
        so a slow disk delays files, not event-to-store latency. One flush at a time."""
        async with self._flush_lock:
            job = self.store.begin_flush()
            if job is None:
                return
            try:
                await asyncio.to_thread(self.store.write_flush, job)
            except Exception:
                # Rows stay in the sealed WAL segments: put them back so the next flush
                # retries them (and a restart would replay them).
                log.exception("%s: flush failed (rows stay in the WAL)", self.name)
                for dataset, tables in job.tables.items():
                    self.store.buffer.setdefault(dataset, [])[:0] = tables
                    self.store.buffered_rows += sum(t.num_rows for t in tables)
                return
            self.store.end_flush(job)

    async def write(self, tables: dict[str, pa.Table]) -> dict[str, int]:
        """Dedup + WAL (fsync) + buffer; the return value is the durable acknowledgement."""
        self._ensure_flusher()
        ack = self.store.write(tables)
        self.writes += 1
        if len(ack.latencies_ms):
            self.e2db.add(ack.latencies_ms)
            for sym, lat in ack.by_symbol.items():
                tags = {"exchange": self.exchange, "symbol": sym, "stream": "all"}
                for v in sample(lat, 16).tolist():
                    self._h.observe(max(0.0, v), tags)
        return {"accepted": ack.accepted, "duplicates": ack.duplicates}

    async def warmup(self) -> bool:
        """Run the whole write path once on a throwaway store (kernels, IPC, Parquet, zstd load
        lazily and cost ~100s of ms on first use) so the first real batch does not pay."""
        import tempfile

        self._ensure_flusher()
        with tempfile.TemporaryDirectory(prefix="sink-warmup-") as d:
            scratch = StreamStore(d, self.exchange)
            ack = scratch.write({"trades": warmup_trades(self.exchange)})
            scratch.flush()
            scratch.close()  # empties and releases its WAL
            scratch.lake.compact("trades", self.exchange, "BTCUSDT")
        self.e2db.add(ack.latencies_ms[:0])
        self._h.observe(0.0)
        return True

    async def coverage(self, dataset: str, symbols: list[str] | None = None) -> dict[str, Any]:
        return self.store.coverage(dataset, symbols)

    async def flush(self) -> int:
        """Flush now; returns the rows still buffered (0 unless writes raced the flush)."""
        await self._flush()
        return self.store.buffered_rows

    async def stats(self) -> dict[str, Any]:
        return {**self.store.stats(), "name": self.name, "writes": self.writes,
                "recovery_s": self.recovery_s, "event_to_db": self.e2db.summary(),
                "event_to_db_hist": self.e2db.to_sparse()}

    async def close(self, compact_parts: bool = True) -> dict[str, Any]:
        """Flush, and optionally fold the parts into each partition's data.parquet."""
        async with self._flush_lock:  # a flush in progress finishes first
            # Cancelled only while it holds no flush: cancelling ``_flush`` mid-write would
            # leave its thread writing a part after the compaction below (a part the compacted
            # ``data.parquet`` lacks), and skip ``end_flush``.
            if self._flusher is not None:
                self._flusher.cancel()
                self._flusher = None
            self.store.close()
        removed = 0
        if compact_parts:
            for dataset, symbol in sorted({*self.store.ids, *((("book", s) for s, _ in
                                                               self.store.marks))}):
                removed += self.store.lake.compact(dataset, self.exchange, symbol)
        return {**(await self.stats()), "parts_compacted": removed}
