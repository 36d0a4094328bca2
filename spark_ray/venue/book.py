"""An order book that follows the last trade, with Binance-style update ids.

The book is a window of `levels` price levels per side next to the last trade price; level sizes
come from a hash of the price (so a level that re-enters the window has the size it had), with
touch levels reshuffled as trades hit them. Every level change takes one update id and goes to a
change log, so diff events (U..u), REST snapshots (lastUpdateId) and BTCTurk's change sets are
all consistent views of the same sequence. Taker orders from the venue's trading half consume
levels (:meth:`OrderBook.take`) through the same change log, so depth streams show them; a level
they empty stays empty until the market trades through it again or it leaves the window.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice

from spark_ray.venue.market import mix64


@dataclass(frozen=True)
class Change:
    """One level change: after update `uid`, level `price` on that side holds `qty` (0 = gone)."""

    uid: int
    is_bid: bool
    price: int
    qty: int


@dataclass(frozen=True)
class DepthDiff:
    """Net changes between two update ids (Binance depthUpdate: U, u, b, a)."""

    first_uid: int
    last_uid: int
    bids: list[tuple[int, int]]
    asks: list[tuple[int, int]]


class OrderBook:
    """Bids in [bid_top-levels+1, bid_top], asks in [ask_bot, ask_bot+levels-1], in ticks."""

    def __init__(
        self,
        *,
        price: int,
        levels: int,
        mean_qty: int,
        seed: int,
        first_update_id: int = 1_000,
    ) -> None:
        self.levels = levels
        self.mean_qty = max(1, mean_qty)
        self.seed = seed
        self.last_update_id = first_update_id
        self.bid_top = max(levels, price - 1)
        self.ask_bot = self.bid_top + 1
        self.overrides: dict[tuple[bool, int], int] = {}
        self.log: deque[Change] = deque()
        self._touch_serial = 0

    # --- sizes ---------------------------------------------------------------------------
    def _base_qty(self, is_bid: bool, price: int) -> int:
        h = mix64(self.seed, price, int(is_bid))
        # 0.1x .. 3x the mean size, skewed small like real books.
        frac = ((h >> 11) & 0xFFFF) / 65536.0
        return max(1, int(self.mean_qty * (0.1 + 2.9 * frac * frac)))

    def qty(self, is_bid: bool, price: int) -> int:
        """Size at a level, or 0 when the level is outside the window."""
        if is_bid:
            inside = self.bid_top - self.levels < price <= self.bid_top
        else:
            inside = self.ask_bot <= price < self.ask_bot + self.levels
        if not inside:
            return 0
        return self.overrides.get((is_bid, price), self._base_qty(is_bid, price))

    # --- changes -------------------------------------------------------------------------
    def _record(self, is_bid: bool, price: int, qty: int) -> None:
        self.last_update_id += 1
        self.log.append(Change(self.last_update_id, is_bid, price, qty))

    def _shift_side(self, is_bid: bool, old_lo: int, old_hi: int, new_lo: int, new_hi: int) -> None:
        """Record removals and additions when a side's window moves from old to new range."""
        removed = [p for p in _range_minus(old_lo, old_hi, new_lo, new_hi)]
        added = [p for p in _range_minus(new_lo, new_hi, old_lo, old_hi)]
        # Best prices first, like an exchange walking its book from the touch.
        removed.sort(reverse=is_bid)
        added.sort(reverse=is_bid)
        for p in removed:
            self.overrides.pop((is_bid, p), None)
            self._record(is_bid, p, 0)
        for p in added:
            self.overrides.pop((is_bid, p), None)
            self._record(is_bid, p, self._base_qty(is_bid, p))

    def move_to(self, price: int, taker_buy: bool) -> None:
        """Re-centre on the last trade: a buy leaves the ask at its price, a sell the bid."""
        if taker_buy:
            new_ask, new_bid = price, price - 1
        else:
            new_bid, new_ask = price, price + 1
        new_bid = max(new_bid, self.levels)
        new_ask = max(new_ask, new_bid + 1)
        if new_bid != self.bid_top:
            self._shift_side(
                True,
                self.bid_top - self.levels + 1, self.bid_top,
                new_bid - self.levels + 1, new_bid,
            )
        if new_ask != self.ask_bot:
            self._shift_side(
                False,
                self.ask_bot, self.ask_bot + self.levels - 1,
                new_ask, new_ask + self.levels - 1,
            )
        self.bid_top, self.ask_bot = new_bid, new_ask
        # The touch level the trade hit is now partly consumed: give it a fresh size.
        self._touch_serial += 1
        side_is_bid = not taker_buy
        touch = new_bid if side_is_bid else new_ask
        h = mix64(self.seed, touch, self._touch_serial)
        size = max(1, int(self.mean_qty * (0.05 + ((h >> 20) & 0xFF) / 256.0)))
        if self.overrides.get((side_is_bid, touch)) != size:
            self.overrides[(side_is_bid, touch)] = size
            self._record(side_is_bid, touch, size)

    # --- views ---------------------------------------------------------------------------
    def best(self) -> tuple[int, int, int, int]:
        """(bid price, bid qty, ask price, ask qty): the first non-empty level of each side."""
        bid, ask = self.bid_top, self.ask_bot
        if self.overrides:  # levels emptied by taker orders are skipped, like a real book
            bid = next(self.prices(True), bid)
            ask = next(self.prices(False), ask)
        return bid, self.qty(True, bid), ask, self.qty(False, ask)

    def prices(self, is_bid: bool) -> Iterator[int]:
        """Non-empty level prices of one side, best first (what a taker order walks)."""
        if is_bid:
            window = range(self.bid_top, self.bid_top - self.levels, -1)
        else:
            window = range(self.ask_bot, self.ask_bot + self.levels)
        for p in window:
            if self.qty(is_bid, p) > 0:
                yield p

    def snapshot(self, limit: int) -> tuple[int, list[tuple[int, int]], list[tuple[int, int]]]:
        """(lastUpdateId, bids best-first, asks best-first), at most `limit` levels each."""
        n = min(limit, self.levels)
        bids = [(p, self.qty(True, p)) for p in islice(self.prices(True), n)]
        asks = [(p, self.qty(False, p)) for p in islice(self.prices(False), n)]
        return self.last_update_id, bids, asks

    def take(self, is_bid: bool, price: int, qty: int) -> None:
        """A taker order consumed `qty` at a level: the level shrinks (0 = gone), with an id."""
        left = self.qty(is_bid, price) - qty
        if qty <= 0 or left < 0:
            raise ValueError(f"take {qty} at {price}: level holds {self.qty(is_bid, price)}")
        self.overrides[(is_bid, price)] = left
        self._record(is_bid, price, left)

    def diff_since(self, after_uid: int) -> DepthDiff | None:
        """Net level changes with uid > after_uid, coalesced per level (last value wins)."""
        if not self.log or self.log[-1].uid <= after_uid:
            return None
        bids: dict[int, int] = {}
        asks: dict[int, int] = {}
        first = None
        for ch in reversed(self.log):
            if ch.uid <= after_uid:
                break
            first = ch.uid
            side = bids if ch.is_bid else asks
            side.setdefault(ch.price, ch.qty)
        assert first is not None  # nosec B101  # narrows Optional for mypy, not a check
        return DepthDiff(
            first_uid=first,
            last_uid=self.last_update_id,
            bids=sorted(bids.items(), reverse=True),
            asks=sorted(asks.items()),
        )

    def trim(self, keep_after_uid: int) -> None:
        """Forget changes every reader has seen (uid <= keep_after_uid)."""
        while self.log and self.log[0].uid <= keep_after_uid:
            self.log.popleft()


def _range_minus(lo: int, hi: int, cut_lo: int, cut_hi: int) -> list[int]:
    """Integers in [lo, hi] but not in [cut_lo, cut_hi]."""
    out: list[int] = []
    if hi < cut_lo or lo > cut_hi:
        return list(range(lo, hi + 1))
    if lo < cut_lo:
        out.extend(range(lo, cut_lo))
    if hi > cut_hi:
        out.extend(range(cut_hi + 1, hi + 1))
    return out
