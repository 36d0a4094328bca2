"""Kline streams land in the lake as candles: the same ``candles/`` tree, schema and reader as the
REST ETL, closed candles only, each open time once (WAL replays and re-sends deduplicated)."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pyarrow as pa

from spark_ray.lake import DataStore
from spark_ray.schemas import CANDLE_SCHEMA
from spark_ray.streams.normalize import NormalizerConfig, NormalizerCore
from spark_ray.streams.store import StreamStore

from streams_helpers import total

T0 = 1_790_000_040_000  # a minute boundary (ms)


def _frame(open_time: int, close: str, closed: bool, n: int = 3) -> bytes:
    k = {"t": open_time, "T": open_time + 59_999, "s": "BTCUSDT", "i": "1m", "f": 1, "L": n,
         "o": "100.0", "c": close, "h": "101.5", "l": "99.5", "v": "2.5", "n": n, "x": closed,
         "q": "250.0", "V": "1.25", "Q": "125.0", "B": "0"}
    return json.dumps({"stream": "btcusdt@kline_1m",
                       "data": {"e": "kline", "E": open_time + 60_000, "s": "BTCUSDT",
                                "k": k}}).encode()


def test_only_closed_klines_become_candle_rows() -> None:
    core = NormalizerCore(NormalizerConfig(symbols=("BTCUSDT",)))
    frames = [_frame(T0, "100.5", False), _frame(T0, "100.7", True),
              _frame(T0 + 60_000, "100.9", False)]
    out = core.process(frames, [T0 + 60_001] * 3, T0 + 60_002)
    t = out.candles
    assert t is not None and t.schema.equals(CANDLE_SCHEMA)
    row = t.to_pylist()
    assert len(row) == 1
    r = row[0]
    assert (r["symbol"], r["interval"], r["close"], r["volume"], r["trades"]) == (
        "BTCUSDT", "1m", 100.7, 2.5, 3)
    assert (r["quote_volume"], r["taker_buy_base"], r["taker_buy_quote"]) == (250.0, 1.25, 125.0)
    assert r["open_time"].timestamp() * 1000 == T0
    assert out.rows() == 1


def test_store_writes_candles_once_across_resends_and_restarts(tmp_path: Path) -> None:
    core = NormalizerCore(NormalizerConfig(symbols=("BTCUSDT",)))
    closed = core.process([_frame(T0 + i * 60_000, f"10{i}.0", True) for i in range(3)],
                          [T0] * 3, T0).candles
    assert closed is not None
    root, wal = str(tmp_path / "lake"), str(tmp_path / "wal")
    store = StreamStore(root, "binance", wal)
    assert store.write({"candles": closed}).accepted == 3
    assert store.write({"candles": closed.slice(1)}).duplicates == 2  # an at-least-once resend
    # Not flushed: a crash here leaves the rows only in the WAL; a new store replays them.
    store.wal.release()
    again = StreamStore(root, "binance", wal)
    assert again.replayed_rows == 3
    assert again.write({"candles": closed}).duplicates == 3  # marks come from the lake
    again.close()
    lake = DataStore(root).candles("BTCUSDT", "1m")
    assert [c.timestamp() * 1000 for c in lake.column("open_time").to_pylist()] == [
        T0, T0 + 60_000, T0 + 120_000]
    assert lake.column("close").to_pylist() == [100.0, 101.0, 102.0]
    assert pa.compute.all(pa.compute.equal(lake.column("interval"), "1m")).as_py()


def test_kline_stream_stores_candles_equal_to_rest(make_venue: Any, make_fabric: Any) -> None:
    # At speed 120 a 1m candle closes every half second of wall time.
    v = make_venue(speed=120.0, kline_push_s=0.2, trades_per_second=40, start_paused=False)
    f = make_fabric(v, streams=["trade", "kline_1m"])
    store = DataStore(f.cfg.store)
    deadline = time.monotonic() + 60
    while not all(store.candles(s, "1m").num_rows >= 4 for s in v.config.symbols):
        assert time.monotonic() < deadline, "no candles stored from the kline stream"
        time.sleep(0.3)
    st = f.status()
    f.stop(compact=True)
    assert total(st, "normalizer", "dead_letters") == 0  # every kline frame parsed
    assert total(st, "sink", "candles_written") >= 4 * len(v.config.symbols)
    for sym in v.config.symbols:
        lake = store.candles(sym, "1m").to_pylist()
        times = [int(r["open_time"].timestamp() * 1000) for r in lake]
        assert times == sorted(set(times)), "each open time once, in order"
        url = (f"{v.rest_url}/api/v3/klines?symbol={sym}&interval=1m&startTime={times[0]}"
               f"&endTime={times[-1]}&limit=1000")
        with urllib.request.urlopen(url, timeout=10) as resp:  # loopback venue
            rest = {row[0]: row for row in json.load(resp)}
        for r, t in zip(lake, times, strict=True):
            row = rest[t]
            assert [r["open"], r["high"], r["low"], r["close"], r["volume"], r["quote_volume"],
                    r["trades"]] == [float(row[1]), float(row[2]), float(row[3]),
                                     float(row[4]), float(row[5]), float(row[7]), row[8]], sym
