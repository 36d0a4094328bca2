"""Trade features, each defined once with two runtimes that must agree to 1e-9.

A feature's value at a trade uses that trade and earlier ones only (time <= t), never later
ones. ``batch`` computes a whole column from NumPy arrays (the lake, research, training);
``online()`` returns a small state object whose ``update`` takes one trade at a time (the live
signal actor). Parity is by construction where it can be: windowed sums are differences of one
running total accumulated in the same order in both runtimes (``np.cumsum`` adds sequentially),
so they agree bit for bit; the EMA and the rolling standard deviation use the same recursions
and agree to rounding.

Trade sign follows Binance's ``m`` flag (buyer is maker -> the taker sold -> -1), as in Lee &
Ready's tick classification of aggressor side.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
import pyarrow as pa


@dataclass(frozen=True)
class Trades:
    """Columnar trades in time order: ms timestamps, prices, quantities, +1 taker buy / -1
    taker sell."""

    time: np.ndarray
    price: np.ndarray
    qty: np.ndarray
    side: np.ndarray
    # The top of the book in force at each trade (see :func:`asof_book`): columns bid price,
    # bid size, ask price, ask size; NaN where no book was known. None: no book was loaded.
    book: np.ndarray | None = None
    # The same symbol's top of book on other exchanges, as of each trade, by exchange.
    refs: dict[str, np.ndarray] | None = None

    def __post_init__(self) -> None:
        n = len(self.time)
        if not (len(self.price) == len(self.qty) == len(self.side) == n):
            raise ValueError("trades: time, price, qty and side must have the same length")
        for what, b in [("book", self.book), *((f"refs[{k}]", v)
                                              for k, v in (self.refs or {}).items())]:
            if b is not None and b.shape != (n, 4):
                raise ValueError(f"trades: {what} must have shape ({n}, 4), not {b.shape}")
        if n and np.any(np.diff(self.time) < 0):
            raise ValueError("trades: time must not decrease")

    @classmethod
    def from_table(cls, table: pa.Table) -> Trades:
        """From the lake's TRADE_SCHEMA (trade-id order, which is time order on one venue):
        ``is_buyer_maker`` true means the taker sold."""
        time = table.column("trade_time").cast(pa.int64()).to_numpy()
        maker = table.column("is_buyer_maker").to_numpy(zero_copy_only=False)
        return cls(np.asarray(time, dtype=np.int64),
                   table.column("price").to_numpy().astype(float, copy=False),
                   table.column("qty").to_numpy().astype(float, copy=False),
                   np.where(maker, -1, 1).astype(np.int64))


    def with_book(self, book: np.ndarray) -> Trades:
        return Trades(self.time, self.price, self.qty, self.side, book, self.refs)

    def with_ref(self, exchange: str, book: np.ndarray) -> Trades:
        return Trades(self.time, self.price, self.qty, self.side, self.book,
                      {**(self.refs or {}), exchange: book})

    def slice(self, sl: slice) -> Trades:
        return Trades(self.time[sl], self.price[sl], self.qty[sl], self.side[sl],
                      self.book[sl] if self.book is not None else None,
                      {k: v[sl] for k, v in self.refs.items()} if self.refs else None)

    def need_book(self, feature: str) -> np.ndarray:
        if self.book is None:
            raise ValueError(f"{feature}: needs the order book (bid/ask and sizes) as of each "
                             f"trade; no book was loaded for these trades")
        return self.book

    def need_ref(self, feature: str, exchange: str) -> np.ndarray:
        b = (self.refs or {}).get(exchange)
        if b is None:
            raise ValueError(f"{feature}: needs the {exchange} book of the same symbol as of "
                             f"each trade; none was loaded for these trades")
        return b


BOOK_COLUMNS = ("bid_price", "bid_qty", "ask_price", "ask_qty")


def asof_book(trade_recv: np.ndarray, book_recv: np.ndarray, book_id: np.ndarray,
              book: np.ndarray) -> np.ndarray:
    """The top of the book in force at each trade: the book row with the greatest (receive
    time, update id) among those received strictly before the trade (``recv_time`` <), the
    order a stream's frames arrive in. Strictly before, because a row received in the same
    millisecond may have been read after the trade; and by receive time, not the exchange's
    event time, because that is when a live reader could have known it. A trade with no
    receive time (0) or no earlier book gets NaN. ``book`` is (m, 4) as in :data:`BOOK_COLUMNS`.
    """
    out = np.full((len(trade_recv), 4), np.nan)
    if len(book_recv) == 0 or len(trade_recv) == 0:
        return out
    order = np.lexsort((book_id, book_recv))
    recv, rows = book_recv[order], book[order]
    j = np.searchsorted(recv, trade_recv, side="left") - 1
    ok = (j >= 0) & (trade_recv > 0)
    out[ok] = rows[j[ok]]
    return out


def book_arrays(table: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(receive ms, update id, (m, 4) values) of a BOOK_SCHEMA table, for :func:`asof_book`."""
    recv = table.column("recv_time").cast(pa.int64()).fill_null(0).to_numpy()
    ids = table.column("update_id").to_numpy()
    vals = np.column_stack([table.column(c).to_numpy(zero_copy_only=False).astype(float)
                            for c in BOOK_COLUMNS]) if table.num_rows else np.empty((0, 4))
    return np.asarray(recv, np.int64), np.asarray(ids, np.int64), vals


class Online(Protocol):
    def update(self, time_ms: int, price: float, qty: float, side: int) -> float: ...


class Feature(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def rowwise(self) -> bool:
        """True for a feature of each trade's own row alone (the order-book features): the
        live engine computes it with ``batch`` over each new batch, which is the same function
        of the same inputs; its two runtimes differ in how the book as of each trade is found
        (:func:`asof_book` over the lake, :class:`spark_ray.signals.live.BookHistory` from the
        stream)."""
        ...

    def batch(self, t: Trades) -> np.ndarray: ...

    def online(self) -> Online: ...


@dataclass(frozen=True)
class SignedVolume:
    """Taker-buy minus taker-sell quantity over the trailing ``window_ms`` (t - w, t]."""

    window_ms: int

    rowwise = False

    @property
    def name(self) -> str:
        return f"signed_volume_{self.window_ms}ms"

    def batch(self, t: Trades) -> np.ndarray:
        return _trailing_sums(t, self.window_ms)[0]

    def online(self) -> Online:
        return _Window(self.window_ms, ratio=False)


@dataclass(frozen=True)
class FlowImbalance:
    """Signed volume over total volume in the trailing window, in [-1, 1]."""

    window_ms: int

    rowwise = False

    @property
    def name(self) -> str:
        return f"flow_imbalance_{self.window_ms}ms"

    def batch(self, t: Trades) -> np.ndarray:
        signed, total = _trailing_sums(t, self.window_ms)
        with np.errstate(invalid="ignore", divide="ignore"):
            out: np.ndarray = np.where(total > 0, signed / total, 0.0)
        return out

    def online(self) -> Online:
        return _Window(self.window_ms, ratio=True)


@dataclass(frozen=True)
class EmaDeviation:
    """Price over its exponential moving average (alpha = 2 / (span + 1), seeded with the first
    price) minus one."""

    span: int

    rowwise = False

    @property
    def name(self) -> str:
        return f"ema_deviation_{self.span}"

    def batch(self, t: Trades) -> np.ndarray:
        ema = pd.Series(t.price).ewm(span=self.span, adjust=False).mean().to_numpy()
        out: np.ndarray = t.price / ema - 1.0
        return out

    def online(self) -> Online:
        return _Ema(2.0 / (self.span + 1.0))


@dataclass(frozen=True)
class RealizedVolatility:
    """Sample standard deviation of the last ``n`` trade-to-trade log returns; NaN until there
    are ``n``."""

    n: int

    rowwise = False

    @property
    def name(self) -> str:
        return f"realized_vol_{self.n}"

    def batch(self, t: Trades) -> np.ndarray:
        r = np.concatenate(([np.nan], np.diff(np.log(t.price))))
        out: np.ndarray = pd.Series(r).rolling(self.n).std(ddof=1).to_numpy()
        return out

    def online(self) -> Online:
        return _Vol(self.n)


class _RowWise:
    """A feature of a trade's own row and the books in force at it: no state to carry, so the
    live engine computes it with ``batch`` over each new batch (the same function of the same
    inputs); what differs between the runtimes is how the books are found."""

    rowwise = True

    @property
    def name(self) -> str:
        raise NotImplementedError

    def online(self) -> Online:
        raise TypeError(f"{self.name} is row-wise: the live engine computes it with batch()")


@dataclass(frozen=True)
class BookImbalance(_RowWise):
    """Queue imbalance at the best levels, (bid size - ask size) / (bid size + ask size), in
    [-1, 1]: Gould & Bonart (2016), "Queue imbalance as a one-tick-ahead price predictor in a
    limit order book", Market Microstructure and Liquidity 2(2), eq. (3)."""

    @property
    def name(self) -> str:
        return "book_imbalance"

    def batch(self, t: Trades) -> np.ndarray:
        b = t.need_book(self.name)
        with np.errstate(invalid="ignore", divide="ignore"):
            out: np.ndarray = (b[:, 1] - b[:, 3]) / (b[:, 1] + b[:, 3])
        return out


@dataclass(frozen=True)
class QuotedSpread(_RowWise):
    """Quoted spread in basis points of the mid, (ask - bid) / ((ask + bid) / 2) * 1e4: the
    cost of crossing, and thin books widen it."""

    @property
    def name(self) -> str:
        return "spread_bps"

    def batch(self, t: Trades) -> np.ndarray:
        b = t.need_book(self.name)
        with np.errstate(invalid="ignore", divide="ignore"):
            out: np.ndarray = (b[:, 2] - b[:, 0]) / ((b[:, 2] + b[:, 0]) / 2.0) * 1e4
        return out


@dataclass(frozen=True)
class TopDepth(_RowWise):
    """Quote-currency size resting at the best bid and ask, bid * bid size + ask * ask size:
    the depth a market order meets before it moves the price (the lake keeps the top level)."""

    @property
    def name(self) -> str:
        return "top_depth_quote"

    def batch(self, t: Trades) -> np.ndarray:
        b = t.need_book(self.name)
        out: np.ndarray = b[:, 0] * b[:, 1] + b[:, 2] * b[:, 3]
        return out


@dataclass(frozen=True)
class MicropriceDeviation(_RowWise):
    """Trade price over the size-weighted mid minus one, the weighted mid being
    (bid * ask size + ask * bid size) / (bid size + ask size): Stoikov (2018), "The
    micro-price: a high-frequency estimator of future prices", Quantitative Finance 18(12),
    its I-weighted mid with I = bid size / (bid size + ask size)."""

    @property
    def name(self) -> str:
        return "microprice_deviation"

    def batch(self, t: Trades) -> np.ndarray:
        b = t.need_book(self.name)
        with np.errstate(invalid="ignore", divide="ignore"):
            micro = (b[:, 0] * b[:, 3] + b[:, 2] * b[:, 1]) / (b[:, 1] + b[:, 3])
            out: np.ndarray = t.price / micro - 1.0
        return out


@dataclass(frozen=True)
class CrossVenueSpread(_RowWise):
    """Trade price over the same symbol's mid on the ``reference`` exchange minus one, in basis
    points: where this venue trades against the other (a lead-lag and arbitrage-pressure
    signal). The reference book is taken as of the trade's receive time by the same rule as
    the own book (:func:`asof_book`); both venues' receive times come from this platform's
    clocks, so they are comparable on one node (across nodes, as far as their clocks agree)."""

    reference: str

    @property
    def name(self) -> str:
        return f"xvenue_spread_bps_{self.reference}"

    def batch(self, t: Trades) -> np.ndarray:
        b = t.need_ref(self.name, self.reference)
        with np.errstate(invalid="ignore", divide="ignore"):
            out: np.ndarray = (t.price / ((b[:, 0] + b[:, 2]) / 2.0) - 1.0) * 1e4
        return out


def own_book(feature: Feature) -> bool:
    """Reads the traded symbol's own book on its own exchange."""
    return feature.rowwise and not isinstance(feature, CrossVenueSpread)


def reference(feature: Feature) -> str | None:
    """The other exchange whose book the feature reads, if any."""
    return feature.reference if isinstance(feature, CrossVenueSpread) else None


def _trailing_sums(t: Trades, window_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """Signed and total quantity over (t - w, t] for every trade: differences of running totals
    (``np.cumsum`` adds in trade order, as :class:`_Window` does)."""
    start = np.searchsorted(t.time, t.time - window_ms, side="right")
    signed = np.concatenate(([0.0], np.cumsum(t.qty * t.side)))
    total = np.concatenate(([0.0], np.cumsum(t.qty)))
    return signed[1:] - signed[start], total[1:] - total[start]


class _Window:
    """The incremental twin of :func:`_trailing_sums`: signed volume, or its ratio to the total
    (flow imbalance)."""

    def __init__(self, window_ms: int, ratio: bool) -> None:
        self.window_ms, self.ratio = window_ms, ratio
        self.signed = self.total = 0.0  # running sums, added in trade order like np.cumsum
        self.marks: deque[tuple[int, float, float]] = deque()  # (time, sums before the trade)

    def update(self, time_ms: int, price: float, qty: float, side: int) -> float:
        self.marks.append((time_ms, self.signed, self.total))
        self.signed += qty * side
        self.total += qty
        while self.marks[0][0] <= time_ms - self.window_ms:
            self.marks.popleft()
        signed = self.signed - self.marks[0][1]
        if not self.ratio:
            return signed
        total = self.total - self.marks[0][2]
        return signed / total if total > 0 else 0.0


class _Ema:
    def __init__(self, alpha: float) -> None:
        self.alpha, self.ema = alpha, math.nan

    def update(self, time_ms: int, price: float, qty: float, side: int) -> float:
        self.ema = price if math.isnan(self.ema) else (
            (1.0 - self.alpha) * self.ema + self.alpha * price)
        return price / self.ema - 1.0


class _Vol:
    """Rolling sample deviation in O(1) per trade: Welford's running mean and sum of squared
    deviations, updated as a return enters and as the oldest leaves (Welford 1962; the
    add/remove recurrences pandas' rolling variance uses), so the live path keeps pace with a
    busy stream; the parity test holds it to the batch path."""

    def __init__(self, n: int) -> None:
        self.n, self.last = n, math.nan
        self.returns: deque[float] = deque()
        self.mean = self.m2 = 0.0

    def update(self, time_ms: int, price: float, qty: float, side: int) -> float:
        if not math.isnan(self.last):
            x = math.log(price) - math.log(self.last)
            self.returns.append(x)
            k = len(self.returns)
            d = x - self.mean
            self.mean += d / k
            self.m2 += d * (x - self.mean)
            if k > self.n:
                y = self.returns.popleft()
                d = y - self.mean
                self.mean -= d / self.n
                self.m2 -= d * (y - self.mean)
        self.last = price
        if len(self.returns) < self.n:
            return math.nan
        return math.sqrt(max(self.m2, 0.0) / (self.n - 1))


def compute(features: list[Feature], t: Trades) -> pa.Table:
    """The batch path: one column per feature beside each trade's time (ms)."""
    cols = {"time_ms": pa.array(t.time, pa.int64())}
    for f in features:
        cols[f.name] = pa.array(f.batch(t), pa.float64())
    return pa.table(cols)


def replay(features: list[Feature], t: Trades) -> dict[str, np.ndarray]:
    """The live path over recorded trades: every feature's ``online`` state fed one trade at a
    time, exactly as the signal actor will."""
    states = [(f.name, f.online()) for f in features if not f.rowwise]
    out = {f.name: f.batch(t) for f in features if f.rowwise}
    out.update({name: np.empty(len(t.time)) for name, _ in states})
    for i in range(len(t.time)):
        ti, p, q, s = int(t.time[i]), float(t.price[i]), float(t.qty[i]), int(t.side[i])
        for name, st in states:
            out[name][i] = st.update(ti, p, q, s)
    return out
