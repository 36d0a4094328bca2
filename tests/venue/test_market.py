"""The market model: plans print their candles exactly, trades are contiguous and deterministic."""

from __future__ import annotations

import itertools
import time

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from spark_ray.venue.engine import Clock
from spark_ray.venue.market import MINUTE_MS, SymbolMarket, make_plan, needed_trades
from spark_ray.venue.sources import SyntheticSource, TradeRate
from spark_ray.venue.specs import default_spec, fmt8


@st.composite
def candles(draw: st.DrawFn) -> tuple[int, int, int, int, int, int]:
    low = draw(st.integers(1, 10_000))
    h = draw(st.integers(low, low + 5_000))
    o = draw(st.integers(low, h))
    c = draw(st.integers(low, h))
    n = draw(st.integers(needed_trades(o, h, low, c), 3_000))
    volume = draw(st.integers(n, n * 1_000))
    return o, h, low, c, n, volume


@settings(max_examples=150, deadline=None)
@given(candles(), st.integers(0, 2**32))
def test_plan_trades_print_exactly_the_candle(cndl: tuple[int, ...], key: int) -> None:
    o, h, low, c, n, volume = cndl
    plan = make_plan(open_time=0, t0=0, n=n, o=o, h=h, low=low, c=c, volume=volume,
                     first_id=1, key=key)
    px = plan.prices(0, n)
    q = plan.qtys(0, n)
    t = plan.times(0, n)
    assert px[0] == o and px[-1] == c
    assert px.max() == h and px.min() == low
    assert int(q.sum()) == volume and q.min() >= 1
    assert (np.diff(t) >= 0).all() and t[0] >= 0 and t[-1] < MINUTE_MS


@settings(max_examples=50, deadline=None)
@given(candles(), st.lists(st.integers(0, 3_000), max_size=6))
def test_trades_do_not_depend_on_slicing(cndl: tuple[int, ...], cuts: list[int]) -> None:
    o, h, low, c, n, volume = cndl
    plan = make_plan(open_time=0, t0=0, n=n, o=o, h=h, low=low, c=c, volume=volume,
                     first_id=1, key=99)
    edges = sorted({0, n, *[min(x, n) for x in cuts]})
    parts = [plan.prices(a, b) for a, b in itertools.pairwise(edges)]
    qparts = [plan.qtys(a, b) for a, b in itertools.pairwise(edges)]
    assert np.array_equal(np.concatenate(parts), plan.prices(0, n))
    assert np.array_equal(np.concatenate(qparts), plan.qtys(0, n))


def test_index_at_selects_trades_by_time() -> None:
    plan = make_plan(open_time=0, t0=0, n=1000, o=10, h=20, low=5, c=12, volume=5000,
                     first_id=1, key=1)
    t = plan.times(0, 1000)
    for ms in (0, 1, 59, 1234, 30_000, 59_999, 60_000):
        i = plan.index_at(ms)
        assert (t[:i] < ms).all() and (t[i:] >= ms).all()


def _market(seed: int, start: int, tps: float = 50.0, max_trades: int | None = None
            ) -> SymbolMarket:
    spec = default_spec("BTCUSDT")
    src = SyntheticSource(spec, seed=seed, rate=TradeRate(tps, 1.0), history_minutes=30)
    return SymbolMarket(spec, src, start_ms=start, max_trades=max_trades)


def test_synthetic_market_ids_contiguous_and_candles_are_the_trades() -> None:
    start = 1_700_000_000_000 + 12_345
    m = _market(seed=3, start=start)
    batches = []
    for step in range(1, 200):
        b = m.advance(start + step * 1500)
        if b is not None:
            batches.append(b)
    ids = np.concatenate([b.ids for b in batches])
    times = np.concatenate([b.time for b in batches])
    prices = np.concatenate([b.price for b in batches])
    qtys = np.concatenate([b.qty for b in batches])
    assert ids[0] == 1 and (np.diff(ids) == 1).all()
    assert (np.diff(times) >= 0).all() and times[0] >= start
    assert len(m.closed) >= 4
    for row in m.closed:
        sel = (times >= row.open_time) & (times < row.open_time + MINUTE_MS)
        assert row.trades == int(sel.sum())
        assert row.o == prices[sel][0] and row.c == prices[sel][-1]
        assert row.h == prices[sel].max() and row.low == prices[sel].min()
        assert row.volume == int(qtys[sel].sum())
        assert row.first_id == ids[sel][0] and row.last_id == ids[sel][-1]
    # ~50 trades per second of market time.
    span_s = (times[-1] - times[0]) / 1000
    assert 0.8 * 50 * span_s < len(ids) < 1.2 * 50 * span_s


def test_same_seed_same_market_other_seed_other_market() -> None:
    start = 1_700_000_000_000
    a, b, c = _market(7, start), _market(7, start), _market(8, start)
    ra, rb, rc = a.advance(start + 90_000), b.advance(start + 90_000), c.advance(start + 90_000)
    assert ra is not None and rb is not None and rc is not None
    assert np.array_equal(ra.price, rb.price) and np.array_equal(ra.qty, rb.qty)
    assert not np.array_equal(ra.price[:100], rc.price[:100])
    assert [h.c for h in a.history] == [h.c for h in b.history]


def test_max_trades_halts_the_market() -> None:
    start = 1_700_000_000_000
    m = _market(1, start, tps=200, max_trades=77)
    total = 0
    for step in range(1, 50):
        b = m.advance(start + step * 1000)
        total += 0 if b is None else len(b)
    assert total == 77 and m.halted


def test_aggregate_ids_group_same_price_side_and_time() -> None:
    start = 1_700_000_000_000
    m = _market(5, start, tps=5000)
    b = m.advance(start + 20_000)
    assert b is not None
    starts = np.flatnonzero(np.diff(b.agg)) + 1
    assert b.agg[0] == 1 and (np.diff(b.agg) >= 0).all() and (np.diff(b.agg) <= 1).all()
    inside = np.setdiff1d(np.arange(1, len(b)), starts)
    assert (b.price[inside] == b.price[inside - 1]).all()
    assert (b.time[inside] == b.time[inside - 1]).all()
    assert (b.maker[inside] == b.maker[inside - 1]).all()
    assert len(starts) < len(b) - 1  # some aggregation really happens at this rate


def test_clock_speed_and_pause() -> None:
    clock = Clock(start_ms=1_000_000, speed=100.0)
    time.sleep(0.05)
    t1 = clock.now_ms()
    assert 1_000_000 + 4_000 <= t1 <= 1_000_000 + 30_000
    clock.pause()
    frozen = clock.now_ms()
    time.sleep(0.05)
    assert clock.now_ms() == frozen
    clock.resume()
    time.sleep(0.02)
    assert clock.now_ms() > frozen


def test_fmt8_and_spec_grids() -> None:
    assert fmt8(6068522000000) == "60685.22000000"
    assert fmt8(1) == "0.00000001"
    spec = default_spec("BTCUSDT")
    assert spec.tick_size == "0.01000000" and spec.step_size == "0.00001000"
    assert spec.price_str(6068522) == "60685.22000000"
    ada = default_spec("ADABTC", 0.00002853, sample_prices=[0.00002853, 0.00002854])
    assert ada.price_scale == 8
