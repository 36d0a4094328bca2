"""What the breaker has been told: equity, trades, prices, positions, data health, rates.

Plain mutable containers the rules read, one :class:`Readings` per scope: the global scope holds
prices, positions and the order/reject/error windows; an account or strategy scope its equity
(the latest reading of each reporter, summed) and loss streak; a symbol scope its market-data
health. Only :class:`~spark_ray.breaker.models.Marks` (high-water mark, day open, loss streak,
equity parts) is journaled; the rest is re-reported by the other actors after a restart
(positions, prices, lag) or is a short window that refills within minutes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass(slots=True)
class SourceHealth:
    last_ts: float
    lag: float = 0.0


@dataclass(slots=True)
class GapState:
    count: float
    since: float


class Window:
    """Timestamped amounts within the last ``span`` seconds, with a running total."""

    __slots__ = ("_items", "span", "total")

    def __init__(self, span: float) -> None:
        self.span = span
        self._items: deque[tuple[float, float]] = deque()
        self.total = 0.0

    def add(self, ts: float, amount: float = 1.0) -> None:
        self._items.append((ts, amount))
        self.total += amount

    def prune(self, now: float) -> float:
        """Drop entries older than the window; return the total that remains."""
        items = self._items
        cutoff = now - self.span
        while items and items[0][0] <= cutoff:
            self.total -= items.popleft()[1]
        if not items:
            self.total = 0.0  # no float drift once empty
        return self.total

    def __len__(self) -> int:
        return len(self._items)


class Stamps:
    """Bare timestamps within the last ``span`` seconds (order rate: one float per order)."""

    __slots__ = ("_items", "span")

    def __init__(self, span: float) -> None:
        self.span = span
        self._items: deque[float] = deque()

    def add(self, ts: float) -> None:
        self._items.append(ts)

    def prune(self, now: float) -> int:
        items = self._items
        cutoff = now - self.span
        while items and items[0] <= cutoff:
            items.popleft()
        return len(items)


@dataclass(slots=True)
class Readings:
    started: float
    reject_window_s: float = 300.0
    error_window_s: float = 60.0
    order_window_s: float = 60.0
    venue_error_window_s: float = 60.0
    expected: tuple[str, ...] = ()  # sources that are stale until first heard from
    equity: float | None = None
    equity_by: dict[str, float] = field(default_factory=dict)  # reporter -> latest equity
    peak: float | None = None
    day: int | None = None
    day_start: float | None = None
    loss_streak: int = 0
    prices: dict[str, float] = field(default_factory=dict)
    positions: dict[str, float] = field(default_factory=dict)
    sources: dict[str, SourceHealth] = field(default_factory=dict)
    gaps: dict[str, GapState] = field(default_factory=dict)
    positions_by: dict[tuple[str, str], float] = field(default_factory=dict)  # (who, symbol)
    clock_offset: float | None = None
    acks: Window = field(init=False)
    rejects: Window = field(init=False)
    errors: Window = field(init=False)
    orders: Stamps = field(init=False)
    venue_errors: Window = field(init=False)

    def __post_init__(self) -> None:
        self.venue_errors = Window(self.venue_error_window_s)
        self.acks = Window(self.reject_window_s)
        self.rejects = Window(self.reject_window_s)
        self.errors = Window(self.error_window_s)
        self.orders = Stamps(self.order_window_s)

    def set_equity(self, who: str, value: float) -> float:
        """Record ``who``'s latest equity; the scope's equity is the sum over reporters (two
        executors on one account add up instead of overwriting each other)."""
        self.equity_by[who] = value
        total = sum(self.equity_by.values())
        self.equity = total
        return total

    def set_position(self, who: str, symbol: str, qty: float) -> None:
        """``who``'s position in ``symbol``; ``positions`` keeps the sum over reporters."""
        if qty == 0.0:
            self.positions_by.pop((who, symbol), None)
        else:
            self.positions_by[(who, symbol)] = qty
        total = sum(q for (_, s), q in self.positions_by.items() if s == symbol)
        if total == 0.0:
            self.positions.pop(symbol, None)
        else:
            self.positions[symbol] = total

    def notional(self, symbol: str) -> float | None:
        """|position| x last price, or None when the symbol has a position but no price."""
        qty = self.positions.get(symbol, 0.0)
        if qty == 0.0:
            return 0.0
        px = self.prices.get(symbol)
        return None if px is None else abs(qty) * px

    def total_notional(self) -> tuple[float, list[str]]:
        """Sum of known notionals, and the symbols whose notional is unknown (no price)."""
        total = 0.0
        unpriced: list[str] = []
        for sym, qty in self.positions.items():
            if qty == 0.0:
                continue
            px = self.prices.get(sym)
            if px is None:
                unpriced.append(sym)
            else:
                total += abs(qty) * px
        return total, unpriced
