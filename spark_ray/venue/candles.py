"""Klines of any Binance interval, aggregated from 1m candle rows (or trades, for 1s).

REST klines, kline streams and tests all read candles through :func:`aggregate`, so an interval's
candle is by construction the fold of the 1m candles (and so of the trades) inside it.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from spark_ray.schemas import INTERVAL_MS
from spark_ray.venue.market import MINUTE_MS, CandleRow

WEEK_OFFSET_MS = 4 * 86_400_000  # 1970-01-01 was a Thursday; Binance weeks open on Monday


@dataclass(frozen=True)
class Kline:
    """One kline in the symbol's integer units (quote volumes in price*qty units)."""

    open_time: int
    close_time: int
    o: int
    h: int
    low: int
    c: int
    volume: int
    quote: int
    trades: int
    taker_base: int
    taker_quote: int
    first_id: int
    last_id: int


def _month_key(ms: np.ndarray) -> np.ndarray:
    out = np.empty(len(ms), dtype=np.int64)
    for i, t in enumerate(ms.tolist()):
        d = datetime.fromtimestamp(t / 1000, tz=UTC)
        out[i] = d.year * 12 + d.month - 1
    return out


def _month_open(key: int) -> int:
    year, month0 = divmod(key, 12)
    return calendar.timegm((year, month0 + 1, 1, 0, 0, 0)) * 1000


def interval_open(interval: str, ms: int) -> int:
    """Open time of the interval-candle containing ms."""
    if interval == "1M":
        return _month_open(int(_month_key(np.array([ms], dtype=np.int64))[0]))
    step = INTERVAL_MS[interval]
    assert step is not None  # nosec B101  # narrows Optional for mypy, not a check
    offset = WEEK_OFFSET_MS if interval == "1w" else 0
    return (ms - offset) // step * step + offset


def interval_close(interval: str, open_time: int) -> int:
    """Close time (inclusive last ms) of the interval-candle opening at open_time."""
    if interval == "1M":
        return _month_open(int(_month_key(np.array([open_time], dtype=np.int64))[0]) + 1) - 1
    step = INTERVAL_MS[interval]
    assert step is not None  # nosec B101  # narrows Optional for mypy, not a check
    return open_time + step - 1


def _keys(interval: str, open_times: np.ndarray) -> np.ndarray:
    if interval == "1M":
        return _month_key(open_times)
    step = INTERVAL_MS[interval]
    assert step is not None  # nosec B101  # narrows Optional for mypy, not a check
    offset = WEEK_OFFSET_MS if interval == "1w" else 0
    return (open_times - offset) // step


class CandleColumns:
    """Column view of a sorted list of 1m rows, for vectorised slicing and grouping."""

    def __init__(self, rows: Sequence[CandleRow]) -> None:
        self.open_time = np.array([r.open_time for r in rows], dtype=np.int64)
        self.o = np.array([r.o for r in rows], dtype=np.int64)
        self.h = np.array([r.h for r in rows], dtype=np.int64)
        self.low = np.array([r.low for r in rows], dtype=np.int64)
        self.c = np.array([r.c for r in rows], dtype=np.int64)
        self.volume = np.array([r.volume for r in rows], dtype=object)
        self.quote = np.array([r.quote for r in rows], dtype=object)
        self.trades = np.array([r.trades for r in rows], dtype=np.int64)
        self.taker_base = np.array([r.taker_base for r in rows], dtype=object)
        self.taker_quote = np.array([r.taker_quote for r in rows], dtype=object)
        self.first_id = np.array([r.first_id for r in rows], dtype=np.int64)
        self.last_id = np.array([r.last_id for r in rows], dtype=np.int64)


def aggregate(rows: Sequence[CandleRow], interval: str) -> list[Kline]:
    """Fold sorted, contiguous 1m rows into candles of the given interval (>= 1m)."""
    if not rows:
        return []
    cols = CandleColumns(rows)
    keys = _keys(interval, cols.open_time)
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    ends = np.concatenate((starts[1:], [len(keys)])) - 1
    h = np.maximum.reduceat(cols.h, starts)
    low = np.minimum.reduceat(cols.low, starts)
    vol = np.add.reduceat(cols.volume, starts)
    quote = np.add.reduceat(cols.quote, starts)
    trades = np.add.reduceat(cols.trades, starts)
    tb = np.add.reduceat(cols.taker_base, starts)
    tq = np.add.reduceat(cols.taker_quote, starts)
    out: list[Kline] = []
    for g, (s, e) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        open_time = interval_open(interval, int(cols.open_time[s]))
        ids = cols.first_id[s : e + 1]
        valid = ids[ids >= 0]
        last_ids = cols.last_id[s : e + 1]
        last_valid = last_ids[last_ids >= 0]
        out.append(
            Kline(
                open_time=open_time,
                close_time=interval_close(interval, open_time),
                o=int(cols.o[s]),
                h=int(h[g]),
                low=int(low[g]),
                c=int(cols.c[e]),
                volume=int(vol[g]),
                quote=int(quote[g]),
                trades=int(trades[g]),
                taker_base=int(tb[g]),
                taker_quote=int(tq[g]),
                first_id=int(valid[0]) if len(valid) else -1,
                last_id=int(last_valid[-1]) if len(last_valid) else -1,
            )
        )
    return out


def select(
    rows: Sequence[CandleRow],
    interval: str,
    *,
    start: int | None,
    end: int | None,
    limit: int,
) -> list[Kline]:
    """Binance's kline selection: open >= start and <= end; first `limit` after start, else last.

    `rows` are all 1m rows up to now (the unfinished current minute last), sorted by open time.
    """
    if not rows or limit <= 0:
        return []
    times = np.fromiter((r.open_time for r in rows), dtype=np.int64, count=len(rows))
    lo_idx, hi_idx = 0, len(rows)
    if start is not None:
        lo_idx = int(np.searchsorted(times, interval_open(interval, start), side="left"))
    if end is not None:
        hi_idx = int(np.searchsorted(times, end, side="right"))
    # Only limit (+1) intervals are needed: at most that many intervals' worth of minute rows
    # (months: 31 days). Counted in rows, not time, so a market that closes (a replayed BIST
    # night has no rows) still gives the next `limit` klines, as Binance gives the next ones.
    step = INTERVAL_MS[interval] or 31 * 86_400_000
    span = (limit + 1) * max(1, step // 60_000)
    if start is None:
        lo_idx = max(lo_idx, hi_idx - span)
    else:
        hi_idx = min(hi_idx, lo_idx + span)
    if lo_idx >= hi_idx:
        return []
    klines = aggregate(rows[lo_idx:hi_idx], interval)
    klines = [
        k
        for k in klines
        if (start is None or k.open_time >= start) and (end is None or k.open_time <= end)
    ]
    return klines[:limit] if start is not None else klines[-limit:]


def klines_from_trades(
    time: np.ndarray,
    price: np.ndarray,
    qty: np.ndarray,
    maker: np.ndarray,
    ids: np.ndarray,
    *,
    start: int | None,
    end: int | None,
    limit: int,
) -> list[Kline]:
    """1s klines straight from trades (only seconds with trades exist here)."""
    if len(time) == 0:
        return []
    lo = int(np.searchsorted(time, start, side="left")) if start is not None else 0
    hi = int(np.searchsorted(time, end + 999, side="right")) if end is not None else len(time)
    time, price, qty = time[lo:hi], price[lo:hi], qty[lo:hi]
    maker, ids = maker[lo:hi], ids[lo:hi]
    if len(time) == 0:
        return []
    keys = time // 1000
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    ends = np.concatenate((starts[1:], [len(keys)])) - 1
    out: list[Kline] = []
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        p, q, m = price[s : e + 1], qty[s : e + 1], maker[s : e + 1]
        open_time = int(keys[s]) * 1000
        if (start is not None and open_time < start) or (end is not None and open_time > end):
            continue
        pq = [int(a) * int(b) for a, b in zip(p.tolist(), q.tolist(), strict=True)]
        buy = ~m
        out.append(
            Kline(
                open_time=open_time,
                close_time=open_time + 999,
                o=int(p[0]),
                h=int(p.max()),
                low=int(p.min()),
                c=int(p[-1]),
                volume=int(q.sum()),
                quote=sum(pq),
                trades=len(p),
                taker_base=int(q[buy].sum()),
                taker_quote=sum(v for v, b in zip(pq, buy.tolist(), strict=True) if b),
                first_id=int(ids[s]),
                last_id=int(ids[e]),
            )
        )
    return out[:limit] if start is not None else out[-limit:]


def minute_rows_until(
    history: Sequence[CandleRow],
    closed: Sequence[CandleRow],
    current: CandleRow | None,
) -> list[CandleRow]:
    """All 1m rows the venue can show now: history, closed live candles, then the open one."""
    rows = list(history) + list(closed)
    if current is not None:
        rows.append(current)
    return rows


__all__ = [
    "MINUTE_MS",
    "Kline",
    "aggregate",
    "interval_close",
    "interval_open",
    "klines_from_trades",
    "minute_rows_until",
    "select",
]
