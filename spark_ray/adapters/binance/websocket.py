"""Binance spot market streams: stream names, SUBSCRIBE messages and the frame parser.

Formats from Binance's "WebSocket Streams for Binance" documentation
(https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams): combined streams
arrive as ``{"stream": "<name>", "data": {...}}`` on ``/stream``; ``trade``, ``aggTrade``,
``depthUpdate`` (``<symbol>@depth@100ms``), ``kline`` and ``bookTicker`` payloads; SUBSCRIBE /
UNSUBSCRIBE requests answered by ``{"result": null, "id": N}``; ``serverShutdown`` before the
24 h connection limit. The parser is strict (types, ranges, the stream name agreeing with the
payload) and fast: clean trade frames take the vectorized path of :mod:`.fastparse`.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from spark_ray.adapters.binance import fastparse
from spark_ray.adapters.events import (
    MAX_FRAME_BYTES,
    MISSING,
    PARSE_ERRORS,
    BookTicker,
    DeadLetter,
    DepthEvent,
    Invalid,
    KlineEvent,
    ParsedBatch,
    TradeCols,
    as_bytes,
    bool_field,
    dec_field,
    decode_frame,
    int_field,
    levels_field,
    symbol_field,
    time_field,
)

DEFAULT_WS_URL = "wss://stream.binance.com:9443"
TRADE_DATASETS = {"trade": "trades", "aggTrade": "agg_trades"}
# The stream kinds we read, and the stream-name suffix each subscribes to.
STREAM_SUFFIX = {"trade": "trade", "aggTrade": "aggTrade", "depth": "depth@100ms",
                 "bookTicker": "bookTicker", "kline_1m": "kline_1m"}
STREAM_KINDS = tuple(STREAM_SUFFIX)
MAX_STREAMS_PER_CONNECTION = 1024  # Binance's limit per connection


def stream_names(symbols: list[str], kinds: list[str]) -> list[str]:
    """Binance stream names, e.g. ``btcusdt@trade``, ``btcusdt@depth@100ms``."""
    return [f"{s.lower()}@{STREAM_SUFFIX[k]}" for s in symbols for k in kinds]


def subscribe_message(streams: list[str], request_id: int) -> str:
    return json.dumps({"method": "SUBSCRIBE", "params": streams, "id": request_id})


def is_data_frame(head: bytes) -> bool:
    """A combined-stream data frame (everything else is a control message or garbage)."""
    return head == b'{"stream":'


def stream_key(raw: bytes) -> bytes:
    """The combined-stream name a frame belongs to (chaos reorder swaps within one stream)."""
    end = raw.find(b'","data"', 0, 120)
    return raw[:end] if end > 0 else raw[:40]


class BinanceParser:
    """Parses Binance combined-stream frames (``{"stream":..,"data":..}``) and raw payloads."""

    exchange = "binance"

    def __init__(self, symbols: set[str] | None = None,
                 max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self.symbols = symbols
        self.max_frame_bytes = max_frame_bytes

    def parse(self, frames: list[bytes], recv_ms: list[int]) -> ParsedBatch:
        """Clean trade/aggTrade frames take the vectorized path (:mod:`.fastparse`), everything
        else (and anything it is unsure of) this per-frame one; outcomes are identical."""
        if len(frames) != len(recv_ms):
            raise ValueError(f"{len(frames)} frames but {len(recv_ms)} receive times")
        fast: list[fastparse.FastTrades] = []
        if len(frames) >= fastparse.MIN_BATCH:
            for kind, index in fastparse.split(frames, self.max_frame_bytes).items():
                ft = fastparse.parse(kind, frames, index, recv_ms, self.symbols)
                if ft is not None and len(ft.index):
                    fast.append(ft)
        if not fast:
            return self._parse_slow(frames, recv_ms, ())
        done = np.zeros(len(frames), dtype=bool)
        for ft in fast:
            done[ft.index] = True
        out = self._parse_slow(frames, recv_ms, done)
        if any(TRADE_DATASETS[ft.kind] in out.trades for ft in fast):
            # Rare: the slow path accepted trade rows the fast one declined; keep one frame
            # order per dataset by parsing the whole batch slowly.
            return self._parse_slow(frames, recv_ms, ())
        for ft in fast:
            _add_fast(out, ft)
        return out

    def _parse_slow(self, frames: list[bytes], recv_ms: list[int],
                    done: np.ndarray | tuple[()]) -> ParsedBatch:
        out = ParsedBatch()
        out.frames = len(frames)
        skip = len(done) > 0
        for i, (raw, recv) in enumerate(zip(frames, recv_ms, strict=True)):
            if skip and done[i]:
                continue
            stream: str | None = None
            try:
                doc = decode_frame(raw, self.max_frame_bytes)
                if type(doc) is not dict:
                    raise Invalid("not_object")
                if "stream" in doc:
                    stream = doc["stream"] if type(doc["stream"]) is str else None
                    data = doc.get("data")
                    if stream is None or type(data) is not dict:
                        raise Invalid("bad_envelope")
                elif "result" in doc or "error" in doc or doc.get("e") == "serverShutdown":
                    out.control.append(doc)
                    continue
                else:
                    data = doc
                self._event(data, stream, int(recv), out)
            except Invalid as e:
                out.dead.append(DeadLetter(str(e), as_bytes(raw), int(recv), stream))
            except PARSE_ERRORS as e:
                out.dead.append(DeadLetter(f"invalid:{type(e).__name__}", as_bytes(raw),
                                           int(recv), stream))
        return out

    def _check_symbol(self, sym: str, stream: str | None, kind: str) -> None:
        if stream is not None:
            expect = sym.lower() + "@"
            if not stream.startswith(expect):
                raise Invalid("symbol_mismatch")
            rest = stream[len(expect):]
            if not rest.startswith(kind):
                raise Invalid("stream_mismatch")
        if self.symbols is not None and sym not in self.symbols:
            raise Invalid("unknown_symbol")

    def _event(self, d: dict[str, Any], stream: str | None, recv: int, out: ParsedBatch) -> None:
        e = d.get("e", MISSING)
        if e == "trade":
            sym = symbol_field(d, "s")
            self._check_symbol(sym, stream, "trade")
            tid = int_field(d, "t")
            price = dec_field(d, "p")
            qty = dec_field(d, "q")
            ttime = time_field(d, "T")
            etime = time_field(d, "E")
            maker = bool_field(d, "m")
            out.cols("trades").append(sym, tid, price, qty, maker, ttime, etime, recv)
            out.count(sym, "trade", recv - etime)
        elif e == "aggTrade":
            sym = symbol_field(d, "s")
            self._check_symbol(sym, stream, "aggTrade")
            aid = int_field(d, "a")
            first, last = int_field(d, "f"), int_field(d, "l")
            if last < first:
                raise Invalid("bad_value:l")
            price = dec_field(d, "p")
            qty = dec_field(d, "q")
            ttime = time_field(d, "T")
            etime = time_field(d, "E")
            maker = bool_field(d, "m")
            out.cols("agg_trades").append(sym, aid, price, qty, maker, ttime, etime, recv)
            out.count(sym, "aggTrade", recv - etime)
        elif e == "depthUpdate":
            sym = symbol_field(d, "s")
            self._check_symbol(sym, stream, "depth")
            first, last = int_field(d, "U"), int_field(d, "u")
            if last < first:
                raise Invalid("bad_value:u")
            etime = time_field(d, "E")
            ev = DepthEvent(sym, first, last, levels_field(d, "b"), levels_field(d, "a"), etime,
                            recv)
            out.depth.append(ev)
            out.count(sym, "depth", recv - etime)
        elif e == "kline":
            sym = symbol_field(d, "s")
            self._check_symbol(sym, stream, "kline")
            k = d.get("k")
            if type(k) is not dict:
                raise Invalid("missing_field:k" if k is None else "bad_type:k")
            iv = k.get("i")
            if type(iv) is not str or len(iv) > 4:
                raise Invalid("bad_value:i")
            etime = time_field(d, "E")
            out.klines.append(KlineEvent(
                sym, iv, time_field(k, "t"), time_field(k, "T"), dec_field(k, "o"),
                dec_field(k, "h"), dec_field(k, "l"), dec_field(k, "c"),
                dec_field(k, "v", positive=False), int_field(k, "n"), bool_field(k, "x"), etime,
                *(dec_field(k, f, positive=False) if f in k else None for f in ("q", "V", "Q"))))
            out.count(sym, "kline", recv - etime)
        elif e is MISSING and "u" in d and "b" in d and "a" in d:
            sym = symbol_field(d, "s")
            self._check_symbol(sym, stream, "bookTicker")
            out.tickers.append(BookTicker(sym, int_field(d, "u"), dec_field(d, "b"),
                                          dec_field(d, "B", False), dec_field(d, "a"),
                                          dec_field(d, "A", False), recv))
            out.count(sym, "bookTicker", None)
        elif e is MISSING:
            raise Invalid("missing_field:e")
        else:
            raise Invalid("unknown_event")


def _add_fast(out: ParsedBatch, ft: fastparse.FastTrades) -> None:
    """Fold vectorized rows into the batch: columns as arrays, counts and lags per symbol."""
    out.trades[TRADE_DATASETS[ft.kind]] = TradeCols(
        symbol=ft.symbol, trade_id=ft.trade_id, price=ft.price, qty=ft.qty,  # type: ignore[arg-type]
        maker=ft.maker, trade_time=ft.trade_time, event_time=ft.event_time,  # type: ignore[arg-type]
        recv_time=ft.recv_time)  # type: ignore[arg-type]
    lags = ft.recv_time - ft.event_time
    syms = ft.symbol
    first = syms[0]
    if (syms == first).all():
        groups = [(first, slice(None))]
    else:
        groups = [(s, syms == s) for s in dict.fromkeys(syms.tolist())]
    for s, sel in groups:
        part = lags[sel]
        key = (s, ft.kind)
        out.counts[key] = out.counts.get(key, 0) + len(part)
        out.lags.setdefault(key, []).extend(part.tolist())
