"""Order book update ids, the weight limiter and kline aggregation, as plain units."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from spark_ray.venue.book import OrderBook
from spark_ray.venue.candles import aggregate, interval_open, select
from spark_ray.venue.market import CandleRow
from spark_ray.venue.ratelimit import RateLimitConfig, RateLimiter, depth_weight


def _apply(book: dict[int, int], levels: list[tuple[int, int]]) -> None:
    for p, q in levels:
        if q == 0:
            book.pop(p, None)
        else:
            book[p] = q


def test_depth_diffs_rebuild_the_book_like_a_binance_client() -> None:
    """Snapshot + diffs with U <= last+1 <= u reproduce every later snapshot exactly."""
    rng = random.Random(1)
    book = OrderBook(price=50_000, levels=20, mean_qty=100, seed=3)
    price = 50_000
    for _ in range(5):
        price += rng.randint(-3, 3)
        book.move_to(price, rng.random() < 0.5)
    last_id, bids, asks = book.snapshot(20)
    local_b, local_a = dict(bids), dict(asks)
    cursor = last_id - 7  # a client's buffered stream started a bit before the snapshot
    for _ in range(300):
        price += rng.randint(-40, 40)
        book.move_to(price, rng.random() < 0.5)
        diff = book.diff_since(cursor)
        if diff is None:
            continue
        cursor = diff.last_uid
        if diff.last_uid <= last_id:
            continue
        assert diff.first_uid <= last_id + 1 <= diff.last_uid
        _apply(local_b, diff.bids)
        _apply(local_a, diff.asks)
        last_id = diff.last_uid
        uid, bids, asks = book.snapshot(20)
        assert uid == last_id
        assert local_b == dict(bids) and local_a == dict(asks)
        assert max(local_b) < min(local_a)
        book.trim(cursor)


def test_book_follows_the_trade_side() -> None:
    book = OrderBook(price=1000, levels=10, mean_qty=5, seed=0)
    book.move_to(1010, taker_buy=True)
    bid, _, ask, aq = book.best()
    assert (bid, ask) == (1009, 1010) and aq > 0
    book.move_to(990, taker_buy=False)
    bid, bq, ask, _ = book.best()
    assert (bid, ask) == (990, 991) and bq > 0


def test_rate_limiter_429_then_418_with_escalating_bans() -> None:
    rl = RateLimiter(RateLimitConfig(weight_limit=10, window_s=60, ban_after=2, ban_s=100))
    assert [rl.check("ip", 4, 0.0).status for _ in range(2)] == [200, 200]
    v = rl.check("ip", 4, 1.0)
    assert v.status == 429 and v.used_weight == 12 and v.retry_after == 59
    assert rl.check("ip", 1, 2.0).status == 429
    v = rl.check("ip", 1, 3.0)
    assert v.status == 418 and v.retry_after == 100
    v = rl.check("ip", 1, 50.0)
    assert v.status == 418 and v.retry_after == 53
    assert rl.check("other", 1, 50.0).status == 200  # per client
    assert rl.check("ip", 1, 104.0).status == 200  # ban over and a new window
    for _ in range(12):
        v = rl.check("ip", 1, 105.0)
    while v.status != 418:
        v = rl.check("ip", 1, 105.0)
    assert v.retry_after == 200  # second ban doubles


def test_depth_weights() -> None:
    assert [depth_weight(n) for n in (1, 100, 101, 500, 1000, 5000)] == [5, 5, 25, 25, 50, 250]


def _rows(start: int, n: int) -> list[CandleRow]:
    out = []
    for k in range(n):
        out.append(CandleRow(start + 60_000 * k, 100 + k, 110 + k, 90 + k, 101 + k, volume=10,
                             quote=1000, trades=2, taker_base=4, taker_quote=400,
                             first_id=2 * k + 1, last_id=2 * k + 2))
    return out


def test_aggregate_intervals_fold_minutes() -> None:
    start = 1_700_000_000_000 - 1_700_000_000_000 % 86_400_000  # midnight UTC
    rows = _rows(start, 3 * 1440)
    for interval, minutes in (("5m", 5), ("1h", 60), ("1d", 1440)):
        ks = aggregate(rows, interval)
        assert len(ks) == 3 * 1440 // minutes
        k = ks[1]
        first, last = rows[minutes], rows[2 * minutes - 1]
        assert (k.o, k.c) == (first.o, last.c)
        assert k.h == max(r.h for r in rows[minutes:2 * minutes])
        assert k.volume == 10 * minutes and k.trades == 2 * minutes
        assert k.close_time == k.open_time + minutes * 60_000 - 1
        assert (k.first_id, k.last_id) == (first.first_id, last.last_id)


def test_week_and_month_alignment() -> None:
    ms = int(datetime(2024, 2, 15, 13, 0, tzinfo=UTC).timestamp() * 1000)
    assert datetime.fromtimestamp(interval_open("1w", ms) / 1000, UTC) == datetime(
        2024, 2, 12, tzinfo=UTC)  # a Monday
    assert datetime.fromtimestamp(interval_open("1M", ms) / 1000, UTC) == datetime(
        2024, 2, 1, tzinfo=UTC)


def test_select_follows_binance_limit_rules() -> None:
    start = 1_700_000_040_000
    rows = _rows(start, 100)
    last = select(rows, "1m", start=None, end=None, limit=5)
    assert [k.open_time for k in last] == [r.open_time for r in rows[-5:]]
    first = select(rows, "1m", start=start + 1, end=None, limit=3)
    assert [k.open_time for k in first] == [r.open_time for r in rows[1:4]]  # open >= start
    window = select(rows, "1m", start=rows[10].open_time, end=rows[20].open_time, limit=500)
    assert len(window) == 11
    before = select(rows, "1m", start=None, end=rows[50].open_time, limit=4)
    assert [k.open_time for k in before] == [r.open_time for r in rows[47:51]]
