"""``PaperBroker``: a simulated venue that fills orders with the backtest's fill model.

Orders rest in the paper book until a bar closes; then every order decided on an earlier bar is
tried against that bar as the backtest engine does: market orders first (at the bar's open),
then stops, then limits (:data:`~spark_ray.fills.orders.FILL_SEQUENCE`,
:func:`~spark_ray.fills.orders.trigger_price`), each sized, charged and checked by the very
function the engine calls (:func:`spark_ray.fills.model.fill`: buys capped by cash with the fee,
sells by the position, ``pct`` of equity at the bar's open, fees and slippage of the
:class:`~spark_ray.fills.costs.CostModel`, the lot step, the minimum notional). Paper trading
over recorded trades therefore produces the same fills, trades and equity as a backtest of the
same bars (tests/execution/test_parity.py holds it to that).

The paper account is one sleeve (cash, quantity) per symbol, like the executor's positions; after
a restart it is rebuilt from the journal (:meth:`restore`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from spark_ray.execution.bars import ClosedBar
from spark_ray.execution.broker import UpdateSink
from spark_ray.execution.filters import SymbolFilters
from spark_ray.execution.orders import (
    CANCELED,
    FILLED,
    NEW,
    REJECTED,
    Fill,
    ManagedOrder,
    OrderUpdate,
)
from spark_ray.fills.costs import CostModel
from spark_ray.fills.model import fill
from spark_ray.fills.orders import BUY, FILL_SEQUENCE, LIMIT, trigger_price

FilterSource = Callable[[list[str]], Awaitable[dict[str, SymbolFilters]]]


class _Account:
    __slots__ = ("cash", "qty")

    def __init__(self, cash: float, qty: float = 0.0) -> None:
        self.cash = cash
        self.qty = qty


class PaperBroker:
    name = "paper"

    def __init__(self, cash_by_symbol: dict[str, float], costs: CostModel | None = None,
                 filters: dict[str, SymbolFilters] | None = None,
                 filter_source: FilterSource | None = None) -> None:
        self.base_costs = costs or CostModel()
        self.filter_source = filter_source
        self.filters = dict(filters or {})
        self.accounts = {s: _Account(c) for s, c in cash_by_symbol.items()}
        self.open: dict[str, list[ManagedOrder]] = {s: [] for s in cash_by_symbol}
        self.known: dict[str, str] = {}  # cid -> last status the paper venue reported
        self.fills = 0
        self._trade_seq = 0
        self._costs: dict[str, CostModel] = {}

    def costs(self, symbol: str) -> CostModel:
        """The cost model of one symbol: the base fees and slippage with its exchange filters."""
        c = self._costs.get(symbol)
        if c is None:
            f = self.filters.get(symbol)
            b = self.base_costs
            c = CostModel(fee_bps=b.fee_bps, maker_fee_bps=b.maker_fee_bps,
                          slippage_bps=b.slippage_bps, slippage_range_frac=b.slippage_range_frac,
                          lot_step=b.lot_step if f is None or f.lot_step is None else f.lot_step,
                          min_notional=b.min_notional if f is None or f.min_notional_f is None
                          else f.min_notional_f)
            self._costs[symbol] = c
        return c

    # --- Broker -----------------------------------------------------------------------------
    async def start(self, on_updates: UpdateSink) -> None:
        return None

    async def exchange_filters(self, symbols: list[str]) -> dict[str, SymbolFilters]:
        """The venue's filters (from ``filter_source``, e.g. its REST exchangeInfo), so paper
        orders are rounded and checked exactly as live ones."""
        if self.filter_source is not None:
            self.set_filters(await self.filter_source(symbols))
        return {s: f for s, f in self.filters.items() if s in symbols}

    def set_filters(self, filters: dict[str, SymbolFilters]) -> None:
        self.filters.update(filters)
        self._costs.clear()

    async def submit(self, order: ManagedOrder) -> list[OrderUpdate]:
        return self.submit_now(order)

    def submit_now(self, order: ManagedOrder) -> list[OrderUpdate]:
        """Accept an order into the paper book (synchronous: the benchmark's hot path)."""
        if order.symbol not in self.accounts:
            return [OrderUpdate(order.cid, REJECTED, reason=f"paper: unknown symbol "
                                f"{order.symbol}", source="paper")]
        if order.cid in self.known:
            return [OrderUpdate(order.cid, REJECTED, reason="Duplicate order sent.",
                                source="paper")]
        self.open[order.symbol].append(order)
        self.known[order.cid] = NEW
        return [OrderUpdate(order.cid, NEW, source="paper")]

    async def cancel(self, order: ManagedOrder) -> list[OrderUpdate]:
        book = self.open.get(order.symbol, [])
        if order in book:
            book.remove(order)
            self.known[order.cid] = CANCELED
            return [OrderUpdate(order.cid, CANCELED, source="paper")]
        return []

    async def query(self, order: ManagedOrder) -> list[OrderUpdate] | None:
        status = self.known.get(order.cid)
        if status is None:
            return None
        return [OrderUpdate(order.cid, status, source="paper")]

    async def open_orders(self, symbols: list[str]) -> list[dict[str, Any]]:
        return [{"symbol": o.symbol, "clientOrderId": o.cid, "status": NEW}
                for s in symbols for o in self.open.get(s, [])]

    async def account(self) -> dict[str, Any]:
        return {"paper": {s: {"cash": a.cash, "qty": a.qty} for s, a in self.accounts.items()}}

    def restore(self, orders: list[ManagedOrder], balances: dict[str, tuple[float, float]]) -> None:
        for s, (cash, qty) in balances.items():
            if s in self.accounts:
                self.accounts[s] = _Account(cash, qty)
        for o in orders:
            if o.symbol in self.open and o.cid not in self.known:
                self.open[o.symbol].append(o)
                self.known[o.cid] = NEW

    async def close(self) -> None:
        return None

    # --- the fill model -----------------------------------------------------------------------
    def on_bar(self, bar: ClosedBar) -> list[OrderUpdate]:
        """Fill what ``bar`` reaches among orders decided before it (market, stop, limit)."""
        book = self.open.get(bar.symbol)
        if not book:
            return []
        ready = [o for o in book if o.bar_time < bar.time]
        if not ready:
            return []
        if len(ready) > 1:
            ready = [o for kind in FILL_SEQUENCE for o in ready if o.kind == kind]
        out: list[OrderUpdate] = []
        for order in ready:
            price = trigger_price(order, bar.open, bar.high, bar.low)
            if price is None:
                continue
            book.remove(order)
            out.append(self._execute(order, price, bar))
        return out

    def _execute(self, order: ManagedOrder, price: float, bar: ClosedBar) -> OrderUpdate:
        """Fill one order on one single-symbol sleeve, as the engine's ``_execute`` does."""
        acct = self.accounts[order.symbol]
        held = acct.qty
        d = fill(order, price, bar.high, bar.low, acct.cash, held,
                 acct.cash + (held * bar.open if held else 0.0), self.costs(order.symbol))
        if isinstance(d, str):  # refused: d is the reason
            self.known[order.cid] = REJECTED
            return OrderUpdate(order.cid, REJECTED, reason=d, time_ms=bar.time, source="paper")
        price, q, fee, notional, acct.qty = d
        if order.side == BUY:
            acct.cash -= notional + fee
        else:
            acct.cash += notional - fee
        self._trade_seq += 1
        self.fills += 1
        self.known[order.cid] = FILLED
        quote = self.filters[order.symbol].quote_asset if order.symbol in self.filters else ""
        done = Fill(f"paper-{order.cid}-{self._trade_seq}", price, q, fee, quote, bar.time,
                    order.kind == LIMIT)
        return OrderUpdate(order.cid, FILLED, executed_qty=q, cum_quote=notional,
                           time_ms=bar.time, fill=done, source="paper")
