"""Signals in batch on Ray, one task per (symbol, month): the partitions, each warmed up on the
tail of the months before, equal the single pass over the whole series; without the warm-up
they would not (the test can tell). ``spark-ray signals features`` writes the same values as
hive-partitioned Parquet and refuses a symbol the lake does not have.

The lake: the real XRP/ETH trades under two symbols, re-timed across month boundaries. AAA
spans October -> November; BBB spans three months with a thin middle one (300 trades, fewer
than the EMA's warm-up), so December's warm-up has to reach back into October.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

from spark_ray.app.signals_batch import batch_features, partition_features, warmup
from spark_ray.data.readers import read_freqtrade_trades
from spark_ray.lake import DataStore
from spark_ray.lake.layout import month_bounds
from spark_ray.samples import sample
from spark_ray.signals.features import Trades
from spark_ray.signals.inventory import TRADE_SIGNALS, signal

from helpers import run_cli

FEATURES = [s.name for s in TRADE_SIGNALS]
DAY = 86_400_000


def _retimed(t: pa.Table, times: np.ndarray) -> pa.Table:
    return t.set_column(t.schema.get_field_index("trade_time"), "trade_time",
                        pa.array(times, pa.int64()))


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("batch") / "lake"
    store = DataStore(root)
    t = read_freqtrade_trades(sample("XRP_ETH-trades.json.gz")).sort_by("trade_id")
    time = t.column("trade_time").to_numpy()
    nov, _ = month_bounds("2019-11")
    # AAA: the recording moved so that November starts 40% of the way in
    a = time - time[int(0.4 * len(time))] + nov
    store.write_trades(_retimed(t, a), "binance", "AAA")
    # BBB: trades [0, 5000) end in October, [5000, 5300) in November, the rest in December
    dec, _ = month_bounds("2019-12")
    b = time - time[5000] + nov  # trade 5000 opens November
    b[5300:] += dec - b[5300] + DAY  # trade 5300 on 2 December
    store.write_trades(_retimed(t, b), "binance", "BBB")
    assert store.months("trades", "binance", "AAA") == ["2019-10", "2019-11"]
    assert store.months("trades", "binance", "BBB") == ["2019-10", "2019-11", "2019-12"]
    nov_bbb = store.partition("trades", "binance", "BBB", month="2019-11")
    assert store.read_file(f"{nov_bbb}/data.parquet").num_rows == 300
    return root


def _single_pass(store: DataStore, symbol: str) -> dict[str, np.ndarray]:
    table = store.trades(symbol, "binance")
    t = Trades.from_table(table)
    out = {n: signal(n).feature.batch(t) for n in FEATURES}
    out["trade_id"] = table.column("trade_id").to_numpy()
    out["time_ms"] = t.time
    return out


def _assert_equal(got: pa.Table, want: dict[str, np.ndarray]) -> None:
    np.testing.assert_array_equal(got.column("trade_id").to_numpy(), want["trade_id"])
    np.testing.assert_array_equal(got.column("time_ms").to_numpy(), want["time_ms"])
    for n in FEATURES:
        np.testing.assert_allclose(got.column(n).to_numpy(), want[n], rtol=1e-9, atol=1e-12,
                                   err_msg=n)


def test_partitions_on_ray_equal_the_single_pass(ray_session: Any, lake: Path) -> None:
    lines: list[str] = []
    res = batch_features(str(lake), ["AAA", "BBB"], "binance", FEATURES, None, lines.append)
    store = DataStore(lake)
    assert len(lines) == len(res["partitions"]) == 5  # a progress line per partition
    assert res["rows"] == 2 * store.trades("AAA").num_rows
    warm = {(p["symbol"], p["month"]): p["warmup_rows"] for p in res["partitions"]}
    need = warmup([signal(n).feature for n in FEATURES])
    assert warm[("AAA", "2019-10")] == warm[("BBB", "2019-10")] == 0
    assert warm[("AAA", "2019-11")] >= need.trades == 921  # the EMA's, span 50
    assert warm[("BBB", "2019-12")] >= need.trades > 300  # reached back past November
    for symbol in ("AAA", "BBB"):
        months = sorted(k for k in res["tables"] if k.startswith(symbol + "/"))
        got = pa.concat_tables([res["tables"][k] for k in months])
        _assert_equal(got, _single_pass(store, symbol))


def test_without_the_warm_up_a_month_would_start_cold(lake: Path) -> None:
    """The equality above is not vacuous: November computed from its own trades alone differs
    from the single pass (the EMA restarts, the windows start empty)."""
    store = DataStore(lake)
    cold = partition_features(str(lake), "binance", "AAA", "2019-11", [], FEATURES, None)
    want = _single_pass(store, "AAA")
    first = int(np.searchsorted(want["time_ms"], month_bounds("2019-11")[0]))
    got = cold["table"]
    ema = got.column("ema_deviation_50").to_numpy()
    assert np.max(np.abs(ema - want["ema_deviation_50"][first:])) > 1e-5
    assert np.isnan(got.column("realized_vol_50").to_numpy()[0])
    assert np.isfinite(want["realized_vol_50"][first])


def test_cli_writes_hive_parquet_equal_to_the_single_pass(lake: Path, tmp_path: Path) -> None:
    """Relative --store and --out, as a user types them (the driver makes them absolute: on a
    cluster a task's working folder is not the user's)."""
    out = tmp_path / "features"
    res = run_cli("signals", "features", "--store", os.path.relpath(lake, tmp_path),
                  "--symbols", "AAA,BBB", "--out", "features", cwd=tmp_path)
    assert res.code == 0, res.err
    assert res.err.count("warm-up") == 5, res.err  # a progress line per partition
    assert "5 partitions" in res.out, res.out
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.parquet"))
    assert files == [f"exchange=binance/symbol={s}/month={m}/data.parquet" for s, m in
                     [("AAA", "2019-10"), ("AAA", "2019-11"), ("BBB", "2019-10"),
                      ("BBB", "2019-11"), ("BBB", "2019-12")]]
    table = ds.dataset(out, format="parquet", partitioning="hive").to_table()
    store = DataStore(lake)
    for symbol in ("AAA", "BBB"):
        mine = table.filter(pc.equal(table.column("symbol"), symbol)).sort_by("trade_id")
        _assert_equal(mine, _single_pass(store, symbol))
    assert (out / "_summary.json").is_file()


def test_cli_symbol_missing_from_the_lake_exits_2_naming_symbols(lake: Path,
                                                                 tmp_path: Path) -> None:
    res = run_cli("signals", "features", "--store", str(lake), "--symbols", "AAA,NOPE",
                  "--out", str(tmp_path / "features"))
    assert res.code == 2, res.out + res.err
    assert "--symbols" in res.err and "NOPE" in res.err, res.err
    assert not (tmp_path / "features").exists()
