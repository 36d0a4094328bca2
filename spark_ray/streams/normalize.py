"""The normalizer's decisions: frames -> canonical Arrow tables, dedup, gaps, repairs, books.

One :class:`NormalizerCore` serves one shard of symbols of one exchange. It is deterministic given
its inputs (frames, receive times, the clock passed in, REST answers handed back), so every
decision is testable without Ray or sockets. The actor shell moves batches and does the REST I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from spark_ray.adapters.events import (
    NO_UPDATE_ID,
    BookTicker,
    DeadLetter,
    DepthEvent,
    KlineEvent,
    ParsedBatch,
    TradeCols,
)
from spark_ray.adapters.registry import get_adapter
from spark_ray.schemas import BOOK_SCHEMA, CANDLE_SCHEMA, TIMESTAMP_MS_UTC, TRADE_SCHEMA
from spark_ray.streams.depth import DepthSync, StreamBookSync
from spark_ray.streams.ids import Gap, IdRanges, SeriesState
from spark_ray.streams.skew import clamp_lags


@dataclass(frozen=True)
class RepairRequest:
    """Fetch ids ``[lo, hi]`` of a series over REST (``hi=None``: everything from ``lo`` on)."""

    dataset: str
    symbol: str
    lo: int
    hi: int | None
    gap: Gap | None = None  # None: a tail check (after a reconnect, or when a series goes idle)
    # A poll of the venue's latest trades (one page, ids ignored): what a venue without
    # contiguous trade ids offers instead of ranges (see ``NormalizerConfig.latest_poll_ms``).
    latest: bool = False


@dataclass
class NormalizerConfig:
    exchange: str = "binance"
    symbols: tuple[str, ...] = ("BTCUSDT",)
    grace_ms: int = 250  # let late (out-of-order) frames fill a hole before asking REST
    order_wait_ms: int = 5_000  # a batch waits this long at most for an earlier one (ordering)
    max_attempts: int = 6  # REST repairs of one gap before it counts as unrepaired
    # An unrepaired gap is tried again (another max_attempts round) this often, so a REST outage
    # longer than the retries heals by itself once REST answers; until then it holds the
    # symbol's breaker scope tripped. 0: never (`spark-ray data repair` afterwards).
    unrepaired_retry_ms: int = 60_000
    retry_ms: int = 500
    idle_check_ms: int = 3_000  # a series quiet this long gets a tail check (0: never)
    start_ids: dict[str, int] = field(default_factory=dict)  # "dataset:SYMBOL" -> first id
    # A hole wider than this (e.g. restarting on a lake last written days ago) becomes a new
    # baseline instead of an unbounded REST backfill; its ids are counted as skipped.
    max_gap_ids: int = 500_000
    detect_gaps: bool = True  # the fabric sets both from the adapter's capabilities
    repair: bool = True
    symbol_map: dict[str, str] = field(default_factory=dict)
    # Poll each series' latest trades over REST this often (0: never). The hook for venues whose
    # trade ids are not contiguous (BTCTurk): a dropped frame leaves no detectable gap there,
    # so the latest page (BTCTurk: <= 50 trades), deduplicated against what is stored, is what
    # fills it. Needs ``repair`` and the adapter's ``market_rest``; the fabric sets it from
    # ``caps.latest_trades_poll_ms``.
    latest_poll_ms: int = 0


@dataclass
class Output:
    """What one step produced: tables for the sink and subscribers, and work for the shell."""

    trades: dict[str, pa.Table] = field(default_factory=dict)
    book: pa.Table | None = None
    klines: list[KlineEvent] = field(default_factory=list)
    # closed klines as CANDLE_SCHEMA rows (the lake's candles/ dataset, as the REST ETL writes)
    candles: pa.Table | None = None
    dead: list[DeadLetter] = field(default_factory=list)
    control: list[dict[str, Any]] = field(default_factory=list)
    # channels (adapter.channels names) whose book is out of sync: the connector leaves and
    # re-joins them, and the venue sends a fresh full book (``caps.book_from_stream``)
    resubscribe: list[str] = field(default_factory=list)

    def rows(self) -> int:
        n = sum(t.num_rows for t in self.trades.values())
        n += self.candles.num_rows if self.candles is not None else 0
        return n + (self.book.num_rows if self.book is not None else 0)


@dataclass
class Counters:
    """Monotonic counters, keyed (symbol, stream) where it matters; the shell exports them."""

    messages: dict[tuple[str, str], int] = field(default_factory=dict)
    dups: dict[tuple[str, str], int] = field(default_factory=dict)
    out_of_order: dict[tuple[str, str], int] = field(default_factory=dict)
    gaps_detected: dict[tuple[str, str], int] = field(default_factory=dict)
    gaps_repaired: dict[tuple[str, str], int] = field(default_factory=dict)
    gaps_unrepaired: dict[tuple[str, str], int] = field(default_factory=dict)
    repaired_rows: int = 0
    skipped_ids: int = 0
    dead_letters: dict[str, int] = field(default_factory=dict)
    depth_resyncs: int = 0
    book_resyncs: dict[tuple[str, str], int] = field(default_factory=dict)  # (symbol, "depth")
    frames: int = 0
    ignored: int = 0
    # events whose event time was ahead of our receive clock (see :mod:`.skew`)
    clock_skew: dict[tuple[str, str], int] = field(default_factory=dict)


def _bump(d: dict[Any, int], k: Any, n: int = 1) -> None:
    if n:
        d[k] = d.get(k, 0) + n


def _stream_of(dataset: str) -> str:
    return "trade" if dataset == "trades" else "aggTrade"


class NormalizerCore:
    def __init__(self, config: NormalizerConfig) -> None:
        self.cfg = config
        self.exchange = config.exchange
        self.adapter = get_adapter(config.exchange)
        self.parser = self.adapter.parser(set(config.symbols), config.symbol_map or None)
        self.series: dict[tuple[str, str], SeriesState] = {}
        self.depth: dict[str, DepthSync] = {}
        self.stream_books: dict[str, StreamBookSync] = {}
        # (symbol, source) -> last book row id, for rows whose venue gives none that grows
        self._row_ids: dict[tuple[str, str], int] = {}
        self.best: dict[str, dict[str, Any]] = {}
        # The last book row kept per (symbol, source), whole: what a subscriber joining now is
        # sent first, so its book is the one in force rather than empty until the next change.
        self._last_book: dict[tuple[str, str], tuple[Any, ...]] = {}
        self.counters = Counters()
        self.last_ids: dict[tuple[str, str], int] = {}
        self.last_lag_ms: dict[tuple[str, str], float] = {}  # clamped at 0 (see .skew)
        self.clock_ahead_ms: dict[tuple[str, str], float] = {}  # worst skew of the last batch
        self.lag_samples: list[np.ndarray] = []  # drained by the shell for SLO stats
        self._tail_due: set[tuple[str, str]] = set()

    # --- series state -----------------------------------------------------------------------
    def state(self, dataset: str, symbol: str) -> SeriesState:
        key = (dataset, symbol)
        st = self.series.get(key)
        if st is None:
            st = self.series[key] = SeriesState()
            start = self.cfg.start_ids.get(f"{dataset}:{symbol}")
            if start is not None:
                st.baseline = start
        return st

    def seed(self, dataset: str, symbol: str, pairs: list[tuple[int, int]], now_ms: int) -> None:
        """Start from what the sink already stores (after a restart): no re-dedup, and the holes
        in it are gaps to repair."""
        st = self.state(dataset, symbol)
        st.seen = IdRanges(pairs)
        lo = st.baseline if st.baseline is not None else st.seen.min
        if lo is not None and st.seen.max is not None and self.cfg.detect_gaps:
            for a, b in st.seen.holes(lo, st.seen.max):
                st.gaps.append(Gap(a, b, now_ms))
        if st.seen.max is not None:
            self._tail_due.add((dataset, symbol))

    # --- the hot path -------------------------------------------------------------------------
    def process(self, frames: list[bytes], recv_ms: list[int], now_ms: int) -> Output:
        parsed = self.parser.parse(frames, recv_ms)
        return self._emit(parsed, now_ms)

    def _emit(self, parsed: ParsedBatch, now_ms: int) -> Output:
        c = self.counters
        c.frames += parsed.frames
        c.ignored += parsed.ignored
        for k, n in parsed.counts.items():
            _bump(c.messages, k, n)
        for k, lags in parsed.lags.items():
            if lags:
                arr, ahead, worst = clamp_lags(np.asarray(lags, dtype=np.float64))
                if ahead:
                    _bump(c.clock_skew, k, ahead)
                    self.clock_ahead_ms[k] = worst
                self.last_lag_ms[k] = float(arr[-1])
                self.lag_samples.append(arr)
        for d in parsed.dead:
            _bump(c.dead_letters, d.reason.split(":")[0] if d.reason.startswith("invalid")
                  else d.reason)
        out = Output(dead=parsed.dead, control=parsed.control, klines=parsed.klines)
        for dataset, cols in parsed.trades.items():
            table = self._dedup_trades(dataset, cols, now_ms, live=True)
            if table is not None and table.num_rows:
                out.trades[dataset] = table
        if self.adapter.caps.book_from_stream:
            book_rows = self._stream_books(parsed.depth, out)
            book_rows += self._books([], parsed.tickers)
        else:
            book_rows = self._books(parsed.depth, parsed.tickers)
        if book_rows:
            self._remember(book_rows)
            out.book = _book_table(self.exchange, book_rows)
        closed = [k for k in parsed.klines if k.closed]
        if closed:  # an open kline is a candle still changing: never stored (as in the ETL)
            out.candles = candle_table(self.exchange, closed)
        return out

    def _dedup_trades(self, dataset: str, cols: TradeCols, now_ms: int, live: bool,
                      open_gaps: bool = True) -> pa.Table | None:
        if not len(cols):
            return None
        sym = np.asarray(cols.symbol, dtype=object)
        ids = np.asarray(cols.trade_id, dtype=np.int64)
        keep = np.zeros(len(ids), dtype=bool)
        stream = _stream_of(dataset)
        for s in np.unique(sym).tolist():
            idx = np.flatnonzero(sym == s)
            st = self.state(dataset, s)
            ngaps = len(st.gaps)
            k, dups, ooo = st.classify(ids[idx], now_ms)
            if not self.cfg.detect_gaps:
                st.gaps.clear()
            elif not open_gaps:
                # Repair rows never open gaps: they only fill them.
                del st.gaps[ngaps:]
            keep[idx[k]] = True
            key = (s, stream)
            if live:
                _bump(self.counters.dups, key, dups)
                _bump(self.counters.out_of_order, key, ooo)
                _bump(self.counters.gaps_detected, key, len(st.gaps) - ngaps)
            if st.seen.max is not None:
                self.last_ids[key] = st.seen.max
        if not keep.any():
            return None
        return _trade_table(self.exchange, cols, keep)

    def _books(self, depth: list[DepthEvent], tickers: list[BookTicker]) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        for ev in depth:
            ds = self.depth.get(ev.symbol)
            if ds is None:
                ds = self.depth[ev.symbol] = DepthSync(ev.symbol)
            before = ds.resyncs
            for applied in ds.on_event(ev):
                best = ds.book.best()
                if best is not None:
                    rows.append((ev.symbol, "depth", applied.last_id, *best, applied.event_time,
                                 applied.recv_time))
                    self._set_best(ev.symbol, "depth", applied.last_id, best)
            self._resynced(ev.symbol, ds.resyncs - before)
        for t in tickers:
            best = (t.bid_price, t.bid_qty, t.ask_price, t.ask_qty)
            uid = t.update_id
            if uid == NO_UPDATE_ID:
                uid = self._row_id(t.symbol, "bookTicker", t.recv_time)
            rows.append((t.symbol, "bookTicker", uid, *best, None, t.recv_time))
            self._set_best(t.symbol, "bookTicker", uid, best)
        return rows

    def _stream_books(self, depth: list[DepthEvent], out: Output) -> list[tuple[Any, ...]]:
        """Books kept from the stream alone (:class:`StreamBookSync`); out-of-sync books add
        their channel to ``out.resubscribe``."""
        rows: list[tuple[Any, ...]] = []
        for ev in depth:
            bs = self.stream_books.get(ev.symbol)
            if bs is None:
                bs = self.stream_books[ev.symbol] = StreamBookSync(ev.symbol)
            before = bs.resyncs
            for applied in bs.on_event(ev):
                best = bs.book.best()
                if best is not None:
                    uid = self._row_id(ev.symbol, "depth", applied.recv_time)
                    rows.append((ev.symbol, "depth", uid, *best, applied.event_time,
                                 applied.recv_time))
                    self._set_best(ev.symbol, "depth", uid, best)
            self._resynced(ev.symbol, bs.resyncs - before)
            if bs.want_rejoin:
                bs.rejoin_requested()
                channel = self.adapter.depth_channel(ev.symbol)
                if channel not in out.resubscribe:
                    out.resubscribe.append(channel)
        return rows

    def unsynced_book_channels(self) -> list[str]:
        """The depth channels of this normalizer's symbols whose stream-fed book is not in sync
        (``caps.book_from_stream``). A restarted normalizer has no books, and on a quiet market
        no diff may ever come to make it ask: the shell asks for these at once (the connector
        re-joins only the channels it carries)."""
        if not self.adapter.caps.book_from_stream:
            return []
        out = []
        for sym in self.cfg.symbols:
            bs = self.stream_books.get(sym)
            if bs is None or not bs.synced:
                out.append(self.adapter.depth_channel(sym))
        return out

    def _resynced(self, symbol: str, n: int) -> None:
        self.counters.depth_resyncs += n
        _bump(self.counters.book_resyncs, (symbol, "depth"), n)

    def _row_id(self, symbol: str, source: str, recv_ms: int) -> int:
        """A book row id that only grows: ``recv_ms * 1000``, or one more than the last.

        The sink keeps a book row only when its id is above the last one stored for (symbol,
        source) (:mod:`spark_ray.streams.store`). BTCTurk's change set restarts with every join
        and its ticker has no sequence at all, so the receive time (which a resent batch keeps)
        numbers the rows instead; a restarted normalizer continues above what was stored."""
        key = (symbol, source)
        uid = max(recv_ms * 1000, self._row_ids.get(key, -1) + 1)
        self._row_ids[key] = uid
        return uid

    def _remember(self, rows: list[tuple[Any, ...]]) -> None:
        """Keep each (symbol, source)'s row in force: the greatest (receive time, update id),
        the order the as-of join of the signals reads the book in."""
        for r in rows:
            last = self._last_book.get((r[0], r[1]))
            if last is None or (r[8] or 0, r[2]) > (last[8] or 0, last[2]):
                self._last_book[(r[0], r[1])] = r

    def last_book(self) -> pa.Table | None:
        """The book in force: each (symbol, source)'s last kept row (None before any)."""
        if not self._last_book:
            return None
        return _book_table(self.exchange, list(self._last_book.values()))

    def _set_best(self, symbol: str, source: str, uid: int,
                  best: tuple[float, float, float, float]) -> None:
        self.best[symbol] = {"source": source, "update_id": uid, "bid_price": best[0],
                             "bid_qty": best[1], "ask_price": best[2], "ask_qty": best[3]}

    # --- depth snapshots (the shell fetches them) ---------------------------------------------
    def snapshots_wanted(self) -> list[str]:
        out: list[str] = []
        for sym, ds in self.depth.items():
            if ds.want_snapshot:
                ds.snapshot_requested()
                out.append(sym)
        return out

    def on_snapshot(self, symbol: str, body: Any) -> pa.Table | None:
        """A REST book snapshot as the venue sent it (or None when the request failed)."""
        ds = self.depth[symbol]
        try:
            last, bids, asks = self.adapter.parse_depth_snapshot(body)
        except ValueError:
            ds.snapshot_failed()
            return None
        before = ds.resyncs
        rows = []
        for ev in ds.on_snapshot(last, bids, asks):
            best = ds.book.best()
            if best is not None:
                rows.append((symbol, "depth", ev.last_id, *best, ev.event_time, ev.recv_time))
                self._set_best(symbol, "depth", ev.last_id, best)
        self._resynced(symbol, ds.resyncs - before)
        self._remember(rows)
        return _book_table(self.exchange, rows) if rows else None

    # --- gap repair -----------------------------------------------------------------------------
    def on_reconnect(self, symbols: list[str] | None = None) -> None:
        """A connection was replaced: whatever it missed comes from a tail check over REST."""
        for (dataset, sym), st in self.series.items():
            if (symbols is None or sym in symbols) and st.seen.max is not None:
                self._tail_due.add((dataset, sym))

    def repairs_due(self, now_ms: int) -> list[RepairRequest]:
        """Gaps past their grace period (and tail checks) that the shell should fetch now."""
        if not self.cfg.repair:
            return []
        out: list[RepairRequest] = []
        backfill = self.adapter.caps.rest_backfill
        for (dataset, sym), st in self.series.items():
            if backfill and dataset not in backfill:
                continue  # a dataset this venue's REST cannot back-fill: never asked for
            if st.unrepaired and self.cfg.unrepaired_retry_ms > 0 \
                    and now_ms >= st.unrepaired_retry_at_ms:
                self._retry_unrepaired(st, now_ms)
            keep: list[Gap] = []
            for g in st.gaps:
                missing = st.missing(g)
                if not missing:
                    if g.attempts:
                        _bump(self.counters.gaps_repaired, (sym, _stream_of(dataset)))
                    continue  # filled (late frames or a repair)
                width = missing[-1][1] - missing[0][0] + 1
                if width > self.cfg.max_gap_ids and not g.in_flight:
                    self.counters.skipped_ids += width
                    st.seen.add_range(missing[0][0], missing[-1][1])  # accepted as not ours
                    continue
                keep.append(g)
                if g.in_flight or now_ms < g.detected_ms + self.cfg.grace_ms \
                        or now_ms < g.next_try_ms:
                    continue
                g.in_flight = True
                g.attempts += 1
                out.append(RepairRequest(dataset, sym, missing[0][0], missing[-1][1], g))
            st.gaps = keep
            idle = self.cfg.idle_check_ms
            due = (dataset, sym) in self._tail_due or (
                idle > 0 and st.seen.max is not None
                and now_ms - st.last_event_ms >= idle
                and now_ms - st.last_tail_check_ms >= idle)
            if due and st.seen.max is not None:
                self._tail_due.discard((dataset, sym))
                st.last_tail_check_ms = now_ms
                latest = self.cfg.latest_poll_ms > 0
                out.append(RepairRequest(dataset, sym, 0 if latest else st.seen.max + 1, None,
                                         None, latest=latest))
            elif self.cfg.latest_poll_ms > 0 and st.seen.max is not None \
                    and now_ms - st.last_tail_check_ms >= self.cfg.latest_poll_ms:
                st.last_tail_check_ms = now_ms
                # from id 0: the page's every row, so holes below the newest id are filled too
                out.append(RepairRequest(dataset, sym, 0, None, None, latest=True))
        return out

    def _retry_unrepaired(self, st: SeriesState, now_ms: int) -> None:
        """Give up-on holes another round of REST repairs (what arrived since is not asked)."""
        for lo, hi in st.unrepaired:
            if st.seen.holes(lo, hi):
                st.gaps.append(Gap(lo, hi, now_ms - self.cfg.grace_ms, retried=True))
        st.unrepaired = []
        st.unrepaired_retry_at_ms = now_ms + self.cfg.unrepaired_retry_ms

    def on_repair(self, req: RepairRequest, rows: list[dict[str, Any]] | None,
                  now_ms: int) -> pa.Table | None:
        """REST rows for a request (None: the request failed). Returns the new rows to store."""
        st = self.state(req.dataset, req.symbol)
        key = (req.symbol, _stream_of(req.dataset))
        table = None
        if rows is not None:
            cols = self._rest_rows(req.dataset, req.symbol, rows, now_ms)
            if req.hi is not None:
                lo, hi = req.lo, req.hi
                sel = [i for i, t in enumerate(cols.trade_id) if lo <= t <= hi]
                if len(sel) != len(cols):
                    cols = _take(cols, sel)
            table = self._dedup_trades(req.dataset, cols, now_ms, live=False,
                                       open_gaps=req.gap is None)
            if table is not None:
                self.counters.repaired_rows += table.num_rows
        g = req.gap
        if g is not None:
            g.in_flight = False
            if st.missing(g):
                if g.attempts >= self.cfg.max_attempts:
                    st.gaps.remove(g)
                    st.unrepaired.extend(st.missing(g))
                    if st.unrepaired_retry_at_ms <= now_ms:
                        st.unrepaired_retry_at_ms = now_ms + self.cfg.unrepaired_retry_ms
                    if not g.retried:  # counted once, however many rounds it takes
                        _bump(self.counters.gaps_unrepaired, key)
                else:
                    g.next_try_ms = now_ms + self.cfg.retry_ms * 2 ** (g.attempts - 1)
        return table

    def _rest_rows(self, dataset: str, symbol: str, rows: list[dict[str, Any]],
                   now_ms: int) -> TradeCols:
        """Back-fill rows -> trade columns (malformed rows are counted as dead letters)."""
        cols, bad = self.adapter.parse_trade_rows(dataset, symbol, rows, now_ms)
        _bump(self.counters.dead_letters, "bad_rest_row", bad)
        return cols

    # --- status -------------------------------------------------------------------------------
    def open_gaps(self) -> int:
        return sum(len(st.gaps) for st in self.series.values())

    def unrepaired(self) -> dict[str, list[tuple[int, int]]]:
        return {f"{d}:{s}": list(st.unrepaired) for (d, s), st in self.series.items()
                if st.unrepaired}

    def drain_lags(self) -> np.ndarray:
        if not self.lag_samples:
            return np.zeros(0)
        out = np.concatenate(self.lag_samples)
        self.lag_samples = []
        return out


WARMUP_FRAME = (b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1795000000000,'
                b'"s":"BTCUSDT","t":1,"p":"1.0","q":"1.0","T":1795000000000,"m":true,"M":true}}')


def warmup_trades(exchange: str = "binance") -> pa.Table:
    """A one-row trade table built the way the hot path builds them (first-use warm-up)."""
    core = NormalizerCore(NormalizerConfig(exchange="binance", symbols=("BTCUSDT",)))
    out = core.process([WARMUP_FRAME], [1795000000001], 1795000000001)
    t = out.trades["trades"]
    return t.set_column(0, "exchange", pa.array([exchange] * t.num_rows, pa.string()))


def _take(cols: TradeCols, idx: list[int]) -> TradeCols:
    out = TradeCols()
    for name in ("symbol", "trade_id", "price", "qty", "maker", "trade_time", "event_time",
                 "recv_time"):
        src = getattr(cols, name)
        setattr(out, name, [src[i] for i in idx])
    return out


def _trade_table(exchange: str, cols: TradeCols, keep: np.ndarray) -> pa.Table:
    n = len(cols)
    mask = pa.array(keep)
    ms = pa.int64()
    t = pa.table(
        {
            "exchange": pa.array([exchange] * n, pa.string()),
            "symbol": pa.array(cols.symbol, pa.string()),
            "trade_id": pa.array(cols.trade_id, pa.int64()),
            "price": pa.array(cols.price, pa.float64()),
            "qty": pa.array(cols.qty, pa.float64()),
            "is_buyer_maker": pa.array(cols.maker, pa.bool_()),
            "trade_time": pa.array(cols.trade_time, ms).cast(TIMESTAMP_MS_UTC),
            "event_time": pa.array(cols.event_time, ms).cast(TIMESTAMP_MS_UTC),
            "recv_time": pa.array(cols.recv_time, ms).cast(TIMESTAMP_MS_UTC),
            "stored_time": pa.nulls(n, TIMESTAMP_MS_UTC),
        },
        schema=TRADE_SCHEMA,
    )
    return t if bool(keep.all()) else t.filter(mask)


def candle_table(exchange: str, klines: list[KlineEvent]) -> pa.Table:
    """Closed klines as canonical candles (CANDLE_SCHEMA), in arrival order."""
    n = len(klines)

    def col(name: str, typ: pa.DataType) -> pa.Array:
        return pa.array([getattr(k, name) for k in klines], typ)

    return pa.table(
        {
            "exchange": pa.array([exchange] * n, pa.string()),
            "symbol": col("symbol", pa.string()),
            "interval": col("interval", pa.string()),
            "open_time": col("open_time", pa.int64()).cast(TIMESTAMP_MS_UTC),
            **{c: col(c, pa.float64()) for c in ("open", "high", "low", "close", "volume",
                                                 "quote_volume")},
            "trades": col("trades", pa.int64()),
            "taker_buy_base": col("taker_buy_base", pa.float64()),
            "taker_buy_quote": col("taker_buy_quote", pa.float64()),
        },
        schema=CANDLE_SCHEMA,
    )


def _book_table(exchange: str, rows: list[tuple[Any, ...]]) -> pa.Table:
    cols = list(zip(*rows, strict=True))
    n = len(rows)
    ms = pa.int64()
    return pa.table(
        {
            "exchange": pa.array([exchange] * n, pa.string()),
            "symbol": pa.array(cols[0], pa.string()),
            "source": pa.array(cols[1], pa.string()),
            "update_id": pa.array(cols[2], pa.int64()),
            "bid_price": pa.array(cols[3], pa.float64()),
            "bid_qty": pa.array(cols[4], pa.float64()),
            "ask_price": pa.array(cols[5], pa.float64()),
            "ask_qty": pa.array(cols[6], pa.float64()),
            "event_time": pa.array(cols[7], ms).cast(TIMESTAMP_MS_UTC),
            "recv_time": pa.array(cols[8], ms).cast(TIMESTAMP_MS_UTC),
        },
        schema=BOOK_SCHEMA,
    )
