"""The executor's core: trades in, bars, the strategy's decisions, the breaker, the broker.

Per closed bar of a symbol, in this order (the backtest engine's, so paper trading equals a
backtest over the same bars):

1. the broker sees the bar (the paper broker fills resting orders decided on earlier bars);
2. the strategy decides on the bar's close (``on_bar`` through :class:`ExecContext`);
3. its cancels go out; each new intent gets its deterministic client order id, is sized and
   rounded to the exchange filters (a filter failure is a local REJECTED), asked of the circuit
   breaker (blocked: REJECTED with the breaker's reasons; no answer: blocked, fail closed),
   journaled with fsync, and only then submitted;
4. prices, positions, equity and closed trades are reported to the breaker.

Every update from the broker (answers, the user data stream, queries) goes through
:meth:`ExecutorCore.apply`: the order manager, the positions, the journal. On start the journal
is replayed and :func:`~spark_ray.execution.reconcile.reconcile` settles every order the venue
may hold before the first bar is traded. A breaker trip cancels open orders (and flattens when
configured); :meth:`kill` halts the executor for good (journaled), cancels and may flatten.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from spark_ray.breaker.models import Decision, Signal
from spark_ray.breaker.models import Order as BreakerOrder
from spark_ray.config import StrictModel
from spark_ray.errors import UserError
from spark_ray.execution.bars import FIXED_INTERVALS, ClosedBar
from spark_ray.execution.broker import Broker, OutcomeUnknown
from spark_ray.execution.filters import FilterReject, SymbolFilters, text
from spark_ray.execution.gate import Gate
from spark_ray.execution.ids import client_order_id, strategy_key
from spark_ray.execution.journal import ExecJournal, MemoryJournal
from spark_ray.execution.orders import (
    EXPIRED,
    FILLED,
    NEW,
    OPEN,
    PENDING_NEW,
    REJECTED,
    UNKNOWN,
    ManagedOrder,
    OrderManager,
    OrderUpdate,
)
from spark_ray.execution.positions import Positions
from spark_ray.execution.runner import SymbolRunner
from spark_ray.fills.costs import CostModel
from spark_ray.fills.orders import BUY, LIMIT, MARKET, SELL
from spark_ray.fills.trades import ClosedTrade
from spark_ray.schemas import INTERVAL_MS
from spark_ray.signals.live import SCORE, SignalBook
from spark_ray.strategy.base import Strategy

log = logging.getLogger(__name__)
EQUITY_POINTS = 2000  # equity samples kept per executor for the console (one per bar)

Klines = Callable[[str, str, int, int], Awaitable[list[ClosedBar]]]
TradeCols = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class ExecutorConfig(StrictModel):
    """How one executor trades. Validated when built: a bad value raises a ValidationError
    naming the field (``spark-ray trade`` reports it as its flag and exits 2), so a core is
    never built from a config that was not checked."""

    name: str = "executor"
    account: str = Field("default", pattern=r"^[A-Za-z0-9_.\-/@:]{1,64}$",
                         description="Breaker account scope: executors on one account add up.")
    strategy: str = Field("", pattern=r"^[A-Za-z0-9_.\-/@:]{0,64}$",
                          description="Breaker strategy scope (default: the executor's name).")
    symbols: tuple[str, ...] = Field(("BTCUSDT",), min_length=1)
    interval: str = "1m"
    mode: Literal["paper", "live"] = "paper"
    cash: float = Field(10_000.0, gt=0)  # quote currency, split evenly into one sleeve a symbol
    fee_bps: float = Field(10.0, ge=0)
    maker_fee_bps: float | None = Field(None, ge=0)
    slippage_bps: float = Field(0.0, ge=0)
    slippage_range_frac: float = Field(0.0, ge=0)
    close_grace_ms: int | None = 250  # close a quiet bar this long after its end (None: never)
    hole_wait_ms: int | None = 1_000  # wait this long for a missing trade id (None: no reorder)
    skip_first_bar: bool = True  # the first bar may be partial (we joined mid-bar)
    warmup_bars: int = Field(500, ge=0)  # REST klines before the first live bar (0: none)
    max_history: int | None = Field(10_000, ge=10)
    flatten_on_trip: bool = False
    resolve_interval_s: float = 2.0  # live: ask the venue about open and unknown orders
    unknown_grace_s: float = 30.0  # an order the venue never heard of after this is EXPIRED
    # With a signal model (``--signals-model``): how long a closed bar waits for the signal of
    # its last trade, which the signal actor computes from the same feed a moment later. Past
    # it, the bar decides on the latest signal at hand and ``stale_signal_bars`` counts it.
    signal_wait_ms: int = Field(500, ge=0, le=60_000)

    @field_validator("symbols")
    @classmethod
    def _distinct(cls, symbols: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(symbols)) != len(symbols):
            raise PydanticCustomError("duplicates", "duplicate symbols")
        return symbols

    @field_validator("interval")
    @classmethod
    def _fixed_interval(cls, interval: str) -> str:
        if not INTERVAL_MS.get(interval):
            raise PydanticCustomError("interval", "{interval} is not a fixed bar interval; "
                                      "use one of {known}", {"interval": repr(interval),
                                                            "known": FIXED_INTERVALS})
        return interval

    @property
    def strategy_id(self) -> str:
        """The strategy scope this executor's orders and equity belong to."""
        return self.strategy or self.name

    def costs(self) -> CostModel:
        return CostModel(fee_bps=self.fee_bps, maker_fee_bps=self.maker_fee_bps,
                         slippage_bps=self.slippage_bps,
                         slippage_range_frac=self.slippage_range_frac)

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def split_trades(table: pa.Table, symbols: set[str]) -> dict[str, TradeCols]:
    """Canonical trade rows (TRADE_SCHEMA) -> per symbol (time, price, qty, id, recv) arrays."""
    if table.num_rows == 0:
        return {}
    sym = table.column("symbol").to_numpy(zero_copy_only=False)
    t = table.column("trade_time").cast(pa.int64()).to_numpy()
    p = table.column("price").to_numpy()
    q = table.column("qty").to_numpy()
    ids = table.column("trade_id").to_numpy()
    recv = table.column("recv_time").cast(pa.int64()).fill_null(0).to_numpy()
    out: dict[str, TradeCols] = {}
    names = set(sym.tolist()) if len(symbols) != 1 else None
    for s in symbols:
        if names is not None and s not in names:
            continue
        m = sym == s
        if not m.any():
            continue
        cols = (t, p, q, ids, recv) if m.all() else (t[m], p[m], q[m], ids[m], recv[m])
        order = np.argsort(cols[3], kind="stable")
        if not (order == np.arange(len(order))).all():
            cols = tuple(c[order] for c in cols)
        out[s] = cols
    return out


@dataclass
class Metrics:
    """What the shell exports since the last drain (Ray metrics cost a call each)."""

    statuses: Counter[tuple[str, str]] = field(default_factory=Counter)  # (symbol, status)
    fills: Counter[str] = field(default_factory=Counter)
    tick_to_order_ms: list[float] = field(default_factory=list)


class ExecutorCore:
    def __init__(self, config: ExecutorConfig, strategy_cls: type[Strategy],
                 params: dict[str, Any], broker: Broker, journal: ExecJournal | MemoryJournal,
                 gate: Gate, klines: Klines | None = None,
                 approval: dict[str, Any] | None = None) -> None:
        self.cfg = config
        self.strategy_cls = strategy_cls
        self.params = dict(params)
        self.broker = broker
        self.journal = journal
        self.gate = gate
        self.klines = klines
        self.approval = approval or {}
        self.key = strategy_key(config.name, strategy_cls.name, self.params)
        per = config.cash / len(config.symbols)
        self.positions = Positions(dict.fromkeys(config.symbols, per))
        self.om = OrderManager()
        self.runners = {s: SymbolRunner(s, strategy_cls, self.params, config.interval,
                                        self.key, self.positions, self.om, config.max_history,
                                        config.close_grace_ms, config.hole_wait_ms)
                        for s in config.symbols}
        self._symbols = set(config.symbols)
        self.filters: dict[str, SymbolFilters] = {}
        self.fee_rate = config.costs().taker
        self.who = f"executor:{config.name}"
        self.account = config.account
        self.strategy_id = config.strategy_id
        self.halted: str | None = None
        self.started = False
        self.lock = asyncio.Lock()
        self.metrics = Metrics()
        self.t2o: deque[float] = deque(maxlen=100_000)
        # (bar open time in s, equity after the bar): the console's equity curve; bounded.
        self.equity_curve: deque[tuple[float, float]] = deque(maxlen=EQUITY_POINTS)
        self.first_bar_pending = dict.fromkeys(config.symbols, True)
        self.signals: list[Signal] = []
        self.stats: Counter[str] = Counter()
        self.trips: list[dict[str, Any]] = []
        self.trips_heard = 0  # of our scopes, counted on arrival (stale-answer check)
        self.recon: dict[str, Any] = {}
        self.replayed = 0
        self.last_resolve = 0.0
        self.best: dict[str, dict[str, Any]] = {}
        self.errors: deque[str] = deque(maxlen=20)
        self.closers: list[Callable[[], Awaitable[None]]] = []
        self.timing: dict[str, deque[float]] = {}  # ms per stage of the order path
        # Set by the shell when a signal actor publishes to this executor: bars then carry
        # the signals at their last trade (``BarData.extra["signals"]``).
        self.signal_book: SignalBook | None = None

    # --- start: replay, filters, reconcile -------------------------------------------------
    def replay(self) -> int:
        """Rebuild orders, fills and positions (and a halt) from the journal."""
        n = 0
        for rec in self.journal.records:
            kind = rec.get("k")
            if kind == "intent":
                order = ManagedOrder.from_intent(rec["order"])
                if order.cid not in self.om and order.symbol in self._symbols:
                    self.om.add(order)
                    n += 1
            elif kind == "update":
                self.apply([OrderUpdate.from_dict(rec["update"])], journal=False, live=False)
                n += 1
            elif kind == "halt":
                self.halted = str(rec.get("reason", "halted"))
            elif kind == "resume":
                self.halted = None
        self.replayed = n
        return n

    async def start(self) -> dict[str, Any]:
        """Replay the journal, load filters, start the broker's streams, reconcile."""
        from spark_ray.execution.reconcile import reconcile

        if self.started:
            return self.recon
        self.replay()
        try:
            self.filters = await self.broker.exchange_filters(list(self.cfg.symbols))
        except Exception as exc:
            if self.cfg.mode == "live":
                raise
            log.warning("no exchange filters (%s); paper orders are not rounded", exc)
        for sym, runner in self.runners.items():
            runner.filters = self.filters.get(sym)
        missing = [s for s in self.cfg.symbols if s not in self.filters]
        if missing and self.cfg.mode == "live":
            raise UserError(f"--symbols: the venue does not list {', '.join(missing)}")
        open_orders = [o for o in self.om.orders.values() if o.status in (NEW, "PARTIALLY_FILLED")]
        self.broker.restore(open_orders, {s: (sl.cash, sl.qty)
                                          for s, sl in self.positions.sleeves.items()})
        await self.broker.start(self.on_broker_updates)
        self.recon = await reconcile(self)
        self.journal.append([{"k": "start", "key": self.key, "strategy": self.strategy_cls.name,
                              "params": self.params, "config": self.cfg.as_dict(),
                              "replayed": self.replayed, "journal_skipped": self.journal.skipped,
                              "reconcile": self.recon, "halted": self.halted,
                              "approval": {k: self.approval.get(k) for k in
                                           ("candidate_sha256", "risk_report_sha256",
                                            "approved_by", "approved_at")}}])
        self.started = True
        return self.recon

    # --- updates ----------------------------------------------------------------------------
    def on_broker_updates(self, updates: list[OrderUpdate]) -> None:
        """Pushed by a broker's stream (same loop): apply at once."""
        self.apply(updates)
        self.flush_signals()

    def apply(self, updates: list[OrderUpdate], journal: bool = True,
              live: bool = True) -> list[ClosedTrade]:
        """The one path every order update takes: orders, positions, journal, signals."""
        records: list[dict[str, Any]] = []
        closed: list[ClosedTrade] = []
        for u in updates:
            o = self.om.get(u.cid)
            if o is None:
                self.stats["foreign_updates"] += 1
                continue
            f = self.filters.get(o.symbol)
            base, quote = (f.base_asset, f.quote_asset) if f else ("", "")
            res = self.om.apply(u, base, quote)
            if res.status is None and res.fill is None:
                continue
            if journal:
                records.append({"k": "update", "update": u.as_dict()})
            if res.status is not None and live:
                self.metrics.statuses[(o.symbol, res.status)] += 1
                if res.status in (NEW, FILLED) and u.source != "reconcile":
                    self.signals.append(Signal("order_ack", 1.0, who=self.who))
                elif res.status == REJECTED:
                    self.signals.append(Signal("order_reject", 1.0, who=self.who))
            fill = res.fill
            if fill is not None:
                trade = self.positions.apply_fill(
                    o.symbol, o.side_name, fill.qty, fill.price, fill.commission,
                    fill.commission_asset, fill.time_ms, o.tag, base, quote)
                if live:
                    self.metrics.fills[o.symbol] += 1
                    self.signals.append(Signal("position", self.positions[o.symbol].qty,
                                               o.symbol, who=self.who))
                if trade is not None:
                    closed.append(trade)
                    if live:
                        self.signals.append(Signal("trade_closed", trade.pnl, who=self.who,
                                                   account=self.account,
                                                   strategy=self.strategy_id))
        if records:
            self.journal.append(records, sync=False)  # durable with the next intent or tick
        return closed

    def flush_signals(self) -> None:
        if self.signals:
            signals, self.signals = self.signals, []
            try:
                self.gate.report(signals)
            except Exception as exc:
                self.stats["report_failures"] += 1
                log.warning("breaker report failed: %s", exc)

    # --- market data ------------------------------------------------------------------------
    async def on_market_data(self, payload: dict[str, Any], t0: float) -> int:
        """A batch from the streams fabric (NormalizerActor's ``{"trades", "book"}``)."""
        trades = (payload.get("trades") or {}).get("trades")
        book = payload.get("book")
        if book is not None and book.num_rows:
            self._note_book(book)
        if trades is None or trades.num_rows == 0:
            return 0
        return await self.on_trades(split_trades(trades, self._symbols), t0)

    def _note_book(self, book: pa.Table) -> None:
        for row in book.slice(max(0, book.num_rows - 8)).to_pylist():
            if row["symbol"] in self._symbols:
                self.best[row["symbol"]] = {"bid": row["bid_price"], "ask": row["ask_price"],
                                            "source": row["source"]}

    async def on_trades(self, batches: dict[str, TradeCols], t0: float) -> int:
        """Feed trades; every bar they close is traded. Returns the number of bars closed."""
        now_ms = time.time() * 1000
        n = 0
        async with self.lock:
            for sym, (t, p, q, ids, recv) in batches.items():
                runner = self.runners.get(sym)
                if runner is None:
                    continue
                self.stats["trades"] += len(t)
                for bar in runner.builder.add(t, p, q, ids, recv, now_ms):
                    await self._step(runner, bar, t0)
                    n += 1
        return n

    async def tick(self) -> int:
        """Timers: close quiet bars; live, ask the venue about open and unknown orders."""
        now_ms = time.time() * 1000
        n = 0
        async with self.lock:
            for runner in self.runners.values():
                for bar in runner.builder.due(now_ms):
                    await self._step(runner, bar, time.perf_counter())
                    n += 1
            # Poll the venue often only when the user data stream is down or an outcome is
            # unknown; otherwise the stream carries the news and polling is a slow backstop.
            streaming = bool(getattr(self.broker, "stream_connected", False))
            every = self.cfg.resolve_interval_s if not streaming or self.om.unresolved() \
                else max(15.0, self.cfg.resolve_interval_s)
            if self.cfg.mode == "live" and time.monotonic() - self.last_resolve > every:
                self.last_resolve = time.monotonic()
                await self._resolve()
        if getattr(self.journal, "dirty", False):
            await asyncio.to_thread(self.journal.sync)  # off the loop: fsync can take ms
        self.flush_signals()
        return n

    async def _resolve(self) -> None:
        """Ask the venue about orders we think open or whose outcome is unknown."""
        now = time.time() * 1000
        for o in [o for o in self.om.orders.values() if o.status in OPEN]:
            try:
                ups = await self.broker.query(o)
            except Exception as exc:
                self.stats["query_failures"] += 1
                self.errors.append(f"query {o.cid}: {type(exc).__name__}: {exc}")
                continue
            if ups is None:
                if o.status in (PENDING_NEW, UNKNOWN) and now - o.created_ms > \
                        self.cfg.unknown_grace_s * 1000:
                    self.apply([OrderUpdate(o.cid, EXPIRED, reason="the venue never received "
                                            "it", source="query")])
                continue
            self.apply(ups)

    # --- one bar ------------------------------------------------------------------------------
    async def _warmup(self, runner: SymbolRunner, bar: ClosedBar) -> ClosedBar | None:
        """History from REST klines up to the first live bar; returns the bar to decide on
        (the REST version of a bar we joined mid-way), or None to skip it."""
        skip = self.cfg.skip_first_bar
        if self.klines is None or self.cfg.warmup_bars == 0:
            return None if skip else bar
        try:
            rows = await self.klines(runner.symbol, self.cfg.interval, bar.time,
                                     self.cfg.warmup_bars + 1)
        except Exception as exc:
            self.stats["warmup_failures"] += 1
            self.errors.append(f"warm-up {runner.symbol}: {type(exc).__name__}: {exc}")
            return None if skip else bar
        whole = rows[-1] if rows and rows[-1].time == bar.time else None
        runner.seed_history([r for r in rows if r.time < bar.time])
        self.stats["warmup_bars"] += len(runner.history)
        if not skip:
            return bar
        return whole  # REST's complete bar replaces the partial live one

    async def _step(self, runner: SymbolRunner, bar: ClosedBar, t0: float) -> None:
        sym = runner.symbol
        if self.first_bar_pending[sym]:
            self.first_bar_pending[sym] = False
            chosen = await self._warmup(runner, bar)
            if chosen is None:
                self.stats["skipped_first_bars"] += 1
                return
            bar = chosen
        self.apply(self.broker.on_bar(bar))
        self.positions.mark(sym, bar.close)
        self.equity_curve.append((bar.time / 1000.0, self.positions.equity()))
        # The breaker sees the price, position and equity before it is asked about this bar's
        # orders (its notional rules need a price): they travel in the same message as the
        # orders (``_ask``), or after the bar when it places none.
        self.signals += [Signal("price", bar.close, sym, who=self.who),
                         Signal("position", self.positions[sym].qty, sym, who=self.who),
                         Signal("equity", self.positions.equity(), who=self.who,
                                account=self.account, strategy=self.strategy_id)]
        extra = await self._bar_signals(sym, bar) if self.signal_book is not None else None
        t = time.perf_counter()
        intents, cancels = runner.decide(bar, extra=extra)
        self._time("strategy", t)
        for o in cancels:
            await self._cancel(o)
        if intents:
            await self._place(runner, intents, t0)
            if bar.closed_by_recv_ms:  # socket receive of the closing trade -> orders acked
                self._time("recv_to_order", bar.closed_by_recv_ms / 1000, clock=time.time)
        self.stats["bars"] += 1
        self.flush_signals()

    # --- orders ---------------------------------------------------------------------------------
    def _prepare(self, o: ManagedOrder, runner: SymbolRunner) -> None:
        """Size ``o`` now and fix its venue parameters; FilterReject when it cannot go out."""
        f = self.filters.get(o.symbol) or SymbolFilters(o.symbol)
        sleeve = runner.sleeve
        ref = runner.last_close or 0.0
        if o.kind == LIMIT and o.limit is not None:
            p = f.price(o.limit, o.side_name, "limit")
            o.price, o.limit, ref = text(p), float(p), float(p)
        elif o.stop is not None:
            p = f.price(o.stop, o.side_name, "stop")
            o.stop_price, o.stop, ref = text(p), float(p), float(p)
        if not ref > 0:
            raise FilterReject("no price yet to size the order")
        equity = sleeve.equity(runner.last_close)
        if o.side == BUY:
            if o.qty is not None:
                qty = f.qty(o.qty)
                f.check(qty, ref, market=o.kind == MARKET)
                o.quantity, o.est_qty = text(qty), float(qty)
                return
            quote = o.notional if o.notional is not None else \
                min(sleeve.cash, (o.pct or 0.0) * equity) / (1 + self.fee_rate)
            if quote <= 0:
                raise FilterReject("insufficient cash")
            if o.kind == MARKET:
                qq = f.quote(quote)
                f.check(None, ref, market=True, quote_qty=qq)
                o.quote_qty, o.est_qty = text(qq), float(qq) / ref
                return
            qty = f.qty(quote / ref)
        else:
            held = sleeve.qty
            if held <= 0:
                raise FilterReject("no position to sell")
            want = o.qty if o.qty is not None else (
                o.notional / ref if o.notional is not None else (o.pct or 0.0) * held)
            qty = f.qty(min(want, held))
        f.check(qty, ref, market=o.kind == MARKET)
        o.quantity, o.est_qty = text(qty), float(qty)

    async def _bar_signals(self, sym: str, bar: ClosedBar) -> dict[str, float]:
        """The signals at the bar's last trade, waiting up to ``signal_wait_ms`` for them."""
        book = self.signal_book
        assert book is not None  # nosec B101  # narrows Optional for mypy, not a check
        if not await book.wait(sym, bar.last_trade_id, self.cfg.signal_wait_ms / 1000):
            self.stats["stale_signal_bars"] += 1
        values = book.asof(sym, bar.last_trade_id)
        self.stats["signal_bars"] += 1
        return values or {SCORE: math.nan}

    async def _place(self, runner: SymbolRunner, intents: list[ManagedOrder], t0: float) -> None:
        ready: list[ManagedOrder] = []
        records: list[dict[str, Any]] = []
        local: list[OrderUpdate] = []
        for o in intents:
            self.om.add(o)
            try:
                self._prepare(o, runner)
            except FilterReject as exc:
                local.append(OrderUpdate(o.cid, REJECTED, reason=f"filter: {exc}",
                                         source="local"))
            else:
                if self.halted:
                    local.append(OrderUpdate(o.cid, REJECTED, source="local",
                                             reason=f"executor halted: {self.halted}"))
                else:
                    ready.append(o)
            records.append({"k": "intent", "order": o.intent()})
        t = time.perf_counter()
        decisions = await self._ask_fresh(ready) if ready else []
        self._time("breaker", t)
        allowed: list[ManagedOrder] = []
        for o, d in zip(ready, decisions, strict=True):
            if d.allowed:
                self.stats["allowed"] += 1
                allowed.append(o)
            else:
                self.stats["blocked"] += 1
                local.append(OrderUpdate(o.cid, REJECTED, source="breaker",
                                         reason="breaker: " + "; ".join(d.reasons)))
        t = time.perf_counter()
        self.journal.append(records)  # write-ahead: intents are durable before any submit
        self._time("journal", t)
        self.apply(local)
        answers: list[OrderUpdate] = []
        for o in allowed:
            answers += await self._submit(o, t0)
        self.apply(answers)  # one journal write for the bar's answers

    def breaker_order(self, o: ManagedOrder) -> BreakerOrder:
        """What the breaker is asked about ``o``. Spot sells only ever shrink the long position
        (``_prepare`` caps them at what is held), so they, and flattens, are reduce-only: a
        tripped scope lets them out once the breaker's position reading confirms it."""
        sell = o.side != BUY
        return BreakerOrder(o.symbol, "sell" if sell else "buy", o.est_qty,
                            o.limit if o.kind == LIMIT else None, o.cid, self.who,
                            account=self.account, strategy=self.strategy_id,
                            reduce_only=sell or o.flatten, tag="flatten" if o.flatten else "")

    def scopes(self) -> tuple[str, ...]:
        """The breaker scopes this executor's orders belong to."""
        return ("global", f"account:{self.account}", f"strategy:{self.strategy_id}",
                *(f"symbol:{s.upper()}" for s in self.cfg.symbols))

    async def _ask_fresh(self, orders: list[ManagedOrder], tries: int = 3) -> list[Decision]:
        """Ask the breaker, and ask again when one of our scopes tripped while it answered.

        A "yes" given just before a trip can arrive after the trip notice (the notice is pushed,
        the answer awaited): submitting on it would send an entry the executor already knows is
        forbidden. The breaker has recorded the trip by the time it notified us, so a second
        question gets the current answer (reduce-only exits may still pass). Fail closed when
        trips keep coming."""
        for _ in range(tries):
            heard = self.trips_heard
            decisions = await self._ask(orders)
            if self.trips_heard == heard:
                return decisions
            self.stats["reasked_after_trip"] += 1
        return [Decision(False, ("breaker tripped while answering; asked again "
                                 f"{tries} times",))] * len(orders)

    async def _ask(self, orders: list[ManagedOrder]) -> list[Decision]:
        asks = [self.breaker_order(o) for o in orders]
        signals, self.signals = self.signals, []
        try:
            decisions = await self.gate.allow(asks, signals)
            if len(decisions) != len(asks):
                raise RuntimeError("breaker answered a different number of orders")
            return decisions
        except Exception as exc:  # fail closed
            self.signals[:0] = signals  # the readings go with the next report
            self.stats["breaker_unreachable"] += 1
            self.errors.append(f"breaker: {type(exc).__name__}: {exc}")
            return [Decision(False, (f"breaker unreachable: {type(exc).__name__}",))] * len(asks)

    async def _submit(self, o: ManagedOrder, t0: float | None) -> list[OrderUpdate]:
        """Send one order; returns what the broker answered (applied by the caller)."""
        if self.halted and not o.flatten:
            return [OrderUpdate(o.cid, REJECTED, source="local",
                                reason=f"executor halted: {self.halted}")]
        o.submit_ms = time.perf_counter() * 1000
        try:
            t = time.perf_counter()
            ups = await self.broker.submit(o)
            self._time("submit", t)
        except OutcomeUnknown as exc:
            self.stats["unknown_outcomes"] += 1
            ups = [OrderUpdate(o.cid, UNKNOWN, reason=str(exc), source="submit")]
            self.signals.append(Signal("error", 1.0, who=self.who))
        except Exception as exc:
            self.stats["submit_errors"] += 1
            self.errors.append(f"submit {o.cid}: {type(exc).__name__}: {exc}")
            ups = [OrderUpdate(o.cid, UNKNOWN, reason=f"{type(exc).__name__}: {exc}",
                               source="submit")]
            self.signals.append(Signal("error", 1.0, who=self.who))
        if t0 is not None:
            ms = time.perf_counter() * 1000 - t0 * 1000
            self.t2o.append(ms)
            self.metrics.tick_to_order_ms.append(ms)
        self.stats["submitted"] += 1
        return ups

    async def _cancel(self, o: ManagedOrder) -> None:
        try:
            ups = await self.broker.cancel(o)
        except Exception as exc:
            self.stats["cancel_errors"] += 1
            self.errors.append(f"cancel {o.cid}: {type(exc).__name__}: {exc}")
            return
        if not ups and o.status in OPEN:  # the venue does not have it open: ask what it has
            try:
                ups = await self.broker.query(o) or []
            except Exception:
                ups = []
        self.apply(ups)

    async def cancel_all(self, symbols: set[str] | None = None) -> int:
        opened = [o for o in self.om.orders.values() if o.status in OPEN
                  and (symbols is None or o.symbol in symbols)]
        for o in opened:
            await self._cancel(o)
        return len(opened)

    async def flatten(self, reason: str, symbols: set[str] | None = None) -> list[str]:
        """Market-sell every position (of ``symbols``; default all), asking the breaker first.

        Flatten orders are reduce-only, so a tripped scope allows them by policy and the breaker
        journals each decision. If the breaker cannot answer, they go out anyway (reducing risk
        must not wait on it) but never silently: the executor journals that they were not asked,
        counts them and says so in its errors.
        """
        orders: list[ManagedOrder] = []
        for sym, runner in self.runners.items():
            if symbols is not None and sym not in symbols:
                continue
            held = self.positions[sym].qty
            if held <= 0:
                continue
            f = self.filters.get(sym) or SymbolFilters(sym)
            qty = f.qty(held)
            if qty <= 0:
                continue
            bar_time = runner.history.last_time or 0
            k = sum(1 for o in self.om.orders.values() if o.flatten and o.bar_time == bar_time
                    and o.symbol == sym)
            cid = client_order_id(self.key, sym, bar_time, k, tag="F")
            o = ManagedOrder(cid, sym, SELL, MARKET, bar_time, k, qty=float(qty), tag=reason,
                             quantity=text(qty), est_qty=float(qty), flatten=True,
                             created_ms=int(time.time() * 1000))
            self.om.add(o)
            orders.append(o)
        if not orders:
            return []
        self.journal.append([{"k": "intent", "order": o.intent()} for o in orders])
        # The breaker must see the positions these orders reduce, in the same message.
        signals = [Signal("position", self.positions[o.symbol].qty, o.symbol, who=self.who)
                   for o in orders]
        signals[:0], self.signals = self.signals, []
        try:
            decisions = await self.gate.allow([self.breaker_order(o) for o in orders], signals)
            if len(decisions) != len(orders):
                raise RuntimeError("breaker answered a different number of orders")
        except Exception as exc:
            self.stats["flatten_unasked"] += len(orders)
            what = f"breaker unreachable ({type(exc).__name__}: {exc}): flatten sent unasked"
            self.errors.append(what)
            self.journal.append([{"k": "note", "what": what, "cids": [o.cid for o in orders]}])
            decisions = [Decision(True, (what,))] * len(orders)
        cids: list[str] = []
        for o, d in zip(orders, decisions, strict=True):
            if not d.allowed:
                self.stats["blocked"] += 1
                self.apply([OrderUpdate(o.cid, REJECTED, source="breaker",
                                        reason="breaker: " + "; ".join(d.reasons))])
                continue
            self.apply(await self._submit(o, None))
            cids.append(o.cid)
        return cids

    # --- breaker and kill switch ------------------------------------------------------------
    async def on_trip(self, notice: dict[str, Any]) -> dict[str, Any]:
        """A breaker scope tripped: if it is one of ours, cancel the open orders it covers
        (all of them, or one symbol's) and flatten them when configured; others' trips are
        ignored."""
        scope = str(notice.get("scope") or "global")
        if scope not in self.scopes():
            return {"ignored": scope, "canceled": 0, "flatten_orders": []}
        self.trips_heard += 1  # before the lock: an answer in flight is now stale
        rec: dict[str, Any] = {"time": time.time(), "rule": notice.get("rule"),
                               "reason": notice.get("reason"), "scope": scope}
        self.trips.append(rec)
        self.journal.append([{"k": "note", "what": "breaker trip", "rule": notice.get("rule"),
                              "reason": notice.get("reason"), "scope": scope}], sync=False)
        symbols = {s for s in self.cfg.symbols if f"symbol:{s.upper()}" == scope} \
            if scope.startswith("symbol:") else None
        async with self.lock:
            canceled = await self.cancel_all(symbols)
            flat = await self.flatten("breaker trip", symbols) if self.cfg.flatten_on_trip \
                else []
            # handled: the lock is held, so no order of a bar in progress is still on its way
            rec.update(canceled=canceled, flatten_orders=len(flat))
        self.flush_signals()
        return {"canceled": canceled, "flatten_orders": flat, "scope": scope}

    async def kill(self, reason: str, flatten: bool = False) -> dict[str, Any]:
        """Halt for good (survives restarts), cancel everything, optionally flatten."""
        self.halted = reason or "killed"
        self.journal.append([{"k": "halt", "reason": self.halted}])
        try:  # trip first: the flatten below is then an exit the breaker allows and journals
            await self.gate.trip(f"executor {self.cfg.name} killed: {self.halted}", self.who)
        except Exception as exc:
            self.errors.append(f"breaker trip: {type(exc).__name__}: {exc}")
        async with self.lock:
            canceled = await self.cancel_all()
            flat = await self.flatten("kill") if flatten else []
        self.flush_signals()
        return {"halted": self.halted, "canceled": canceled, "flatten_orders": flat}

    def resume(self, reason: str) -> None:
        self.halted = None
        self.journal.append([{"k": "resume", "reason": reason}])

    async def close(self) -> None:
        """Close the broker's connections and the journal (the core is done)."""
        for fn in [self.broker.close, *self.closers]:
            try:
                await fn()
            except Exception as exc:
                log.warning("close failed: %s", type(exc).__name__)
        self.journal.close()

    def _time(self, what: str, since: float,
              clock: Callable[[], float] = time.perf_counter) -> None:
        self.timing.setdefault(what, deque(maxlen=10_000)).append((clock() - since) * 1000)

    # --- views ----------------------------------------------------------------------------------
    def drain_metrics(self) -> Metrics:
        m, self.metrics = self.metrics, Metrics()
        return m

    def orders_view(self, last: int = 500) -> list[dict[str, Any]]:
        return [o.as_dict() for o in list(self.om.orders.values())[-last:]]

    def fills_view(self) -> list[dict[str, Any]]:
        return [{"cid": o.cid, "symbol": o.symbol, "side": o.side_name, **f.as_dict()}
                for o in self.om.orders.values() for f in o.fills]

    def trades_view(self) -> list[dict[str, Any]]:
        return [t.as_dict() for t in self.positions.trades]

    def latency(self) -> dict[str, Any]:
        out = _pcts(self.t2o)
        return {"n": out["n"], **{f"{k}_ms": v for k, v in out.items() if k != "n"}}

    def status(self) -> dict[str, Any]:
        return {
            "name": self.cfg.name, "mode": self.cfg.mode, "broker": self.broker.name,
            "strategy": self.strategy_cls.name, "params": self.params, "key": self.key,
            "interval": self.cfg.interval, "started": self.started, "halted": self.halted,
            "orders": self.om.counts(), "open_orders": len(self.om.open_orders()),
            "equity": self.positions.equity(), "positions": self.positions.snapshot(),
            "closed_trades": len(self.positions.trades),
            "symbols": {s: r.status() for s, r in self.runners.items()},
            "stats": dict(self.stats), "tick_to_order": self.latency(),
            "timing_ms": {k: _pcts(v) for k, v in self.timing.items()},
            "trips": self.trips[-10:], "reconcile": self.recon, "replayed": self.replayed,
            "signal_book": None if self.signal_book is None else {
                "received": self.signal_book.received, "reordered": self.signal_book.reordered},
            "journal": {"path": str(self.journal.path), "writes": self.journal.writes,
                        "fsyncs": self.journal.fsyncs, "skipped": self.journal.skipped},
            "best": self.best, "errors": list(self.errors),
            "stale_updates": self.om.stale_updates, "foreign_updates": self.om.unknown_updates,
            "approval": {k: self.approval.get(k) for k in ("approved_by", "approved_at",
                                                           "candidate_sha256")},
        }


def _pcts(values: deque[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    a = np.fromiter(values, dtype=np.float64)
    return {"n": len(a), "p50": round(float(np.percentile(a, 50)), 3),
            "p95": round(float(np.percentile(a, 95)), 3),
            "p99": round(float(np.percentile(a, 99)), 3), "max": round(float(a.max()), 3)}
