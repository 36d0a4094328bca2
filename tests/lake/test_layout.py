"""The lake's layout: which folder a dataset's rows go to, and how a table splits into months."""

from __future__ import annotations

import pyarrow as pa
import pytest

from spark_ray.lake.layout import (
    DATASETS,
    is_data_file,
    month_bounds,
    month_key,
    partition_dir,
    partition_month,
    split_months,
)

JAN_END = 1706745599999  # 2024-01-31T23:59:59.999Z
FEB = 1706745600000  # 2024-02-01T00:00:00Z


def test_each_dataset_maps_a_series_and_a_time_to_its_hive_folder() -> None:
    assert partition_dir("/l", "candles", "binance", "BTCUSDT", "1m", month_key(JAN_END)) == (
        "/l/candles/exchange=binance/symbol=BTCUSDT/interval=1m/month=2024-01")
    assert partition_dir("/l", "candles", "binance", "BTCUSDT", "1m", month_key(FEB)) == (
        "/l/candles/exchange=binance/symbol=BTCUSDT/interval=1m/month=2024-02")
    for dataset in ("trades", "agg_trades", "book"):
        assert partition_dir("s3b/lake", dataset, "btcturk", "ETHUSDT", month="2026-11") == (
            f"s3b/lake/{dataset}/exchange=btcturk/symbol=ETHUSDT/month=2026-11")


def test_fewer_keys_give_the_folders_above() -> None:
    assert partition_dir("/l", "trades") == "/l/trades"
    assert partition_dir("/l", "trades", "binance") == "/l/trades/exchange=binance"
    assert partition_dir("/l", "candles", "binance", "X") == "/l/candles/exchange=binance/symbol=X"
    assert partition_dir("/l", "candles", "binance", "X", "5m") == (
        "/l/candles/exchange=binance/symbol=X/interval=5m")


def test_impossible_paths_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown dataset 'klines'"):
        partition_dir("/l", "klines", "binance", "X")
    with pytest.raises(ValueError, match="trades has no interval"):
        partition_dir("/l", "trades", "binance", "X", "1m")
    with pytest.raises(ValueError, match="interval missing before month"):
        partition_dir("/l", "candles", "binance", "X", month="2024-01")
    with pytest.raises(ValueError, match="exchange missing before symbol"):
        partition_dir("/l", "book", symbol="X")


def test_months_are_utc_calendar_months() -> None:
    assert month_key(JAN_END) == "2024-01" and month_key(FEB) == "2024-02"
    assert month_bounds("2024-01") == (1704067200000, FEB)
    assert month_bounds("2023-12") == (1701388800000, 1704067200000)  # the year rolls over
    assert partition_month("/l/trades/exchange=b/symbol=X/month=2024-02/data.parquet") == "2024-02"
    assert partition_month("/l/trades/exchange=b/symbol=X") is None


def test_files_in_the_files_schema_carry_no_partition_columns() -> None:
    assert DATASETS["candles"].file_schema().names[:2] == ["open_time", "open"]
    for name, ds in DATASETS.items():
        assert not set(ds.partition_cols) & set(ds.file_schema().names), name
        assert ds.key in ds.schema.names and ds.time in ds.schema.names
    assert is_data_file("data.parquet") and is_data_file("part-1-2-000003.parquet")
    assert not is_data_file(".data.parquet.123.tmp") and not is_data_file(".x.parquet")


def _times(ms: list[int | None]) -> pa.Table:
    return pa.table({"t": pa.array(ms, pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
                     "i": list(range(len(ms)))})


def test_split_months_slices_a_sorted_table_and_groups_an_unsorted_one() -> None:
    sorted_parts = list(split_months(_times([JAN_END - 1, JAN_END, FEB, FEB + 1]), "t"))
    assert [(m, p["i"].to_pylist()) for m, p in sorted_parts] == [
        ("2024-01", [0, 1]), ("2024-02", [2, 3])]
    mixed = list(split_months(_times([FEB, JAN_END, None, FEB + 5, JAN_END - 9]), "t"))
    assert [(m, p["i"].to_pylist()) for m, p in mixed] == [
        ("1970-01", [2]), ("2024-01", [1, 4]), ("2024-02", [0, 3])]  # order kept in a month
    assert list(split_months(_times([]), "t")) == []
