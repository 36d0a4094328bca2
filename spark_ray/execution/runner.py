"""One symbol's strategy, live: bars in, intents out.

The strategy is the backtest's class, unchanged. Its ``init(data)`` precomputes indicators over
all the bars it is given, so live it is re-run on the history after every bar. Indicators have no
look-ahead, so the value at the newest bar equals the one a backtest over the whole series
computes. ``init`` runs on the strategy instance itself once (setting its own state, e.g.
``stop_order = None``); afterwards on a scratch instance, from which only array attributes (numpy
arrays and memoryviews: the indicators) are copied over, so the strategy's own state survives
from bar to bar.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from spark_ray.execution.bars import BarBuilder, BarHistory, ClosedBar
from spark_ray.execution.context import ExecContext
from spark_ray.execution.filters import SymbolFilters
from spark_ray.execution.ids import client_order_id
from spark_ray.execution.orders import CANCELED, ManagedOrder, OrderManager
from spark_ray.execution.positions import Positions
from spark_ray.strategy.bars import Bar
from spark_ray.strategy.base import Strategy
from spark_ray.strategy.loader import make_strategy

log = logging.getLogger(__name__)


def _is_indicator(v: Any) -> bool:
    return isinstance(v, np.ndarray | memoryview)


class SymbolRunner:
    def __init__(self, symbol: str, strategy_cls: type[Strategy], params: dict[str, Any],
                 interval: str, key: str, positions: Positions, orders: OrderManager,
                 max_history: int | None = None, close_grace_ms: int | None = None,
                 hole_wait_ms: int | None = None) -> None:
        self.symbol = symbol
        self.key = key
        self.params = params
        self.strategy_cls = strategy_cls
        self.strategy = make_strategy(strategy_cls, params)
        self.builder = BarBuilder(symbol, interval, close_grace_ms, hole_wait_ms)
        self.history = BarHistory(symbol, interval, max_history)
        self.positions = positions
        self.sleeve = positions[symbol]
        self.om = orders
        self.ctx = ExecContext(self)
        self.bar = Bar()
        self.bar.symbol = symbol
        self.last_close: float | None = None
        self.bar_time = -1
        self.intents: list[ManagedOrder] = []
        self.cancels: list[ManagedOrder] = []
        self._seq = 0
        self._initialized = False
        self.decisions = 0
        self.deduped = 0
        self.strategy_errors = 0
        self.last_error = ""
        self.init_ms = 0.0
        self.filters: SymbolFilters | None = None  # set once the venue's filters are known

    # --- used by ExecContext ---------------------------------------------------------------
    def tradeable(self, qty: float) -> float:
        """``qty`` as the venue can trade it: rounded down to the lot step; below the minimum
        quantity, zero. Without filters (a backtest-like replay), unchanged."""
        f = self.filters
        if f is None or qty <= 0 or f.step_size <= 0:
            return qty
        q = f.qty(qty)
        return float(q) if q > 0 and q >= f.min_qty else 0.0

    def place(self, side: int, kind: str, qty: float | None, notional: float | None,
              pct: float | None, limit: float | None, stop: float | None,
              tag: str) -> ManagedOrder:
        seq = self._seq
        self._seq += 1
        cid = client_order_id(self.key, self.symbol, self.bar_time, seq)
        existing = self.om.get(cid)
        if existing is not None:  # this bar was decided before a restart: same intent, same order
            self.deduped += 1
            return existing
        order = ManagedOrder(cid, self.symbol, side, kind, self.bar_time, seq, qty=qty,
                             notional=notional, pct=pct, limit=limit, stop=stop, tag=tag,
                             created_ms=int(time.time() * 1000))
        self.intents.append(order)
        return order

    def request_cancel(self, order: ManagedOrder) -> bool:
        if order in self.intents:  # never sent: cancel in place, as the backtest does
            self.intents.remove(order)
            order.status = CANCELED
            order.reason = "canceled before submit"
            return True
        if order.is_open and order.cid in self.om and order not in self.cancels:
            self.cancels.append(order)
            return True
        return False

    def visible_open_orders(self) -> list[ManagedOrder]:
        return [o for o in self.om.open_orders(self.symbol) if o not in self.cancels] + \
            list(self.intents)

    # --- bars -----------------------------------------------------------------------------------
    def seed_history(self, bars: list[ClosedBar]) -> int:
        """Warm-up bars (REST klines) before the first live one; returns how many were kept."""
        kept = 0
        for b in bars:
            last = self.history.last_time
            if last is None or b.time > last:
                self.history.append(b.time, b.open, b.high, b.low, b.close, b.volume)
                kept += 1
        if kept:
            self.last_close = bars[-1].close
        return kept

    def _refresh(self) -> None:
        t = time.perf_counter()
        if self._initialized and type(self.strategy).init is Strategy.init:
            return  # no indicators to recompute
        data = self.history.data()
        if not self._initialized:
            self.strategy.init(data)
            self._initialized = True
        else:
            scratch = self.strategy_cls(self.strategy.params)
            scratch.init(data)
            for k, v in vars(scratch).items():
                if _is_indicator(v):
                    setattr(self.strategy, k, v)
        self.init_ms = (time.perf_counter() - t) * 1000

    def decide(self, bar: ClosedBar, append: bool = True, extra: dict[str, float] | None = None
               ) -> tuple[list[ManagedOrder], list[ManagedOrder]]:
        """Run the strategy on a closed bar; returns (new intents, cancel requests).
        ``extra``: the signals at the bar's last trade, kept beside the bar in the history."""
        if append:
            self.history.append(bar.time, bar.open, bar.high, bar.low, bar.close, bar.volume,
                                extra)
        self.last_close = bar.close
        self.bar_time = bar.time
        self._seq = 0
        self.intents, self.cancels = [], []
        b = self.bar
        b.i = len(self.history) - 1
        b.time = bar.time
        b.open, b.high, b.low, b.close, b.volume = (bar.open, bar.high, bar.low, bar.close,
                                                    bar.volume)
        try:
            self._refresh()
            self.strategy.on_bar(self.ctx, b)
        except Exception as exc:  # a strategy bug must not take the executor down
            self.strategy_errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("%s: strategy failed on bar %d", self.symbol, bar.time)
            self.intents = []
        self.decisions += 1
        intents, cancels = self.intents, self.cancels
        self.intents, self.cancels = [], []
        return intents, cancels

    def status(self) -> dict[str, Any]:
        return {"bars": len(self.history), "decisions": self.decisions,
                "last_bar_time": self.history.last_time, "last_close": self.last_close,
                "late_trades": self.builder.late, "missed_trade_ids": self.builder.missed_ids,
                "reordered_trades": self.builder.reordered,
                "buffered_trades": self.builder.buffered,
                "duplicate_trades": self.builder.duplicates, "deduped_intents": self.deduped,
                "strategy_errors": self.strategy_errors, "last_error": self.last_error,
                "init_ms": round(self.init_ms, 3), "open_bar": self.builder.cur.time
                if self.builder.cur is not None else None}
