"""Orders, fills and the fill conventions (documented in CONVENTIONS, copied into reports).

Fill rules are pure functions of an order and one bar, so the backtest, the paper broker and the
tests share them.
"""

from __future__ import annotations

import math

MARKET, LIMIT, STOP = "market", "limit", "stop"
BUY, SELL = 1, -1
NEW, FILLED, CANCELED, REJECTED = "NEW", "FILLED", "CANCELED", "REJECTED"

CONVENTIONS = {
    "decision": "strategies decide on bar t after its close; no order acts on bar t itself",
    "market": "a market order decided on bar t fills at bar t+1's open (plus slippage)",
    "limit": "a limit order fills on the first later bar whose range reaches it (buy: low <= "
             "limit; sell: high >= limit), at the better of the limit and the open (a bar that "
             "gaps through fills at its open); maker fee",
    "stop": "a stop order triggers on the first later bar whose range reaches it (buy: high >= "
            "stop; sell: low <= stop) and fills at the stop, or at the open when the bar gaps "
            "through it (the worse price: you cannot sell above a market that opened below "
            "your stop); plus slippage; taker fee",
    "same_bar": "when a stop and a limit of one position are both reachable within one bar, the "
                "stop is assumed to fill first (conservative); orders are processed market, "
                "stop, limit",
    "fees": "basis points of notional: taker for market and stop orders, maker for limits",
    "slippage": "adverse, on market and stop fills: fixed bps of price, or a fraction of the "
                "bar's high-low range",
    "account": "spot: no shorting or leverage; buys are capped by cash (fees included), sells "
               "by the position; quantities are fractional unless a lot step is given",
    "filters": "with a lot step the quantity is rounded down to it; an order below the minimum "
               "notional is rejected",
    "end": "positions still open at the end are marked to market at the last close, reported "
           "as open, and not counted as closed trades",
    "annualization": "365 days a year, 24/7, scaled by the bar interval",
}


class Order:
    """One order. Quantity is fixed at fill time when sized by notional or percent."""

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


def trigger_price(order: Order, o: float, h: float, low: float) -> float | None:
    """The price ``order`` fills at on a bar (open o, high h, low low), or None if untouched."""
    kind = order.kind
    if kind == MARKET:
        return o
    if kind == STOP:
        s = order.stop
        assert s is not None
        if order.side == BUY:
            return max(s, o) if h >= s else None
        return min(s, o) if low <= s else None
    lim = order.limit
    assert lim is not None
    if order.side == BUY:
        return min(lim, o) if low <= lim else None
    return max(lim, o) if h >= lim else None


def round_step(qty: float, step: float | None) -> float:
    """Round a quantity down to the lot step (with a tolerance for float noise)."""
    if not step:
        return qty
    return math.floor(qty / step + 1e-9) * step
