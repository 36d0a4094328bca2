"""The venue's market engine: a market clock driving every symbol's trades, book and ledger.

No I/O here: the server calls :meth:`MarketEngine.step` on its loop and publishes what comes
back. The clock runs `speed` times faster than the wall clock from `start_ms`, and stops while
the market is paused, so a test can freeze the market and compare ground truth at rest.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass

import pyarrow as pa

from spark_ray.venue.book import OrderBook
from spark_ray.venue.config import VenueConfig
from spark_ray.venue.formats import SymbolFormatter
from spark_ray.venue.hours import MarketHours, market_hours
from spark_ray.venue.ledger import TradeColumns, TradeLedger
from spark_ray.venue.market import CandleRow, CandleSource, SymbolMarket, TradeBatch, mix64
from spark_ray.venue.replay import load_lake, split_candles
from spark_ray.venue.sources import ReplaySource, SyntheticSource, TradeRate
from spark_ray.venue.specs import SymbolSpec, default_spec


@dataclass
class Clock:
    """Market time = start + (wall elapsed - paused time) * speed."""

    start_ms: int
    speed: float
    _mono0: float = 0.0
    _paused_at: float | None = None
    _paused_total: float = 0.0

    def __post_init__(self) -> None:
        self._mono0 = time.monotonic()

    def now_ms(self) -> int:
        mono = self._paused_at if self._paused_at is not None else time.monotonic()
        return self.start_ms + int((mono - self._mono0 - self._paused_total) * self.speed * 1000)

    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    def pause(self) -> None:
        if self._paused_at is None:
            self._paused_at = time.monotonic()

    def resume(self) -> None:
        if self._paused_at is not None:
            self._paused_total += time.monotonic() - self._paused_at
            self._paused_at = None


class MarketEngine:
    """All symbols' markets, books and the ground-truth ledger, behind one clock."""

    def __init__(self, config: VenueConfig, candles: pa.Table | None = None) -> None:
        self.config = config
        symbols = config.symbols
        stored = None
        if candles is None and config.store is not None:
            candles = load_lake(config.store, symbols, config.store_exchange)
        self.hours: MarketHours | None = None
        if candles is not None:
            stored = split_candles(candles, symbols)
            firsts = [rows[0].open_time for _, rows in stored.values() if rows]
            lasts = [rows[-1].open_time for _, rows in stored.values() if rows]
            if firsts:
                self.hours = market_hours(config.store_exchange, min(firsts), max(lasts))
            hours = self.hours
            if hours is not None:  # a stored print outside a session never traded: drop it
                stored = {s: (spec, [r for r in rows if hours.is_open(r.open_time)])
                          for s, (spec, rows) in stored.items()}
        specs: dict[str, SymbolSpec] = {}
        sources: dict[str, CandleSource] = {}
        if stored is not None:
            start = config.start_time_ms
            if start is None:
                start = min((rows[0].open_time for _, rows in stored.values() if rows),
                            default=int(time.time() * 1000))
            for sym, (spec, rows) in stored.items():
                specs[sym] = spec
                rate = (TradeRate(config.trades_per_second, config.speed)
                        if config.trades_per_second is not None else None)
                sources[sym] = ReplaySource(spec, rows, seed=config.seed, rate=rate)
        else:
            start = config.start_time_ms
            if start is None:
                start = int(time.time() * 1000)
            for sym in symbols:
                spec = default_spec(sym)
                specs[sym] = spec
                sources[sym] = SyntheticSource(
                    spec,
                    seed=config.seed,
                    rate=TradeRate(config.rate, config.speed),
                    history_minutes=config.history_minutes,
                )
        self.specs = specs
        self.formatters = {s: SymbolFormatter(spec) for s, spec in specs.items()}
        self.weight_limit = config.rate_limit.weight_limit
        self.markets = {
            s: SymbolMarket(
                specs[s],
                sources[s],
                start_ms=start,
                first_trade_id=config.first_trade_id,
                max_trades=config.max_trades_per_symbol,
                hours=self.hours,
            )
            for s in symbols
        }
        self.books = {
            s: OrderBook(
                price=m.last_price,
                levels=config.book_levels,
                mean_qty=max(1, round(3000.0 / specs[s].initial_price * 10 ** specs[s].qty_scale)),
                seed=mix64(config.seed, *s.encode(), 99),
            )
            for s, m in self.markets.items()
        }
        self.ledger = TradeLedger(specs)
        self.clock = Clock(start, config.speed)
        self.opened = not config.start_paused  # a market started paused has no trade yet
        if config.start_paused:
            self.clock.pause()
        self.start_ms = start

    # --- MarketView (REST) ---------------------------------------------------------------
    def now_ms(self) -> int:
        """Market time as clients see it: the clock, but never ahead of what every market has
        published. Under load the engine's steps lag the wall clock; a candle that
        /api/v3/time says is closed must already hold all its trades (the REST ETL stores
        candles it believes closed)."""
        now = self.clock.now_ms()
        if not self.opened or not self.markets:
            return now
        published = min(m.emitted_until for m in self.markets.values()) - 1
        return min(now, published)

    def _current(self, m: SymbolMarket) -> list[CandleRow]:
        """The forming candle, unless the market is closed in its minute (no kline then)."""
        if self.hours is None or self.hours.is_open(m.current.open_time):
            return [m.current]
        return []

    def minute_rows(self, symbol: str) -> list[CandleRow]:
        m = self.markets[symbol]
        return [*m.history, *m.closed, *self._current(m)]

    def rows_since(self, symbol: str, open_time: int) -> list[CandleRow]:
        """1m rows with open >= open_time (cheap for recent times: no full-history copy)."""
        m = self.markets[symbol]
        if open_time >= m.current.open_time:
            return self._current(m)
        if m.closed and open_time >= m.closed[0].open_time:
            i = bisect.bisect_left(m.closed, open_time, key=lambda r: r.open_time)
            return [*m.closed[i:], *self._current(m)]
        rows = self.minute_rows(symbol)
        return rows[bisect.bisect_left(rows, open_time, key=lambda r: r.open_time):]

    def trade_columns(self, symbol: str) -> TradeColumns:
        return self.ledger.columns(symbol)

    def book(self, symbol: str) -> OrderBook:
        return self.books[symbol]

    # --- stepping ------------------------------------------------------------------------
    def step(self) -> tuple[int, dict[str, TradeBatch]]:
        """Advance every market to the clock: (event time, new trades by symbol).

        The event time (Binance's ``E``, when the venue emits the message) is the wall clock,
        not the market clock: a replayed or sped-up market (``speed`` != 1, ``store``) has trade
        times far from now, and a client's ingest lag (receive time minus ``E``) must still be
        the transport delay, as against a real exchange. Trade times (``T``) stay market time."""
        now = self.clock.now_ms()
        event_time = int(time.time() * 1000)
        out: dict[str, TradeBatch] = {}
        if not self.opened:
            return event_time, out
        for sym, market in self.markets.items():
            batch = market.advance(now, self.config.max_batch)
            if batch is None or len(batch) == 0:
                continue
            self.ledger.append(batch, event_time)
            self.books[sym].move_to(int(batch.price[-1]), not bool(batch.maker[-1]))
            out[sym] = batch
        self._skip_closed_hours(now)
        return event_time, out

    def _skip_closed_hours(self, now: int) -> None:
        """Outside a session (every market has published up to ``now``), move the clock to the
        next session's open: the closed hours print nothing, so nothing is skipped but waiting.
        The next step walks the markets over the closed minutes (no trade, no kline)."""
        hours = self.hours
        if hours is None or self.clock.paused or not self.markets:
            return
        minute = now - now % 60_000
        if hours.is_open(minute) or any(m.emitted_until <= now for m in self.markets.values()):
            return
        nxt = hours.next_open(minute)
        if nxt is not None and nxt > now:
            self.clock.start_ms += nxt - now

    def pause(self) -> None:
        self.clock.pause()

    def resume(self) -> None:
        self.opened = True
        self.clock.resume()

    def halted(self) -> bool:
        return all(m.halted for m in self.markets.values())
