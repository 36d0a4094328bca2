"""The fill model: what an order that a bar reached becomes -- how much, at what price, for what
fee -- or why it is refused.

One function for the backtest engine and the paper broker, so a paper run fills exactly as a
backtest of the same bars (tests/execution/test_parity.py holds them to it). It decides and
does not book: each caller applies the result to its own account (the engine's arrays, the
paper broker's sleeves). It runs once per fill inside the backtest loop, hence plain floats in
and a plain tuple (or the reason as a string) out: building a NamedTuple or a dataclass per fill
measurably slowed the million-bar benchmark.
"""

from __future__ import annotations

import math
from typing import TypeAlias

from spark_ray.fills.costs import CostModel
from spark_ray.fills.orders import BUY, LIMIT, OrderTerms

FillDecision: TypeAlias = tuple[float, float, float, float, float]
"""(price after slippage, quantity after the lot step, fee in quote currency, notional, the
quantity held afterwards)."""
Rejection: TypeAlias = str
"""Why the order is refused, as reported to the strategy and in the order's ``reason``."""


def round_step(qty: float, step: float | None) -> float:
    """Round a quantity down to the lot step (with a tolerance for float noise)."""
    if not step:
        return qty
    return math.floor(qty / step + 1e-9) * step


def fill(order: OrderTerms, price: float, high: float, low: float, cash: float, held: float,
         equity_at_open: float, costs: CostModel) -> FillDecision | Rejection:
    """Fill ``order`` triggered at ``price`` on a bar with ``high`` and ``low``, from an account
    holding ``cash`` and ``held`` units worth ``equity_at_open`` at the bar's open.

    Market and stop fills pay slippage and the taker fee, limits the maker fee. A buy is sized
    by qty, notional or ``pct`` of the equity at the open, capped by the cash with its fee; a
    sell by qty, notional or ``pct`` of the position, capped by it (spot: no shorting). The lot
    step rounds down, the minimum notional refuses; what a sale leaves below a 1e-12 share of
    the position is float dust and counts as flat. Returns (price, qty, fee, notional, held
    afterwards) or, refused, the reason (a ``str``: test with ``isinstance(d, str)``).
    """
    buy = order.side == BUY
    if order.kind != LIMIT:
        if costs.slippage_rate or costs.slippage_range_frac:
            slip = price * costs.slippage_rate + costs.slippage_range_frac * (high - low)
            price = price + slip if buy else price - slip
        fee_rate = costs.taker
    else:
        fee_rate = costs.maker
    if buy:
        max_qty = cash / (price * (1 + fee_rate))
        if order.qty is not None:
            q = order.qty
        elif order.notional is not None:
            q = order.notional / price
        else:
            q = min(cash, (order.pct or 0.0) * equity_at_open) / (price * (1 + fee_rate))
        q = min(q, max_qty)
    elif order.qty is not None:
        q = min(order.qty, held)
    elif order.notional is not None:
        q = min(order.notional / price, held)
    else:
        q = (order.pct or 0.0) * held
    if costs.lot_step:
        q = round_step(q, costs.lot_step)
    if q <= 0 or (not buy and held <= 0):
        return "insufficient cash" if buy else "no position to sell"
    notional = q * price
    if costs.min_notional is not None and notional < costs.min_notional:
        return f"notional {notional:.8g} below minimum {costs.min_notional}"
    if buy:
        return price, q, notional * fee_rate, notional, held + q
    rest = held - q
    return price, q, notional * fee_rate, notional, 0.0 if rest <= held * 1e-12 else rest
