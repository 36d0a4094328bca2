"""The vectorized trade parser is only a shortcut: for any batch it yields exactly what the
per-frame parser yields (rows, dead letters with reasons, counts, lags), and it really takes
clean batches."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from spark_ray.adapters.binance import fastparse
from spark_ray.adapters.binance.websocket import BinanceParser
from spark_ray.adapters.events import ParsedBatch

T0 = 1_795_000_000_000
WRONG: dict[str, list[Any]] = {
    "E": ["1", 1.5, True, None, -1, 10**13 * 50], "s": [1, "btcusdt", "", "X" * 30, "DOGEUSDT"],
    "t": ["5", 5.0, False, -3, 2**70, None], "p": [100.5, "abc", "nan", "-1", "0", "inf", "1e3",
                                                  " 1", "1.", ".5", "1" * 41],
    "q": [0.25, "", "1e400", "-0.1", "0.0"], "T": ["1", 12, 2**63], "m": ["true", 1, None],
    "e": ["Trade", 3, None, "aggTrade"], "a": [None, "1"], "l": [0],
}


def frame(kind: str, i: int, sym: str = "BTCUSDT", **override: Any) -> bytes:
    stream = override.pop("_stream", f"{sym.lower()}@{kind}")
    data: dict[str, Any] = {"e": kind, "E": T0 + i, "s": sym}
    if kind == "trade":
        data["t"] = 1000 + i
    else:
        data.update(a=1000 + i, f=5000 + 2 * i, l=5001 + 2 * i)
    data.update(p=f"{100 + i % 7}.25000000", q="0.01000000", T=T0 + i, m=bool(i % 2), M=True)
    for k, v in override.items():
        if v is _DROP:
            data.pop(k, None)
        else:
            data[k] = v
    return json.dumps({"stream": stream, "data": data}, separators=(",", ":")).encode()


_DROP = object()


@st.composite
def batches(draw: Any) -> list[bytes]:
    kind = draw(st.sampled_from(["trade", "aggTrade"]))
    n = draw(st.integers(fastparse.MIN_BATCH, 160))
    out = []
    for i in range(n):
        sym = "BTCUSDT" if i % 3 else "ETHUSDT"
        if draw(st.integers(0, 9)) == 0:
            how = draw(st.sampled_from(["wrong", "drop", "stream", "raw", "other"]))
            if how == "wrong":
                k = draw(st.sampled_from(sorted(WRONG)))
                out.append(frame(kind, i, sym, **{k: draw(st.sampled_from(WRONG[k]))}))
            elif how == "drop":
                k = draw(st.sampled_from(["E", "s", "t", "p", "q", "T", "m", "a", "f", "l"]))
                out.append(frame(kind, i, sym, **{k: _DROP}))
            elif how == "stream":
                out.append(frame(kind, i, sym, _stream=draw(st.sampled_from(
                    ["ethusdt@trade", "btcusdt@tradeX", "btcusdt@aggTrade", 3]))))
            elif how == "raw":
                out.append(draw(st.sampled_from([
                    b"{", b"", b"\xff\xfe", frame(kind, i, sym) + b"x",
                    frame(kind, i, sym) + frame(kind, i + 1, sym),
                    frame(kind, i, sym).replace(b",", b",\n", 1)])))
            else:
                out.append(b'{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT",'
                           b'"b":"1.0","B":"2","a":"1.1","A":"3"}}')
        else:
            out.append(frame(kind, i, sym))
    return out


def outcome(p: ParsedBatch) -> dict[str, Any]:
    return {
        "frames": p.frames,
        "trades": {ds: {k: np.asarray(getattr(c, k)).tolist() for k in (
            "symbol", "trade_id", "price", "qty", "maker", "trade_time", "event_time",
            "recv_time")} for ds, c in p.trades.items()},
        "dead": sorted((d.reason, d.raw) for d in p.dead),
        "tickers": p.tickers, "control": p.control,
        "counts": p.counts, "lags": {k: list(v) for k, v in p.lags.items()},
    }


@settings(max_examples=150, deadline=None)
@given(batches())
def test_fast_and_slow_paths_agree(frames: list[bytes]) -> None:
    parser = BinanceParser({"BTCUSDT", "ETHUSDT"})
    recv = [T0 + 40 + i for i in range(len(frames))]
    assert outcome(parser.parse(frames, recv)) == outcome(parser._parse_slow(frames, recv, ()))


def test_clean_batches_take_the_fast_path() -> None:
    for kind in ("trade", "aggTrade"):
        frames = [frame(kind, i, "BTCUSDT" if i % 2 else "ETHUSDT") for i in range(200)]
        index = fastparse.split(frames, 1 << 20)[kind]
        assert index == list(range(200))
        ft = fastparse.parse(kind, frames, index, [T0 + 50] * 200, {"BTCUSDT", "ETHUSDT"})
        assert ft is not None and len(ft.index) == 200
        assert ft.trade_id.tolist() == [1000 + i for i in range(200)]
        # one bad row is declined, the rest still fast
        frames[7] = frame(kind, 7, p="-1")
        ft = fastparse.parse(kind, frames, index, [T0 + 50] * 200, {"BTCUSDT", "ETHUSDT"})
        assert ft is not None and 7 not in ft.index.tolist() and len(ft.index) == 199
