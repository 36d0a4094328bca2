"""The fill conventions through the backtest engine, hand-computed: fees, partial exits, stop and
limit in one bar, gaps through stops, lot step and minimum notional."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from spark_ray.backtest import run_bars
from spark_ray.backtest.data import bars_from_arrays
from spark_ray.fills.costs import CostModel
from spark_ray.strategy.bars import Bar
from spark_ray.strategy.base import Strategy

T0 = 1_704_067_200_000
M = 60_000


def bars(rows: list[tuple[float, float, float, float]]) -> Any:
    a = np.array(rows, dtype=np.float64)
    t = T0 + np.arange(len(rows), dtype=np.int64) * M
    return bars_from_arrays("TESTUSD", "1m", t, a[:, 0], a[:, 1], a[:, 2], a[:, 3],
                            np.ones(len(rows)))


class Script(Strategy):
    """Runs ``plan[i](ctx, bar)`` on bar i: a scripted strategy for exact expectations."""

    name = "script"

    def __init__(self, plan: dict[int, Any]) -> None:
        super().__init__()
        self.plan = plan
        self.seen: list[int] = []

    def on_bar(self, ctx: Any, bar: Bar) -> None:
        self.seen.append(bar.i)
        if bar.i in self.plan:
            self.plan[bar.i](ctx, bar)


def run(rows: list[tuple[float, float, float, float]], plan: dict[int, Any],
        **cost: Any) -> Any:
    return run_bars(bars(rows), Script(plan), cash=1000.0, costs=CostModel(**cost),
                    benchmark=False)


def test_market_order_fills_next_open_with_fees() -> None:
    rows = [(10, 10, 10, 10), (11, 12, 10, 12), (12, 13, 12, 13), (14, 14, 14, 14)]
    r = run(rows, {0: lambda c, b: c.buy(10), 2: lambda c, b: c.close()}, fee_bps=10)
    (t,) = r.output.trades
    assert (t.entry_i, t.exit_i, t.entry_price, t.exit_price) == (1, 3, 11.0, 14.0)
    # fees: 10 bps of 110 in, 10 bps of 140 out
    assert t.fees == pytest.approx(0.11 + 0.14)
    assert t.pnl == pytest.approx(10 * 3 - 0.25)
    assert t.ret == pytest.approx((30 - 0.25) / 110)
    assert r.output.equity[-1] == pytest.approx(1000 + 30 - 0.25)
    # equity at bar 1 close: cash 1000-110-0.11, 10 units at 12
    assert r.output.equity[1] == pytest.approx(1000 - 110.11 + 120)


def test_all_in_buy_spends_cash_including_fee() -> None:
    rows = [(100, 100, 100, 100), (200, 200, 200, 200), (200, 200, 200, 200)]
    r = run(rows, {0: lambda c, b: c.buy()}, fee_bps=25)
    assert r.output.positions["TESTUSD"][-1] == pytest.approx(1000 / (200 * 1.0025))
    assert r.output.cash[-1] == pytest.approx(0.0, abs=1e-9)


def test_partial_exits_split_fees_and_pnl() -> None:
    rows = [(10, 10, 10, 10), (10, 10, 10, 10), (12, 12, 12, 12), (15, 15, 15, 15)]
    plan = {0: lambda c, b: c.buy(4), 1: lambda c, b: c.sell(1), 2: lambda c, b: c.sell()}
    r = run(rows, plan, fee_bps=100)  # 1% fee: easy numbers
    a, b = r.output.trades
    # entry 4 @ 10, fee 0.4 (0.1 per unit); exit 1 @ 12 fee 0.12; exit 3 @ 15 fee 0.45
    assert (a.qty, a.exit_price) == (1, 12.0)
    assert a.fees == pytest.approx(0.1 + 0.12)
    assert a.pnl == pytest.approx(2 - 0.22)
    assert (b.qty, b.exit_price) == (3, 15.0)
    assert b.fees == pytest.approx(0.3 + 0.45)
    assert b.pnl == pytest.approx(15 - 0.75)
    assert a.entry_i == b.entry_i == 1


def test_stop_before_limit_when_both_reachable_in_one_bar() -> None:
    rows = [(100, 100, 100, 100), (100, 100, 100, 100), (100, 100, 100, 100),
            (100, 110, 90, 100)]

    def protect(c: Any, b: Bar) -> None:
        c.sell(stop=95)
        c.sell(limit=105)

    r = run(rows, {0: lambda c, b: c.buy(1), 1: protect}, fee_bps=0)
    (t,) = r.output.trades
    assert (t.exit_i, t.exit_price, t.tag) == (3, 95.0, "")
    statuses = sorted(o.status for o in r.output.orders)
    assert statuses == ["FILLED", "FILLED", "REJECTED"]  # the limit found nothing left to sell


def test_gap_through_stop_fills_at_open_and_limit_at_better_open() -> None:
    rows = [(100, 100, 100, 100), (100, 100, 100, 100), (100, 100, 100, 100),
            (80, 85, 78, 82)]
    r = run(rows, {0: lambda c, b: c.buy(1), 1: lambda c, b: c.sell(stop=95)}, fee_bps=0)
    assert r.output.trades[0].exit_price == 80.0  # gapped through: the open, not 95
    rows2 = [(100, 100, 100, 100), (90, 95, 88, 92)]
    r2 = run(rows2, {0: lambda c, b: c.buy(1, limit=95)}, fee_bps=0)
    (o,) = r2.output.orders
    assert (o.status, o.fill_price, o.fill_i) == ("FILLED", 90.0, 1)  # better: the open


def test_limit_not_reached_never_fills_and_no_lookahead() -> None:
    rows = [(100, 101, 99, 100), (100, 101, 99.5, 100), (100, 100, 100, 100)]
    r = run(rows, {0: lambda c, b: c.buy(1, limit=99)}, fee_bps=0)
    assert r.output.orders[0].status == "NEW"  # bar 0 touched 99 but the order came after
    assert not r.output.trades


def test_maker_fee_on_limits_and_slippage_on_market() -> None:
    rows = [(100, 100, 100, 100), (100, 102, 98, 101), (100, 100, 100, 100)]
    r = run(rows, {0: lambda c, b: c.buy(1, limit=99)}, fee_bps=10, maker_fee_bps=2)
    assert r.output.orders[0].fee == pytest.approx(99 * 0.0002)
    r = run(rows, {0: lambda c, b: c.buy(1)}, fee_bps=0, slippage_bps=50)
    assert r.output.orders[0].fill_price == pytest.approx(100.5)
    r = run(rows, {0: lambda c, b: c.buy(1)}, fee_bps=0, slippage_range_frac=0.25)
    assert r.output.orders[0].fill_price == pytest.approx(101.0)  # 100 + 0.25 * (102 - 98)


def test_lot_step_min_notional_and_no_shorting() -> None:
    rows = [(10, 10, 10, 10)] * 4
    r = run(rows, {0: lambda c, b: c.buy(1.2345), 1: lambda c, b: c.buy(0.3)}, fee_bps=0,
            lot_step=0.01, min_notional=5)
    a, b = r.output.orders
    assert (a.status, a.fill_qty) == ("FILLED", pytest.approx(1.23))
    assert (b.status, b.reason) == ("REJECTED", "notional 3 below minimum 5")
    r = run(rows, {0: lambda c, b: c.sell(1)}, fee_bps=0)
    assert r.output.orders[0].status == "REJECTED" and not r.output.trades


def test_open_position_at_end_is_marked_not_closed() -> None:
    rows = [(10, 10, 10, 10), (10, 10, 10, 10), (12, 12, 12, 12)]
    r = run(rows, {0: lambda c, b: c.buy(5)}, fee_bps=0)
    assert not r.output.trades
    assert r.output.open_positions["TESTUSD"]["unrealized_pnl"] == pytest.approx(10.0)
    assert r.output.equity[-1] == pytest.approx(1010.0)
