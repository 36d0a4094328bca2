"""BTCTurk's public WebSocket feed: channel joins and the frame parser.

Formats from BTCTurk's API documentation (https://docs.btcturk.com/websocket-feed/): every
message is ``[type, {...}]``; a client joins a channel with ``[151, {"type": 151, "channel":
"trade", "event": "BTCTRY", "join": true}]`` (at most 5 messages a second); 991 is the welcome,
100 a join result, 422 TradeSingle and 421 TradeList carry trades (``PS`` pair, ``I`` trade id
as a decimal string, ``D`` time in ms as a string, ``P`` price, ``A`` amount, ``S`` taker side:
0 buy, 1 sell).

The order book (channel ``obdiff``, https://docs.btcturk.com/websocket-feed/models and
https://docs.btcturk.com/websocket-feed/channel-event-and-model): on joining, 431 OrderBookFull
(``CS`` change set, ``PS`` pair, ``BO`` bids and ``AO`` asks as ``{"A": amount, "P": price}``
rows, best first); then 432 OrderBookDifference, whose ``CS`` is the previous one + 1 and whose
``BO``/``AO`` rows carry ``CP``: 0 the level's new amount, 1 a new level, 3 the level deleted.
A 431 becomes a :class:`DepthEvent` with ``snapshot=True`` (the book starts over from it), a 432 a
diff with ``first_id == last_id == CS`` (a deleted level has quantity 0); whether the chain holds
is the normalizer's decision (:class:`spark_ray.streams.depth.StreamBookSync`). The ticker
(channel ``ticker``, 402 TickerPair: ``B``/``BA`` best bid price/amount, ``A``/``AA`` best ask
price/amount, ``PS`` pair) becomes a :class:`BookTicker`; it carries no sequence number, so its
``update_id`` is left to the normalizer (``NO_UPDATE_ID``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from spark_ray.adapters.events import (
    MAX_FRAME_BYTES,
    MAX_ID,
    MAX_TIME_MS,
    MIN_TIME_MS,
    MISSING,
    NO_UPDATE_ID,
    PARSE_ERRORS,
    SYMBOL_RE,
    BookTicker,
    DeadLetter,
    DepthEvent,
    Invalid,
    ParsedBatch,
    as_bytes,
    dec_field,
    decode_frame,
    int_field,
)

# our stream kind -> BTCTurk's channel
CHANNELS = {"trade": "trade", "depth": "obdiff", "ticker": "ticker"}
STREAM_KINDS = tuple(CHANNELS)
CHANGE_CODES = (0, 1, 3)  # 432 CP: amount updated, level new, level deleted
JOIN_PACING_S = 0.25  # 5 incoming messages per second at most
MAX_PAIRS_PER_CONNECTION = 10_000  # no documented limit; one connection joins every pair


def btcturk_pair(symbol: str) -> str:
    """Our symbol -> BTCTurk's pair symbol: ``BTC/TRY``, ``btc_try`` and ``BTCTRY`` all map to
    ``BTCTRY`` (BTCTurk writes pairs without a separator)."""
    pair = re.sub(r"[^A-Za-z0-9]", "", symbol).upper()
    if not SYMBOL_RE.match(pair):
        raise ValueError(f"symbol {symbol!r} does not map to a BTCTurk pair")
    return pair


class BTCTurkParser:
    """Parses BTCTurk's ``[type, {...}]`` models: 422 TradeSingle and 421 TradeList into the
    canonical trade columns, 431/432 into depth events, 402 into book tickers; welcome/result
    (991/100) are control; anything else is dead-lettered."""

    exchange = "btcturk"

    def __init__(self, symbols: set[str] | None = None,
                 symbol_map: dict[str, str] | None = None,
                 max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        # pair as BTCTurk writes it -> our symbol
        self.pairs = {btcturk_pair(s): s for s in (symbols or set())}
        if symbol_map:
            self.pairs.update({btcturk_pair(k): v for k, v in symbol_map.items()})
        self.symbols = symbols
        self.max_frame_bytes = max_frame_bytes

    def parse(self, frames: list[bytes], recv_ms: list[int]) -> ParsedBatch:
        out = ParsedBatch()
        for raw, recv in zip(frames, recv_ms, strict=True):
            out.frames += 1
            try:
                doc = decode_frame(raw, self.max_frame_bytes)
                if type(doc) is not list or len(doc) != 2 or type(doc[1]) is not dict:
                    raise Invalid("bad_envelope")
                model, body = doc
                if model == 422:
                    self._trade(body, int(recv), out)
                elif model == 421:
                    items = body.get("items")
                    if type(items) is not list:
                        raise Invalid("bad_type:items")
                    # Recorded TradeLists name the pair once, on the envelope (``symbol``,
                    # ``event``), not in each item; an item's own ``PS`` wins when present.
                    pair = body.get("symbol", body.get("event"))
                    for item in items:
                        if type(item) is not dict:
                            raise Invalid("bad_type:items")
                        if "PS" not in item and pair is not None:
                            item = {**item, "PS": pair}
                        self._trade(item, int(recv), out)
                elif model in (991, 100):
                    out.control.append({"type": model, **body})
                elif model in (431, 432):
                    self._book(model, body, int(recv), out)
                elif model == 402:
                    self._ticker(body, int(recv), out)
                else:
                    raise Invalid("unknown_event")
            except Invalid as e:
                out.dead.append(DeadLetter(str(e), as_bytes(raw), int(recv), self.exchange))
            except PARSE_ERRORS as e:
                out.dead.append(DeadLetter(f"invalid:{type(e).__name__}", as_bytes(raw),
                                           int(recv), self.exchange))
        return out

    def _symbol(self, d: dict[str, Any]) -> str:
        pair = d.get("PS")
        if type(pair) is not str:
            raise Invalid("missing_field:PS" if pair is None else "bad_type:PS")
        sym = self.pairs.get(pair)
        if sym is None:
            raise Invalid("unknown_symbol")
        return sym

    def _book(self, model: int, d: dict[str, Any], recv: int, out: ParsedBatch) -> None:
        """431 (full book) or 432 (differences) -> one depth event; the change set is its id."""
        sym = self._symbol(d)
        cs = int_field(d, "CS")
        full = model == 431
        bids = _levels(d, "BO", full)
        asks = _levels(d, "AO", full)
        out.depth.append(DepthEvent(sym, cs, cs, bids, asks, None, recv, snapshot=full))
        out.count(sym, "depth", None)

    def _ticker(self, d: dict[str, Any], recv: int, out: ParsedBatch) -> None:
        sym = self._symbol(d)
        out.tickers.append(BookTicker(sym, NO_UPDATE_ID, dec_field(d, "B"), dec_field(d, "BA"),
                                      dec_field(d, "A"), dec_field(d, "AA"), recv))
        out.count(sym, "ticker", None)

    def _trade(self, d: dict[str, Any], recv: int, out: ParsedBatch) -> None:
        sym = self._symbol(d)
        tid = _numstr_int(d, "I")
        ttime = _numstr_int(d, "D", MIN_TIME_MS, MAX_TIME_MS)
        price = dec_field(d, "P")
        qty = dec_field(d, "A")
        side = d.get("S")
        if type(side) is not int or side not in (0, 1):
            raise Invalid("bad_value:S")
        # S is the taker side: 1 (sell) means the buyer was the maker.
        out.cols("trades").append(sym, tid, price, qty, side == 1, ttime, None, recv)
        out.count(sym, "trade", recv - ttime)


def _numstr_int(d: dict[str, Any], k: str, lo: int = 0, hi: int = MAX_ID) -> int:
    v = d.get(k, MISSING)
    if v is MISSING:
        raise Invalid(f"missing_field:{k}")
    if type(v) is not str or not v.isdigit() or len(v) > 19:
        raise Invalid(f"bad_type:{k}")
    i = int(v)
    if not lo <= i <= hi:
        raise Invalid(f"bad_value:{k}")
    return i


def _levels(d: dict[str, Any], k: str, full: bool) -> list[tuple[float, float]]:
    """``BO``/``AO`` rows -> (price, amount); in a 432 a deleted level (CP 3) has amount 0."""
    rows = d.get(k, MISSING)
    if rows is MISSING:
        raise Invalid(f"missing_field:{k}")
    if type(rows) is not list:
        raise Invalid(f"bad_type:{k}")
    out: list[tuple[float, float]] = []
    for r in rows:
        if type(r) is not dict:
            raise Invalid(f"bad_type:{k}")
        price = dec_field(r, "P")
        if full:
            out.append((price, dec_field(r, "A")))
            continue
        cp = r.get("CP")
        if type(cp) is not int or cp not in CHANGE_CODES:
            raise Invalid(f"bad_value:{k}.CP")
        out.append((price, 0.0 if cp == 3 else dec_field(r, "A")))
    return out


def channel_name(kind: str, pair: str) -> str:
    """Our name for one joined (BTCTurk channel, pair): ``obdiff:BTCTRY``."""
    return f"{CHANNELS[kind]}:{pair}"


def join_message(pair: str, channel: str = "trade", join: bool = True) -> str:
    return json.dumps([151, {"type": 151, "channel": channel, "event": pair, "join": join}])


def channel_messages(name: str, join: bool = True) -> str:
    """The join (or leave) message of a channel named by :func:`channel_name`."""
    channel, _, pair = name.partition(":")
    return join_message(pair, channel, join)


def is_data_frame(head: bytes) -> bool:
    """Everything but the welcome (991) and join results (100) goes to the parser, which
    dead-letters what is not a model it knows."""
    return not (head.startswith(b"[991") or head.startswith(b"[100"))
