"""Vectorized fast path for Binance ``trade`` and ``aggTrade`` combined-stream frames.

The per-frame parser (:class:`~spark_ray.adapters.binance.websocket.BinanceParser`) costs ~10 µs
a frame, most of it ``json.loads`` and per-field checks in Python: at tens of thousands of
frames a second it is the fabric's bottleneck. Trade frames are uniform, so a batch of them is
joined into NDJSON and read by pyarrow's C++ JSON reader with an explicit schema, then validated
with the same rules as the slow path, column-wise.

The fast path only ever *accepts*. A row it is not sure about (a type the reader coerced, a
failed check, a stream name it does not recognise verbatim) goes back to the slow path, which
decides and names the dead-letter reason; if the reader rejects the block as a whole, every frame
does. So outcomes are the slow path's by construction, only cheaper when frames are clean.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from spark_ray.adapters.events import MAX_ID, MAX_TIME_MS, MIN_TIME_MS, SYMBOL_PATTERN

MIN_BATCH = 64  # below this the reader's fixed cost outweighs the per-frame savings

_MARKS = {"trade": b'@trade","data":{"e":"trade",',
          "aggTrade": b'@aggTrade","data":{"e":"aggTrade",'}

_COMMON = [("E", pa.int64()), ("s", pa.string()), ("p", pa.string()), ("q", pa.string()),
           ("T", pa.int64()), ("m", pa.bool_())]
_SCHEMAS = {
    "trade": pa.schema([("stream", pa.string()), ("data", pa.struct(
        [("e", pa.string()), ("t", pa.int64()), *_COMMON]))]),
    "aggTrade": pa.schema([("stream", pa.string()), ("data", pa.struct(
        [("e", pa.string()), ("a", pa.int64()), ("f", pa.int64()), ("l", pa.int64()),
         *_COMMON]))]),
}
_PARSE = {k: pj.ParseOptions(explicit_schema=s, unexpected_field_behavior="ignore",
                             newlines_in_values=False) for k, s in _SCHEMAS.items()}
_READ = pj.ReadOptions(use_threads=False, block_size=1 << 26)


@dataclass
class FastTrades:
    """Accepted rows of one kind, column-wise (numpy), in frame order."""

    kind: str  # trade | aggTrade
    index: np.ndarray  # positions of the accepted frames in the batch
    symbol: np.ndarray  # object (str)
    trade_id: np.ndarray
    price: np.ndarray
    qty: np.ndarray
    maker: np.ndarray
    trade_time: np.ndarray
    event_time: np.ndarray
    recv_time: np.ndarray


def split(frames: list[bytes], max_frame_bytes: int) -> dict[str, list[int]]:
    """Indices of frames that look like trade/aggTrade envelopes, by kind. Only a cheap bytes
    check: a frame sent here wrongly (odd key order, a newline, two objects) costs speed, never
    correctness, because :func:`parse` validates everything and declines what it cannot."""
    out: dict[str, list[int]] = {"trade": [], "aggTrade": []}
    t_mark, a_mark = _MARKS["trade"], _MARKS["aggTrade"]
    trades, aggs = out["trade"], out["aggTrade"]
    for i, raw in enumerate(frames):
        if type(raw) is not bytes or len(raw) > max_frame_bytes:
            continue
        head = raw[:80]
        if t_mark in head:
            trades.append(i)
        elif a_mark in head:
            aggs.append(i)
    return out


def parse(kind: str, frames: list[bytes], index: list[int], recv_ms: list[int],
          symbols: set[str] | None) -> FastTrades | None:
    """Read and validate ``frames[index]``; ``None`` when the block must take the slow path.
    Rows that fail a check are left out of the result (the caller sends them slow)."""
    if len(index) < MIN_BATCH:
        return None
    blob = b"\n".join([frames[i] for i in index])
    try:
        table = pj.read_json(io.BytesIO(blob), read_options=_READ, parse_options=_PARSE[kind])
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    if table.num_rows != len(index):
        return None
    data = table.column("data").combine_chunks()
    stream = table.column("stream").combine_chunks()
    f = {name: data.field(name) for name in data.type.names}
    sym = f["s"]
    ok = pc.and_(pc.equal(f["e"], kind), pc.equal(
        stream, pc.binary_join_element_wise(pc.utf8_lower(sym), f"@{kind}", "")))
    ok = pc.and_(ok, pc.match_substring_regex(sym, SYMBOL_PATTERN))
    if symbols is not None:
        ok = pc.and_(ok, pc.is_in(sym, value_set=pa.array(sorted(symbols), pa.string())))
    id_cols = ("t",) if kind == "trade" else ("a", "f", "l")
    for name in id_cols:
        ok = pc.and_(ok, _between(f[name], 0, MAX_ID))
    if kind == "aggTrade":
        ok = pc.and_(ok, pc.greater_equal(f["l"], f["f"]))
    for name in ("E", "T"):
        ok = pc.and_(ok, _between(f[name], MIN_TIME_MS, MAX_TIME_MS))
    ok = pc.and_(ok, pc.is_valid(f["m"]))
    prices = []
    for name in ("p", "q"):
        col = f[name]
        ok = pc.and_(ok, pc.less_equal(pc.utf8_length(col), 40))
        ok = pc.and_(ok, pc.match_substring_regex(col, r"^[0-9]+(\.[0-9]+)?$"))
        num = pc.cast(pc.if_else(ok, col, "1"), pa.float64())  # ok rows are plain decimals
        ok = pc.and_(ok, pc.greater(num, 0.0))
        prices.append(num)
    ok = pc.fill_null(ok, False)
    keep = np.asarray(ok.to_numpy(zero_copy_only=False), dtype=bool)
    idx = np.asarray(index, dtype=np.int64)
    recv = np.asarray(recv_ms, dtype=np.int64)[idx]
    if not keep.all():
        sel = np.flatnonzero(keep)
        take = pa.array(sel)
        idx, recv = idx[sel], recv[sel]
        sym = sym.take(take)
        f = {k: v.take(take) for k, v in f.items()}
        prices = [p.take(take) for p in prices]
    return FastTrades(
        kind=kind, index=idx,
        symbol=sym.to_numpy(zero_copy_only=False),
        trade_id=_np(f["t"] if kind == "trade" else f["a"]),
        price=_np(prices[0]), qty=_np(prices[1]),
        maker=np.asarray(f["m"].to_numpy(zero_copy_only=False), dtype=bool),
        trade_time=_np(f["T"]), event_time=_np(f["E"]), recv_time=recv)


def _between(col: pa.Array, lo: int, hi: int) -> pa.Array:
    return pc.and_(pc.greater_equal(col, lo), pc.less_equal(col, hi))


def _np(col: pa.Array) -> np.ndarray:
    return np.asarray(col.to_numpy(zero_copy_only=False))
