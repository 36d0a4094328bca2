"""Trade-gap repair of a stored series: find holes in the stored trade ids, back-fill them over
REST, write them into the lake (``spark-ray data repair``).

The fabric repairs gaps while it runs; what it could not (a venue error past its attempts, a
fabric that was down) stays a hole in the lake. This finds those holes from *every* stored file
(the compacted ``data.parquet`` and the parts a sink has not compacted yet: reading only the
former would see rows a live sink wrote as holes) and fills them from the venue's trade paging
(:meth:`~spark_ray.adapters.base.MarketRest.trades_page`), through the lake's own writer
(:meth:`~spark_ray.lake.DataStore.append`, as the sink stores). Whether a venue can do this is
its adapter's capabilities (contiguous trade ids, REST back-fill), never its name.

Idempotent: the rows written are exactly the missing ids, so a second run finds no hole and
writes nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from spark_ray.adapters.base import Adapter, MarketRest
from spark_ray.http import HttpError, RetryPolicy, TransportError
from spark_ray.lake import DataStore
from spark_ray.schemas import TIMESTAMP_MS_UTC, TRADE_SCHEMA
from spark_ray.streams.ids import IdRanges
from spark_ray.streams.normalize import _trade_table

Hole = tuple[int, int]  # closed interval of missing ids


class RepairFailed(Exception):
    """The REST endpoint kept failing; ``missing`` is what is still not stored."""

    def __init__(self, message: str, missing: list[Hole]) -> None:
        super().__init__(message)
        self.missing = missing


@dataclass
class RepairReport:
    symbol: str
    dataset: str
    scanned: Hole | None  # the id range looked at (None: nothing stored)
    holes_before: list[Hole] = field(default_factory=list)
    fetched: int = 0  # rows the venue returned inside the holes
    written: int = 0  # rows stored (new ids only)
    requests: int = 0
    retries: int = 0
    files: list[str] = field(default_factory=list)
    compacted: int = 0  # parts folded into data.parquet afterwards
    missing: list[Hole] = field(default_factory=list)  # holes left (the venue lacks them)

    @property
    def missing_ids(self) -> int:
        return sum(b - a + 1 for a, b in self.missing)


def stored_ids(store: DataStore, exchange: str, symbol: str, dataset: str = "trades") -> IdRanges:
    """Every stored id of a series: merged files and uncompacted parts alike."""
    ids = IdRanges()
    for path in store.files(dataset, exchange, symbol):
        ids.add_ids(store.read_file(path, columns=["trade_id"]).column("trade_id").to_numpy())
    return ids


def holes(ids: IdRanges, lo: int, hi: int) -> list[Hole]:
    """The ids of ``[lo, hi]`` not in ``ids``, as closed intervals."""
    out: list[Hole] = []
    nxt = lo
    for a, b in ids.pairs():
        if b < nxt:
            continue
        if a > hi:
            break
        if a > nxt:
            out.append((nxt, min(a - 1, hi)))
        nxt = max(nxt, b + 1)
    if nxt <= hi:
        out.append((nxt, hi))
    return out


def check_repairable(adapter: Adapter, dataset: str) -> None:
    """ValueError when the venue's ids or REST cannot support this repair."""
    if not adapter.caps.contiguous_trade_ids:
        raise ValueError(f"{adapter.title} trade ids are not contiguous: a hole is not a gap")
    if dataset not in adapter.caps.rest_backfill:
        raise ValueError(f"{adapter.title} cannot back-fill {dataset} over REST "
                         f"(it can: {', '.join(adapter.caps.rest_backfill) or 'nothing'})")


Progress = Callable[[RepairReport, list[Hole]], None]


async def repair(store: DataStore, adapter: Adapter, rest: MarketRest, symbol: str,
                 id_range: Hole | None = None, dataset: str = "trades",
                 policy: RetryPolicy | None = None,
                 progress: Progress | None = None) -> RepairReport:
    """Back-fill the holes of ``symbol`` in ``id_range`` (None: the whole stored range).
    :class:`RepairFailed` when REST fails past ``policy``'s retries (what was fetched until
    then is stored)."""
    policy = policy or RetryPolicy(max_retries=5, base_delay_s=0.5, max_delay_s=8.0)
    exchange = adapter.name
    ids = stored_ids(store, exchange, symbol, dataset)
    if id_range is None:
        if ids.min is None or ids.max is None:
            return RepairReport(symbol, dataset, None)
        id_range = (ids.min, ids.max)
    rep = RepairReport(symbol, dataset, id_range, holes_before=holes(ids, *id_range))
    left = list(rep.holes_before)
    page = adapter.rest_page
    while left:
        a, b = left[0]
        rows = await _page(rest, dataset, symbol, a, min(page, b - a + 1), policy, rep, left)
        cols, _bad = adapter.parse_trade_rows(dataset, symbol, rows, int(time.time() * 1000))
        got = np.asarray(cols.trade_id, dtype=np.int64)
        inside = (got >= a) & (got <= b) & ~ids.contains_mask(got)
        if inside.any():
            t = _stamped(_trade_table(exchange, cols, inside))
            # one page's ids may repeat (a misbehaving venue): keep each once
            _, first = np.unique(t.column("trade_id").to_numpy(), return_index=True)
            t = t.take(pa.array(np.sort(first)))
            rep.files += store.append(dataset, exchange, t)
            ids.add_ids(t.column("trade_id").to_numpy())
            rep.fetched += int(inside.sum())
            rep.written += t.num_rows
        top = int(got.max()) if len(got) else -1
        if top < a:  # the venue has nothing from ``a`` on: the rest of this hole is gone
            rep.missing.append(left.pop(0))
        else:
            # what the page covered is stored or absent at the venue (ids it skipped)
            covered = min(top, b)
            rep.missing += holes(ids, a, covered)
            left[0:1] = [(covered + 1, b)] if covered < b else []
        if progress is not None:
            progress(rep, left)
    if rep.written:
        # Fold the new parts in: DataStore.trades (the backtest's reader) reads compacted files
        # only. Safe beside a running sink: parts written meanwhile are left for later.
        rep.compacted = store.compact(dataset, exchange, symbol)
    return rep


async def _page(rest: MarketRest, dataset: str, symbol: str, from_id: int, limit: int,
                policy: RetryPolicy, rep: RepairReport,
                left: list[Hole]) -> list[dict[str, Any]]:
    attempt = 0
    while True:
        rep.requests += 1
        try:
            return await rest.trades_page(dataset, symbol, from_id, limit)
        except (TimeoutError, HttpError, TransportError, ValueError) as exc:
            status = getattr(exc, "status", None)
            retryable = status is None or status >= 500 or status == 429
            if not retryable or attempt >= policy.max_retries:
                raise RepairFailed(f"{symbol}: REST page from id {from_id} failed after "
                                   f"{attempt + 1} attempt(s): {exc}",
                                   [*rep.missing, *left]) from None
            rep.retries += 1
            await asyncio.sleep(policy.delay(attempt))
            attempt += 1


def _stamped(t: pa.Table) -> pa.Table:
    """``stored_time`` = now, as the sink stamps what it commits."""
    i = t.schema.get_field_index("stored_time")
    now = pa.array(np.full(t.num_rows, int(time.time() * 1000), dtype=np.int64))
    return t.set_column(i, TRADE_SCHEMA.field("stored_time"), now.cast(TIMESTAMP_MS_UTC))


def format_holes(hs: list[Hole], limit: int = 10) -> str:
    shown = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in hs[:limit])
    return shown + (f" (+{len(hs) - limit} more)" if len(hs) > limit else "")


__all__ = ["RepairFailed", "RepairReport", "check_repairable", "format_holes", "holes",
           "repair", "stored_ids"]
