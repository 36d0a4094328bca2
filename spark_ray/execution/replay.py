"""Paper trading over recorded trades: the live executor core fed from a table, batch by batch.

What a live run would have done on the same trades, with the PaperBroker and the real breaker
core; comparing it with a backtest of the same bars is the paper/backtest parity check.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import pyarrow as pa

from spark_ray.execution.executor import ExecutorConfig, ExecutorCore, TradeCols
from spark_ray.execution.filters import SymbolFilters
from spark_ray.execution.gate import Gate, LocalGate
from spark_ray.execution.journal import ExecJournal, MemoryJournal
from spark_ray.execution.paper import PaperBroker
from spark_ray.signals.features import Trades
from spark_ray.signals.live import SignalBook, SignalEngine
from spark_ray.strategy.base import Strategy


def trade_columns(table: pa.Table) -> TradeCols:
    """(time ms, price, qty, id, recv ms) arrays in trade-id order from any trades table."""
    t = table.sort_by("trade_id")
    tt = t.column("trade_time")
    times = (tt.cast(pa.int64()) if pa.types.is_timestamp(tt.type) else tt).to_numpy()
    recv = (t.column("recv_time").cast(pa.int64()).fill_null(0).to_numpy()
            if "recv_time" in t.column_names else np.zeros(t.num_rows, np.int64))
    return (np.asarray(times, np.int64), t.column("price").to_numpy(),
            t.column("qty").to_numpy(), t.column("trade_id").to_numpy(), recv)


async def feed(core: ExecutorCore, symbol: str, cols: TradeCols, batch: int = 500,
               engine: SignalEngine | None = None, trades: Trades | None = None) -> None:
    """Batches of ``cols`` into the core; with a signal ``engine`` (and the same ``trades``
    with their sides), each batch's signals first, as the signal actor publishes them."""
    n = len(cols[0])
    for lo in range(0, n, batch):
        part = tuple(c[lo:lo + batch] for c in cols)
        if engine is not None and trades is not None and core.signal_book is not None:
            sl = slice(lo, lo + batch)
            chunk = trades.slice(sl)
            core.signal_book.add(engine.update(symbol, chunk, cols[3][sl]).to_message())
        await core.on_trades({symbol: part}, time.perf_counter())  # type: ignore[dict-item]


def paper_replay(trades: pa.Table, symbol: str, interval: str, strategy_cls: type[Strategy],
                 params: dict[str, Any], *, cash: float = 10_000.0, fee_bps: float = 10.0,
                 slippage_bps: float = 0.0, filters: SymbolFilters | None = None,
                 gate: Gate | None = None, journal: ExecJournal | MemoryJournal | None = None,
                 batch: int = 500, engine: SignalEngine | None = None,
                 book: pa.Table | None = None,
                 refs: dict[str, pa.Table] | None = None) -> ExecutorCore:
    """Run the executor core in paper mode over ``trades``; returns the finished core.
    With a signal ``engine`` its bars carry the signals, computed trade by trade as live
    (order-book features read ``book``, the symbol's BOOK_SCHEMA rows, as of each trade, and
    cross-exchange ones ``refs``, the same symbol's rows on other exchanges)."""
    cfg = ExecutorConfig(name="replay", symbols=(symbol,), interval=interval, cash=cash,
                         fee_bps=fee_bps, slippage_bps=slippage_bps, close_grace_ms=None,
                         hole_wait_ms=None,
                         skip_first_bar=False, warmup_bars=0, max_history=None)
    broker = PaperBroker({symbol: cash}, cfg.costs(), {symbol: filters} if filters else None)
    core = ExecutorCore(cfg, strategy_cls, params, broker, journal or MemoryJournal(),
                        gate or LocalGate())

    if engine is not None:
        core.signal_book = SignalBook()
    ordered = trades.sort_by("trade_id")

    scored = None
    if engine is not None:
        scored = Trades.from_table(ordered)
        if engine.needs_book:
            from spark_ray.signals.source import with_book

            if book is None:
                raise ValueError("paper_replay: the engine's order-book features need book")
            scored = with_book(scored, ordered, book)
        for ex in engine.references:
            from spark_ray.signals.source import asof_table

            if ex not in (refs or {}):
                raise ValueError(f"paper_replay: the engine's features need the {ex} book")
            scored = scored.with_ref(ex, asof_table(ordered, (refs or {})[ex]))

    async def run() -> None:
        await core.start()
        await feed(core, symbol, trade_columns(ordered), batch, engine, scored)

    asyncio.run(run())
    return core
