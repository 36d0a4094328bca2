"""Bars from trades, live, and the growing bar history a strategy's ``init`` sees.

A bar covers ``[open_time, open_time + interval)`` of exchange trade time and exists only when it
holds a trade (as Binance's 1s klines). A bar closes when a trade of a later bar arrives, or, live,
when the exchange clock (estimated from the last trade's arrival) passes its end by
``close_grace_ms`` with no trade (a quiet market must not delay a decision). A trade older than
the open bar is late: counted, never merged into a bar already decided on.

The same :class:`BarBuilder` builds the backtest's bars from recorded trades
(:func:`bars_from_trades`), so paper trading and the backtest see identical bars.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from spark_ray.errors import UserError
from spark_ray.schemas import INTERVAL_MS
from spark_ray.strategy.bars import SIGNALS, BarData, fingerprint

FIXED_INTERVALS = ", ".join(k for k, v in INTERVAL_MS.items() if v)


def interval_ms(interval: str) -> int:
    ms = INTERVAL_MS.get(interval)
    if not ms:
        raise UserError(f"--interval: {interval!r} is not a fixed bar interval; use one of "
                        f"{FIXED_INTERVALS}")
    return ms


@dataclass(slots=True)
class ClosedBar:
    symbol: str
    time: int  # open time, ms
    open: float
    high: float
    low: float
    close: float
    volume: float
    trades: int
    last_trade_id: int
    last_recv_ms: int  # wall-clock arrival of the bar's last trade (0 when unknown)
    closed_by_recv_ms: int = 0  # receive time of the trade that closed it (0: a timer did)


class BarBuilder:
    """One symbol's bars from its trades.

    With ``hole_wait_ms`` set (live), trades pass a reorder buffer first: Binance trade ids are
    consecutive per symbol, so a trade arriving ahead of a missing id waits (up to
    ``hole_wait_ms`` of wall time) for the hole to fill, and bars are built in strict id order --
    an out-of-order frame cannot move a bar's open or close, or land after its bar closed. A hole
    that never fills is skipped and counted (``missed_ids``). Without it (recorded data, already
    sorted) trades are taken as they come.
    """

    def __init__(self, symbol: str, interval: str, close_grace_ms: int | None = None,
                 hole_wait_ms: int | None = None, max_buffer: int = 50_000) -> None:
        self.symbol = symbol
        self.interval = interval
        self.step = interval_ms(interval)
        self.close_grace_ms = close_grace_ms
        self.hole_wait_ms = hole_wait_ms
        self.max_buffer = max_buffer
        self.cur: ClosedBar | None = None
        self.closed_time = -(2**62)  # open time of the last bar handed out
        self.last_trade_id = -1  # highest id built into bars
        self.late = 0
        self.missed_ids = 0
        self.duplicates = 0
        self.reordered = 0
        self._buf: dict[int, tuple[int, float, float, int]] = {}
        self._buf_since = 0.0
        self._last_arrival_wall = 0.0
        self._last_trade_time = 0

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def add(self, time_ms: np.ndarray, price: np.ndarray, qty: np.ndarray,
            trade_id: np.ndarray, recv_ms: np.ndarray | None = None,
            arrival_wall_ms: float = 0.0) -> list[ClosedBar]:
        """Feed trades; returns the bars they closed, oldest first."""
        if len(time_ms) == 0:
            return []
        ids = np.asarray(trade_id, dtype=np.int64)
        t = np.asarray(time_ms, dtype=np.int64)
        p = np.asarray(price, dtype=np.float64)
        q = np.asarray(qty, dtype=np.float64)
        r = np.asarray(recv_ms, dtype=np.int64) if recv_ms is not None else \
            np.zeros(len(t), np.int64)
        self._last_arrival_wall = arrival_wall_ms
        if self.hole_wait_ms is None:
            return self._take_as_they_come(t, p, q, ids, r)
        first = self.last_trade_id < 0 and not self._buf
        if first:
            self.last_trade_id = int(ids.min()) - 1
        if not self._buf and len(ids) and int(ids[0]) == self.last_trade_id + 1 and \
                (len(ids) == 1 or bool(np.all(np.diff(ids) == 1))):
            return self._build(t, p, q, ids, r)  # the common case: in order, no hole
        for i in range(len(ids)):
            k = int(ids[i])
            if k <= self.last_trade_id or k in self._buf:
                self.duplicates += 1
                continue
            if not self._buf:
                self._buf_since = arrival_wall_ms
            self._buf[k] = (int(t[i]), float(p[i]), float(q[i]), int(r[i]))
        return self._release(arrival_wall_ms)

    def _release(self, now_wall_ms: float, force: bool = False) -> list[ClosedBar]:
        """Build the contiguous prefix of the buffer; skip a hole that waited too long."""
        out: list[ClosedBar] = []
        while self._buf:
            nxt = self.last_trade_id + 1
            if nxt not in self._buf:
                expired = self.hole_wait_ms is not None and \
                    now_wall_ms - self._buf_since >= self.hole_wait_ms
                if not (force or expired or len(self._buf) > self.max_buffer):
                    break
                low = min(self._buf)
                self.missed_ids += low - nxt
                self.last_trade_id = low - 1
                nxt = low
            run = []
            while nxt in self._buf:
                run.append(nxt)
                nxt += 1
            rows = [self._buf.pop(k) for k in run]
            self.reordered += len(run)
            a = np.asarray(run, dtype=np.int64)
            out += self._build(np.asarray([x[0] for x in rows], np.int64),
                               np.asarray([x[1] for x in rows]), np.asarray([x[2] for x in rows]),
                               a, np.asarray([x[3] for x in rows], np.int64))
            self._buf_since = now_wall_ms
        return out

    def _take_as_they_come(self, t: np.ndarray, p: np.ndarray, q: np.ndarray, ids: np.ndarray,
                           r: np.ndarray) -> list[ClosedBar]:
        keep = ids > self.last_trade_id
        if not keep.all():  # already seen (a redelivery): drop, count
            self.duplicates += int((~keep).sum())
            t, p, q, ids, r = t[keep], p[keep], q[keep], ids[keep], r[keep]
            if len(ids) == 0:
                return []
        if self.last_trade_id >= 0:
            self.missed_ids += max(0, int(ids[0]) - self.last_trade_id - 1)
        if len(ids) > 1:
            self.missed_ids += int(np.maximum(np.diff(ids) - 1, 0).sum())
        return self._build(t, p, q, ids, r)

    def _build(self, t: np.ndarray, p: np.ndarray, q: np.ndarray, ids: np.ndarray,
               r: np.ndarray) -> list[ClosedBar]:
        """Trades in id order -> the bars they close."""
        self.last_trade_id = int(ids[-1])
        bucket = t - t % self.step
        out: list[ClosedBar] = []
        # Late: before the open bar, or (none open) in a bar a timer already closed.
        floor = self.cur.time if self.cur is not None else self.closed_time + 1
        late = bucket < floor
        if late.any():
            self.late += int(late.sum())
            ok = ~late
            t, p, q, r, bucket, ids = t[ok], p[ok], q[ok], r[ok], bucket[ok], ids[ok]
            if len(t) == 0:
                return out
        # Runs of equal buckets (trades arrive in id order, times nearly sorted).
        edges = np.flatnonzero(bucket[1:] != bucket[:-1]) + 1
        starts = np.concatenate([[0], edges])
        ends = np.concatenate([edges, [len(bucket)]])
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
            b = int(bucket[s])
            cur = self.cur
            if cur is not None and b < cur.time:  # a late run inside this batch
                self.late += e - s
                continue
            if cur is not None and b > cur.time:
                cur.closed_by_recv_ms = int(r[s])
                out.append(cur)
                self.closed_time = cur.time
                cur = None
            seg_p = p[s:e]
            if cur is None:
                self.cur = ClosedBar(self.symbol, b, float(seg_p[0]), float(seg_p.max()),
                                     float(seg_p.min()), float(seg_p[-1]), float(q[s:e].sum()),
                                     e - s, int(ids[e - 1]), int(r[e - 1]))
            else:
                cur.high = max(cur.high, float(seg_p.max()))
                cur.low = min(cur.low, float(seg_p.min()))
                cur.close = float(seg_p[-1])
                cur.volume += float(q[s:e].sum())
                cur.trades += e - s
                cur.last_trade_id = int(ids[e - 1])
                cur.last_recv_ms = int(r[e - 1])
        self._last_trade_time = int(t[-1])
        return out

    def due(self, now_wall_ms: float) -> list[ClosedBar]:
        """Timers: trades released from a hole that waited too long, and the open bar if the
        estimated exchange clock is past its end plus grace (a quiet market)."""
        out = self._release(now_wall_ms) if self._buf else []
        if self.cur is None or self.close_grace_ms is None or not self._last_arrival_wall \
                or self._buf:
            return out
        exchange_now = self._last_trade_time + (now_wall_ms - self._last_arrival_wall)
        if exchange_now < self.cur.time + self.step + self.close_grace_ms:
            return out
        bar, self.cur = self.cur, None
        self.closed_time = bar.time
        out.append(bar)
        return out


class BarHistory:
    """Growing OHLCV arrays of one symbol (amortized appends); ``data()`` is a BarData view."""

    def __init__(self, symbol: str, interval: str, max_bars: int | None = None,
                 capacity: int = 1024) -> None:
        self.symbol = symbol
        self.interval = interval
        self.max_bars = max_bars
        self.n = 0
        self._t = np.zeros(capacity, dtype=np.int64)
        self._cols = np.zeros((5, capacity), dtype=np.float64)
        # Values published beside each bar (signals: ``extra`` of ``append``), NaN where a bar
        # has none (warm-up bars, a bar whose signal never arrived).
        self._x: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return self.n

    @property
    def last_time(self) -> int | None:
        return int(self._t[self.n - 1]) if self.n else None

    def append(self, time: int, o: float, h: float, lo: float, c: float, v: float,
               extra: dict[str, float] | None = None) -> None:
        if self.n and time <= self._t[self.n - 1]:
            raise ValueError(f"{self.symbol}: bar {time} is not after {self._t[self.n - 1]}")
        if self.n == len(self._t):
            keep = self.n
            if self.max_bars is not None and self.n >= self.max_bars:
                keep = self.max_bars // 2  # drop the oldest half, amortized O(1)
                self._t[:keep] = self._t[self.n - keep:self.n]
                self._cols[:, :keep] = self._cols[:, self.n - keep:self.n]
                for a in self._x.values():
                    a[:keep] = a[self.n - keep:self.n]
                self.n = keep
            else:
                self._t = np.concatenate([self._t, np.zeros(len(self._t), np.int64)])
                self._cols = np.concatenate([self._cols, np.zeros_like(self._cols)], axis=1)
                self._x = {k: np.concatenate([a, np.full(len(a), np.nan)])
                           for k, a in self._x.items()}
        self._t[self.n] = time
        self._cols[:, self.n] = (o, h, lo, c, v)
        for a in self._x.values():
            a[self.n] = np.nan
        for k, val in (extra or {}).items():
            if k not in self._x:
                self._x[k] = np.full(len(self._t), np.nan)
            self._x[k][self.n] = val
        self.n += 1

    def extend(self, bars: list[ClosedBar]) -> None:
        for b in bars:
            self.append(b.time, b.open, b.high, b.low, b.close, b.volume)

    def data(self) -> BarData:
        n, s = self.n, self.symbol
        c = self._cols
        extra = {SIGNALS: {s: {k: a[:n] for k, a in self._x.items()}}} if self._x else {}
        return BarData(time=self._t[:n], open={s: c[0, :n]}, high={s: c[1, :n]},
                       low={s: c[2, :n]}, close={s: c[3, :n]}, volume={s: c[4, :n]},
                       symbols=[s], interval=self.interval, extra=extra)


def bars_from_trades(trades: pa.Table, symbol: str, interval: str,
                     include_open_bar: bool = False) -> BarData:
    """The backtest's bars from recorded trades, built exactly as the executor builds them live
    (the last, still-open bar only with ``include_open_bar``)."""
    t = trades.sort_by("trade_id")
    builder = BarBuilder(symbol, interval)
    bars = builder.add(t.column("trade_time").cast(pa.int64()).to_numpy(),
                       t.column("price").to_numpy(), t.column("qty").to_numpy(),
                       t.column("trade_id").to_numpy())
    if include_open_bar and builder.cur is not None:
        bars.append(builder.cur)
    hist = BarHistory(symbol, interval, capacity=max(1, len(bars)))
    hist.extend(bars)
    data = hist.data()
    data.fingerprint = fingerprint(data.time, [data.open[symbol], data.high[symbol],
                                               data.low[symbol], data.close[symbol],
                                               data.volume[symbol]])
    return data
