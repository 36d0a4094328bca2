"""``spark-ray data repair`` (issue 18, point 6) against the venue simulator's REST: holes made
by deleting stored rows are found in compacted files and uncompacted parts alike, back-filled
from ``historicalTrades`` into the lake, idempotently; REST failures and bad flags are reported.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from spark_ray.lake import DataStore
from spark_ray.streams.ids import IdRanges
from spark_ray.streams.repair import holes, stored_ids

from helpers import run_cli

N = 3000


def _without(truth: pa.Table, gone: list[tuple[int, int]]) -> pa.Table:
    ids = truth.column("trade_id")
    keep = pc.invert(pc.is_in(ids, pa.array([i for a, b in gone for i in range(a, b + 1)],
                                            pa.int64())))
    return truth.filter(keep)


def _store_with_holes(store: DataStore, truth: pa.Table, symbol: str,
                      gone: list[tuple[int, int]]) -> None:
    """The first half compacted (data.parquet), the rest as a sink's parts."""
    rows = _without(truth, gone)
    half = rows.num_rows // 2
    store.write_trades(rows.slice(0, half), "binance", symbol)
    store.append("trades", "binance", rows.slice(half))


def _files(root: Path) -> set[str]:
    return {str(p) for p in root.rglob("*.parquet")}


@pytest.fixture
def market(make_venue: Any) -> Any:
    v = make_venue(max_trades_per_symbol=N, trades_per_second=3000, start_paused=False)
    for s in v.config.symbols:
        v.wait_for_trades(s, N, timeout=60)
    return v


def test_holes_are_the_complement_within_the_range() -> None:
    ids = IdRanges([(5, 9), (20, 29)])
    assert holes(ids, 1, 40) == [(1, 4), (10, 19), (30, 40)]
    assert holes(ids, 6, 25) == [(10, 19)]
    assert holes(ids, 5, 9) == [] and holes(IdRanges(), 3, 4) == [(3, 4)]


def test_scan_backfills_every_hole_then_finds_nothing(market: Any, tmp_path: Path) -> None:
    v, root = market, tmp_path / "lake"
    truth = v.ground_truth("BTCUSDT")
    first = v.config.first_trade_id
    gone = [(first + 100, first + 149), (first + 1200, first + 1200),
            (first + 1300, first + 2700)]  # the last one spans two REST pages
    store = DataStore(str(root))
    _store_with_holes(store, truth, "BTCUSDT", gone)
    # DataStore.trades reads compacted files only: the scan must not take the parts for holes.
    assert store.trades("BTCUSDT").num_rows < store.read("trades", "binance", "BTCUSDT").num_rows
    assert holes(stored_ids(store, "binance", "BTCUSDT"), first, first + N - 1) == gone

    r = run_cli("data", "repair", "--store", str(root), "--exchange", "binance",
                "--symbol", "BTCUSDT", "--scan", "--base-url", v.rest_url)
    assert r.code == 0, r.err
    assert "3 hole(s), 1452 ids; wrote 1452 rows" in r.out, r.out
    progress = re.findall(r"repair BTCUSDT: (\d+) ids fetched, (\d+) hole\(s\) left", r.err)
    assert len(progress) >= 4 and progress[-1] == ("1452", "0"), r.err
    lake = DataStore(str(root)).read("trades", "binance", "BTCUSDT")
    assert lake["trade_id"].to_pylist() == truth["trade_id"].to_pylist()
    for col in ("price", "qty", "is_buyer_maker", "trade_time"):
        assert lake[col].to_pylist() == truth[col].to_pylist(), col
    filled = lake.filter(pc.is_in(lake["trade_id"], pa.array(
        [i for a, b in gone for i in range(a, b + 1)], pa.int64())))
    assert filled.num_rows == 1452 and filled["stored_time"].null_count == 0  # stamped as stored
    # compacted afterwards: the backtest's reader (compacted files only) sees the repair too
    assert DataStore(str(root)).trades("BTCUSDT")["trade_id"].to_pylist() == \
        truth["trade_id"].to_pylist()

    before = _files(root)
    again = run_cli("data", "repair", "--store", str(root), "--exchange", "binance",
                    "--symbol", "BTCUSDT", "--scan", "--base-url", v.rest_url)
    assert again.code == 0, again.err
    assert "no holes; nothing written" in again.out, again.out
    assert _files(root) == before


def test_id_range_repairs_only_that_range_and_rest_failure_names_what_is_missing(
        market: Any, tmp_path: Path) -> None:
    v, root = market, tmp_path / "lake"
    first = v.config.first_trade_id
    gone = [(first + 10, first + 19), (first + 500, first + 509)]
    _store_with_holes(DataStore(str(root)), v.ground_truth("ETHUSDT"), "ETHUSDT", gone)
    base = ["data", "repair", "--store", str(root), "--exchange", "binance",
            "--symbol", "ETHUSDT", "--base-url", v.rest_url]
    r = run_cli(*base, "--from-id", str(first), "--to-id", str(first + 300))
    assert r.code == 0, r.err
    assert "1 hole(s), 10 ids; wrote 10 rows" in r.out, r.out
    left = holes(stored_ids(DataStore(str(root)), "binance", "ETHUSDT"), first, first + N - 1)
    assert left == [gone[1]]

    v.inject("rest_error", status=503, path="/api/v3/historicalTrades")
    bad = run_cli(*base, "--scan", "--max-retries", "2")
    assert bad.code == 1, (bad.out, bad.err)
    assert "after 3 attempt(s)" in bad.err and "HTTP 503" in bad.err, bad.err
    assert "10 ids still missing" in bad.err and f"{first + 500}-{first + 509}" in bad.err, \
        bad.err
    assert holes(stored_ids(DataStore(str(root)), "binance", "ETHUSDT"), first,
                 first + N - 1) == [gone[1]]


@pytest.mark.parametrize(("flags", "field"), [
    ([], "--from-id"),
    (["--from-id", "5"], "--to-id"),
    (["--from-id", "9", "--to-id", "3"], "--to-id"),
    (["--from-id", "x", "--to-id", "3"], "--from-id"),
    (["--scan", "--from-id", "1", "--to-id", "3"], "--scan"),
    (["--scan", "--symbol", "BTC-USDT"], "--symbol"),
    (["--scan", "--exchange", "nowhere"], "--exchange"),
    (["--scan", "--exchange", "btcturk"], "--exchange"),  # ids not contiguous, no back-fill
])
def test_bad_flags_exit_2_naming_the_flag(tmp_path: Path, flags: list[str], field: str) -> None:
    args = ["data", "repair", "--store", str(tmp_path / "lake"), "--symbol", "BTCUSDT",
            "--base-url", "http://127.0.0.1:9"]
    r = run_cli(*args, *flags)
    assert r.code == 2, (r.out, r.err)
    assert f"error: {field}" in r.err, r.err
