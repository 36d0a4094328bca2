"""``NormalizerActor``: raw frame batches -> canonical Arrow batches for the sink and subscribers.

A thin asyncio shell over :class:`spark_ray.streams.normalize.NormalizerCore` (one per shard of
symbols). ``ingest`` parses, deduplicates and gap-checks a batch, writes the result to the sink
and only then returns: the connector's acknowledgement means "durable", so killing this actor at
any point loses nothing (the connector resends, the sink deduplicates). After a restart it seeds
its dedup/gap state from what the sink stores. A tick loop fetches REST backfills for gaps past
their grace period, tail checks after reconnects, and depth snapshots; and exports metrics.
Malformed frames go to the dead-letter store with their reason.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import ray
from ray.util.metrics import Counter, Gauge

from spark_ray.actors.naming import resolve_actor
from spark_ray.actors.priority import prefer_live_work
from spark_ray.http import HttpError, TransportError
from spark_ray.streams import metrics as m
from spark_ray.streams.deadletter import DeadLetterStore
from spark_ray.streams.fanout import Fanout
from spark_ray.streams.metrics import LatencyHist
from spark_ray.streams.normalize import (
    NormalizerConfig,
    NormalizerCore,
    Output,
    RepairRequest,
    warmup_trades,
)
from spark_ray.streams.ordering import BatchOrder, Turns

log = logging.getLogger(__name__)
MAX_TAIL_PAGES = 50
# Trade tables kept (by reference) between two feed polls for the last trade per symbol; older
# ones drop off (their symbols keep the last trade seen before).
RECENT_TABLES = 16


def _ms() -> int:
    return int(time.time() * 1000)


@ray.remote(num_cpus=0, max_restarts=-1)
class NormalizerActor:
    def __init__(self, config: NormalizerConfig, sink: Any, rest_url: str | None,
                 deadletter_dir: str, name: str = "normalizer", tick_ms: int = 100) -> None:
        prefer_live_work()
        self.cfg = config
        self.core = NormalizerCore(config)
        # A restarted incarnation lost its stream-fed books: its first acknowledgement asks the
        # connector to re-join their channels (see NormalizerCore.unsynced_book_channels).
        self._ask_books = ray.get_runtime_context().was_current_actor_reconstructed
        self.sink = resolve_actor(sink)  # a name (fabric) or a handle (tests)
        self.name = name
        adapter = self.core.adapter
        self.rest = adapter.market_rest(rest_url) if rest_url and (
            adapter.caps.rest_backfill or adapter.caps.depth_snapshots) else None
        self.dead = DeadLetterStore(Path(deadletter_dir) / config.exchange, name.replace(":", "-"))
        self.tick_ms = tick_ms
        self.lag = LatencyHist()
        self._ready: asyncio.Future[None] | None = None
        self.order = BatchOrder(config.order_wait_ms / 1000)
        self.turns = Turns()
        self._tasks: set[asyncio.Task[Any]] = set()  # repairs and snapshots in flight
        self._tick_task: asyncio.Task[None] | None = None
        self.fanout = Fanout(lambda sub, p: getattr(sub.handle, sub.method).remote(p), _done)
        self._inflight_writes = 0
        self._exported: dict[str, dict[Any, int]] = {}
        self._last_trade: dict[str, dict[str, Any]] = {}  # symbol -> price, id, when a poll saw it
        self._recent: deque[pa.Table] = deque(maxlen=RECENT_TABLES)
        self.stats: dict[str, Any] = {"batches": 0, "rows_out": 0, "sink_retries": 0,
                                      "rest_failures": 0, "subscriber_drops": 0,
                                      "started_ms": _ms(), "last_batch_ms": 0, "seeded": {}}
        tags = m.LABELS
        self._c_msgs = Counter(m.MESSAGES, "Frames accepted, by stream.", tag_keys=tags)
        self._c_gaps = Counter(m.SEQ_GAPS, "Sequence gaps that REST repair could not fill.",
                               tag_keys=tags)
        self._c_dups = Counter(m.DUPS, "Duplicate events dropped.", tag_keys=tags)
        self._c_ooo = Counter(m.OUT_OF_ORDER, "Events that arrived after a later id of their "
                                              "series (kept, in id order, in the lake).",
                              tag_keys=tags)
        self._c_dead = Counter(m.DEAD_LETTERS, "Frames sent to the dead-letter store.",
                               tag_keys=(*tags, "reason"))
        self._c_resync = Counter(m.BOOK_RESYNCS, "Local order books that fell out of sync and "
                                                 "started over.", tag_keys=tags)
        self._c_skew = Counter(m.CLOCK_SKEW, "Events whose event time was ahead of the receive "
                                             "clock (their lag counts as 0).", tag_keys=tags)
        self._g_lag = Gauge(m.INGEST_LAG, "Receive time minus exchange event time (s).",
                            tag_keys=tags)
        self._g_seq = Gauge(m.LAST_SEQ, "Last trade id seen.", tag_keys=tags)

    # --- start-up -----------------------------------------------------------------------------
    async def _ensure_ready(self) -> None:
        if self._ready is None:
            self._ready = asyncio.get_running_loop().create_future()
            try:
                await self._seed()
            finally:
                self._ready.set_result(None)
                self._tick_task = asyncio.get_running_loop().create_task(self._ticker())
        await self._ready

    async def _seed(self) -> None:
        """Dedup and gap state from what the sink stores (matters after a restart)."""
        now = _ms()
        for dataset in ("trades", "agg_trades"):
            try:
                cov = await self.sink.coverage.remote(dataset, list(self.cfg.symbols))
            except ray.exceptions.RayError:
                log.warning("%s: sink unreachable at start; starting without its coverage",
                            self.name)
                return
            for sym, pairs in cov.items():
                self.core.seed(dataset, sym, [tuple(p) for p in pairs], now)
                self.stats["seeded"][f"{dataset}:{sym}"] = len(pairs)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def warmup(self) -> bool:
        """Seed from the sink and start the ticker before the first frame arrives."""
        await self._ensure_ready()
        warmup_trades(self.cfg.exchange)  # first-use costs of parsing and Arrow, off the clock
        return True

    # --- the hot path -----------------------------------------------------------------------------
    async def ingest(self, seq: int, frames: list[bytes], recv_ms: list[int],
                     marks: list[str] | None = None, sender: str = "",
                     low: int = 0) -> dict[str, Any]:
        """Take one batch; returns once its rows are durable in the sink.

        The acknowledgement may carry ``resubscribe``: channels whose local book fell out of
        sync, for the connector to leave and re-join (a fresh full book; BTCTurk).

        ``sender`` and ``low`` (the sender's lowest unacknowledged batch) put one sender's
        batches back in order: Ray may start async calls out of order (see :mod:`.ordering`).
        """
        await self._ensure_ready()
        ordered = bool(sender) and seq > 0
        if ordered:
            await self.order.turn(sender, seq, low)
        try:
            out = self.core.process(frames, recv_ms, _ms())
            ticket = self.turns.ticket()  # no await since process: tickets in processing order
            if marks:
                self.core.on_reconnect()
        finally:
            if ordered:
                self.order.done(sender, seq)
        try:
            if out.dead:
                self.dead.append(out.dead)
            self.lag.add(self.core.drain_lags())
            self.stats["batches"] += 1
            self.stats["last_batch_ms"] = _ms()
            await self._deliver(out.trades, out.book, out.candles)
            t = out.trades.get("trades") or out.trades.get("agg_trades")
            if t is not None and t.num_rows:
                self._recent.append(t)  # a reference: the feed poll reads last trades from it
            await self.turns.wait(ticket)  # subscribers see batches in processing order
            self._publish(out)
        finally:
            self.turns.release(ticket)
        ack: dict[str, Any] = {"seq": seq, "rows": out.rows(), "dead": len(out.dead)}
        resubscribe = list(out.resubscribe)
        if self._ask_books:
            self._ask_books = False
            resubscribe += [c for c in self.core.unsynced_book_channels()
                            if c not in resubscribe]
        if resubscribe:  # books out of sync: the connector re-joins their channels
            ack["resubscribe"] = resubscribe
        return ack

    def _last_trades(self) -> dict[str, dict[str, Any]]:
        """Each symbol's last stored trade (the cross-venue view's quote for a symbol with no
        book), worked out when the supervisor polls (about once a second) from the trade
        tables the hot path kept by reference (:attr:`_recent`, bounded): no per-row or
        per-batch work on the hot path beyond keeping a reference."""
        recent, self._recent = list(self._recent), deque(maxlen=RECENT_TABLES)
        want = set(self.cfg.symbols) - {"*"}
        found: set[str] = set()
        now = _ms()
        for t in reversed(recent):
            syms = t["symbol"]
            for sym in pc.unique(syms).to_pylist():
                if sym in found:
                    continue
                found.add(sym)
                i = pc.indices_nonzero(pc.equal(syms, sym))[-1].as_py()  # its newest row
                self._last_trade[sym] = {"price": t["price"][i].as_py(),
                                         "trade_id": t["trade_id"][i].as_py(), "seen_ms": now}
            if want <= found:
                break
        return self._last_trade

    async def _deliver(self, trades: dict[str, pa.Table], book: pa.Table | None,
                       candles: pa.Table | None = None) -> None:
        tables = dict(trades)
        if book is not None and book.num_rows:
            tables["book"] = book
        if candles is not None and candles.num_rows:
            tables["candles"] = candles
        if not tables:
            return
        delay = 0.05
        self._inflight_writes += 1
        try:
            while True:
                try:
                    await self.sink.write.remote(tables)
                    break
                except ray.exceptions.RayError as e:
                    # The sink is restarting (it replays its WAL): keep the rows, try again.
                    self.stats["sink_retries"] += 1
                    self.stats["last_sink_error"] = str(e)[-600:]
                    log.info("%s: sink write failed (%s); retrying", self.name, type(e).__name__)
                    await asyncio.sleep(delay)
                    delay = min(2.0, delay * 2)
        finally:
            self._inflight_writes -= 1
        self.stats["rows_out"] += sum(t.num_rows for t in tables.values())

    def _publish(self, out: Output | None, repaired: dict[str, list[int]] | None = None
                 ) -> None:
        if out is None or not (out.trades or out.book is not None):
            self.fanout.publish(None)
        else:
            payload = {"trades": out.trades, "book": out.book}
            if repaired:
                payload["repaired"] = repaired
            self.fanout.publish(payload)
        self.stats["subscriber_drops"] = self.fanout.dropped_rows
        self.stats["subscriber_backlog_rows"] = self.fanout.backlog_rows

    # --- subscribers ------------------------------------------------------------------------------
    def subscribe(self, handle: Any, method: str = "on_market_data") -> int:
        """Every row this normalizer stores also goes to ``handle.<method>(payload)``, in order,
        merged into larger batches while the subscriber is busy (see :mod:`.fanout`). A new
        subscriber first gets the book in force (each symbol's and source's last row), so a
        consumer of the book (the signal actor's order-book features) starts from it rather
        than from nothing until the next change."""
        before = len(self.fanout.subs)
        n = self.fanout.add(handle, method)
        if n > before:
            snap = self.core.last_book()
            if snap is not None:
                self.fanout.prime(self.fanout.subs[-1], {"trades": {}, "book": snap})
        return n

    def unsubscribe(self, handle: Any) -> int:
        """Stop feeding ``handle`` (an executor leaving a shared, long-lived fabric)."""
        return self.fanout.remove(handle)

    def best(self, symbol: str) -> dict[str, Any] | None:
        """Best bid/ask of the local book (depth stream) or the last bookTicker."""
        return self.core.best.get(symbol)

    # --- background work --------------------------------------------------------------------------
    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.tick_ms / 1000)
            try:
                now = _ms()
                for req in self.core.repairs_due(now):
                    self._spawn(self._repair(req))
                for sym in self.core.snapshots_wanted():
                    self._spawn(self._snapshot(sym))
                self._export()
                if self.fanout.subs:
                    self._publish(None)  # drain subscriber backlogs when the stream is quiet
            except Exception:
                log.exception("%s: tick failed", self.name)

    async def _repair(self, req: RepairRequest) -> None:
        if self.rest is None:
            self.core.on_repair(req, None, _ms())
            return
        rows: list[dict[str, Any]] = []
        ok = True
        frm = req.lo
        pages = 0
        adapter = self.core.adapter
        page_size = adapter.rest_page
        try:
            while True:
                if req.latest:  # the venue's latest page, once: on_repair keeps what is new
                    rows = await self.rest.trades_page(req.dataset, req.symbol, frm, page_size)
                    break
                limit = page_size if req.hi is None else min(page_size, req.hi - frm + 1)
                page = await self.rest.trades_page(req.dataset, req.symbol, frm, limit)
                pages += 1
                rows.extend(page)
                ids = [i for r in page if (i := adapter.row_id(req.dataset, r)) is not None]
                if not ids:
                    break
                frm = max(ids) + 1
                if req.hi is not None and frm > req.hi:
                    break
                if req.hi is None and (len(page) < limit or pages >= MAX_TAIL_PAGES):
                    break
        except (HttpError, TransportError, ValueError) as e:
            ok = False
            self.stats["rest_failures"] += 1
            log.info("%s: backfill %s %s from %d failed: %s", self.name, req.dataset, req.symbol,
                     req.lo, e)
        table = self.core.on_repair(req, rows if (rows or ok) else None, _ms())
        if table is not None and table.num_rows:
            ticket = self.turns.ticket()
            try:
                await self._deliver({req.dataset: table}, None)
                await self.turns.wait(ticket)
                # Named as repaired: received out of band (its receive time is the fetch's),
                # so it says nothing about how far the stream itself has come.
                rep = ({req.symbol: table.column("trade_id").to_pylist()}
                       if req.dataset == "trades" else None)
                self._publish(Output(trades={req.dataset: table}), rep)
            finally:
                self.turns.release(ticket)

    async def _snapshot(self, symbol: str) -> None:
        body: Any = None
        if self.rest is not None:
            try:
                body = await self.rest.depth(symbol)
            except (HttpError, TransportError, ValueError):
                self.stats["rest_failures"] += 1
                await asyncio.sleep(0.5)
        book = self.core.on_snapshot(symbol, body)
        if book is not None:
            await self._deliver({}, book)

    def _export(self) -> None:
        """Counter deltas and gauges to Ray's metrics (a handful of calls per tick)."""
        ex = self.cfg.exchange
        c = self.core.counters
        for metric, name, values in ((self._c_msgs, "msgs", c.messages),
                                     (self._c_dups, "dups", c.dups),
                                     (self._c_ooo, "ooo", c.out_of_order),
                                     (self._c_gaps, "gaps", c.gaps_unrepaired),
                                     (self._c_skew, "skew", c.clock_skew),
                                     (self._c_resync, "resync", c.book_resyncs)):
            seen = self._exported.setdefault(name, {})
            for (sym, stream), n in values.items():
                d = n - seen.get((sym, stream), 0)
                if d > 0:
                    metric.inc(d, {"exchange": ex, "symbol": sym, "stream": stream})
                    seen[(sym, stream)] = n
        seen = self._exported.setdefault("dead", {})
        for reason, n in c.dead_letters.items():
            d = n - seen.get(reason, 0)
            if d > 0:
                self._c_dead.inc(d, {"exchange": ex, "symbol": "all", "stream": "all",
                                     "reason": reason})
                seen[reason] = n
        for (sym, stream), lag in self.core.last_lag_ms.items():
            self._g_lag.set(lag / 1000, {"exchange": ex, "symbol": sym, "stream": stream})
        for (sym, stream), last in self.core.last_ids.items():
            self._g_seq.set(last, {"exchange": ex, "symbol": sym, "stream": stream})

    # --- status -----------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        c = self.core.counters
        now = _ms()
        last = self.stats["last_batch_ms"]

        def flat(d: dict[tuple[str, str], int]) -> dict[str, int]:
            return {f"{s}:{k}": v for (s, k), v in d.items()}

        return {
            **self.stats, "name": self.name, "frames": c.frames, "messages": flat(c.messages),
            "dups": flat(c.dups), "out_of_order": flat(c.out_of_order),
            "gaps_detected": flat(c.gaps_detected), "gaps_repaired": flat(c.gaps_repaired),
            "gaps_unrepaired": flat(c.gaps_unrepaired), "repaired_rows": c.repaired_rows,
            "clock_skew": flat(c.clock_skew),
            "clock_ahead_ms": {f"{s}:{k}": v for (s, k), v in self.core.clock_ahead_ms.items()},
            "skipped_ids": c.skipped_ids,
            "dead_letters": dict(c.dead_letters), "ignored": c.ignored,
            "depth_resyncs": c.depth_resyncs, "open_gaps": self.core.open_gaps(),
            "unrepaired": self.core.unrepaired(), "inflight_writes": self._inflight_writes,
            "background_tasks": len(self._tasks), "last_ids": flat(self.core.last_ids),
            "batches_reordered": self.order.waited, "batch_order_timeouts": self.order.timeouts,
            "publishes_waited": self.turns.waited,
            "batches_waiting": self.order.pending(),
            "last_batch_age_s": (now - last) / 1000 if last else None,
            "lag": self.lag.summary(), "lag_hist": self.lag.to_sparse(),
            "books": {**{s: ds.synced for s, ds in self.core.depth.items()},
                      **{s: bs.synced for s, bs in self.core.stream_books.items()}},
            "dead_letter_file": str(self.dead.path), "subscribers": self.fanout.view(),
        }

    def feed(self) -> dict[str, Any]:
        """Per symbol, cumulative: live messages, last ingest lag, gaps open or unrepaired now;
        and the shard's venue errors so far (dead letters, failed REST calls). The fabric's
        supervisor polls this about once a second for the breaker and ``streams status``;
        it is small on purpose (``status`` carries histograms)."""
        c = self.core.counters
        out: dict[str, dict[str, Any]] = {
            s: {"messages": 0, "lag_ms": None, "gaps": 0, "unrepaired": 0}
            for s in self.cfg.symbols}
        for (sym, _), n in c.messages.items():
            out.setdefault(sym, {"messages": 0, "lag_ms": None, "gaps": 0, "unrepaired": 0})
            out[sym]["messages"] += n
        for (sym, _), lag in self.core.last_lag_ms.items():
            if sym in out:
                prev = out[sym]["lag_ms"]
                out[sym]["lag_ms"] = lag if prev is None else max(prev, lag)
        for (_, sym), st in self.core.series.items():
            if sym in out:
                out[sym]["gaps"] += len(st.gaps) + len(st.unrepaired)
                out[sym]["unrepaired"] += len(st.unrepaired)
        errors = sum(c.dead_letters.values()) + int(self.stats["rest_failures"])
        last = self._last_trades()
        quotes = {s: {"best": self.core.best.get(s), "last_trade": last.get(s)} for s in out}
        return {"symbols": out, "errors": errors, "name": self.name, "quotes": quotes}

    async def quiesce(self, timeout_s: float = 10.0) -> bool:
        """Wait until no repair, snapshot or sink write is in flight, no gap is open and every
        subscriber has been handed every stored row (the ticker sends the backlogs)."""
        await self._ensure_ready()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if (not self._tasks and not self._inflight_writes and not self.core.open_gaps()
                    and self.fanout.settled()):
                return True
            await asyncio.sleep(0.05)
        return False

    async def close(self) -> None:
        if self._tick_task is not None:
            self._tick_task.cancel()
        for t in list(self._tasks):
            t.cancel()
        if self.rest is not None:
            await self.rest.close()


def _done(ref: Any) -> bool:
    ready, _ = ray.wait([ref], timeout=0)
    return bool(ready)
