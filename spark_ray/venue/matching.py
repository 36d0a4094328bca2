"""Matching: taker orders walk the simulated book; resting orders fill when the tape crosses them.

Pure functions over prices in ticks and quantities in lot units:

- :func:`walk` -- what a taker order (MARKET, or a LIMIT that crosses) gets from the book: best
  level first, each level's size as the book shows it, up to the order's quantity, limit price or
  quote budget. The caller applies the result with ``OrderBook.take``.
- :func:`cross` -- which of the market's own trades fill resting orders (the venue's orders are
  not in the simulated book, so a maker fill is modelled on the tape): a BUY resting at P fills
  from trades strictly below P, a SELL from trades strictly above, each trade's quantity shared
  out in price-time priority. A trade *at* P is not enough (queue position unknown), so maker
  fills are conservative.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from spark_ray.venue.book import OrderBook

E8 = 100_000_000


def quote_e8(price: int, qty: int, k: int) -> int:
    """price * qty in quote 1e-8 units, rounded down; k = tick_to8 * unit_to8 of the symbol."""
    return price * qty * k // E8


def max_qty_for(price: int, budget: int, k: int) -> int:
    """Largest qty whose quote at `price` stays within `budget` (exact inverse of quote_e8)."""
    if price <= 0 or budget < 0:
        return 0
    return ((budget + 1) * E8 - 1) // (price * k)


def walk(
    book: OrderBook,
    *,
    buy: bool,
    qty: int | None = None,
    limit: int | None = None,
    quote_budget: int | None = None,
    k: int = 0,
) -> tuple[list[tuple[int, int]], bool]:
    """(price, qty) fills a taker would get, best level first, and whether that completes the
    order (all of `qty`, or as much of the budget as whole lots can use); the book is not
    changed. Incomplete means the book ran out or the limit price stopped the walk."""
    if (qty is None) == (quote_budget is None):
        raise ValueError("walk: give exactly one of qty and quote_budget")
    if quote_budget is not None and k <= 0:
        raise ValueError("walk: a quote budget needs the symbol's k (tick_to8 * unit_to8)")
    fills: list[tuple[int, int]] = []
    left_qty = qty or 0
    left_quote = quote_budget or 0
    for p in book.prices(not buy):
        if limit is not None and (p > limit if buy else p < limit):
            return fills, False
        avail = book.qty(not buy, p)
        if quote_budget is not None:
            take = min(avail, max_qty_for(p, left_quote, k))
            if take <= 0:
                return fills, True
            left_quote -= quote_e8(p, take, k)
        else:
            take = min(avail, left_qty)
            left_qty -= take
        fills.append((p, take))
        if qty is not None and left_qty == 0:
            return fills, True
    return fills, False


@dataclass(frozen=True)
class Resting:
    """What matching needs of a resting order."""

    order_id: int
    buy: bool
    price: int
    remaining: int


def cross(orders: Sequence[Resting], prices: np.ndarray, qtys: np.ndarray
          ) -> list[tuple[int, int, int]]:
    """(order_id, trade index, qty) maker fills from a batch of market trades, in tape order."""
    out: list[tuple[int, int, int]] = []
    for buy in (True, False):
        side = [o for o in orders if o.buy == buy and o.remaining > 0]
        if not side:
            continue
        side.sort(key=lambda o: (-o.price if buy else o.price, o.order_id))
        avail = qtys.astype(np.int64).copy()
        for o in side:
            mask = prices < o.price if buy else prices > o.price
            left = o.remaining
            for i in np.flatnonzero(mask).tolist():
                take = min(left, int(avail[i]))
                if take <= 0:
                    continue
                avail[i] -= take
                left -= take
                out.append((o.order_id, i, take))
                if left == 0:
                    break
    out.sort(key=lambda f: f[1])  # tape order; ties keep priority order (stable sort)
    return out
