"""DataStore on any filesystem: merged candle files, streamed parts, compaction, reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from spark_ray.data.importer import import_files
from spark_ray.lake import DataStore
from spark_ray.samples import sample
from spark_ray.schemas import BOOK_SCHEMA, TRADE_SCHEMA

FEB_END = 1709251200000 - 6_000  # 6 s before 2024-03-01T00:00Z
MS = pa.timestamp("ms", tz="UTC")


def test_any_pyarrow_filesystem_uri(tmp_path: Path) -> None:
    local = DataStore(f"file://{tmp_path / 'lake'}")
    import_files(local, [sample("ETH_BTC-5m.feather")], "freqtrade")
    assert DataStore(tmp_path / "lake").candles("ETHBTC", "5m").num_rows == 5760
    mem = DataStore("mock:///lake")  # pyarrow's in-memory filesystem: the non-local code path
    import_files(mem, [sample("ETH_BTC-5m.feather")], "freqtrade")
    assert mem.candles("ETHBTC", "5m").equals(DataStore(tmp_path / "lake").candles("ETHBTC", "5m"))
    assert [c.rows for c in mem.coverage()] == [5760]


def _trades(sym: str, ids: list[int]) -> pa.Table:
    t = np.asarray(ids, dtype=np.int64) * 1000 + FEB_END
    n = len(ids)
    return pa.table({"exchange": ["binance"] * n, "symbol": [sym] * n, "trade_id": ids,
                     "price": [1.0 + i for i in ids], "qty": [0.5] * n,
                     "is_buyer_maker": [i % 2 == 0 for i in ids],
                     "trade_time": pa.array(t).cast(MS), "event_time": pa.array(t).cast(MS),
                     "recv_time": pa.array(t).cast(MS), "stored_time": pa.array(t).cast(MS)},
                    schema=TRADE_SCHEMA)


def _book(sym: str, rows: list[tuple[str, int]]) -> pa.Table:
    n = len(rows)
    t = pa.array([FEB_END] * n).cast(MS)
    return pa.table({"exchange": ["binance"] * n, "symbol": [sym] * n,
                     "source": [s for s, _ in rows], "update_id": [u for _, u in rows],
                     "bid_price": [1.0] * n, "bid_qty": [1.0] * n, "ask_price": [2.0] * n,
                     "ask_qty": [1.0] * n, "event_time": t, "recv_time": t}, schema=BOOK_SCHEMA)


@pytest.mark.parametrize("where", ["local", "mock"])
def test_parts_read_deduplicated_and_compact_into_one_file(tmp_path: Path, where: str) -> None:
    lake = DataStore(tmp_path / "lake" if where == "local" else f"mock:///{tmp_path.name}")
    # ids 1-5 end February, 6-9 start March; a resend (4, 5) lands in a second part
    first = lake.append("trades", "binance", pa.concat_tables(
        [_trades("BTCUSDT", [5, 3, 1, 2, 4, 6, 7]), _trades("ETHUSDT", [1])]))
    assert [p.split("/month=")[1].split("/")[0] for p in first] == ["2024-02", "2024-03",
                                                                     "2024-02"]
    lake.append("trades", "binance", _trades("BTCUSDT", [4, 5, 8, 9]))
    stored = lake.read_file(first[0])
    assert stored.column_names == [f.name for f in TRADE_SCHEMA][2:]  # folder names hold those
    assert stored["trade_id"].to_pylist() == [1, 2, 3, 4, 5]  # each part in id order
    want = list(range(1, 10))
    assert lake.read("trades", "binance", "BTCUSDT")["trade_id"].to_pylist() == want
    assert lake.read("trades", "binance", "BTCUSDT").schema == TRADE_SCHEMA
    assert lake.compact("trades", "binance", "BTCUSDT") == 4
    assert [p.rsplit("/", 1)[1] for p in lake.files("trades", "binance", "BTCUSDT")] == [
        "data.parquet", "data.parquet"]
    assert lake.read("trades", "binance", "BTCUSDT")["trade_id"].to_pylist() == want
    assert lake.trades("BTCUSDT")["trade_id"].to_pylist() == want  # merged files only
    assert lake.compact("trades", "binance", "BTCUSDT") == 0


def test_book_rows_read_by_source_then_update_id(tmp_path: Path) -> None:
    lake = DataStore(tmp_path)
    lake.append("book", "binance", _book("BTCUSDT", [("depth", 7), ("bookTicker", 9)]))
    lake.append("book", "binance", _book("BTCUSDT", [("depth", 3), ("bookTicker", 2)]))
    got = lake.read("book", "binance", "BTCUSDT")
    assert list(zip(got["source"].to_pylist(), got["update_id"].to_pylist(), strict=True)) == [
        ("bookTicker", 2), ("bookTicker", 9), ("depth", 3), ("depth", 7)]
    assert got.schema == BOOK_SCHEMA
    with pytest.raises(ValueError, match="candles are merged"):
        lake.append("candles", "binance", got)


def test_plain_pyarrow_reads_the_tree_with_hive_partitions(tmp_path: Path) -> None:
    lake = DataStore(tmp_path)
    import_files(lake, [sample("ETH_BTC-5m.feather")], "freqtrade")
    lake.append("trades", "binance", _trades("BTCUSDT", [1, 2, 3]))
    candles = ds.dataset(tmp_path / "candles", partitioning="hive").to_table()
    assert set(candles["symbol"].to_pylist()) == {"ETHBTC"} and candles.num_rows == 5760
    trades = ds.dataset(tmp_path / "trades", partitioning="hive").to_table()
    assert trades["trade_id"].to_pylist() == [1, 2, 3]
    assert set(trades["month"].to_pylist()) == {"2024-02"}
