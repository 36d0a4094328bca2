"""Signals beside bars, the same in research and live.

Live, :class:`SignalEngine` keeps each symbol's features incrementally (their ``online`` runtime)
and scores the model once per batch of trades; the signal actor publishes what it returns. An
executor keeps those values in a :class:`SignalBook` and, when a bar closes, asks it for the
values at the bar's last trade (waiting briefly if they are still in flight). In a backtest,
:func:`score_trades` computes the same values with the features' batch runtime and
:func:`bar_values` picks the value at each bar's last trade. Either way a bar carries, in
``BarData.extra["signals"][symbol]``, the model's ``p_up`` and every feature the model reads, so a
strategy that trades on them (``signal_fusion``) runs unchanged in backtest, Tune and paper.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spark_ray.recent_ids import RecentIds
from spark_ray.signals.features import Online, Trades, own_book, reference
from spark_ray.signals.inventory import signal
from spark_ray.strategy.bars import SIGNALS, BarData

SCORE = "p_up"  # the model's probability that the price goes up over its horizon

Predict = Callable[[np.ndarray], np.ndarray]


def _scored(X: np.ndarray, predict: Predict | None) -> np.ndarray:
    """P(up) for every row whose features are all defined (NaN while any is still warming)."""
    out = np.full(len(X), np.nan)
    if predict is None or len(X) == 0:
        return out
    ok = np.isfinite(X).all(axis=1)
    if ok.any():
        out[ok] = predict(X[ok])
    return out


@dataclass
class Scored:
    """One symbol's signals for one batch of trades, one value per trade."""

    symbol: str
    trade_id: np.ndarray
    time: np.ndarray
    values: dict[str, np.ndarray]  # SCORE and every feature
    seq: int = 0  # the symbol's batch number: lets a receiver put batches back in order

    def to_message(self) -> dict[str, Any]:
        """Plain arrays: what travels from the signal actor to the executors."""
        return {"symbol": self.symbol, "seq": self.seq, "trade_id": self.trade_id,
                "time": self.time, "values": self.values}


class SignalEngine:
    """Every symbol's features, one trade at a time, and the model over each batch."""

    def __init__(self, features: Sequence[str], predict: Predict | None) -> None:
        self.features = list(features)
        self._defs = [signal(n).feature for n in self.features]
        self._stateful = [j for j, f in enumerate(self._defs) if not f.rowwise]
        self._rowwise = [j for j, f in enumerate(self._defs) if f.rowwise]
        self.needs_book = any(own_book(f) for f in self._defs)
        self.references = sorted({r for f in self._defs if (r := reference(f)) is not None})
        self.predict = predict
        self._state: dict[str, list[Online]] = {}
        self._seq: dict[str, int] = {}

    def update(self, symbol: str, trades: Trades, trade_id: np.ndarray) -> Scored:
        """Feed a symbol's new trades (in id order, with the book as of each when a feature
        reads it); their signals, one row per trade."""
        states = self._state.get(symbol)
        if states is None:
            states = self._state[symbol] = [self._defs[j].online() for j in self._stateful]
        n = len(trades.time)
        X = np.empty((n, len(self._defs)))
        Y = X if not self._rowwise else np.empty((n, len(states)))
        t, p, q, s = (trades.time.tolist(), trades.price.tolist(), trades.qty.tolist(),
                      trades.side.tolist())
        for i in range(n):
            ti, pi, qi, si = t[i], p[i], q[i], s[i]
            row = Y[i]
            for j, st in enumerate(states):
                row[j] = st.update(ti, pi, qi, si)
        if self._rowwise:
            X[:, self._stateful] = Y
            for j in self._rowwise:
                X[:, j] = self._defs[j].batch(trades)
        values = {name: X[:, j].copy() for j, name in enumerate(self.features)}
        values[SCORE] = _scored(X, self.predict)
        seq = self._seq.get(symbol, 0)
        self._seq[symbol] = seq + 1
        return Scored(symbol, np.asarray(trade_id, dtype=np.int64), trades.time, values, seq)


def score_trades(trades: Trades, features: Sequence[str], predict: Predict | None
                 ) -> dict[str, np.ndarray]:
    """The batch runtime of :meth:`SignalEngine.update` over a whole series of trades."""
    cols = [signal(n).feature.batch(trades) for n in features]
    X = np.column_stack(cols) if cols else np.empty((len(trades.time), 0))
    values = {name: X[:, j] for j, name in enumerate(features)}
    values[SCORE] = _scored(X, predict)
    return values


def bar_values(trade_time: np.ndarray, values: dict[str, np.ndarray], bar_time: np.ndarray,
               step_ms: int) -> dict[str, np.ndarray]:
    """Each bar's value at its last trade: the last trade with time < the bar's end. Trades
    are in id order, which is time order on one venue, so that trade is the bar's last one."""
    end = np.searchsorted(trade_time, bar_time + step_ms, side="left") - 1
    ok = end >= 0
    out = {}
    for name, v in values.items():
        a = np.full(len(bar_time), np.nan)
        a[ok] = v[end[ok]]
        out[name] = a
    return out


def attach(data: BarData, symbol: str, trades: Trades, features: Sequence[str],
           predict: Predict | None) -> dict[str, np.ndarray]:
    """Score ``trades`` in batch and put each bar's values into ``data.extra`` (a backtest's or
    a Tune trial's bars), exactly where the executor's bar history puts the live ones."""
    from spark_ray.schemas import INTERVAL_MS

    step = INTERVAL_MS.get(data.interval)
    if not step:
        raise ValueError(f"interval: {data.interval!r} is not a fixed bar interval")
    values = bar_values(trades.time, score_trades(trades, features, predict), data.time, step)
    data.extra.setdefault(SIGNALS, {})[symbol] = values
    return values


@dataclass
class _Series:
    ids: list[np.ndarray] = field(default_factory=list)
    values: list[dict[str, np.ndarray]] = field(default_factory=list)
    last_id: int = -1
    rows: int = 0
    next_seq: int = 0
    early: dict[int, tuple[np.ndarray, dict[str, np.ndarray]]] = field(default_factory=dict)


class SignalBook:
    """An executor's received signals per symbol, looked up by trade id.

    ``asof`` answers with the values at the greatest trade id at or before the one asked for;
    ``wait`` lets a bar's decision wait (bounded) for the signal of its last trade, which the
    signal actor computes from the same feed a moment after the executor saw it. Messages are
    taken in their ``seq`` order: Ray does not promise an async actor runs calls in the order
    they were sent, and a batch that overtook an earlier one must not answer for trades the
    earlier one holds (it waits in ``early`` until the gap fills). About the last ``keep_rows``
    signals are kept: a bar only asks about its last trade, and an executor lagging by more
    than that gets a stale answer, counted by its caller, rather than unbounded memory.
    """

    def __init__(self, keep_rows: int = 500_000) -> None:
        self.keep_rows = keep_rows
        self._series: dict[str, _Series] = {}
        self._arrived = asyncio.Event()
        self.received = 0
        self.reordered = 0  # messages that arrived ahead of an earlier one

    def add(self, message: dict[str, Any]) -> None:
        s = self._series.setdefault(message["symbol"], _Series())
        ids = np.asarray(message["trade_id"], dtype=np.int64)
        vals = {k: np.asarray(v, dtype=np.float64) for k, v in message["values"].items()}
        seq = int(message.get("seq", s.next_seq))
        if seq < s.next_seq:
            return  # already taken (a redelivery)
        if seq > s.next_seq:
            self.reordered += 1
            s.early[seq] = (ids, vals)
            return
        self._take(s, ids, vals)
        while s.next_seq in s.early:
            self._take(s, *s.early.pop(s.next_seq))
        self._arrived.set()

    def _take(self, s: _Series, ids: np.ndarray, vals: dict[str, np.ndarray]) -> None:
        s.next_seq += 1
        if len(ids) == 0:
            return
        s.ids.append(ids)
        s.values.append(vals)
        s.last_id = max(s.last_id, int(ids[-1]))
        s.rows += len(ids)
        self.received += len(ids)
        while s.rows - len(s.ids[0]) >= self.keep_rows:
            s.rows -= len(s.ids[0])
            del s.ids[0], s.values[0]

    def last_id(self, symbol: str) -> int:
        s = self._series.get(symbol)
        return s.last_id if s is not None else -1

    def asof(self, symbol: str, trade_id: int) -> dict[str, float]:
        """Values at the latest signal whose trade id is <= ``trade_id`` ({} when none)."""
        s = self._series.get(symbol)
        if s is None:
            return {}
        for ids, vals in zip(reversed(s.ids), reversed(s.values), strict=True):
            if ids[0] > trade_id:
                continue
            j = int(np.searchsorted(ids, trade_id, side="right")) - 1
            return {k: float(v[j]) for k, v in vals.items()}
        return {}

    async def wait(self, symbol: str, trade_id: int, timeout_s: float) -> bool:
        """True once the signal of ``trade_id`` (or a later trade) is here; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.last_id(symbol) < trade_id:
            left = deadline - loop.time()
            if left <= 0:
                return False
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                return self.last_id(symbol) >= trade_id
        return True


class Latencies:
    """Every latency (ms) of the last ``keep`` values and the count of all: exact percentiles
    for the status page and the benchmark (Ray's histogram buckets are for dashboards)."""

    def __init__(self, keep: int = 1_000_000) -> None:
        self.keep = keep
        self.n = 0
        self._parts: list[np.ndarray] = []
        self._held = 0

    def add(self, values_ms: np.ndarray) -> None:
        v = np.asarray(values_ms, dtype=np.float64)
        if len(v) == 0:
            return
        self.n += len(v)
        self._parts.append(v)
        self._held += len(v)
        while self._held - len(self._parts[0]) >= self.keep:
            self._held -= len(self._parts.pop(0))

    def summary(self) -> dict[str, Any]:
        if not self._parts:
            return {"n": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
        v = np.concatenate(self._parts)
        p50, p95, p99 = np.percentile(v, [50, 95, 99])
        return {"n": self.n, "p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99),
                "max_ms": float(v.max())}


class BookHistory:
    """One symbol's recent top-of-book rows as they stream in, for the book as of each trade.

    The live twin of :func:`spark_ray.signals.features.asof_book`: the same rule (the greatest
    (receive time, update id) received strictly before the trade) over the rows kept here. A
    row whose update id its source has already taken is dropped by the lake's sink's own rule
    (:class:`spark_ray.recent_ids.RecentIds`), so both runtimes keep the same rows. About
    ``keep_ms`` of history is kept (and
    always the row in force before it): a trade that arrives later than that behind the book,
    e.g. one repaired from REST long after, gets the oldest book kept rather than unbounded
    memory; the lake's answer is then the one to trust.
    """

    def __init__(self, keep_ms: int = 120_000) -> None:
        self.keep_ms = keep_ms
        self._recv = np.empty(0, np.int64)
        self._ids = np.empty(0, np.int64)
        self._rows = np.empty((0, 4))
        self._seen: dict[str, RecentIds] = {}  # source -> update ids taken

    def add(self, source: np.ndarray, recv: np.ndarray, ids: np.ndarray,
            rows: np.ndarray) -> None:
        keep = np.ones(len(ids), bool)
        for i in range(len(ids)):  # the sink's rule (spark_ray.recent_ids)
            src = str(source[i])
            seen = self._seen.get(src)
            if seen is None:
                seen = self._seen[src] = RecentIds()
            keep[i] = seen.take(int(ids[i]))
        if not keep.any():
            return
        recv, ids, rows = (np.concatenate((self._recv, recv[keep])),
                           np.concatenate((self._ids, ids[keep])),
                           np.concatenate((self._rows, rows[keep])))
        order = np.lexsort((ids, recv))
        self._recv, self._ids, self._rows = recv[order], ids[order], rows[order]
        cut = int(np.searchsorted(self._recv, self._recv[-1] - self.keep_ms)) - 1
        if cut > 0:
            self._recv, self._ids, self._rows = (self._recv[cut:], self._ids[cut:],
                                                 self._rows[cut:])

    def asof(self, trade_recv: np.ndarray) -> np.ndarray:
        from spark_ray.signals.features import asof_book

        return asof_book(trade_recv, self._recv, self._ids, self._rows)

    def __len__(self) -> int:
        return len(self._recv)


class SignalCore:
    """What the signal actor does with the fabric's trades, without Ray: split by symbol,
    update and score, and account for latency (trade received -> signal published), counts and
    staleness (how long since a symbol's features last saw a trade)."""

    def __init__(self, features: Sequence[str], predict: Predict | None,
                 symbols: Sequence[str] | None = None, hole_wait_ms: float = 1_000.0,
                 ref_wait_ms: float = 250.0) -> None:
        self.engine = SignalEngine(features, predict)
        self.ref_wait_ms = ref_wait_ms
        self.symbols = set(symbols) if symbols else None
        self.hole_wait_ms = hole_wait_ms
        self.latency = Latencies()  # a trade received by the connector -> published
        self.compute = Latencies()  # its batch reaching the signal actor -> published
        self.pending_ms: list[np.ndarray] = []  # latencies not yet exported as metrics
        self.published: dict[str, int] = {}
        self.last_trade_ms: dict[str, int] = {}  # receive time of each symbol's last trade
        self.batches = 0
        # Trade-id order, as the executor's bar builder keeps it: Ray may run an async actor's
        # calls out of order, and features depend on the order of trades.
        self._next: dict[str, int] = {}  # the next trade id each symbol's features expect
        self._held: dict[str, Any] = {}  # trades ahead of a hole, by symbol (a table)
        self._held_since: dict[str, float] = {}
        self.duplicates = 0  # trades at or below an id already taken
        self.reordered = 0  # trades that waited for an earlier one
        self.skipped_ids = 0  # ids of holes that never filled within hole_wait_ms
        # With order-book features, trades are joined to the book as of their receive time, so
        # whole payloads are taken in the order the normalizer sent them.
        from spark_ray.inorder import InOrder

        self.payloads = InOrder(hole_wait_ms)
        self.books: dict[tuple[str, str], BookHistory] = {}  # (exchange, symbol)
        # Cross-exchange features join another exchange's book by receive time: a trade waits
        # until every reference stream has been taken up to its receive time (its watermark),
        # so no reference row received before the trade can still be on its way; at most
        # ref_wait_ms, then it is scored with what is known and counted in ref_late.
        #
        # The own book has the same hazard for a trade repaired over REST: its receive time is
        # when it was fetched, and stream frames received before that may still be on their
        # way from the connector. Such a trade (the normalizer names it in ``repaired``) waits
        # the same way for its own exchange's stream to reach its receive time.
        self.refs = set(self.engine.references)
        self._gate = bool(self.refs) or self.engine.needs_book
        self._marks: dict[str, dict[str, tuple[int, float]]] = {}  # ex -> epoch -> (recv, at)
        self._waiting: dict[str, list[tuple[Any, float]]] = {}  # in-order trades per symbol
        self._repaired: dict[str, set[int]] = {}  # symbol -> ids of trades repaired over REST
        self.ref_late = 0

    def on_payload(self, payload: dict[str, Any], now_ms: float = 0.0
                   ) -> list[tuple[Scored, np.ndarray]]:
        """A fabric payload (``trades`` by dataset, ``book``): taken in the sender's order,
        the book rows first (only rows received before a trade can be in force at it), then
        the raw trades."""
        out: list[tuple[Scored, np.ndarray]] = []
        for p in self.payloads.push(payload, now_ms):
            out += self._take_payload(p, now_ms)
        return out

    def _take_payload(self, p: dict[str, Any], now_ms: float) -> list[tuple[Scored, np.ndarray]]:
        book = p.get("book")
        tables = [t for t in (p.get("trades") or {}).values() if t is not None and t.num_rows]
        if book is not None and book.num_rows:
            tables.append(book)
        exchange = str(tables[0].column("exchange")[0]) if tables else None
        if exchange is not None and self._gate:
            for sym, ids in (p.get("repaired") or {}).items():
                self._repaired.setdefault(str(sym), set()).update(int(i) for i in ids)
            self._mark(exchange, p, tables, now_ms)
        if exchange in self.refs:  # a reference stream: its book and how far it has come
            if book is not None and book.num_rows:
                self._add_book(book)
            return self._release(now_ms)
        if book is not None and book.num_rows and self.engine.needs_book:
            self._add_book(book)
        table = (p.get("trades") or {}).get("trades")
        out = self.on_trades(table, now_ms) if table is not None else []
        return out + self._release(now_ms) if self._gate else out

    def _mark(self, exchange: str, p: dict[str, Any], tables: list[Any], now_ms: float) -> None:
        """Advance the exchange's stream mark: the latest receive time among rows that came
        over the stream (a trade repaired over REST, named in ``repaired``, was received out of
        band and says nothing about what the stream has delivered)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        rep = p.get("repaired") or {}
        recv = []
        for t in tables:
            if rep and "trade_id" in t.column_names:
                ids = {int(i) for v in rep.values() for i in v}
                t = t.filter(pc.invert(pc.is_in(t.column("trade_id"),
                                                pa.array(sorted(ids), pa.int64()))))
            if t.num_rows:
                recv.append(int(pc.max(t.column("recv_time").cast(pa.int64())).as_py() or 0))
        epoch = str((p.get("order") or ["-"])[0])
        marks = self._marks.setdefault(exchange, {})
        marks[epoch] = (max([marks.get(epoch, (0, 0.0))[0], *recv]), now_ms)

    def _watermark(self, exchanges: Any, now_ms: float) -> int:
        """How far (receive ms) the streams of ``exchanges`` have been taken: the least over
        them of the least over their live senders (one silent for 10 s, e.g. a restarted
        normalizer's old self, no longer holds it back)."""
        wm = None
        for ex in exchanges:
            live = [r for r, at in self._marks.get(ex, {}).values() if now_ms - at < 10_000]
            w = min(live) if live else 0
            wm = w if wm is None else min(wm, w)
        return 2 ** 62 if wm is None else wm

    def _add_book(self, book: Any) -> None:
        import pyarrow.compute as pc

        from spark_ray.signals.features import book_arrays

        for (ex, sym) in {(str(e), str(s)) for e, s in zip(
                book.column("exchange").to_pylist(), book.column("symbol").to_pylist(),
                strict=True)}:
            if self.symbols is not None and sym not in self.symbols:
                continue
            b = book.filter(pc.and_(pc.equal(book.column("symbol"), sym),
                                    pc.equal(book.column("exchange"), ex)))
            recv, ids, rows = book_arrays(b)
            self.books.setdefault((ex, sym), BookHistory()).add(
                b.column("source").to_numpy(zero_copy_only=False), recv, ids, rows)

    def on_trades(self, table: Any, now_ms: float = 0.0) -> list[tuple[Scored, np.ndarray]]:
        """Signals of a canonical trade table (TRADE_SCHEMA), one Scored per symbol, each with
        its trades' receive times (ms, 0 when unknown). Trades are taken in id order: ones
        ahead of a missing id wait for it (up to ``hole_wait_ms``, see :meth:`due`)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        out: list[tuple[Scored, np.ndarray]] = []
        if table.num_rows == 0:
            return out
        self.batches += 1
        for sym in pc.unique(table.column("symbol")).to_pylist():
            if self.symbols is not None and sym not in self.symbols:
                continue
            t = table.filter(pc.equal(table.column("symbol"), sym))
            ids = t.column("trade_id").to_numpy()
            nxt = self._next.get(sym, int(ids.min()))
            if sym not in self._held and int(ids[0]) == nxt and \
                    (len(ids) == 1 or bool(np.all(np.diff(ids) == 1))):
                out += self._score(sym, t, now_ms)  # the common case: in order, no hole
                continue
            held = self._held.pop(sym, None)
            if held is not None:
                t = pa.concat_tables([held, t.select(held.column_names)])
            t = t.sort_by("trade_id")
            ids = t.column("trade_id").to_numpy()
            first = np.concatenate(([True], ids[1:] != ids[:-1]))  # one row per id
            nxt = self._next.get(sym, int(ids[0]))
            keep = first & (ids >= nxt)
            self.duplicates += int((~keep).sum())
            t, ids = t.filter(pa.array(keep)), ids[keep]
            if len(ids) == 0:
                continue
            off = ids != nxt + np.arange(len(ids))  # past the first hole
            run = int(np.argmax(off)) if off.any() else len(ids)
            if run < len(ids):  # a hole before the rest: they wait
                self._held[sym] = t.slice(run)
                self._held_since.setdefault(sym, now_ms)
                self.reordered += len(ids) - run
            else:
                self._held_since.pop(sym, None)
            if run:
                out += self._score(sym, t.slice(0, run), now_ms)
        return out

    def due(self, now_ms: float) -> list[tuple[Scored, np.ndarray]]:
        """Trades held behind a hole that did not fill within ``hole_wait_ms``: the hole is
        skipped (counted), they are taken."""
        out = []
        for p in self.payloads.due(now_ms):
            out += self._take_payload(p, now_ms)
        for sym in [k for k, since in self._held_since.items()
                    if now_ms - since >= self.hole_wait_ms]:
            t = self._held.pop(sym)
            del self._held_since[sym]
            ids = t.column("trade_id").to_numpy()
            self.skipped_ids += int(ids[0]) - self._next.get(sym, int(ids[0]))
            gaps = np.diff(ids) - 1
            self.skipped_ids += int(gaps[gaps > 0].sum())
            out += self._score(sym, t, now_ms)
        return out + self._release(now_ms) if self._gate else out

    def _score(self, sym: str, t: Any, now_ms: float) -> list[tuple[Scored, np.ndarray]]:
        """Trades next in id order: scored now, or queued behind the reference streams."""
        self._next[sym] = int(t.column("trade_id").to_numpy()[-1]) + 1
        if not self._gate:
            return [self._compute(sym, t)]
        self._waiting.setdefault(sym, []).append((t, now_ms))
        return []

    def _release(self, now_ms: float) -> list[tuple[Scored, np.ndarray]]:
        """Queued trades the streams they join have caught up with (receive time <= the
        references' watermark, and for a trade repaired over REST also its own stream's; or
        unknown), in order; all of a queue whose oldest waited ref_wait_ms."""
        import pyarrow as pa

        out = []
        wm = self._watermark(self.refs, now_ms)
        for sym, queue in list(self._waiting.items()):
            if not queue:
                continue
            t = pa.concat_tables([q[0] for q in queue]) if len(queue) > 1 else queue[0][0]
            recv = t.column("recv_time").cast(pa.int64()).fill_null(0).to_numpy()
            ok = recv <= wm
            rep = self._repaired.get(sym)
            if self.engine.needs_book and rep:
                own = self._watermark([str(t.column("exchange")[0])], now_ms)
                ids = t.column("trade_id").to_numpy()
                rest = np.isin(ids, np.fromiter(rep, np.int64, len(rep)))
                ok &= ~rest | (recv <= own)
            ok |= recv == 0
            n = len(recv) if ok.all() else int(np.argmin(ok))
            if n < len(recv) and now_ms - queue[0][1] >= self.ref_wait_ms:
                self.ref_late += len(recv) - n
                n = len(recv)
            if n == 0:
                continue
            done = t.slice(0, n)
            out.append(self._compute(sym, done))
            self._waiting[sym] = [] if n == len(recv) else [(t.slice(n), queue[0][1])]
            if rep:
                last = int(done.column("trade_id").to_numpy()[-1])
                self._repaired[sym] = {i for i in rep if i > last}
        return out

    def _compute(self, sym: str, t: Any) -> tuple[Scored, np.ndarray]:
        import pyarrow as pa

        ids = t.column("trade_id").to_numpy()
        recv = t.column("recv_time").cast(pa.int64()).fill_null(0).to_numpy()
        trades = Trades.from_table(t)
        own = str(t.column("exchange")[0]) if "exchange" in t.column_names else ""
        none = np.full((len(recv), 4), np.nan)
        if self.engine.needs_book:
            hist = self.books.get((own, sym))
            trades = trades.with_book(hist.asof(recv) if hist is not None else none)
        for ex in self.engine.references:
            hist = self.books.get((ex, sym))
            trades = trades.with_ref(ex, hist.asof(recv) if hist is not None else none)
        return self.engine.update(sym, trades, ids), recv

    def published_now(self, scored: Scored, recv_ms: np.ndarray, now_ms: float,
                      arrived_ms: float | None = None) -> None:
        """Account for a batch handed to the executors at ``now_ms`` (that reached the actor
        at ``arrived_ms``)."""
        if arrived_ms is not None:
            self.compute.add(np.full(len(scored.time), now_ms - arrived_ms))
        known = recv_ms[recv_ms > 0]
        if len(known):
            lat = now_ms - known.astype(np.float64)
            self.latency.add(lat)
            self.pending_ms.append(lat)
            self.last_trade_ms[scored.symbol] = int(known.max())
        self.published[scored.symbol] = self.published.get(scored.symbol, 0) + len(scored.time)

    def drain_latencies(self) -> np.ndarray:
        out = np.concatenate(self.pending_ms) if self.pending_ms else np.empty(0)
        self.pending_ms = []
        return out

    def staleness_s(self, now_ms: float) -> dict[str, float]:
        return {s: max(0.0, (now_ms - t) / 1000) for s, t in self.last_trade_ms.items()}

    def status(self, now_ms: float) -> dict[str, Any]:
        return {"features": self.engine.features, "batches": self.batches,
                "duplicates": self.duplicates, "reordered": self.reordered,
                "skipped_ids": self.skipped_ids,
                "held": sum(t.num_rows for t in self._held.values()),
                "payloads": {"reordered": self.payloads.reordered,
                             "skipped": self.payloads.skipped, "held": self.payloads.held},
                "book_rows": {f"{e}:{s}": len(b) for (e, s), b in self.books.items()},
                "ref_late": self.ref_late,
                "ref_waiting": sum(t.num_rows for q in self._waiting.values() for t, _ in q),
                "published": dict(self.published), "latency_ms": self.latency.summary(),
                "compute_ms": self.compute.summary(),
                "staleness_s": self.staleness_s(now_ms)}
