"""Book rows survive writes that arrive out of order: the sink keeps every update id it has not
stored (exactly, over a recent window), where it used to keep only ids above the last stored,
and so lost the earlier write's rows whenever a later write reached it first."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from spark_ray.lake import DataStore
from spark_ray.lake.layout import BOOK
from spark_ray.recent_ids import RecentIds
from spark_ray.schemas import BOOK_SCHEMA
from spark_ray.streams.store import StreamStore


def _book(ids: list[int]) -> pa.Table:
    n = len(ids)
    ts = pa.array(np.asarray(ids, dtype=np.int64) + 1_700_000_000_000,
                  pa.timestamp("ms", tz="UTC"))
    return pa.table({"exchange": ["binance"] * n, "symbol": ["BTCUSDT"] * n,
                     "source": ["bookTicker"] * n, "update_id": ids,
                     "bid_price": [1.0] * n, "bid_qty": [1.0] * n, "ask_price": [2.0] * n,
                     "ask_qty": [1.0] * n, "event_time": ts, "recv_time": ts},
                    schema=BOOK_SCHEMA)


def test_recent_ids_exact_in_the_window_then_a_floor() -> None:
    r = RecentIds(window=3)
    assert [r.take(u) for u in (5, 3, 5, 4)] == [True, True, False, True]
    assert r.take(9) and r.floor == 5  # 5 left the window: at or below it counts as taken
    assert not r.take(2) and not r.take(5) and r.take(6)


def test_a_later_write_first_loses_no_book_row(tmp_path: Path) -> None:
    s = StreamStore(str(tmp_path / "lake"), "binance")
    s.write({BOOK: _book([20, 21, 22])})  # the later batch reached the sink first
    s.write({BOOK: _book([10, 11, 12])})
    s.write({BOOK: _book([11, 22])})  # a resend: duplicates
    s.flush()
    s.close()
    got = DataStore(str(tmp_path / "lake")).read(BOOK, "binance", "BTCUSDT")
    assert sorted(got.column("update_id").to_pylist()) == [10, 11, 12, 20, 21, 22]
    # a restarted sink seeds its ids from the lake: a replayed old write stays out
    s2 = StreamStore(str(tmp_path / "lake"), "binance")
    s2.write({BOOK: _book([10, 12, 13])})
    s2.flush()
    s2.close()
    got = DataStore(str(tmp_path / "lake")).read(BOOK, "binance", "BTCUSDT")
    assert sorted(got.column("update_id").to_pylist()) == [10, 11, 12, 13, 20, 21, 22]
