"""Frame parsing and validation: raw WebSocket frames -> typed columns, or a dead letter.

Validation is strict at this boundary (types, ranges, the stream name agreeing with the payload)
because everything after it trusts the columns. Every frame ends in exactly one place: a parsed
row, a control message, an ignored-but-counted message, or a :class:`DeadLetter` with its reason.
The hot path is plain ``json.loads`` plus type checks, appended to lists, about 5 µs a frame.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spark_ray.streams import fastparse
from spark_ray.streams.fastparse import MAX_ID, MAX_TIME_MS, MIN_TIME_MS, SYMBOL_PATTERN

MAX_FRAME_BYTES = 256 * 1024
SYMBOL_RE = re.compile(SYMBOL_PATTERN)
TRADE_DATASETS = {"trade": "trades", "aggTrade": "agg_trades", "btcturk.trade": "trades"}


class Invalid(ValueError):
    """A frame failed validation; the message is the dead-letter reason."""


@dataclass(frozen=True)
class DeadLetter:
    reason: str
    raw: bytes
    recv_ms: int
    stream: str | None = None


@dataclass
class TradeCols:
    """Trade rows of one dataset (``trades`` or ``agg_trades``), column-wise."""

    symbol: list[str] = field(default_factory=list)
    trade_id: list[int] = field(default_factory=list)
    price: list[float] = field(default_factory=list)
    qty: list[float] = field(default_factory=list)
    maker: list[bool] = field(default_factory=list)
    trade_time: list[int] = field(default_factory=list)
    event_time: list[int | None] = field(default_factory=list)
    recv_time: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.trade_id)

    def append(self, symbol: str, tid: int, price: float, qty: float, maker: bool, ttime: int,
               etime: int | None, recv: int) -> None:
        self.symbol.append(symbol)
        self.trade_id.append(tid)
        self.price.append(price)
        self.qty.append(qty)
        self.maker.append(maker)
        self.trade_time.append(ttime)
        self.event_time.append(etime)
        self.recv_time.append(recv)


@dataclass(frozen=True)
class DepthEvent:
    symbol: str
    first_id: int
    last_id: int
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]
    event_time: int
    recv_time: int


@dataclass(frozen=True)
class BookTicker:
    symbol: str
    update_id: int
    bid_price: float
    bid_qty: float
    ask_price: float
    ask_qty: float
    recv_time: int


@dataclass(frozen=True)
class KlineEvent:
    symbol: str
    interval: str
    open_time: int
    close_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    trades: int
    closed: bool
    event_time: int
    # Binance sends these too; optional so a venue that omits them still parses.
    quote_volume: float | None = None
    taker_buy_base: float | None = None
    taker_buy_quote: float | None = None


@dataclass
class ParsedBatch:
    """Everything one batch of frames turned into."""

    trades: dict[str, TradeCols] = field(default_factory=dict)  # dataset -> rows
    depth: list[DepthEvent] = field(default_factory=list)
    tickers: list[BookTicker] = field(default_factory=list)
    klines: list[KlineEvent] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    control: list[dict[str, Any]] = field(default_factory=list)
    ignored: int = 0
    frames: int = 0
    # (symbol, stream kind) -> frames, for streams_messages_total
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    # (symbol, stream kind) -> ingest lags in ms (recv - event time)
    lags: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    def cols(self, dataset: str) -> TradeCols:
        c = self.trades.get(dataset)
        if c is None:
            c = self.trades[dataset] = TradeCols()
        return c

    def count(self, symbol: str, stream: str, lag: int | None) -> None:
        key = (symbol, stream)
        self.counts[key] = self.counts.get(key, 0) + 1
        if lag is not None:
            self.lags.setdefault(key, []).append(lag)


# --- field checks ---------------------------------------------------------------------------
def _int(d: dict[str, Any], k: str, lo: int = 0, hi: int = MAX_ID) -> int:
    v = d.get(k, _MISSING)
    if v is _MISSING:
        raise Invalid(f"missing_field:{k}")
    if type(v) is not int:
        raise Invalid(f"bad_type:{k}")
    if not lo <= v <= hi:
        raise Invalid(f"bad_value:{k}")
    return v


def _time(d: dict[str, Any], k: str) -> int:
    return _int(d, k, MIN_TIME_MS, MAX_TIME_MS)


def _dec(d: dict[str, Any], k: str, positive: bool = True) -> float:
    """A decimal string (Binance sends prices and quantities as strings)."""
    v = d.get(k, _MISSING)
    if v is _MISSING:
        raise Invalid(f"missing_field:{k}")
    if type(v) is not str or len(v) > 40:
        raise Invalid(f"bad_type:{k}")
    try:
        f = float(v)
    except ValueError:
        raise Invalid(f"bad_value:{k}") from None
    if not math.isfinite(f) or f < 0 or (positive and f == 0):
        raise Invalid(f"bad_value:{k}")
    return f


def _bool(d: dict[str, Any], k: str) -> bool:
    v = d.get(k, _MISSING)
    if v is _MISSING:
        raise Invalid(f"missing_field:{k}")
    if type(v) is not bool:
        raise Invalid(f"bad_type:{k}")
    return v


def _sym(d: dict[str, Any], k: str) -> str:
    v = d.get(k, _MISSING)
    if v is _MISSING:
        raise Invalid(f"missing_field:{k}")
    if type(v) is not str or not SYMBOL_RE.match(v):
        raise Invalid(f"bad_value:{k}")
    return v


def _levels(d: dict[str, Any], k: str) -> list[tuple[float, float]]:
    v = d.get(k, _MISSING)
    if v is _MISSING:
        raise Invalid(f"missing_field:{k}")
    if type(v) is not list:
        raise Invalid(f"bad_type:{k}")
    out: list[tuple[float, float]] = []
    for lv in v:
        if type(lv) is not list or len(lv) != 2:
            raise Invalid(f"bad_type:{k}")
        p = _dec({"p": lv[0]}, "p")
        q = _dec({"q": lv[1]}, "q", positive=False)
        out.append((p, q))
    return out


class _Missing:
    pass


_MISSING: Any = _Missing()


# --- Binance --------------------------------------------------------------------------------
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
                if not isinstance(raw, bytes | bytearray | str):
                    raise Invalid("not_bytes")
                if len(raw) > self.max_frame_bytes:
                    raise Invalid("oversized")
                try:
                    doc = json.loads(raw)
                except (ValueError, UnicodeDecodeError):
                    raise Invalid("bad_json") from None
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
                out.dead.append(DeadLetter(str(e), _as_bytes(raw), int(recv), stream))
            except (RecursionError, OverflowError, TypeError, AttributeError) as e:
                out.dead.append(DeadLetter(f"invalid:{type(e).__name__}", _as_bytes(raw),
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
        e = d.get("e", _MISSING)
        if e == "trade":
            sym = _sym(d, "s")
            self._check_symbol(sym, stream, "trade")
            tid = _int(d, "t")
            price = _dec(d, "p")
            qty = _dec(d, "q")
            ttime = _time(d, "T")
            etime = _time(d, "E")
            maker = _bool(d, "m")
            out.cols("trades").append(sym, tid, price, qty, maker, ttime, etime, recv)
            out.count(sym, "trade", recv - etime)
        elif e == "aggTrade":
            sym = _sym(d, "s")
            self._check_symbol(sym, stream, "aggTrade")
            aid = _int(d, "a")
            first, last = _int(d, "f"), _int(d, "l")
            if last < first:
                raise Invalid("bad_value:l")
            price = _dec(d, "p")
            qty = _dec(d, "q")
            ttime = _time(d, "T")
            etime = _time(d, "E")
            maker = _bool(d, "m")
            out.cols("agg_trades").append(sym, aid, price, qty, maker, ttime, etime, recv)
            out.count(sym, "aggTrade", recv - etime)
        elif e == "depthUpdate":
            sym = _sym(d, "s")
            self._check_symbol(sym, stream, "depth")
            first, last = _int(d, "U"), _int(d, "u")
            if last < first:
                raise Invalid("bad_value:u")
            etime = _time(d, "E")
            ev = DepthEvent(sym, first, last, _levels(d, "b"), _levels(d, "a"), etime, recv)
            out.depth.append(ev)
            out.count(sym, "depth", recv - etime)
        elif e == "kline":
            sym = _sym(d, "s")
            self._check_symbol(sym, stream, "kline")
            k = d.get("k")
            if type(k) is not dict:
                raise Invalid("missing_field:k" if k is None else "bad_type:k")
            iv = k.get("i")
            if type(iv) is not str or len(iv) > 4:
                raise Invalid("bad_value:i")
            etime = _time(d, "E")
            out.klines.append(KlineEvent(
                sym, iv, _time(k, "t"), _time(k, "T"), _dec(k, "o"), _dec(k, "h"), _dec(k, "l"),
                _dec(k, "c"), _dec(k, "v", positive=False), _int(k, "n"), _bool(k, "x"), etime,
                *(_dec(k, f, positive=False) if f in k else None for f in ("q", "V", "Q"))))
            out.count(sym, "kline", recv - etime)
        elif e is _MISSING and "u" in d and "b" in d and "a" in d:
            sym = _sym(d, "s")
            self._check_symbol(sym, stream, "bookTicker")
            out.tickers.append(BookTicker(sym, _int(d, "u"), _dec(d, "b"), _dec(d, "B", False),
                                          _dec(d, "a"), _dec(d, "A", False), recv))
            out.count(sym, "bookTicker", None)
        elif e is _MISSING:
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


# --- BTCTurk --------------------------------------------------------------------------------
def btcturk_pair(symbol: str) -> str:
    """Our symbol -> BTCTurk's pair symbol: ``BTC/TRY``, ``btc_try`` and ``BTCTRY`` all map to
    ``BTCTRY`` (BTCTurk writes pairs without a separator)."""
    pair = re.sub(r"[^A-Za-z0-9]", "", symbol).upper()
    if not SYMBOL_RE.match(pair):
        raise ValueError(f"symbol {symbol!r} does not map to a BTCTurk pair")
    return pair


class BTCTurkParser:
    """Parses BTCTurk's ``[type, {...}]`` models: 422 TradeSingle and 421 TradeList into the
    canonical trade columns; welcome/result (991/100) are control; book models are counted."""

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
                if not isinstance(raw, bytes | bytearray | str):
                    raise Invalid("not_bytes")
                if len(raw) > self.max_frame_bytes:
                    raise Invalid("oversized")
                try:
                    doc = json.loads(raw)
                except (ValueError, UnicodeDecodeError):
                    raise Invalid("bad_json") from None
                if type(doc) is not list or len(doc) != 2 or type(doc[1]) is not dict:
                    raise Invalid("bad_envelope")
                model, body = doc
                if model == 422:
                    self._trade(body, int(recv), out)
                elif model == 421:
                    items = body.get("items")
                    if type(items) is not list:
                        raise Invalid("bad_type:items")
                    for item in items:
                        if type(item) is not dict:
                            raise Invalid("bad_type:items")
                        self._trade(item, int(recv), out)
                elif model in (991, 100):
                    out.control.append({"type": model, **body})
                elif model in (431, 432):
                    out.ignored += 1
                else:
                    raise Invalid("unknown_event")
            except Invalid as e:
                out.dead.append(DeadLetter(str(e), _as_bytes(raw), int(recv), "btcturk"))
            except (RecursionError, OverflowError, TypeError, AttributeError) as e:
                out.dead.append(DeadLetter(f"invalid:{type(e).__name__}", _as_bytes(raw),
                                           int(recv), "btcturk"))
        return out

    def _trade(self, d: dict[str, Any], recv: int, out: ParsedBatch) -> None:
        pair = d.get("PS")
        if type(pair) is not str:
            raise Invalid("missing_field:PS" if pair is None else "bad_type:PS")
        sym = self.pairs.get(pair)
        if sym is None:
            raise Invalid("unknown_symbol")
        tid = _numstr_int(d, "I")
        ttime = _numstr_int(d, "D", MIN_TIME_MS, MAX_TIME_MS)
        price = _dec(d, "P")
        qty = _dec(d, "A")
        side = d.get("S")
        if type(side) is not int or side not in (0, 1):
            raise Invalid("bad_value:S")
        # S is the taker side: 1 (sell) means the buyer was the maker.
        out.cols("trades").append(sym, tid, price, qty, side == 1, ttime, None, recv)
        out.count(sym, "trade", recv - ttime)


def _numstr_int(d: dict[str, Any], k: str, lo: int = 0, hi: int = MAX_ID) -> int:
    v = d.get(k, _MISSING)
    if v is _MISSING:
        raise Invalid(f"missing_field:{k}")
    if type(v) is not str or not v.isdigit() or len(v) > 19:
        raise Invalid(f"bad_type:{k}")
    i = int(v)
    if not lo <= i <= hi:
        raise Invalid(f"bad_value:{k}")
    return i


def _as_bytes(raw: object) -> bytes:
    if isinstance(raw, bytes):
        return raw
    if isinstance(raw, bytearray):
        return bytes(raw)
    if isinstance(raw, str):
        return raw.encode("utf-8", "replace")
    return repr(raw).encode("utf-8", "replace")


def make_parser(exchange: str, symbols: set[str] | None = None,
                **kw: Any) -> BinanceParser | BTCTurkParser:
    if exchange == "binance":
        return BinanceParser(symbols, **kw)
    if exchange == "btcturk":
        return BTCTurkParser(symbols, **kw)
    raise ValueError(f"exchange {exchange!r}: one of binance, btcturk")
