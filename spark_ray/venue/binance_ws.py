"""Binance market streams over WebSocket: `/ws/<name>[/<name>...]`, `/stream?streams=a/b`, `/ws`.

Stream names (`btcusdt@trade`, `btcusdt@kline_1m`, `btcusdt@depth@100ms`, ...) are lowercase on
Binance; anything else is "Invalid request: invalid stream". A well-formed name for a symbol the
venue does not list is accepted and simply stays silent, as on Binance. A listenKey in place of a
stream name is that account's user data stream (:mod:`~spark_ray.venue.userstream`).

Clients change their subscriptions live (SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS /
SET_PROPERTY / GET_PROPERTY). Trades and aggregate trades go out with every engine step,
bookTicker when the best level changes, depth diffs, partial books and klines on their own
cadences.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from spark_ray.schemas import INTERVAL_MS
from spark_ray.venue import formats
from spark_ray.venue.candles import Kline, interval_open, klines_from_trades, select
from spark_ray.venue.config import VenueConfig
from spark_ray.venue.connections import Connection, Hub
from spark_ray.venue.engine import MarketEngine
from spark_ray.venue.formats import AggGroups
from spark_ray.venue.market import TradeBatch
from spark_ray.venue.rest import day_stats
from spark_ray.venue.userstream import UserStreams

_METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
_INTERVALS = "|".join(re.escape(i) for i in INTERVAL_MS)
_STREAM_RE = re.compile(
    r"^(?P<sym>[a-z0-9]{2,20})@(?:"
    r"(?P<trade>trade)|(?P<agg>aggTrade)|(?P<bt>bookTicker)|(?P<tk>ticker|miniTicker)"
    rf"|kline_(?P<interval>{_INTERVALS})"
    r"|depth(?P<levels>5|10|20)?(?:@(?P<speed>100ms|1000ms))?"
    r")$"
)


@dataclass(frozen=True)
class StreamKey:
    """A parsed stream: symbol (upper case), kind and its parameters."""

    name: str
    symbol: str
    kind: str  # trade | aggTrade | kline | depth | bookTicker | ticker | miniTicker
    interval: str | None = None
    levels: int | None = None  # partial book depth (5/10/20); None for diff depth
    speed_ms: int = 1000


def parse_stream(name: str) -> StreamKey | None:
    """The stream a name denotes, or None when Binance would call it invalid."""
    m = _STREAM_RE.match(name)
    if m is None:
        return None
    sym = m.group("sym").upper()
    if m.group("trade"):
        return StreamKey(name, sym, "trade")
    if m.group("agg"):
        return StreamKey(name, sym, "aggTrade")
    if m.group("bt"):
        return StreamKey(name, sym, "bookTicker")
    if m.group("tk"):
        return StreamKey(name, sym, m.group("tk"))
    interval = m.group("interval")
    if interval:
        return StreamKey(name, sym, "kline", interval=interval)
    levels = m.group("levels")
    speed = 100 if m.group("speed") == "100ms" else 1000
    return StreamKey(name, sym, "depth", levels=int(levels) if levels else None, speed_ms=speed)


class BinanceStreams:
    """Who subscribes to which Binance stream, the control messages, and publishing."""

    def __init__(self, config: VenueConfig, engine: MarketEngine, hub: Hub,
                 users: UserStreams) -> None:
        self.config = config
        self.engine = engine
        self.hub = hub
        self.users = users
        self.subs: dict[str, set[Connection]] = {}
        self.keys: dict[str, StreamKey] = {}
        self.last_push: dict[str, float] = {}
        self.depth_cursor: dict[str, int] = {}
        self.kline_open: dict[str, int] = {}
        self.last_best: dict[str, tuple[int, int, int, int]] = {}
        self._names = {
            s: {k: f"{s.lower()}@{k}" for k in ("trade", "aggTrade", "bookTicker")}
            for s in engine.specs
        }

    # --- connections ------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        combined = request.path.startswith("/stream")
        raw = request.query.get("streams", "") if combined else request.match_info.get("tail", "")
        names = [n for n in raw.split("/") if n]
        user = [n for n in names if self.users.is_listen_key(n)]
        # A name without '@' reads as a listenKey, which Binance cannot refuse by its form; an
        # unknown one gives no data. ccxt connects to `/ws/<n>` and SUBSCRIBEs afterwards.
        keys = [parse_stream(n) for n in names if n not in user and "@" in n]
        if any(k is None for k in keys):
            return web.Response(status=400, body=formats.ws_error(2, "Invalid request: invalid "
                                                                     "stream"),
                                content_type="application/json")
        if len(set(names)) > self.config.max_streams:
            return web.Response(status=400, body=formats.ws_error(
                2, f"Invalid request: too many streams (max {self.config.max_streams})"),
                content_type="application/json")
        ws = self.hub.new_ws()
        await ws.prepare(request)
        c = self.hub.open("binance", ws, request, combined)
        for k in keys:
            assert k is not None  # nosec B101  # narrows Optional for mypy, not a check
            self.subscribe(c, k)
        for lk in user:
            self.users.attach(c, lk)
        await self.hub.serve(c, self._on_text, self._gone)
        return ws

    def _gone(self, c: Connection) -> None:
        for name in list(c.streams):
            self.unsubscribe(c, name)
        self.users.detach(c)

    def subscribe(self, c: Connection, key: StreamKey) -> None:
        if key.name in c.streams:
            return
        c.streams[key.name] = key
        conns = self.subs.get(key.name)
        if conns is None:
            conns = self.subs[key.name] = set()
            self.keys[key.name] = key
            if key.symbol in self.engine.books:
                self.depth_cursor[key.name] = self.engine.books[key.symbol].last_update_id
        conns.add(c)
        if key.kind == "bookTicker":
            self.last_best.pop(key.symbol, None)  # a new subscriber gets the current best soon

    def unsubscribe(self, c: Connection, name: str) -> None:
        c.streams.pop(name, None)
        conns = self.subs.get(name)
        if conns is None:
            return
        conns.discard(c)
        if not conns:
            del self.subs[name]
            self.keys.pop(name, None)
            self.depth_cursor.pop(name, None)
            self.kline_open.pop(name, None)
            self.last_push.pop(name, None)

    def _on_text(self, c: Connection, text: str) -> None:
        reply = self.control(c, text)
        if reply is not None:
            self.hub.send_control(c, reply)

    def control(self, c: Connection, text: str) -> bytes | None:
        """Live SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS / SET_ / GET_PROPERTY."""
        try:
            msg = json.loads(text)
        except ValueError as e:
            line, col = getattr(e, "lineno", 1), getattr(e, "colno", 1)
            return formats.ws_error(3, f"Invalid JSON: expected value at line {line} column "
                                       f"{col}")
        if not isinstance(msg, dict):
            return formats.ws_error(2, "Invalid request: expected an object")
        rid = msg.get("id")
        if "id" not in msg or not _valid_id(rid):
            return formats.ws_error(2, "Invalid request: request ID must be an unsigned integer")
        method = msg.get("method")
        if method not in _METHODS:
            allowed = ", ".join(f"`{m}`" for m in _METHODS)
            col = text.find(str(method)) + len(str(method)) + 1
            return formats.ws_error(
                2, f"Invalid request: unknown variant `{method}`, expected one of {allowed} at "
                   f"line 1 column {max(col, 1)}", rid)
        params = msg.get("params")
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                return formats.ws_error(2, "Invalid request: invalid stream", rid)
            keys = [parse_stream(p) for p in params]
            if any(k is None for k in keys):
                return formats.ws_error(2, "Invalid request: invalid stream", rid)
            if method == "SUBSCRIBE":
                total = len(set(c.streams) | set(params))
                if total > self.config.max_streams:
                    return formats.ws_error(
                        2, f"Invalid request: too many streams (max {self.config.max_streams})",
                        rid)
                for k in keys:
                    assert k is not None  # nosec B101  # narrows Optional for mypy, not a check
                    self.subscribe(c, k)
            else:
                for p in params:
                    self.unsubscribe(c, p)
            return formats.ws_result(None, rid)
        if method == "LIST_SUBSCRIPTIONS":
            return formats.ws_result(list(c.streams), rid)
        if not isinstance(params, list) or not params or not isinstance(params[0], str):
            return formats.ws_error(2, "Invalid request: property name must be a string", rid)
        if params[0] != "combined":
            return formats.ws_error(0, "Unknown property", rid)
        if method == "GET_PROPERTY":
            return formats.ws_result(c.combined, rid)
        if len(params) < 2 or not isinstance(params[1], bool):
            return formats.ws_error(1, "Invalid value type: expected Boolean", rid)
        c.combined = params[1]
        return formats.ws_result(None, rid)

    # --- publishing -------------------------------------------------------------------------
    def publish_trades(self, event_time: int, sym: str, batch: TradeBatch) -> None:
        fmt = self.engine.formatters[sym]
        names = self._names[sym]
        conns = self.subs.get(names["trade"])
        if conns:
            payloads = fmt.trades(event_time, batch.ids, batch.price, batch.qty, batch.time,
                                  batch.maker)
            self.hub.fanout(conns, names["trade"], sym, "trade", payloads, batch.ids, batch.ids)
        conns = self.subs.get(names["aggTrade"])
        if conns:
            groups = AggGroups(batch.agg, batch.ids, batch.price, batch.qty, batch.time,
                               batch.maker)
            payloads = fmt.agg_trades(event_time, groups)
            self.hub.fanout(conns, names["aggTrade"], sym, "aggTrade", payloads, groups.f,
                            groups.last)

    def publish_book_tickers(self) -> None:
        for sym in self.engine.specs:
            name = self._names[sym]["bookTicker"]
            conns = self.subs.get(name)
            if not conns:
                continue
            book = self.engine.books[sym]
            best = book.best()
            if self.last_best.get(sym) == best:
                continue
            self.last_best[sym] = best
            payload = self.engine.formatters[sym].book_ticker(book.last_update_id, best)
            self.hub.fanout(conns, name, sym, "bookTicker", [payload], None, None)

    def publish_timed(self, event_time: int, wall: float) -> None:
        """Depth diffs, partial books and klines: pushed on their own cadences."""
        for name, key in list(self.keys.items()):
            sym = key.symbol
            if sym not in self.engine.specs or not self.subs.get(name):
                continue
            fmt = self.engine.formatters[sym]
            if key.kind == "depth":
                if wall - self.last_push.get(name, 0.0) < key.speed_ms / 1000:
                    continue
                self.last_push[name] = wall
                book = self.engine.books[sym]
                if key.levels is None:
                    diff = book.diff_since(self.depth_cursor.get(name, book.last_update_id))
                    if diff is None:
                        continue
                    self.depth_cursor[name] = diff.last_uid
                    payload = fmt.depth_update(event_time, diff)
                else:
                    uid, bids, asks = book.snapshot(key.levels)
                    payload = fmt.partial_depth(uid, bids, asks)
                self.hub.fanout(self.subs[name], name, sym, "depth", [payload], None, None)
            elif key.kind == "kline":
                self._publish_kline(name, key, event_time, wall)
            elif key.kind in ("ticker", "miniTicker"):
                if wall - self.last_push.get(name, 0.0) < 1.0:  # Binance: every 1000 ms
                    continue
                self.last_push[name] = wall
                payload = formats.dumps(day_ticker_event(
                    day_stats(self.engine, sym, self.engine.now_ms(), full=key.kind == "ticker"),
                    event_time))
                self.hub.fanout(self.subs[name], name, sym, key.kind, [payload], None, None)

    def _publish_kline(self, name: str, key: StreamKey, event_time: int, wall: float) -> None:
        assert key.interval is not None  # nosec B101  # narrows Optional for mypy, not a check
        sym, interval = key.symbol, key.interval
        fmt = self.engine.formatters[sym]
        now = self.engine.now_ms()
        cur_open = interval_open(interval, now)
        prev_open = self.kline_open.get(name, cur_open)
        push_s = 1.0 if interval == "1s" else self.config.kline_push_s
        payloads: list[bytes] = []
        if cur_open > prev_open:
            for k in self._klines(sym, interval, prev_open, cur_open - 1, 10):
                payloads.append(fmt.kline(event_time, interval, k, True))
        elif wall - self.last_push.get(name, 0.0) < push_s:
            return
        current = self._klines(sym, interval, cur_open, None, 1)
        if current:
            payloads.append(fmt.kline(event_time, interval, current[-1], False))
        self.kline_open[name] = cur_open
        self.last_push[name] = wall
        if payloads:
            self.hub.fanout(self.subs[name], name, sym, "kline", payloads, None, None)

    def _klines(self, sym: str, interval: str, start: int, end: int | None, limit: int
                ) -> list[Kline]:
        if interval == "1s":
            cols = self.engine.ledger.tail(sym, start)
            ks = klines_from_trades(cols.time, cols.price, cols.qty, cols.maker, cols.ids,
                                    start=start, end=end, limit=limit)
            if not ks and end is None:
                # No trade yet this second: Binance still shows the candle, flat at the last price.
                last = self.engine.markets[sym].last_price
                ks = [Kline(start, start + 999, last, last, last, last, 0, 0, 0, 0, 0, -1, -1)]
            return ks
        rows = self.engine.rows_since(sym, interval_open(interval, start))
        return select(rows, interval, start=start, end=end, limit=limit)

    def trim_books(self) -> None:
        """Drop book history no diff-depth subscriber still needs."""
        for sym, book in self.engine.books.items():
            cursors = [
                self.depth_cursor.get(n, book.last_update_id)
                for n, k in self.keys.items()
                if k.symbol == sym and k.kind == "depth" and k.levels is None
            ]
            book.trim(min(cursors) if cursors else book.last_update_id)


_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,36}")


def _valid_id(rid: Any) -> bool:
    """A request id Binance accepts: a 64-bit signed integer, a string of up to 36 characters
    (letters, digits, '-' and '_': a UUID, as python-binance sends), or null (Binance spot
    WebSocket Streams docs, "Live Subscribing/Unsubscribing to streams")."""
    if rid is None:
        return True
    if isinstance(rid, int) and not isinstance(rid, bool):
        return -(2**63) <= rid < 2**63
    return isinstance(rid, str) and _ID_RE.fullmatch(rid) is not None


# REST field -> stream field of the individual symbol ticker streams (Binance spot WebSocket
# Streams docs, "Individual Symbol Ticker Streams" and "Individual Symbol Mini Ticker Stream").
_TICKER_FIELDS = {
    "priceChange": "p", "priceChangePercent": "P", "weightedAvgPrice": "w",
    "prevClosePrice": "x", "lastPrice": "c", "lastQty": "Q", "bidPrice": "b", "bidQty": "B",
    "askPrice": "a", "askQty": "A", "openPrice": "o", "highPrice": "h", "lowPrice": "l",
    "volume": "v", "quoteVolume": "q", "openTime": "O", "closeTime": "C", "firstId": "F",
    "lastId": "L", "count": "n",
}
_MINI_FIELDS = ("c", "o", "h", "l", "v", "q")


def day_ticker_event(stats: dict[str, Any], event_time: int) -> dict[str, Any]:
    """A ``24hrTicker`` (full stats) or ``24hrMiniTicker`` (``lastQty`` absent) event."""
    full = "lastQty" in stats
    out: dict[str, Any] = {"e": "24hrTicker" if full else "24hrMiniTicker", "E": event_time,
                           "s": stats["symbol"]}
    for rest_name, short in _TICKER_FIELDS.items():
        if rest_name in stats and (full or short in _MINI_FIELDS):
            out[short] = stats[rest_name]
    return out
