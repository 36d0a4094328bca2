"""Orders as the fill model sees them: kinds, sides, statuses, the backtest's :class:`Order`, and
the price an order fills at on a bar (:func:`trigger_price`).

The backtest engine fills :class:`Order`; the paper broker fills the executor's
``ManagedOrder``. Both carry the same terms (:class:`OrderTerms`), so one set of rules serves
both and paper trading fills exactly as the backtest does.
"""

from __future__ import annotations

import math
from typing import Protocol

MARKET, LIMIT, STOP = "market", "limit", "stop"
BUY, SELL = 1, -1
NEW, FILLED, CANCELED, REJECTED = "NEW", "FILLED", "CANCELED", "REJECTED"
# Orders a bar reaches are filled in this order (see CONVENTIONS["same_bar"]).
FILL_SEQUENCE = (MARKET, STOP, LIMIT)


class OrderTerms(Protocol):
    """What the fill model reads from an order: side (BUY/SELL), kind, and one sizing."""

    @property
    def side(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def qty(self) -> float | None: ...
    @property
    def notional(self) -> float | None: ...
    @property
    def pct(self) -> float | None: ...
    @property
    def limit(self) -> float | None: ...
    @property
    def stop(self) -> float | None: ...


class Order:
    """One backtest order. Quantity is fixed at fill time when sized by notional or percent."""

    __slots__ = ("created_i", "fee", "fill_i", "fill_price", "fill_qty", "id", "kind", "limit",
                 "notional", "pct", "qty", "reason", "side", "status", "stop", "symbol", "tag")

    def __init__(self, oid: int, symbol: str, side: int, kind: str, created_i: int,
                 qty: float | None = None, notional: float | None = None,
                 pct: float | None = None, limit: float | None = None,
                 stop: float | None = None, tag: str = "") -> None:
        self.id = oid
        self.symbol = symbol
        self.side = side
        self.kind = kind
        self.created_i = created_i
        self.qty = qty
        self.notional = notional
        self.pct = pct
        self.limit = limit
        self.stop = stop
        self.tag = tag
        self.status = NEW
        self.fill_i = -1
        self.fill_price = math.nan
        self.fill_qty = 0.0
        self.fee = 0.0
        self.reason = ""

    def __repr__(self) -> str:
        side = "BUY" if self.side == BUY else "SELL"
        return (f"Order(#{self.id} {side} {self.kind} {self.symbol} qty={self.qty} "
                f"limit={self.limit} stop={self.stop} {self.status})")


def trigger_price(order: OrderTerms, o: float, h: float, low: float) -> float | None:
    """The price ``order`` fills at on a bar (open o, high h, low low), or None if untouched."""
    kind = order.kind
    if kind == MARKET:
        return o
    if kind == STOP:
        s = order.stop
        assert s is not None  # nosec B101  # narrows Optional for mypy, not a check
        if order.side == BUY:
            return max(s, o) if h >= s else None
        return min(s, o) if low <= s else None
    lim = order.limit
    assert lim is not None  # nosec B101  # narrows Optional for mypy, not a check
    if order.side == BUY:
        return min(lim, o) if low <= lim else None
    return max(lim, o) if h >= lim else None
