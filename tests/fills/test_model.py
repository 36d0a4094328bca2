"""The shared fill function on its own: sizing (qty, notional, pct), the cash and position caps,
slippage, maker and taker fees, the lot step and the minimum notional -- the decisions both the
backtest engine and the paper broker take from it."""

from __future__ import annotations

from typing import Any

import pytest

from spark_ray.fills.costs import CostModel
from spark_ray.fills.model import FillDecision, Rejection, fill, round_step
from spark_ray.fills.orders import BUY, LIMIT, MARKET, SELL, STOP, Order
from spark_ray.fills.trades import ClosedTrade

NO_FEE = CostModel(fee_bps=0)


def order(side: int, kind: str = MARKET, **size: float) -> Order:
    return Order(1, "X", side, kind, 0, **size)


def decide(o: Order, price: float = 100.0, *, high: float = 102.0, low: float = 98.0,
           cash: float = 1000.0, held: float = 0.0, equity: float | None = None,
           costs: CostModel = NO_FEE) -> FillDecision | Rejection:
    eq = cash + held * price if equity is None else equity
    return fill(o, price, high, low, cash, held, eq, costs)


def filled(o: Order, price: float = 100.0, **kw: Any) -> FillDecision:
    d = decide(o, price, **kw)
    assert not isinstance(d, str), d
    return d


def test_buy_by_qty_notional_and_pct_of_equity_at_open() -> None:
    assert decide(order(BUY, qty=2)) == (100.0, 2.0, 0.0, 200.0, 2.0)
    assert decide(order(BUY, notional=250)) == (100.0, 2.5, 0.0, 250.0, 2.5)
    # pct of the equity at the open (cash 1000 + 5 units worth 100 at the open = 1500)
    assert filled(order(BUY, pct=0.5), held=5, equity=1500)[1] == pytest.approx(7.5)
    # pct never spends more than the cash
    assert filled(order(BUY, pct=1.0), held=5, equity=1500)[1] == pytest.approx(10.0)


def test_buy_is_capped_by_cash_with_the_fee() -> None:
    costs = CostModel(fee_bps=25)
    _, qty, fee, notional, _ = filled(order(BUY, qty=100), costs=costs)
    assert qty == pytest.approx(1000 / (100 * 1.0025))
    assert notional + fee == pytest.approx(1000.0)
    assert decide(order(BUY, qty=1), cash=0.0) == "insufficient cash"


def test_sell_by_qty_notional_pct_capped_by_the_position() -> None:
    assert filled(order(SELL, qty=3), held=2)[1] == 2.0
    assert filled(order(SELL, notional=150), held=2)[1] == 1.5
    assert filled(order(SELL, pct=0.25), held=2)[1] == 0.5
    assert decide(order(SELL, qty=1)) == "no position to sell"  # spot: no shorting


def test_lot_step_rounds_down_and_min_notional_refuses() -> None:
    costs = CostModel(fee_bps=0, lot_step=0.01, min_notional=5)
    assert filled(order(BUY, qty=1.2345), price=10.0, costs=costs)[1] == pytest.approx(1.23)
    assert decide(order(BUY, qty=0.3), price=10.0, costs=costs) == \
        "notional 3 below minimum 5"
    # rounded to nothing: refused as too small for the cash / position
    assert decide(order(BUY, qty=0.004), price=10.0, costs=costs) == \
        "insufficient cash"
    assert round_step(0.3, 0.1) == pytest.approx(0.3)  # float noise does not lose a step
    assert round_step(1.999, None) == 1.999


def test_slippage_is_adverse_on_market_and_stop_never_on_limits() -> None:
    bps = CostModel(fee_bps=0, slippage_bps=50)
    assert filled(order(BUY, qty=1), costs=bps)[0] == pytest.approx(100.5)
    assert filled(order(SELL, qty=1), held=1, costs=bps)[0] == pytest.approx(99.5)
    rng = CostModel(fee_bps=0, slippage_range_frac=0.25)  # a quarter of high - low (4)
    assert filled(order(BUY, STOP, qty=1, stop=100), costs=rng)[0] == pytest.approx(101.0)
    assert filled(order(BUY, LIMIT, qty=1, limit=100), costs=rng)[0] == 100.0


def test_taker_fee_on_market_and_stop_maker_fee_on_limits() -> None:
    costs = CostModel(fee_bps=10, maker_fee_bps=2)
    assert filled(order(BUY, qty=1), costs=costs)[2] == pytest.approx(0.1)
    assert filled(order(BUY, STOP, qty=1, stop=100), costs=costs)[2] == pytest.approx(0.1)
    assert filled(order(BUY, LIMIT, qty=1, limit=100), costs=costs)[2] == pytest.approx(0.02)
    same = CostModel(fee_bps=10)  # no maker fee given: the taker fee
    assert filled(order(BUY, LIMIT, qty=1, limit=100), costs=same)[2] == pytest.approx(0.1)


def test_position_afterwards_and_float_dust_counts_as_flat() -> None:
    assert filled(order(BUY, qty=2), held=1)[4] == 3.0
    assert filled(order(SELL, qty=0.4), held=1)[4] == pytest.approx(0.6)
    assert filled(order(SELL, pct=1.0), held=0.3)[4] == 0.0
    # 1e6 - (1e6 - 1e-7): a 1e-13 share left by float arithmetic is no position
    assert filled(order(SELL, qty=1e6 - 1e-7), held=1e6, price=1.0, cash=0.0)[4] == 0.0


def test_closed_trade_dict_carries_bar_indices_only_when_known() -> None:
    live = ClosedTrade("X", 1, 2, 10.0, 11.0, 1.0, 0.1, 0.9, 0.09, "t")
    assert "entry_i" not in live.as_dict() and live.as_dict()["pnl"] == 0.9
    backtest = ClosedTrade("X", 1, 2, 10.0, 11.0, 1.0, 0.1, 0.9, 0.09, "t", 3, 7)
    assert (backtest.as_dict()["entry_i"], backtest.as_dict()["exit_i"]) == (3, 7)
