"""Ground truth: every trade the venue published, by symbol and id.

Tests and the streams fabric compare what reached the lake against this ledger to prove nothing
was lost or duplicated downstream, whatever faults were injected on the wire (faults act on
frames, never on the ledger). It also answers REST trades/aggTrades/historicalTrades queries.
Thread-safe: the server appends on its loop while tests read from their own thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from spark_ray.schemas import TRADE_SCHEMA
from spark_ray.venue.market import TradeBatch
from spark_ray.venue.specs import SymbolSpec


@dataclass(frozen=True)
class TradeColumns:
    """A consistent copy of one symbol's ledger, column-wise (event_time = publish time)."""

    ids: np.ndarray
    price: np.ndarray
    qty: np.ndarray
    time: np.ndarray
    maker: np.ndarray
    agg: np.ndarray
    event_time: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


_EMPTY_I64 = np.zeros(0, dtype=np.int64)


class _SymbolLedger:
    def __init__(self) -> None:
        self.chunks: list[tuple[np.ndarray, ...]] = []
        self.count = 0
        self._cache: TradeColumns | None = None

    def append(self, batch: TradeBatch, event_time: int) -> None:
        ev = np.full(len(batch), event_time, dtype=np.int64)
        self.chunks.append((batch.ids, batch.price, batch.qty, batch.time, batch.maker,
                            batch.agg, ev))
        self.count += len(batch)
        self._cache = None
        if len(self.chunks) > 256:
            self.columns()  # consolidate so the chunk list stays short

    def columns(self) -> TradeColumns:
        if self._cache is None:
            if not self.chunks:
                self._cache = TradeColumns(_EMPTY_I64, _EMPTY_I64, _EMPTY_I64, _EMPTY_I64,
                                           np.zeros(0, dtype=bool), _EMPTY_I64, _EMPTY_I64)
            else:
                cols = [np.concatenate([c[i] for c in self.chunks]) for i in range(7)]
                self.chunks = [tuple(cols)]
                self._cache = TradeColumns(*cols)
        return self._cache


class TradeLedger:
    """Append-only record of published trades, queryable as ids, columns or an Arrow table."""

    def __init__(self, specs: dict[str, SymbolSpec], exchange: str = "binance") -> None:
        self.specs = specs
        self.exchange = exchange
        self._lock = threading.Lock()
        self._ledgers = {s: _SymbolLedger() for s in specs}

    def append(self, batch: TradeBatch, event_time: int) -> None:
        with self._lock:
            self._ledgers[batch.symbol].append(batch, event_time)

    def count(self, symbol: str) -> int:
        with self._lock:
            return self._ledgers[symbol].count

    def columns(self, symbol: str) -> TradeColumns:
        with self._lock:
            return self._ledgers[symbol].columns()

    def tail(self, symbol: str, since_time: int) -> TradeColumns:
        """Trades with time >= since_time, reading only the newest chunks (kline streams)."""
        with self._lock:
            chunks = self._ledgers[symbol].chunks
            picked: list[tuple[np.ndarray, ...]] = []
            for chunk in reversed(chunks):
                picked.append(chunk)
                if len(chunk[3]) and chunk[3][0] < since_time:
                    break
        if not picked:
            return self.columns(symbol)
        cols = [np.concatenate([c[i] for c in reversed(picked)]) for i in range(7)]
        i0 = int(np.searchsorted(cols[3], since_time, side="left"))
        return TradeColumns(*[c[i0:] for c in cols])

    def ids(self, symbol: str) -> np.ndarray:
        """Published trade ids of a symbol, ascending and contiguous by construction."""
        return self.columns(symbol).ids.copy()

    def table(self, symbol: str) -> pa.Table:
        """All published trades of a symbol in the canonical TRADE_SCHEMA, in id order."""
        cols = self.columns(symbol)
        spec = self.specs[symbol]
        n = len(cols)
        price = np.round(cols.price / 10**spec.price_scale, spec.price_scale)
        qty = np.round(cols.qty / 10**spec.qty_scale, spec.qty_scale)
        ts = TRADE_SCHEMA.field("trade_time").type
        return pa.Table.from_arrays(
            [
                pa.array([self.exchange] * n, pa.string()),
                pa.array([symbol] * n, pa.string()),
                pa.array(cols.ids, pa.int64()),
                pa.array(price, pa.float64()),
                pa.array(qty, pa.float64()),
                pa.array(cols.maker, pa.bool_()),
                pa.array(cols.time, pa.int64()).cast(ts),
                pa.array(cols.event_time, pa.int64()).cast(ts),
                pa.nulls(n, ts),
                pa.nulls(n, ts),
            ],
            schema=TRADE_SCHEMA,
        )
