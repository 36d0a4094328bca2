"""The trading core without a server: book walks, tape crossing, filters and account arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from spark_ray.venue.accounts import Account, InsufficientBalance, commission, rate_e8, to_e8
from spark_ray.venue.book import OrderBook
from spark_ray.venue.filters import SymbolFilters
from spark_ray.venue.matching import Resting, cross, max_qty_for, quote_e8, walk
from spark_ray.venue.params import RestError
from spark_ray.venue.specs import default_spec


def test_walk_takes_best_levels_up_to_qty_limit_or_budget() -> None:
    book = OrderBook(price=10_000, levels=5, mean_qty=100, seed=3)
    asks = [(p, book.qty(False, p)) for p in book.prices(False)]
    assert [p for p, _ in asks] == list(range(10_000, 10_005))
    fills, done = walk(book, buy=True, qty=asks[0][1] + 1)
    assert fills == [asks[0], (asks[1][0], 1)] and done
    fills, done = walk(book, buy=True, qty=10**9)
    assert fills == asks and not done  # the book ran out
    fills, done = walk(book, buy=True, qty=10**9, limit=asks[1][0])
    assert fills == asks[:2] and not done  # the limit price stopped it
    k = 10**6 * 10**3  # tick 1e-2, lot 1e-5 -> 1e-8 units per tick*lot: 10**6 * 10**3
    budget = quote_e8(asks[0][0], asks[0][1], k) + quote_e8(asks[1][0], 2, k) + 1
    fills, done = walk(book, buy=True, quote_budget=budget, k=k)
    assert fills == [asks[0], (asks[1][0], 2)] and done
    book.take(False, asks[0][0], asks[0][1])  # the level is gone, the next one is best
    assert book.best()[2:] == asks[1]
    assert book.snapshot(2)[2] == asks[1:3]
    with pytest.raises(ValueError):
        book.take(False, asks[1][0], asks[1][1] + 1)


def test_max_qty_for_is_the_exact_inverse_of_quote() -> None:
    rng = np.random.default_rng(5)
    for _ in range(2000):
        p, b, k = int(rng.integers(1, 10**7)), int(rng.integers(0, 10**12)), 10 ** int(
            rng.integers(0, 10))
        q = max_qty_for(p, b, k)
        assert quote_e8(p, q, k) <= b < quote_e8(p, q + 1, k)


def test_cross_shares_each_trade_in_price_time_priority() -> None:
    orders = [Resting(1, True, 100, 6), Resting(2, True, 101, 4), Resting(3, False, 105, 5)]
    prices = np.array([102, 99, 100, 98, 106])
    qtys = np.array([9, 3, 7, 5, 2])
    fills = cross(orders, prices, qtys)
    # Trade 0 at 102 crosses nobody; trade 1 at 99 (< 101, < 100): order 2 first (better
    # price), then order 1 with what is left; trade 2 at 100 crosses only order 2 (filled);
    # trade 3 at 98 fills order 1's rest; trade 4 at 106 crosses the sell.
    assert fills == [(2, 1, 3), (2, 2, 1), (1, 3, 5), (3, 4, 2)]
    assert cross([Resting(1, True, 100, 6)], np.array([100, 100]), np.array([9, 9])) == []


def test_filters_come_from_exchange_info() -> None:
    f = SymbolFilters.of(default_spec("BTCUSDT"))
    assert (f.tick, f.step, f.min_notional) == (10**6, 10**3, 5 * 10**8)
    f.check_price(to_e8("60000.01"))
    f.check_qty(to_e8("0.00001"), market=False)
    f.check_notional(to_e8("60000"), to_e8("0.0001"), market=False)
    for call, name in ((lambda: f.check_price(to_e8("60000.001")), "PRICE_FILTER"),
                       (lambda: f.check_qty(to_e8("0.000011"), market=False), "LOT_SIZE"),
                       (lambda: f.check_qty(to_e8("101"), market=True), "MARKET_LOT_SIZE"),
                       (lambda: f.check_notional(to_e8("1"), to_e8("1"), market=True),
                        "NOTIONAL"),
                       (lambda: f.check_open_orders(200), "MAX_NUM_ORDERS")):
        with pytest.raises(RestError, match=f"Filter failure: {name}$"):
            call()


def test_account_arithmetic_is_exact() -> None:
    a = Account("k", rate_e8(0.001), rate_e8(0.00075))
    a.credit("USDT", to_e8("100"), 1)
    a.lock("USDT", to_e8("60.5"), 2)
    with pytest.raises(InsufficientBalance):
        a.lock("USDT", to_e8("40"), 3)
    a.spend_locked("USDT", to_e8("10.25"), 4)
    a.unlock("USDT", to_e8("50.25"), 5)
    assert (a.balance("USDT").free, a.balance("USDT").locked) == (to_e8("89.75"), 0)
    assert a.take_touched() == ["USDT"] and a.take_touched() == [] and a.update_time == 5
    assert (a.maker_rate, a.taker_rate) == (100_000, 75_000)
    assert commission(to_e8("0.00525"), a.maker_rate) == 525  # 0.00000525
    assert commission(5, a.maker_rate) == 0 and commission(500, a.maker_rate) == 1
    with pytest.raises(ValueError):
        to_e8("0.000000001")
