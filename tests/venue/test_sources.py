"""Candle sources: replayed candles print as stored, synthetic history, trade counts by rate."""

from __future__ import annotations

import itertools

from spark_ray.venue.market import MINUTE_MS, SymbolMarket
from spark_ray.venue.sources import ReplaySource, StoredCandle, SyntheticSource, TradeRate
from spark_ray.venue.specs import default_spec


def test_trade_rate_carries_fractions_so_no_candle_starves() -> None:
    rate = TradeRate(trades_per_second=0.5, speed=1.0)  # one trade every two seconds
    counts = [rate.count(1_000) for _ in range(10)]
    assert counts == [0, 1] * 5
    assert TradeRate(20.0, speed=60.0).count(MINUTE_MS) == 20  # a minute in one wall second


def test_synthetic_history_ends_at_the_start_price() -> None:
    spec = default_spec("BTCUSDT")
    src = SyntheticSource(spec, seed=2, rate=TradeRate(20.0, 1.0), history_minutes=30)
    start = 28_333_334 * MINUTE_MS + 5_000  # 5 s into a minute
    rows = src.history(start)
    assert len(rows) == 30 and rows[-1].open_time == start - 5_000 - MINUTE_MS
    assert all(b.open_time - a.open_time == MINUTE_MS for a, b in itertools.pairwise(rows))
    assert rows[-1].c == spec.to_ticks(spec.initial_price)
    assert all(r.low <= min(r.o, r.c) and r.h >= max(r.o, r.c) for r in rows)


def test_replay_source_reproduces_stored_candles() -> None:
    spec = default_spec("BTCUSDT")
    rows = [
        StoredCandle(60_000 * k, 6_000_000 + k, 6_000_500 + k, 5_999_000 + k, 6_000_100 + k,
                     200_000 + k, 0, 300 + k, 0, 0)
        for k in range(5)
    ]
    src = ReplaySource(spec, rows, seed=0, rate=None)
    m = SymbolMarket(spec, src, start_ms=0)
    m.advance(5 * 60_000)
    assert len(m.closed) == 5
    for row, got in zip(rows, m.closed, strict=True):
        assert (got.o, got.h, got.low, got.c, got.volume, got.trades) == (
            row.o, row.h, row.low, row.c, row.volume, row.trades)
