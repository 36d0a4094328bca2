"""Signal features over the lake in batch, one Ray task per (symbol, month) partition.

``spark-ray signals features`` runs this. A month of trades is the lake's unit of storage
(``trades/exchange=E/symbol=S/month=M/data.parquet``), so it is the unit of work too: every task
reads its own month (the merged ``data.parquet``, exactly what :meth:`DataStore.trades` reads)
and computes every chosen feature's batch runtime (:mod:`spark_ray.signals.features`), on as
many cores as the cluster has, with a progress line per finished partition.

A month cut off from its past would start every trailing feature cold, so a task first prepends
a warm-up tail of the months before (:func:`warmup` says how much each feature needs), computes
over warm-up + month and drops the warm-up rows. With that tail, a partition's values equal the
single pass over the whole series (to float rounding: a windowed sum is a difference of running
totals that start at the warm-up instead of at the series' first trade, so it is, if anything,
closer to exact). ``tests/signals/test_batch_ray.py`` checks this across a month boundary.

Results are Parquet per partition (``OUT/exchange=E/symbol=S/month=M/data.parquet``: hive
folders, as the lake's, so pyarrow.dataset, DuckDB and polars read them), written atomically
(temp file, then rename: a retried or re-run task never leaves half a file); with no ``out`` they
come back as tables.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import ray

from spark_ray.lake import DataStore
from spark_ray.lake.files import open_root, parquet_bytes, write_atomic
from spark_ray.lake.layout import DATA_FILE, TRADES
from spark_ray.signals.features import (
    EmaDeviation,
    Feature,
    FlowImbalance,
    RealizedVolatility,
    SignedVolume,
    Trades,
)
from spark_ray.signals.inventory import signal

# The columns a feature reads (Trades.from_table) plus the id the output is keyed by.
COLUMNS = ["trade_id", "trade_time", "price", "qty", "is_buyer_maker", "recv_time"]
# An EMA never forgets its seed; after n updates the seed's weight is (1 - alpha)^n. Warm it up
# until that weight is below float64's rounding (2.2e-16), so where it started cannot be seen.
EMA_RESIDUAL = 1e-16
Say = Callable[[str], None]


@dataclass(frozen=True)
class Warmup:
    """History a partition needs before its first trade: at least ``trades`` earlier trades and
    every trade within ``ms`` before it (whichever tail is longer)."""

    trades: int
    ms: int


def warmup(features: Sequence[Feature]) -> Warmup:
    """The warm-up that makes a partition's values equal the single pass's.

    Time windows (signed volume, flow imbalance) need every trade in (t0 - w, t0]; the rolling
    volatility of n returns needs n earlier prices; the EMA needs enough trades for its seed to
    fade below rounding (:data:`EMA_RESIDUAL`: 921 trades for a span of 50). A feature kind
    without a rule here is refused, rather than silently computed cold at every month start.
    """
    n, ms = 0, 0
    for f in features:
        if isinstance(f, SignedVolume | FlowImbalance):
            ms = max(ms, f.window_ms)
        elif isinstance(f, RealizedVolatility):
            n = max(n, f.n + 1)
        elif isinstance(f, EmaDeviation):
            alpha = 2.0 / (f.span + 1.0)
            n = max(n, math.ceil(math.log(EMA_RESIDUAL) / math.log1p(-alpha)))
        elif f.rowwise:
            pass  # a trade's own row and the books in force at it: no history
        else:
            raise ValueError(f"{f.name}: no warm-up rule for {type(f).__name__} in "
                             "spark_ray/app/signals_batch.py; add one before computing it by "
                             "partition")
    return Warmup(n, ms)


def _times(t: pa.Table) -> np.ndarray:
    return np.asarray(t.column("trade_time").cast(pa.int64()).to_numpy(), dtype=np.int64)


def _warm_tail(store: DataStore, before: Sequence[str], first_ms: int, need: Warmup,
               ) -> pa.Table | None:
    """The trades just before ``first_ms`` that ``need`` asks for, from the months ``before``
    (nearest first): a month's file is read whole (the lake writes one row group per month, so
    there is no cheaper tail), reaching further back only while the nearer months are too
    short (a thin month of an illiquid symbol)."""
    if need.trades == 0 and need.ms == 0:
        return None
    parts: list[pa.Table] = []
    rows = 0
    for path in before:
        part = store.read_file(path, columns=COLUMNS)
        if not part.num_rows:
            continue
        parts.insert(0, part)
        rows += part.num_rows
        if rows >= need.trades and int(_times(part)[0]) <= first_ms - need.ms:
            break
    if not parts:
        return None
    prev = pa.concat_tables([p.cast(parts[-1].schema) for p in parts])
    t = _times(prev)
    by_time = int(np.searchsorted(t, first_ms - need.ms, side="right"))
    by_count = max(0, len(t) - need.trades)
    return prev.slice(min(by_time, by_count))


def partition_features(store_root: str, exchange: str, symbol: str, month: str,
                       before: list[str], features: list[str], out: str | None,
                       ) -> dict[str, Any]:
    """One (symbol, month): its trades with a warm-up tail from ``before`` (earlier months'
    files, nearest first), every feature's batch values, the warm-up dropped; written to
    ``out`` (or returned as ``table``). Plain Python: the Ray task and the 1-process peer of
    the benchmark both run exactly this."""
    t0 = time.perf_counter()
    store = DataStore(store_root)
    path = f"{store.partition(TRADES, exchange, symbol, month=month)}/{DATA_FILE}"
    month_t = store.read_file(path, columns=COLUMNS)
    defs = [signal(n).feature for n in features]
    warm = None
    if month_t.num_rows and before:
        warm = _warm_tail(store, before, int(_times(month_t)[0]), warmup(defs))
    both = month_t if warm is None else pa.concat_tables([warm.cast(month_t.schema), month_t])
    trades = Trades.from_table(both)
    if any(f.rowwise for f in defs):
        # The symbol's whole book(s) are read (deduplicated, parts a sink has not compacted
        # included): the row in force at a month's first trade may be months old on a quiet
        # book, and a recorded book is small beside its trades.
        from spark_ray.signals.source import attach_books

        trades = attach_books(store, symbol, exchange, features, trades, both)
    k = 0 if warm is None else warm.num_rows
    cols: dict[str, pa.Array] = {
        "trade_id": pa.array(both.column("trade_id").to_numpy()[k:], pa.int64()),
        "time_ms": pa.array(trades.time[k:], pa.int64())}
    for f in defs:
        cols[f.name] = pa.array(f.batch(trades)[k:], pa.float64())
    table = pa.table(cols)
    result: dict[str, Any] = {"symbol": symbol, "month": month, "rows": table.num_rows,
                              "warmup_rows": k, "file": None}
    if out is not None:
        fs, root = open_root(out)
        target = f"{root}/exchange={exchange}/symbol={symbol}/month={month}/{DATA_FILE}"
        write_atomic(fs, target, parquet_bytes(table))
        result["file"] = target
    else:
        result["table"] = table
    result["seconds"] = time.perf_counter() - t0
    return result


class BatchError(RuntimeError):
    """A partition's task failed (an unreadable file, a full disk): which one, and why."""


def _absolute(uri: str) -> str:
    return uri if "://" in uri else os.path.abspath(uri)


def plan(store: DataStore, symbols: Sequence[str], exchange: str,
         ) -> list[tuple[str, str, list[str]]]:
    """(symbol, month, earlier months' files nearest first) for every stored month; a symbol
    without trades in the lake is a ValueError naming it."""
    jobs = []
    for symbol in symbols:
        files = store.partition_files(TRADES, exchange, symbol, None)
        if not files:
            raise ValueError(f"no trades of {symbol!r} in {store.uri} (exchange={exchange})")
        paths = [p for _, p in files]
        for i, (month, _) in enumerate(files):
            jobs.append((symbol, month, paths[:i][::-1]))
    return jobs


def batch_features(store_root: str, symbols: list[str], exchange: str, features: list[str],
                   out: Path | None, say: Say) -> dict[str, Any]:
    """Every feature over every stored month of ``symbols``, one Ray task (1 CPU) per (symbol,
    month), as many at once as the cluster has CPUs (the caller has connected to Ray). Returns
    the summary: partitions (rows, warm-up rows, file, seconds each), totals and rows/s; with
    no ``out``, ``tables`` maps ``SYMBOL/YYYY-MM`` to each partition's table."""
    started = time.perf_counter()
    # Tasks run in other processes (other nodes, on a cluster) with their own working folder:
    # a relative path is made absolute here, where the caller meant it. A local path must be
    # one every node sees (one machine, or a shared mount); an s3:// lake works anywhere.
    store = DataStore(_absolute(store_root))
    defs = [signal(n).feature for n in features]  # unknown names: KeyError naming them
    need = warmup(defs)
    jobs = plan(store, symbols, exchange)
    task = ray.remote(num_cpus=1)(partition_features)
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    max_in_flight = 2 * cpus  # the next partition is queued while one finishes
    queue = list(jobs)
    pending: dict[Any, tuple[str, str]] = {}
    parts: list[dict[str, Any]] = []
    tables: dict[str, pa.Table] = {}
    dest = None if out is None else _absolute(str(out))
    try:
        while queue or pending:
            while queue and len(pending) < max_in_flight:
                symbol, month, before = queue.pop(0)
                ref = task.remote(store.uri, exchange, symbol, month, before, list(features),
                                  dest)
                pending[ref] = (symbol, month)
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                symbol, month = pending.pop(ref)
                try:
                    res: dict[str, Any] = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    cause = exc.cause if isinstance(exc.cause, Exception) else exc
                    raise BatchError(f"{symbol} {month}: {cause}") from None
                table = res.pop("table", None)
                if table is not None:
                    tables[f"{symbol}/{month}"] = table
                parts.append(res)
                say(f"{symbol} {month}: {res['rows']:,} trades (+{res['warmup_rows']:,} "
                    f"warm-up) in {res['seconds']:.2f} s [{len(parts)}/{len(jobs)}]")
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
    seconds = time.perf_counter() - started
    rows = sum(p["rows"] for p in parts)
    parts.sort(key=lambda p: (p["symbol"], p["month"]))
    return {"store": store.uri, "exchange": exchange, "symbols": list(symbols),
            "features": list(features), "warmup": asdict(need), "out": dest,
            "partitions": parts, "rows": rows, "seconds": round(seconds, 3),
            "rows_per_s": round(rows / seconds) if seconds > 0 else None, "cpus": cpus,
            "tables": tables}
