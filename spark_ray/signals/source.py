"""Trades from the lake with what their features read: the top of the book as of each trade
when an order-book feature is asked for (:func:`spark_ray.signals.features.asof_book`).

Every batch path (study, train, backtest bars, the Ray batch, replays) loads through here, so
an order-book feature over trades without a recorded book is a clear error naming the symbol,
never a column of NaN that trains a model on nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa

from spark_ray.lake import DataStore
from spark_ray.lake.layout import BOOK
from spark_ray.signals.features import Trades, asof_book, book_arrays
from spark_ray.signals.inventory import Signal, signal


class NoBook(ValueError):
    """Order-book features asked for over trades whose book the lake does not hold."""


def needs_book(names: Iterable[str]) -> bool:
    return any(signal(n).feature.rowwise for n in names)


def has_book(store: DataStore, symbol: str, exchange: str) -> bool:
    return symbol in store.symbols(BOOK, exchange)


def usable(store: DataStore, symbol: str, exchange: str,
           signals: Iterable[Signal]) -> tuple[list[Signal], list[Signal]]:
    """(signals the lake can compute for ``symbol``, order-book ones left out for lack of a
    recorded book): the default choice of study and train."""
    chosen: list[Signal] = []
    left: list[Signal] = []
    book = has_book(store, symbol, exchange)
    for s in signals:
        (left if s.feature.rowwise and not book else chosen).append(s)
    return chosen, left


def with_book(trades: Trades, table: pa.Table, book: pa.Table) -> Trades:
    """``trades`` (made from ``table``, same rows) with the book as of each trade's receive
    time, from ``book`` (BOOK_SCHEMA rows of the same symbol)."""
    recv = np.asarray(table.column("recv_time").cast(pa.int64()).fill_null(0).to_numpy(),
                      dtype=np.int64)
    return trades.with_book(asof_book(recv, *book_arrays(book)))


def load_trades(store: DataStore, symbol: str, exchange: str, names: Iterable[str],
                table: pa.Table | None = None) -> Trades:
    """The symbol's trades (``table`` when already read) as features ``names`` need them."""
    if table is None:
        table = store.trades(symbol, exchange)
    trades = Trades.from_table(table)
    names = list(names)
    if not needs_book(names):
        return trades
    if not has_book(store, symbol, exchange):
        wanted = ", ".join(n for n in names if signal(n).feature.rowwise)
        raise NoBook(f"{wanted}: order-book signals need the book of {symbol} "
                     f"(exchange={exchange}) in {store.uri}; record it with the fabric "
                     f"(streams bookTicker or depth) or leave these signals out")
    return with_book(trades, table, store.read(BOOK, exchange, symbol))
