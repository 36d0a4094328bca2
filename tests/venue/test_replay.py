"""Replay from a Parquet lake (hive partitions, CANDLE_SCHEMA) written here with plain pyarrow."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spark_ray.schemas import CANDLE_SCHEMA
from spark_ray.venue import Venue

from venue_helpers import http

# Six 1m candles across a month boundary, so they sit in two month partitions.
START = 1706745480000  # 2024-01-31 23:58 UTC
CANDLES = [
    # open, high, low, close, volume, trades
    (42000.10, 42010.00, 41990.55, 42005.00, 3.21000, 120),
    (42005.00, 42005.00, 41950.00, 41960.25, 5.00001, 95),
    (41960.25, 41999.99, 41960.25, 41999.99, 0.75000, 40),
    (41999.99, 42100.00, 41900.00, 42050.00, 12.34567, 300),
    (42050.00, 42050.00, 42050.00, 42050.00, 0.00100, 1),
    (42050.00, 42060.00, 42040.00, 42045.00, 2.00000, 50),
]


def _table(symbol: str, rows: list[tuple[float, ...]]) -> pa.Table:
    n = len(rows)
    ts = CANDLE_SCHEMA.field("open_time").type
    cols = {
        "exchange": pa.array(["binance"] * n),
        "symbol": pa.array([symbol] * n),
        "interval": pa.array(["1m"] * n),
        "open_time": pa.array([START + 60_000 * i for i in range(n)], pa.int64()).cast(ts),
        "open": pa.array([r[0] for r in rows]),
        "high": pa.array([r[1] for r in rows]),
        "low": pa.array([r[2] for r in rows]),
        "close": pa.array([r[3] for r in rows]),
        "volume": pa.array([r[4] for r in rows]),
        "quote_volume": pa.array([r[4] * r[3] for r in rows]),
        "trades": pa.array([int(r[5]) for r in rows], pa.int64()),
        "taker_buy_base": pa.array([r[4] / 2 for r in rows]),
        "taker_buy_quote": pa.array([r[4] * r[3] / 2 for r in rows]),
    }
    return pa.Table.from_pydict(cols, schema=CANDLE_SCHEMA)


def _write_lake(root: Path, symbol: str) -> None:
    table = _table(symbol, CANDLES)
    base = root / "candles" / "exchange=binance" / f"symbol={symbol}" / "interval=1m"
    for month, rows in (("2024-01", slice(0, 2)), ("2024-02", slice(2, None))):
        part = base / f"month={month}"
        part.mkdir(parents=True)
        pq.write_table(table.slice(rows.start, (rows.stop or len(table)) - rows.start),
                       part / "part-0.parquet")


def _wait_past(v: Venue, ms: int) -> None:
    deadline = time.monotonic() + 20
    while http(f"{v.rest_url}/api/v3/time")[2]["serverTime"] <= ms:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def _check_replayed(v: Venue) -> None:
    _wait_past(v, START + 60_000 * len(CANDLES))
    _, _, rows = http(f"{v.rest_url}/api/v3/klines?symbol=BTCUSDT&interval=1m"
                      f"&startTime={START}&limit={len(CANDLES)}")
    assert [r[0] for r in rows] == [START + 60_000 * i for i in range(len(CANDLES))]
    for row, (o, h, low, c, vol, n) in zip(rows, CANDLES, strict=True):
        assert [float(x) for x in row[1:6]] == [o, h, low, c, vol]
        assert row[8] == n
    truth = v.ground_truth("BTCUSDT").to_pylist()
    assert len(truth) == sum(c[5] for c in CANDLES)
    assert [t["trade_id"] for t in truth] == list(range(1, len(truth) + 1))
    first = [t for t in truth if int(t["trade_time"].timestamp() * 1000) < START + 60_000]
    assert first[0]["price"] == CANDLES[0][0] and first[-1]["price"] == CANDLES[0][3]
    assert round(sum(t["qty"] for t in first), 5) == CANDLES[0][4]


def test_replay_from_a_hive_partitioned_lake(make_venue: Any, tmp_path: Path) -> None:
    _write_lake(tmp_path, "BTCUSDT")
    v = make_venue(symbols=("BTCUSDT",), store=tmp_path, speed=600.0, trades_per_second=None)
    _check_replayed(v)


def test_replay_from_an_in_memory_table(make_venue: Any) -> None:
    v = make_venue(symbols=("BTCUSDT",), candles=_table("BTCUSDT", CANDLES), speed=600.0,
                   trades_per_second=None)
    _check_replayed(v)


def test_a_symbol_missing_from_the_lake_is_named(tmp_path: Path) -> None:
    _write_lake(tmp_path, "BTCUSDT")
    with pytest.raises(ValueError, match="store: no 1m candles for ETHUSDT"):
        Venue(symbols=("ETHUSDT",), store=tmp_path).start()


def test_replay_from_the_data_pipelines_own_lake(make_venue: Any, tmp_path: Path) -> None:
    """The lake written by spark_ray.data (constant columns kept in the path) replays too."""
    from spark_ray.lake import DataStore

    DataStore(tmp_path).write_candles(_table("BTCUSDT", CANDLES), "binance", "BTCUSDT", "1m")
    v = make_venue(symbols=("BTCUSDT",), store=tmp_path, speed=600.0, trades_per_second=None)
    _check_replayed(v)
