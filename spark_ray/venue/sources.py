"""Where candle plans come from: a seeded random walk (synthetic) or stored 1m candles (replay).

Both implement :class:`~spark_ray.venue.market.CandleSource`: the closed candles before the
start (served by REST klines only) and the plan of each candle as the market reaches it, with a
trade count from a wall-clock rate (:class:`TradeRate`) or, in replay, the stored count.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from spark_ray.venue.market import (
    MINUTE_MS,
    CandlePlan,
    CandleRow,
    fit_ohlc,
    make_plan,
    mix64,
    needed_trades,
)
from spark_ray.venue.specs import SymbolSpec


class TradeRate:
    """Trade counts per candle from a wall-clock rate, carrying fractions so none starve."""

    def __init__(self, trades_per_second: float, speed: float) -> None:
        self.per_market_ms = trades_per_second / speed / 1000.0
        self._carry = 0.0

    def count(self, span_ms: int) -> int:
        expected = self._carry + self.per_market_ms * span_ms
        n = math.floor(expected)
        self._carry = expected - n
        return n


class SyntheticSource:
    """A seeded random-walk market: same seed and start time, same candles and trades."""

    def __init__(
        self,
        spec: SymbolSpec,
        *,
        seed: int,
        rate: TradeRate,
        history_minutes: int,
        sigma: float = 0.0008,
        notional_per_trade: float = 150.0,
    ) -> None:
        self.spec = spec
        self.seed = seed
        self.rate = rate
        self.history_minutes = history_minutes
        self.sigma = sigma
        self.sym_key = mix64(seed, *spec.symbol.encode())
        price = spec.initial_price
        qty = notional_per_trade / price if price > 0 else 1.0
        self.avg_units = max(1, round(qty * 10**spec.qty_scale))

    def _candle(self, rng: np.random.Generator, o: int, n: int) -> tuple[int, int, int, int, int]:
        r, e1, e2, vol = rng.standard_normal(4)
        c = max(1, round(o * math.exp(r * self.sigma)))
        hi, lo = max(o, c), min(o, c)
        h = hi + round(abs(e1) * self.sigma * o / 2)
        low = max(1, lo - round(abs(e2) * self.sigma * o / 2))
        volume = max(n, round(n * self.avg_units * math.exp(0.25 * vol)))
        return o, h, low, c, volume

    def history(self, start_ms: int) -> list[CandleRow]:
        start_minute = start_ms - start_ms % MINUTE_MS
        rng = np.random.default_rng([self.sym_key & 0xFFFFFFFF, 7, start_minute // MINUTE_MS])
        n_full = max(1, round(self.rate.per_market_ms * MINUTE_MS))
        rows: list[CandleRow] = []
        close = self.spec.to_ticks(self.spec.initial_price)
        for k in range(1, self.history_minutes + 1):
            # Walk backwards from the start price so history length never moves today's price.
            o = max(1, round(close / math.exp(rng.standard_normal() * self.sigma)))
            _, h, low, c, volume = self._candle(rng, o, n_full)
            h, low = max(h, o, close), min(low, o, close)
            c = close
            taker = int(volume * (0.35 + 0.3 * rng.random()))
            mid = (o + c) // 2
            rows.append(
                CandleRow(
                    open_time=start_minute - k * MINUTE_MS,
                    o=o, h=h, low=low, c=c, volume=volume, quote=volume * mid,
                    trades=n_full, taker_base=taker, taker_quote=taker * mid,
                )
            )
            close = o
        rows.reverse()
        return rows

    def plan(self, open_time: int, t0: int, prev_close: int, first_id: int) -> CandlePlan:
        key = mix64(self.sym_key, open_time)
        rng = np.random.default_rng([key & 0xFFFFFFFF, key >> 32])
        n = self.rate.count(open_time + MINUTE_MS - t0)
        o, h, low, c, volume = self._candle(rng, prev_close, n)
        o, h, low, c = fit_ohlc(o, h, low, c, n)
        return make_plan(
            open_time=open_time, t0=t0, n=n, o=o, h=h, low=low, c=c,
            volume=volume, first_id=first_id, key=key,
        )


@dataclass(frozen=True)
class StoredCandle:
    """One stored 1m candle in the symbol's integer units."""

    open_time: int
    o: int
    h: int
    low: int
    c: int
    volume: int
    quote: int
    trades: int
    taker_base: int
    taker_quote: int


class ReplaySource:
    """Replays stored 1m candles: each becomes a plan whose trades print it exactly."""

    def __init__(
        self,
        spec: SymbolSpec,
        candles: Iterable[StoredCandle],
        *,
        seed: int,
        rate: TradeRate | None,
    ) -> None:
        self.spec = spec
        self.rows = {c.open_time: c for c in candles}
        self.rate = rate
        self.sym_key = mix64(seed, *spec.symbol.encode())
        self.first_open = min(self.rows) if self.rows else 0
        self.last_open = max(self.rows) if self.rows else 0

    def history(self, start_ms: int) -> list[CandleRow]:
        return [
            CandleRow(
                open_time=r.open_time, o=r.o, h=r.h, low=r.low, c=r.c, volume=r.volume,
                quote=r.quote, trades=r.trades, taker_base=r.taker_base,
                taker_quote=r.taker_quote,
            )
            for t, r in sorted(self.rows.items())
            if t + MINUTE_MS <= start_ms
        ]

    def plan(self, open_time: int, t0: int, prev_close: int, first_id: int) -> CandlePlan:
        key = mix64(self.sym_key, open_time)
        row = self.rows.get(open_time)
        span = open_time + MINUTE_MS - t0
        if row is None:
            if self.rate is not None:
                self.rate.count(span)
            return make_plan(open_time=open_time, t0=t0, n=0, o=prev_close, h=prev_close,
                             low=prev_close, c=prev_close, volume=0, first_id=first_id, key=key)
        n = self.rate.count(span) if self.rate is not None else row.trades
        n = 0 if row.volume <= 0 else max(n, needed_trades(row.o, row.h, row.low, row.c))
        volume = max(row.volume, n)
        return make_plan(
            open_time=open_time, t0=t0, n=n, o=row.o, h=row.h, low=row.low, c=row.c,
            volume=volume, first_id=first_id, key=key,
        )
