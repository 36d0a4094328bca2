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
from spark_ray.signals.features import (
    Feature,
    Trades,
    asof_book,
    book_arrays,
    own_book,
    reference,
)
from spark_ray.signals.inventory import TEMPLATE, XVENUE, Signal, signal


class NoBook(ValueError):
    """Order-book features asked for over trades whose book the lake does not hold."""


def needs_book(names: Iterable[str]) -> bool:
    return any(signal(n).feature.rowwise for n in names)


def references(names: Iterable[str]) -> list[str]:
    """The other exchanges whose books the features ``names`` read (cross-exchange spread)."""
    return sorted({r for n in names if (r := reference(signal(n).feature)) is not None})


def has_book(store: DataStore, symbol: str, exchange: str) -> bool:
    return symbol in store.symbols(BOOK, exchange)


def _missing(store: DataStore, symbol: str, exchange: str, feature: Feature) -> str | None:
    """Why the lake cannot give ``feature`` for (``exchange``, ``symbol``), or None."""
    ref = reference(feature)
    if ref is not None:
        if ref == exchange:
            return f"the reference exchange is the trades' own ({exchange})"
        return None if has_book(store, symbol, ref) else f"no book of {symbol} on {ref}"
    if own_book(feature) and not has_book(store, symbol, exchange):
        return f"no book of {symbol} on {exchange}"
    return None


def book_exchanges(store: DataStore, symbol: str) -> list[str]:
    """The exchanges the lake holds a book of ``symbol`` for."""
    return sorted({ex for ds, ex, sym, _ in store.series() if ds == BOOK and sym == symbol})


def usable(store: DataStore, symbol: str, exchange: str,
           signals: Iterable[Signal]) -> tuple[list[Signal], list[Signal]]:
    """(signals the lake can compute for ``symbol``, book-reading ones left out for lack of a
    recorded book): the default choice of study and train. The cross-exchange template becomes
    one signal per other exchange with a book of the symbol."""
    chosen: list[Signal] = []
    left: list[Signal] = []
    for s in signals:
        if TEMPLATE in s.name:
            refs = [signal(XVENUE + ex) for ex in book_exchanges(store, symbol)
                    if ex != exchange]
            chosen += refs
            if not refs:
                left.append(s)
            continue
        (left if _missing(store, symbol, exchange, s.feature) else chosen).append(s)
    return chosen, left


def asof_table(table: pa.Table, book: pa.Table) -> np.ndarray:
    """The rows of ``book`` in force at each trade of ``table`` (by receive time)."""
    recv = np.asarray(table.column("recv_time").cast(pa.int64()).fill_null(0).to_numpy(),
                      dtype=np.int64)
    return asof_book(recv, *book_arrays(book))


def with_book(trades: Trades, table: pa.Table, book: pa.Table) -> Trades:
    """``trades`` (made from ``table``, same rows) with the book as of each trade's receive
    time, from ``book`` (BOOK_SCHEMA rows of the same symbol)."""
    return trades.with_book(asof_table(table, book))


def check_books(store: DataStore, symbol: str, exchange: str, names: Iterable[str]) -> None:
    """:class:`NoBook`, naming each of the features ``names`` whose book the lake lacks for
    ``symbol`` and what is missing; nothing is read beyond the lake's listing."""
    why = {n: w for n in names if (w := _missing(store, symbol, exchange, signal(n).feature))}
    if why:
        raise NoBook("; ".join(f"{n}: {w}" for n, w in why.items()) +
                     f" in {store.uri}: record it with the fabric (streams bookTicker or "
                     "depth) or leave these signals out")


def attach_books(store: DataStore, symbol: str, exchange: str, names: Iterable[str],
                 trades: Trades, table: pa.Table) -> Trades:
    """``trades`` with every book the features ``names`` read: the symbol's own (order-book
    family) and other exchanges' (cross-exchange spread), each as of the trade's receive time.
    A book the lake lacks is :class:`NoBook` naming the features and what is missing."""
    names = list(names)
    check_books(store, symbol, exchange, names)
    if any(own_book(signal(n).feature) for n in names):
        trades = with_book(trades, table, store.read(BOOK, exchange, symbol))
    for ref in references(names):
        trades = trades.with_ref(ref, asof_table(table, store.read(BOOK, ref, symbol)))
    return trades


def load_trades(store: DataStore, symbol: str, exchange: str, names: Iterable[str],
                table: pa.Table | None = None) -> Trades:
    """The symbol's trades (``table`` when already read) as features ``names`` need them."""
    if table is None:
        table = store.trades(symbol, exchange)
    return attach_books(store, symbol, exchange, names, Trades.from_table(table), table)


def model_references(model_dir: str) -> list[str]:
    """The other exchanges a saved model's features read (from its model.json), without
    loading the model."""
    import json
    from pathlib import Path

    card = json.loads((Path(model_dir) / "model.json").read_text())
    return references(f["name"] if isinstance(f, dict) else f for f in card["features"])
