"""The market model: candle plans and the trades that realise them, per symbol.

Every 1m candle is planned first (open, high, low, close, volume, trade count) and its trades are
then a pure function of (plan, index): trade ``i`` of a candle has a deterministic price on a
path through the plan's anchors, an exact share of the volume and a time spread evenly over the
candle. So any slice of trades can be produced on demand (no 6-million-row minute has to be held
in memory), the trades always aggregate back to the plan's OHLCV, and the same seed gives the
same market. Plans come from a :class:`CandleSource`: a seeded random walk (synthetic) or stored
candles (replay), both in :mod:`~spark_ray.venue.sources`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from spark_ray.venue.specs import SymbolSpec

MINUTE_MS = 60_000
_MASK64 = (1 << 64) - 1
_G = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def mix64(*parts: int) -> int:
    """A 64-bit hash of integers (splitmix64 chain): stable seeds for plans and book levels."""
    h = 0x243F6A8885A308D3
    for part in parts:
        z = (h ^ (part & _MASK64)) + 0x9E3779B97F4A7C15 & _MASK64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        h = z ^ (z >> 31)
    return h


def uniform(key: int, idx: np.ndarray) -> np.ndarray:
    """Deterministic uniforms in [0, 1), one per index, independent of how indices are sliced."""
    x = idx.astype(np.uint64) * _G ^ np.uint64(key & _MASK64)
    z = x + _G
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def exact_dot(a: np.ndarray, b: np.ndarray) -> int:
    """Exact integer sum of a*b (chunked so int64 never overflows): quote volumes stay exact."""
    prod = a.astype(np.int64) * b.astype(np.int64)
    total = 0
    for start in range(0, len(prod), 1024):
        total += int(prod[start : start + 1024].sum())
    return total


@dataclass
class TradeBatch:
    """Trades of one symbol, column-wise: ids, price ticks, qty units, market ms, maker flag."""

    symbol: str
    ids: np.ndarray
    price: np.ndarray
    qty: np.ndarray
    time: np.ndarray
    maker: np.ndarray  # True when the buyer was the maker (Binance "m")
    agg: np.ndarray  # aggregate-trade id of each trade

    def __len__(self) -> int:
        return len(self.ids)

    @staticmethod
    def concat(symbol: str, parts: Sequence[TradeBatch]) -> TradeBatch:
        if len(parts) == 1:
            return parts[0]
        return TradeBatch(
            symbol,
            np.concatenate([p.ids for p in parts]),
            np.concatenate([p.price for p in parts]),
            np.concatenate([p.qty for p in parts]),
            np.concatenate([p.time for p in parts]),
            np.concatenate([p.maker for p in parts]),
            np.concatenate([p.agg for p in parts]),
        )


@dataclass
class CandleRow:
    """A 1m candle summary in integer units (quote volumes in price_scale+qty_scale units)."""

    open_time: int
    o: int
    h: int
    low: int
    c: int
    volume: int = 0
    quote: int = 0
    trades: int = 0
    taker_base: int = 0
    taker_quote: int = 0
    first_id: int = -1
    last_id: int = -1

    def add(self, batch: TradeBatch) -> None:
        """Fold a batch of this candle's trades into the summary (first batch sets the open)."""
        if len(batch) == 0:
            return
        p, q = batch.price, batch.qty
        if self.trades == 0:
            self.o = int(p[0])
            self.h = int(p.max())
            self.low = int(p.min())
            self.first_id = int(batch.ids[0])
        else:
            self.h = max(self.h, int(p.max()))
            self.low = min(self.low, int(p.min()))
        self.c = int(p[-1])
        self.last_id = int(batch.ids[-1])
        self.trades += len(batch)
        self.volume += int(q.sum())
        self.quote += exact_dot(p, q)
        taker_buy = ~batch.maker
        if taker_buy.any():
            self.taker_base += int(q[taker_buy].sum())
            self.taker_quote += exact_dot(p[taker_buy], q[taker_buy])


@dataclass
class CandlePlan:
    """What one candle will be, and the pure functions giving its trades by index."""

    open_time: int
    t0: int  # time of trade 0 (later than open_time for the partial first candle)
    span: int  # ms over which the n trades are spread
    n: int
    o: int
    h: int
    low: int
    c: int
    volume: int
    first_id: int
    key: int
    anchor_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    anchor_px: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    noise: float = 0.0

    @property
    def end(self) -> int:
        return self.open_time + MINUTE_MS

    def index_at(self, ms: int) -> int:
        """First trade index whose time is >= ms."""
        if self.n == 0 or ms <= self.t0:
            return 0
        i = -(-(ms - self.t0) * self.n // self.span)
        return min(self.n, i)

    def times(self, i0: int, i1: int) -> np.ndarray:
        idx = np.arange(i0, i1, dtype=np.int64)
        return self.t0 + (idx * self.span) // self.n

    def prices(self, i0: int, i1: int) -> np.ndarray:
        idx = np.arange(i0, i1, dtype=np.int64)
        line = np.interp(idx.astype(np.float64), self.anchor_idx, self.anchor_px)
        if self.noise > 0:
            line += (uniform(self.key, idx) * 2.0 - 1.0) * self.noise
        px = np.rint(line).astype(np.int64)
        np.clip(px, self.low, self.h, out=px)
        for ai, ap in zip(self.anchor_idx.tolist(), self.anchor_px.tolist(), strict=True):
            if i0 <= ai < i1:
                px[int(ai) - i0] = int(ap)
        return px

    def qtys(self, i0: int, i1: int) -> np.ndarray:
        """Exact split of the volume: pairs (2j, 2j+1) get base+d and base-d, remainder first."""
        idx = np.arange(i0, i1, dtype=np.int64)
        base, rem = divmod(self.volume, self.n)
        q = np.full(len(idx), base, dtype=np.int64)
        q += (idx < rem).astype(np.int64)
        if base > 1:
            pair = idx // 2
            d = np.floor(uniform(self.key ^ 0x5DEECE66D, pair) * base).astype(np.int64)
            np.minimum(d, base - 1, out=d)
            odd = (idx % 2) == 1
            paired_even = (~odd) & (idx + 1 < self.n)
            q += np.where(paired_even, d, 0) - np.where(odd, d, 0)
        return q


def needed_trades(o: int, h: int, low: int, c: int) -> int:
    """Fewest trades that can print this OHLC (open first, close last, both extremes touched)."""
    interior = sum(1 for v in {h, low} if v not in (o, c))
    if o == c and interior == 0:
        return 1
    return 2 + interior


def fit_ohlc(o: int, h: int, low: int, c: int, n: int) -> tuple[int, int, int, int]:
    """Shrink a synthetic candle's extremes so n trades can print it (n < 4 cannot touch all)."""
    if n <= 1:
        return o, o, o, o
    hi, lo = max(o, c), min(o, c)
    if n == 2:
        return o, hi, lo, c
    if n == 3 and needed_trades(o, h, low, c) > 3:
        return (o, h, lo, c) if (h - hi) >= (lo - low) else (o, hi, low, c)
    return o, h, low, c


def make_plan(
    *,
    open_time: int,
    t0: int,
    n: int,
    o: int,
    h: int,
    low: int,
    c: int,
    volume: int,
    first_id: int,
    key: int,
    noise_frac: float = 0.02,
) -> CandlePlan:
    """A plan whose n trades print exactly (o, h, low, c, volume); n must be large enough."""
    span = max(1, open_time + MINUTE_MS - t0)
    if n <= 0 or volume <= 0:
        return CandlePlan(open_time, t0, span, 0, o, o, o, o, 0, first_id, key)
    if n < needed_trades(o, h, low, c):
        raise ValueError(f"{n} trades cannot print candle o={o} h={h} l={low} c={c}")
    if volume < n:
        raise ValueError(f"volume {volume} units cannot be split into {n} trades")
    anchors: dict[int, int] = {0: o, n - 1: c}
    interior = [v for v in dict.fromkeys((h, low)) if v not in (o, c)]
    if interior:
        slots = n - 2
        a = 1 + mix64(key, 1) % slots
        positions = [a]
        if len(interior) == 2:
            b = 1 + mix64(key, 2) % (slots - 1)
            if b >= a:
                b += 1
            positions.append(b)
        if mix64(key, 3) & 1:
            positions.reverse()
        for pos, val in zip(positions, interior, strict=False):
            anchors[pos] = val
    order = sorted(anchors)
    return CandlePlan(
        open_time=open_time,
        t0=t0,
        span=span,
        n=n,
        o=o,
        h=h,
        low=low,
        c=c,
        volume=volume,
        first_id=first_id,
        key=key,
        anchor_idx=np.array(order, dtype=np.float64),
        anchor_px=np.array([anchors[i] for i in order], dtype=np.float64),
        noise=(h - low) * noise_frac,
    )


class CandleSource(Protocol):
    """Where candle plans come from: a seeded walk or stored candles."""

    def history(self, start_ms: int) -> list[CandleRow]:
        """Closed candles before the market starts (served by REST klines only)."""
        ...

    def plan(self, open_time: int, t0: int, prev_close: int, first_id: int) -> CandlePlan:
        """The plan of the candle opening at open_time, its trades starting at t0."""
        ...


class MarketHoursView(Protocol):
    """Which minutes the market is open (:class:`spark_ray.venue.hours.MarketHours`)."""

    def is_open(self, open_time: int) -> bool: ...


class SymbolMarket:
    """One symbol's live market: walks the plans forward in market time, emitting trades."""

    def __init__(
        self,
        spec: SymbolSpec,
        source: CandleSource,
        *,
        start_ms: int,
        first_trade_id: int = 1,
        max_trades: int | None = None,
        hours: MarketHoursView | None = None,
    ) -> None:
        self.spec = spec
        self.hours = hours  # None: open around the clock
        self.source = source
        self.start_ms = start_ms
        self.first_trade_id = first_trade_id
        self.max_trades = max_trades
        self.history = source.history(start_ms)
        self.closed: list[CandleRow] = []
        prev_close = self.history[-1].c if self.history else spec.to_ticks(spec.initial_price)
        open_time = start_ms - start_ms % MINUTE_MS
        self.plan = source.plan(open_time, start_ms, prev_close, first_trade_id)
        self.current = CandleRow(open_time, prev_close, prev_close, prev_close, prev_close)
        self.cursor = 0  # next trade index within self.plan
        self.next_id = first_trade_id
        self.emitted_until = start_ms  # trades with time < emitted_until are out
        self.last_price = prev_close
        self._prev_maker = False
        self._prev_time = -1
        self._last_agg = first_trade_id - 1

    @property
    def halted(self) -> bool:
        return self.max_trades is not None and self.next_id - self.first_trade_id >= self.max_trades

    def _slice(self, i0: int, i1: int) -> TradeBatch:
        plan = self.plan
        px = plan.prices(i0, i1)
        qty = plan.qtys(i0, i1)
        tm = plan.times(i0, i1)
        n = i1 - i0
        prev = np.concatenate(([self.last_price], px[:-1]))
        d = px - prev
        nz = d != 0
        pos = np.where(nz, np.arange(n), -1)
        np.maximum.accumulate(pos, out=pos)
        maker = np.where(pos >= 0, (d < 0)[np.maximum(pos, 0)], self._prev_maker)
        prev_maker = np.concatenate(([self._prev_maker], maker[:-1]))
        prev_time = np.concatenate(([self._prev_time], tm[:-1]))
        starts = nz | (maker != prev_maker) | (tm != prev_time)
        agg = self._last_agg + np.cumsum(starts, dtype=np.int64)
        ids = np.arange(self.next_id, self.next_id + n, dtype=np.int64)
        self.next_id += n
        self.last_price = int(px[-1])
        self._prev_maker = bool(maker[-1])
        self._prev_time = int(tm[-1])
        self._last_agg = int(agg[-1])
        return TradeBatch(self.spec.symbol, ids, px, qty, tm, maker, agg)

    def _close_candle(self) -> None:
        cur = self.current
        if cur.trades == 0:
            cur.o = cur.h = cur.low = cur.c = self.last_price
        if self.hours is None or self.hours.is_open(cur.open_time):
            self.closed.append(cur)  # a closed market's minute has no candle
        open_time = self.plan.end
        self.plan = self.source.plan(open_time, open_time, self.last_price, self.next_id)
        self.current = CandleRow(open_time, self.last_price, self.last_price, self.last_price,
                                 self.last_price)
        self.cursor = 0

    def advance(self, now_ms: int, cap: int = 50_000) -> TradeBatch | None:
        """Emit the trades with time <= now_ms (at most about cap, cut at a millisecond edge)."""
        parts: list[TradeBatch] = []
        budget = cap
        while self.emitted_until <= now_ms:
            plan = self.plan
            stop = min(now_ms + 1, plan.end)
            i1 = plan.index_at(stop)
            if i1 - self.cursor > budget and budget < cap:
                break  # leave the rest for the next call rather than split a millisecond
            if i1 - self.cursor > budget:
                # Shrink the window to whole milliseconds that fit the budget (at least one ms).
                per_ms = plan.n / plan.span
                stop = max(self.emitted_until + 1, self.emitted_until + int(budget / per_ms))
                stop = min(stop, plan.end)
                i1 = plan.index_at(stop)
            if self.max_trades is not None:
                room = self.max_trades - (self.next_id - self.first_trade_id)
                i1 = min(i1, self.cursor + max(0, room))
            if i1 > self.cursor:
                batch = self._slice(self.cursor, i1)
                self.current.add(batch)
                parts.append(batch)
                budget -= len(batch)
                self.cursor = i1
            self.emitted_until = stop
            if stop >= plan.end:
                self._close_candle()
            if budget <= 0:
                break
        if not parts:
            return None
        return TradeBatch.concat(self.spec.symbol, parts)
