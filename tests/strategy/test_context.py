"""The context a strategy gets: both the backtest's and the executor's offer exactly the
StrategyContext surface, and the order API they share means the same everywhere."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from spark_ray.backtest.context import Context
from spark_ray.execution.context import ExecContext
from spark_ray.fills.orders import BUY, LIMIT, MARKET, SELL, STOP
from spark_ray.strategy.context import OrderMethods, StrategyContext


def _surface(cls: type) -> set[str]:
    return {n for n in dir(cls) if not n.startswith("_")}


PROTOCOL = _surface(StrategyContext) - _surface(object) - {"__init__"}


@pytest.mark.parametrize("ctx", [Context, ExecContext])
def test_both_contexts_offer_the_protocol_surface(ctx: type) -> None:
    assert {"position", "position_of", "cash", "equity", "open_orders", "buy",
                        "sell", "close", "target_pct", "cancel", "cancel_all"} == PROTOCOL
    assert _surface(ctx) >= PROTOCOL
    for name in PROTOCOL:
        want, got = getattr(StrategyContext, name), getattr(ctx, name)
        if callable(want):
            assert inspect.signature(want).parameters.keys() == \
                inspect.signature(got).parameters.keys(), name


class Recorder(OrderMethods[Any]):
    """A context over plain values: records what the shared order API submits."""

    def __init__(self, held: float = 0.0, mark: float | None = 10.0,
                 equity: float = 1000.0) -> None:
        self.sent: list[tuple[Any, ...]] = []
        self.held, self.mark, self.eq = held, mark, equity
        self.canceled: list[Any] = []
        self.book: list[Any] = []

    def _submit(self, *terms: Any) -> tuple[Any, ...]:
        self.sent.append(terms)
        return terms

    def _held(self, symbol: str | None) -> float:
        return self.held

    def _mark(self, symbol: str | None) -> float | None:
        return self.mark

    @property
    def equity(self) -> float:
        return self.eq

    @property
    def open_orders(self) -> list[Any]:
        return list(self.book)

    def cancel(self, order: Any) -> bool:
        self.canceled.append(order)
        return True


def test_order_kinds_sizing_and_defaults() -> None:
    c = Recorder()
    c.buy()
    c.buy(2, limit=9.5, tag="dip")
    c.sell(notional=50, stop=8.0, symbol="ETHBTC")
    c.sell(pct=0.5)
    # (side, kind, qty, notional, pct, limit, stop, symbol, tag)
    assert c.sent == [(BUY, MARKET, None, None, 1.0, None, None, None, ""),
                      (BUY, LIMIT, 2, None, None, 9.5, None, None, "dip"),
                      (SELL, STOP, None, 50, None, None, 8.0, "ETHBTC", ""),
                      (SELL, MARKET, None, None, 0.5, None, None, None, "")]
    with pytest.raises(ValueError, match="give one of qty, notional, pct"):
        c.buy(1, pct=0.5)
    with pytest.raises(ValueError, match="a limit or a stop, not both"):
        c.sell(limit=1.0, stop=2.0)


def test_close_target_pct_and_cancel_all() -> None:
    assert Recorder(held=0).close() is None  # flat: nothing to sell
    c = Recorder(held=3)
    c.close()
    assert c.sent[-1] == (SELL, MARKET, 3, None, None, None, None, None, "close")
    c = Recorder(held=10, mark=10.0, equity=1000.0)  # 100 worth of 1000
    c.target_pct(0.5)  # towards 50 units: buy 40 units' notional
    assert c.sent[-1][:4] == (BUY, MARKET, None, pytest.approx(400.0))
    c.target_pct(0.05)  # towards 5 units: sell 5
    assert c.sent[-1][:3] == (SELL, MARKET, pytest.approx(5.0))
    assert c.target_pct(0.1) is None  # already there
    assert Recorder(mark=None).target_pct(0.5) is None  # no price yet
    c.book = [type("O", (), {"symbol": s})() for s in ("A", "B", "A")]
    assert c.cancel_all("A") == 2 and c.cancel_all() == 3
