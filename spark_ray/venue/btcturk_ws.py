"""BTCTurk's public WebSocket at `/btcturk`: trade, obdiff, orderbook and ticker channels.

Clients join and leave with `[151, {"type":151,"channel":..,"event":<pair>,"join":bool}]`; the
venue answers with model 100, sends the recent trades (421), a full book (431) or the ticker
(402) on joining, then single trades (422) with every engine step and book frames (431 full, 432
differences with a per-connection change set) and tickers (402, the engine book's best levels
and last trade price, when they changed) about every `btcturk_push_s`.
"""

from __future__ import annotations

import json

from aiohttp import web

from spark_ray.venue import formats
from spark_ray.venue.config import VenueConfig
from spark_ray.venue.connections import Connection, Hub
from spark_ray.venue.engine import MarketEngine
from spark_ray.venue.market import TradeBatch, mix64

BookState = tuple[int, dict[int, int], dict[int, int]]  # update id, bids, asks (price -> qty)


class BtcturkFeed:
    """Who joined which (channel, pair), the join/leave messages, and publishing."""

    def __init__(self, config: VenueConfig, engine: MarketEngine, hub: Hub) -> None:
        self.config = config
        self.engine = engine
        self.hub = hub
        self.subs: dict[tuple[str, str], set[Connection]] = {}
        self.state: dict[str, BookState] = {}  # the book each obdiff chain is computed from
        self.tickers: dict[str, bytes] = {}  # the last 402 sent per pair (sent when it changes)
        self.last_push = 0.0

    # --- connections ------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = self.hub.new_ws()
        await ws.prepare(request)
        c = self.hub.open("btcturk", ws, request)
        c.send([formats.btcturk_welcome()])
        await self.hub.serve(c, self._on_text, self._gone)
        return ws

    def _gone(self, c: Connection) -> None:
        for key in list(c.bt_subs):
            self._leave(c, key)

    def _leave(self, c: Connection, key: tuple[str, str]) -> None:
        c.bt_subs.discard(key)
        s = self.subs.get(key)
        if s is not None:
            s.discard(c)
            if not s:
                del self.subs[key]

    def _on_text(self, c: Connection, text: str) -> None:
        """`[151, {"type":151,"channel":..,"event":..,"join":bool}]`; anything else is ignored."""
        try:
            msg = json.loads(text)
        except ValueError:
            return
        if not (isinstance(msg, list) and len(msg) == 2 and msg[0] == 151
                and isinstance(msg[1], dict)):
            return
        body = msg[1]
        ch, ev, join = body.get("channel"), body.get("event"), body.get("join")
        if not isinstance(ch, str) or not isinstance(ev, str) or not isinstance(join, bool):
            return
        key = (ch, ev)
        tag = f"{'join' if join else 'leave'}|{ch}:{ev}"
        if not join:
            self._leave(c, key)
            self.hub.send_control(c, formats.btcturk_result(True, tag))
            return
        if key in c.bt_subs:
            self.hub.send_control(c, formats.btcturk_result(False, tag))
            return
        c.bt_subs.add(key)
        self.subs.setdefault(key, set()).add(c)
        self.hub.send_control(c, formats.btcturk_result(True, tag))
        if ev not in self.engine.specs:
            return  # BTCTurk acknowledges unknown pairs and channels, then stays silent
        fmt = self.engine.formatters[ev]
        if ch == "trade":
            cols = self.engine.ledger.tail(ev, self.engine.markets[ev].current.open_time)
            if len(cols) < 50:
                cols = self.engine.ledger.columns(ev)
            last = slice(max(0, len(cols) - 50), len(cols))
            items = [
                fmt.btcturk_trade_item(t, p, q, tt, m)
                for t, p, q, tt, m in zip(cols.ids[last].tolist(), cols.price[last].tolist(),
                                          cols.qty[last].tolist(), cols.time[last].tolist(),
                                          cols.maker[last].tolist(), strict=True)
            ]
            self.hub.send_control(c, fmt.btcturk_trade_list(items))
        elif ch == "ticker":
            self.hub.send_control(c, self._ticker(ev))
        elif ch in ("obdiff", "orderbook"):
            c.bt_cs[key] = 1 + mix64(c.id, *ev.encode()) % 4_000_000
            if ch == "obdiff":
                # Start from the state the next diff is computed against, so they chain.
                state = self.state.get(ev)
                if state is None:
                    state = self.state[ev] = self._snapshot(ev)
            else:
                state = self._snapshot(ev)
            bids = sorted(state[1].items(), reverse=True)
            asks = sorted(state[2].items())
            self.hub.send_control(c, fmt.btcturk_book_full(ch, c.bt_cs[key], bids, asks))

    # --- publishing -------------------------------------------------------------------------
    def publish_trades(self, sym: str, batch: TradeBatch) -> None:
        bt = self.subs.get(("trade", sym))
        if bt:
            payloads = self.engine.formatters[sym].btcturk_trades(
                batch.ids, batch.price, batch.qty, batch.time, batch.maker)
            self.hub.fanout(bt, "trade", sym, "btcturk.trade", payloads, batch.ids, batch.ids)

    def publish_books(self, wall: float) -> None:
        """Book frames for every joined pair, at BTCTurk's cadence, when the book changed."""
        if not self.subs or wall - self.last_push < self.config.btcturk_push_s:
            return
        self.last_push = wall
        for sym in self.engine.specs:
            tick = self.subs.get(("ticker", sym))
            if tick:
                frame = self._ticker(sym)
                if frame != self.tickers.get(sym):
                    self.tickers[sym] = frame
                    self.hub.fanout(tick, "ticker", sym, "btcturk.ticker", [frame], None, None)
            ob = self.subs.get(("obdiff", sym))
            full = self.subs.get(("orderbook", sym))
            if not ob and not full:
                continue
            state = self.state.get(sym)
            new = self._snapshot(sym)
            if state is not None and state[0] == new[0]:
                continue
            self.state[sym] = new
            fmt = self.engine.formatters[sym]
            if ob and state is not None:
                bid_rows = _changes(state[1], new[1], reverse=True)
                ask_rows = _changes(state[2], new[2], reverse=False)
                if bid_rows or ask_rows:
                    for c in list(ob):
                        cs = c.bt_cs[("obdiff", sym)] = c.bt_cs[("obdiff", sym)] + 1
                        self.hub.fanout([c], "obdiff", sym, "btcturk.obdiff",
                                        [fmt.btcturk_book_diff(cs, bid_rows, ask_rows)], None,
                                        None)
            if full:
                bids = sorted(new[1].items(), reverse=True)
                asks = sorted(new[2].items())
                for c in list(full):
                    cs = c.bt_cs[("orderbook", sym)] = c.bt_cs[("orderbook", sym)] + 1
                    self.hub.fanout([c], "orderbook", sym, "btcturk.orderbook",
                                    [fmt.btcturk_book_full("orderbook", cs, bids, asks)], None,
                                    None)

    def _ticker(self, sym: str) -> bytes:
        return self.engine.formatters[sym].btcturk_ticker(self.engine.books[sym].best(),
                                                          self.engine.markets[sym].last_price)

    def _snapshot(self, sym: str) -> BookState:
        uid, bids, asks = self.engine.books[sym].snapshot(100)
        return uid, dict(bids), dict(asks)


def _changes(old: dict[int, int], new: dict[int, int], *, reverse: bool) -> list[
        tuple[int, int, int]]:
    """BTCTurk 432 rows (CP, price, amount): 1 new level, 0 new amount, 3 level deleted."""
    rows: list[tuple[int, int, int]] = []
    for p in sorted(set(old) | set(new), reverse=reverse):
        if p not in old:
            rows.append((1, p, new[p]))
        elif p not in new:
            rows.append((3, p, old[p]))
        elif old[p] != new[p]:
            rows.append((0, p, new[p]))
    return rows
