"""The lake against ground truth: real Parquet parts written by the streams' own store."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa

from spark_ray.chaos.ledger import LakeLedger, compare, covers
from spark_ray.schemas import TRADE_SCHEMA
from spark_ray.streams.store import StreamStore


def trades(symbol: str, ids: list[int]) -> pa.Table:
    n = len(ids)
    ts = pa.array([1_795_000_000_000 + i for i in ids], pa.timestamp("ms", tz="UTC"))
    return pa.Table.from_arrays(
        [pa.array(["binance"] * n), pa.array([symbol] * n), pa.array(ids, pa.int64()),
         pa.array([100.0] * n), pa.array([0.5] * n), pa.array([True] * n), ts, ts, ts, ts],
        schema=TRADE_SCHEMA)


def test_compare_counts_lost_extra_and_duplicates() -> None:
    truth = np.arange(1, 101)
    stored = np.concatenate([np.arange(1, 40), np.arange(50, 101), [60, 61], [500]])
    assert compare(truth, stored) == {"published": 100, "stored": 90, "lost": 10, "extra": 0,
                                      "duplicates": 2}
    assert compare(truth[:0], stored)["lost"] == 0


def test_covers() -> None:
    assert covers([(1, 50), (60, 80)], 60, 75)
    assert not covers([(1, 50), (60, 80)], 1, 60)
    assert covers([], 5, 4)


def test_ledger_reads_parts_once_and_finds_holes_and_copies(tmp_path: Path) -> None:
    root = str(tmp_path / "lake")
    store = StreamStore(root, "binance")
    store.write({"trades": trades("BTCUSDT", [*range(1, 40), *range(50, 101)])})
    store.flush()
    ledger = LakeLedger(root, "binance", ["BTCUSDT"])
    truth = {"BTCUSDT": np.arange(1, 101)}
    got = ledger.check(truth)
    assert (got["published"], got["stored"], got["lost"], got["duplicates"]) == (100, 90, 10, 0)
    assert ledger.refresh() == 0  # nothing new: no file read twice
    # The hole is filled (a REST backfill), in a new part: only that part is read.
    store.write({"trades": trades("BTCUSDT", list(range(40, 50)))})
    store.flush()
    assert ledger.refresh() == 1
    assert ledger.check(truth)["lost"] == 0
    # A second writer stores a part again: every row of it is a duplicate in the lake.
    part = next(Path(root).rglob("*.parquet"))
    shutil.copy(part, part.with_name("copy-" + part.name))
    again = ledger.check(truth)
    assert again["duplicates"] == int(len(ledger.stored("BTCUSDT")) - 100) > 0
    store.close()
