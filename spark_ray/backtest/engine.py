"""The event-driven backtest engine.

Every bar runs the same steps: fill the orders placed before it (market at the open, then stops,
then limits, see :data:`~spark_ray.fills.conventions.CONVENTIONS`), then let the strategy decide
on the bar's close. Two loops share those steps: one visits every bar; the other, for strategies
that declared their signals, visits only signal bars and bars where an open order can fill
(found vectorized), which gives the same fills and the same equity, much faster. Equity is
rebuilt vectorized after the loop from the cash and position changes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from spark_ray.backtest.context import Context
from spark_ray.fills.costs import CostModel
from spark_ray.fills.model import fill
from spark_ray.fills.orders import (
    BUY,
    CANCELED,
    FILL_SEQUENCE,
    FILLED,
    MARKET,
    REJECTED,
    STOP,
    Order,
    trigger_price,
)
from spark_ray.fills.trades import ClosedTrade
from spark_ray.strategy.bars import Bar, BarData
from spark_ray.strategy.base import Strategy
from spark_ray.strategy.context import StrategyContext

SEARCH_CHUNK = 4096


class Guard(Protocol):
    """Risk rules in simulation (the circuit breaker's core): may veto new entries."""

    def on_bar(self, time_ms: int, equity: float) -> None: ...
    def on_trade_closed(self, time_ms: int, pnl: float) -> None: ...
    def allows_entry(self, time_ms: int) -> bool: ...
    def first_trip(self, times: np.ndarray, equity: np.ndarray) -> int | None: ...


@dataclass
class EngineOutput:
    equity: np.ndarray
    cash: np.ndarray
    positions: dict[str, np.ndarray]
    trades: list[ClosedTrade]
    orders: list[Order]
    fees: float
    turnover: float
    on_bar_calls: int
    blocked_entries: int
    open_positions: dict[str, dict[str, float]] = field(default_factory=dict)


class Engine:
    """Runs one strategy over one :class:`BarData`; use :meth:`run` once."""

    def __init__(self, data: BarData, strategy: Strategy, cash: float = 10_000.0,
                 costs: CostModel | None = None, guard: Guard | None = None,
                 every_bar: bool | None = None) -> None:
        if cash <= 0:
            raise ValueError("cash must be positive")
        self.data = data
        self.strategy = strategy
        self.costs = costs or CostModel()
        self._range_slip = bool(self.costs.slippage_range_frac)
        self.guard = guard
        self.force_every_bar = every_bar
        self.primary = data.symbols[0]
        self._single = len(data.symbols) == 1
        self.cash = float(cash)
        self.initial_cash = float(cash)
        self.qty: dict[str, float] = dict.fromkeys(data.symbols, 0.0)
        self.avg: dict[str, float] = dict.fromkeys(data.symbols, 0.0)
        self.entry_fees: dict[str, float] = dict.fromkeys(data.symbols, 0.0)
        self.opened_i: dict[str, int] = dict.fromkeys(data.symbols, -1)
        self.open_orders: list[Order] = []
        self.orders: list[Order] = []
        self.trades: list[ClosedTrade] = []
        self.i = -1
        # Order ids 1, 2, ...: next() on a count is a C call, cheaper than a method per order.
        self.order_ids = itertools.count(1)
        self._fees = 0.0
        self._turnover = 0.0
        self._blocked = 0
        self._changes_i: list[int] = []
        self._changes_cash: list[float] = []
        self._changes_qty: dict[str, list[float]] = {s: [] for s in data.symbols}
        self._trigger_at: dict[int, int] = {}
        # memoryviews index as fast as lists (~5x faster than numpy scalars) without copying:
        # a list of 1M floats would cost 32 MB per column.
        def view(a: np.ndarray, dtype: Any) -> Any:
            return np.ascontiguousarray(a, dtype=dtype).data

        self._O = {s: view(data.open[s], np.float64) for s in data.symbols}
        self._H = {s: view(data.high[s], np.float64) for s in data.symbols}
        self._L = {s: view(data.low[s], np.float64) for s in data.symbols}
        self._C = {s: view(data.close[s], np.float64) for s in data.symbols}
        self._T = view(data.time, np.int64)

    # --- used by Context ------------------------------------------------------------------------
    def last_close(self, symbol: str) -> float:
        return float(self._C[symbol][max(self.i, 0)])

    def equity_now(self) -> float:
        i = max(self.i, 0)
        eq = self.cash
        for s, q in self.qty.items():
            if q:
                eq += q * self._C[s][i]
        return eq

    def submit(self, order: Order) -> Order:
        self.orders.append(order)
        if order.side == BUY and self.guard is not None and not self.guard.allows_entry(
                self._T[max(self.i, 0)]):
            order.status = REJECTED
            order.reason = "circuit breaker: no new entries while tripped"
            self._blocked += 1
            return order
        self.open_orders.append(order)
        return order

    def cancel(self, order: Order) -> bool:
        if order in self.open_orders:
            self.open_orders.remove(order)
            order.status = CANCELED
            self._trigger_at.pop(order.id, None)
            return True
        return False

    # --- fills --------------------------------------------------------------------------------
    def _fill_all(self, j: int) -> bool:
        """Fill what bar ``j`` reaches, in the order market, stop, limit. True if any filled."""
        filled = False
        opens = self.open_orders
        if len(opens) == 1:  # the common case: skip the three-pass sort by kind
            batches: Any = ([opens[0]],) if opens[0].created_i < j else ()
        else:
            batches = ([o for o in opens if o.kind == kind and o.created_i < j]
                       for kind in FILL_SEQUENCE)
        for batch in batches:
            for order in batch:
                s = order.symbol
                price = trigger_price(order, self._O[s][j], self._H[s][j], self._L[s][j])
                if price is None:
                    continue
                self.open_orders.remove(order)
                self._trigger_at.pop(order.id, None)
                self._execute(order, price, j)
                filled = filled or order.status == FILLED
        return filled

    def _execute(self, order: Order, price: float, j: int) -> None:
        s = order.symbol
        held = self.qty[s]
        eq_open = self.cash  # sizes a buy by pct: the equity at this bar's open
        if order.side == BUY:
            if self._single:
                if held:
                    eq_open += held * self._O[s][j]
            else:
                for sym, qty in self.qty.items():
                    if qty:
                        eq_open += qty * self._O[sym][j]
        if self._range_slip:  # the bar's range only matters to range slippage
            d = fill(order, price, self._H[s][j], self._L[s][j], self.cash, held, eq_open,
                     self.costs)
        else:
            d = fill(order, price, 0.0, 0.0, self.cash, held, eq_open, self.costs)
        if isinstance(d, str):  # refused: d is the reason
            order.status = REJECTED
            order.reason = d
            return
        price, q, fee, notional, after = d
        order.status = FILLED
        order.fill_i = j
        order.fill_price = price
        order.fill_qty = q
        order.fee = fee
        self._fees += fee
        self._turnover += notional
        if order.side == BUY:
            self.cash -= notional + fee
            self.avg[s] = (held * self.avg[s] + notional) / after
            self.entry_fees[s] += fee
            if held <= 0:
                self.opened_i[s] = j
            self.qty[s] = after
        else:
            self.cash += notional - fee
            share = self.entry_fees[s] * (q / held)
            self.entry_fees[s] -= share
            avg = self.avg[s]
            pnl = q * (price - avg) - fee - share
            self.trades.append(ClosedTrade(
                s, self._T[self.opened_i[s]], self._T[j], avg, price, q, fee + share, pnl,
                pnl / (q * avg), order.tag, self.opened_i[s], j))
            if not after:  # closed out
                self.avg[s] = 0.0
                self.entry_fees[s] = 0.0
                self.opened_i[s] = -1
            self.qty[s] = after
            if self.guard is not None:
                self.guard.on_trade_closed(self._T[j], pnl)
        self._changes_i.append(j)
        self._changes_cash.append(self.cash)
        if self._single:
            self._changes_qty[s].append(self.qty[s])
        else:
            for sym, changes in self._changes_qty.items():
                changes.append(self.qty[sym])

    # --- the loops ------------------------------------------------------------------------------
    def run(self) -> EngineOutput:
        self.strategy.init(self.data)
        ctx = Context(self)
        bar = Bar()
        bar.symbol = self.primary
        every = (self.strategy.signal_bars is None if self.force_every_bar is None
                 else self.force_every_bar)
        calls = self._loop_every(ctx, bar) if every else self._loop_events(ctx, bar)
        return self._output(calls)

    def _visit(self, i: int, ctx: Context, bar: Bar,
               on_bar: Callable[[StrategyContext[Any], Bar], None]) -> None:
        self.i = i
        p = self.primary
        bar.i = i
        bar.time = self._T[i]
        bar.open = self._O[p][i]
        bar.high = self._H[p][i]
        bar.low = self._L[p][i]
        bar.close = self._C[p][i]
        if self.guard is not None:
            self.guard.on_bar(self._T[i], self.equity_now())
        on_bar(ctx, bar)

    def _loop_every(self, ctx: Context, bar: Bar) -> int:
        on_bar = self.strategy.on_bar
        vol = np.ascontiguousarray(self.data.volume[self.primary], dtype=np.float64).data
        for i in range(len(self._T)):
            if self.open_orders:
                self._fill_all(i)
            bar.volume = vol[i]
            self._visit(i, ctx, bar, on_bar)
        return len(self._T)

    def _next_trigger(self, order: Order, after: int) -> int:
        """First bar after ``after`` whose range reaches ``order`` (n when none), vectorized."""
        n = len(self._T)
        if order.kind == MARKET:
            return after + 1
        s = order.symbol
        arr = self.data.high[s] if (order.kind == STOP) == (order.side == BUY) else \
            self.data.low[s]
        level = order.stop if order.kind == STOP else order.limit
        above = (order.kind == STOP) == (order.side == BUY)
        start = after + 1
        size = SEARCH_CHUNK
        while start < n:
            seg = arr[start:start + size]
            hits = np.flatnonzero(seg >= level) if above else np.flatnonzero(seg <= level)
            if hits.size:
                return start + int(hits[0])
            start += size
            size *= 4
        return n

    def _loop_events(self, ctx: Context, bar: Bar) -> int:
        on_bar = self.strategy.on_bar
        signals = self.strategy.signal_bars
        assert signals is not None  # nosec B101  # narrows Optional for mypy, not a check
        sig = signals.tolist()
        vol = self.data.volume[self.primary]
        n = len(self._T)
        nsig = len(sig)
        trigger_at = self._trigger_at
        k = 0
        calls = 0
        i = -1
        while True:
            next_sig = sig[k] if k < nsig else n
            next_fill = n
            for o in self.open_orders:
                t = trigger_at.get(o.id)
                if t is None or t <= i:
                    t = self._next_trigger(o, i if i > o.created_i else o.created_i)
                    trigger_at[o.id] = t
                if t < next_fill:
                    next_fill = t
            nxt = next_sig if next_sig < next_fill else next_fill
            if self.guard is not None and any(self.qty.values()):
                trip = self._guard_trip(i, nxt)
                if trip is not None:
                    nxt = trip
            if nxt >= n:
                break
            i = nxt
            filled = self._fill_all(i) if self.open_orders and next_fill == i else False
            if i == next_sig:
                k += 1
            if i == next_sig or filled or self._guard_visit:
                bar.volume = float(vol[i])
                self._visit(i, ctx, bar, on_bar)
                calls += 1
            self._guard_visit = False
        return calls

    _guard_visit = False

    def _guard_trip(self, i: int, until: int) -> int | None:
        """First bar in (i, until) where the guard would trip on equity, if any."""
        assert self.guard is not None  # nosec B101  # narrows Optional for mypy, not a check
        lo, hi = i + 1, min(until, len(self._T))
        if hi <= lo:
            return None
        eq = np.full(hi - lo, self.cash)
        for s, q in self.qty.items():
            if q:
                eq += q * self.data.close[s][lo:hi]
        hit = self.guard.first_trip(self.data.time[lo:hi], eq)
        if hit is None:
            return None
        self._guard_visit = True
        return lo + hit

    def _output(self, calls: int) -> EngineOutput:
        n = len(self._T)
        idx = np.asarray(self._changes_i, dtype=np.int64)
        # Value after the last change at or before each bar (changes happen at opens).
        pos = np.searchsorted(idx, np.arange(n), side="right") - 1
        cash_vals = np.concatenate([[self.initial_cash], np.asarray(self._changes_cash)])
        cash = cash_vals[pos + 1]
        equity = cash.copy()
        positions = {}
        for s in self.data.symbols:
            q_vals = np.concatenate([[0.0], np.asarray(self._changes_qty[s])])
            q = q_vals[pos + 1]
            positions[s] = q
            equity += q * self.data.close[s]
        open_pos = {s: {"qty": self.qty[s], "avg_price": self.avg[s],
                        "entry_time": self._T[self.opened_i[s]] if self.opened_i[s] >= 0 else 0,
                        "unrealized_pnl": self.qty[s] * (self._C[s][-1] - self.avg[s])
                        - self.entry_fees[s]}
                    for s in self.data.symbols if self.qty[s] > 0}
        return EngineOutput(equity=equity, cash=cash, positions=positions, trades=self.trades,
                            orders=self.orders, fees=self._fees, turnover=self._turnover,
                            on_bar_calls=calls, blocked_entries=self._blocked,
                            open_positions=open_pos)
