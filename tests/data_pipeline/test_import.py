"""Importing real files: counts, formats, idempotency, bad inputs that write nothing."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from spark_ray.data.importer import import_files
from spark_ray.data.quality import check_store
from spark_ray.errors import UserError
from spark_ray.lake import DataStore
from spark_ray.samples import SAMPLES, sample

from helpers import DATA, run_cli

ARCHIVE_HEAD = DATA / "binance-format" / "ADABTC-1m-2021-11-27.head.csv"


def _lake_digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.parquet"))}


def _quality(store: DataStore) -> dict[str, object]:
    return {f"{q.symbol}/{q.interval}": q for q in check_store(store)}


def test_every_real_file_imports_with_known_counts(tmp_path: Path) -> None:
    store = DataStore(tmp_path / "lake")
    files = [*sorted(SAMPLES.glob("*.feather")), sample("ALT_BTC-1m.json"),
             sample("XRP_ETH-trades.json.gz")]
    report = import_files(store, files, "freqtrade")
    assert report["rows_in"] == 5760 + 5720 + 5760 + 2469 + 13681 + 12477
    q = _quality(store)
    alt = q["ALTBTC/1m"]
    assert (alt.expected, alt.present, alt.missing) == (14_398, 13_681, 717)
    assert alt.first == "2017-11-04T23:02:00Z" and alt.last == "2017-11-14T22:59:00Z"
    ada = q["ADABTC/5m"]
    assert (ada.expected, ada.missing) == (5760, 40)
    assert q["ETHBTC/5m"].missing == 0 and q["LTCBTC/5m"].missing == 0
    assert q["XRPETH/1m"].present == 2469
    trades = store.trades("XRPETH")
    assert trades.num_rows == 12_477
    ids = trades.column("trade_id").to_numpy()
    assert np.all(np.diff(ids) > 0)  # sorted, unique
    assert trades.column("trade_time").type == pa.timestamp("ms", tz="UTC")


def test_import_reports_quality_and_checksums_of_what_it_wrote(tmp_path: Path) -> None:
    store = DataStore(tmp_path / "lake")
    report = import_files(store, [sample("ADA_BTC-5m.feather")], "freqtrade")
    q = report["files"][0]["quality"]
    assert (q["expected"], q["present"], q["missing"]) == (5760, 5720, 40)
    on_disk = {p: hashlib.sha256(Path(p).read_bytes()).hexdigest()
               for p in report["files"][0]["written"]}
    assert report["files"][0]["sha256"] == on_disk
    assert [m["sha256"] for m in q["months"]] == list(on_disk.values())
    assert q == check_store(store)[0].as_dict()  # same as the from-disk check


def test_lake_is_readable_without_this_package(tmp_path: Path) -> None:
    import_files(DataStore(tmp_path / "lake"), [sample("ETH_BTC-5m.feather")], "freqtrade")
    dataset = ds.dataset(tmp_path / "lake" / "candles", format="parquet", partitioning="hive")
    table = dataset.to_table(filter=(ds.field("symbol") == "ETHBTC"))
    assert table.num_rows == 5760
    assert {"exchange", "symbol", "interval", "month", "open_time", "close"} <= set(
        table.column_names)
    assert table.column("open_time").type == pa.timestamp("ms", tz="UTC")
    df = pd.read_parquet(tmp_path / "lake" / "candles")
    assert len(df) == 5760


def test_datastore_api_ranges_and_arrays(tmp_path: Path) -> None:
    store = DataStore(tmp_path / "lake")
    import_files(store, [sample("ETH_BTC-5m.feather")], "freqtrade")
    t = store.candles("ETHBTC", "5m", start="2018-01-15", end="2018-01-16")
    assert t.num_rows == 288
    arrays = store.candles_numpy("ETHBTC", "5m")
    assert arrays["close"].flags["C_CONTIGUOUS"] and arrays["close"].dtype == np.float64
    assert len(arrays["open_time"]) == 5760
    df = store.candles_pandas("ETHBTC", "5m")
    assert str(df.index.tz) == "UTC" and df.index.is_monotonic_increasing


def test_reimport_is_idempotent_byte_for_byte(tmp_path: Path) -> None:
    files = [sample("ETH_BTC-5m.feather"), sample("ALT_BTC-1m.json")]
    a, b = tmp_path / "a", tmp_path / "b"
    import_files(DataStore(a), files, "freqtrade")
    first = _lake_digest(a)
    report = import_files(DataStore(a), files, "freqtrade")  # same input again
    assert _lake_digest(a) == first
    assert all(f["conflicts"] == 0 for f in report["files"])
    import_files(DataStore(b), files, "freqtrade")  # and a fresh lake gets identical files
    assert _lake_digest(b) == first


def _archive_rows(unit: str) -> str:
    lines = ARCHIVE_HEAD.read_text().splitlines()
    if unit == "us":
        out = []
        for line in lines:
            f = line.split(",")
            f[0], f[6] = f[0] + "000", f[6] + "999"
            out.append(",".join(f))
        lines = out
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("unit", ["ms", "us"])
@pytest.mark.parametrize("header", [False, True])
@pytest.mark.parametrize("zipped", [False, True])
def test_binance_archive_units_headers_zip(tmp_path: Path, unit: str, header: bool,
                                          zipped: bool) -> None:
    text = _archive_rows(unit)
    if header:
        text = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,"
                "taker_buy_volume,taker_buy_quote_volume,ignore\n") + text
    name = "ADABTC-1m-2021-11-27"
    if zipped:
        path = tmp_path / f"{name}.zip"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr(f"{name}.csv", text)
    else:
        path = tmp_path / f"{name}.csv"
        path.write_text(text)
    store = DataStore(tmp_path / "lake")
    import_files(store, [path], "binance-archive")
    t = store.candles("ADABTC", "1m")
    assert t.num_rows == 10
    assert t.column("open_time")[0].as_py().isoformat() == "2021-11-27T00:00:00+00:00"
    assert t.column("trades")[0].as_py() == 79
    assert t.column("quote_volume")[0].as_py() == pytest.approx(1.03547608)


def test_binance_trade_archives(tmp_path: Path) -> None:
    trades = tmp_path / "BTCUSDT-trades-2024-01-01.csv"
    trades.write_text("1,42000.1,0.5,21000.05,1704067200000,True,True\n"
                      "2,42000.2,0.1,4200.02,1704067200123,False,True\n"
                      "2,42000.2,0.1,4200.02,1704067200123,False,True\n")
    agg = tmp_path / "BTCUSDT-aggTrades-2024-01-01.csv"
    agg.write_text("10,42000.1,0.6,1,2,1704067200000000,True,True\n")  # microseconds
    store = DataStore(tmp_path / "lake")
    report = import_files(store, [trades, agg], "binance-archive")
    assert report["files"][0]["duplicates"] == 1
    assert store.trades("BTCUSDT").column("trade_id").to_pylist() == [1, 2]
    a = store.trades("BTCUSDT", dataset="agg_trades")
    assert a.column("trade_time")[0].as_py().isoformat() == "2024-01-01T00:00:00+00:00"


def test_generic_csv_with_mapping(tmp_path: Path) -> None:
    f = tmp_path / "mine.csv"
    f.write_text("ts,o,h,l,c,v\n1704067200,1,2,0.5,1.5,10\n1704067260,1.5,2,1,1.2,11\n")
    store = DataStore(tmp_path / "lake")
    import_files(store, [f], "csv", symbol="FOOBAR", interval="1m", time_unit="s",
                 mapping={"open_time": "ts", "open": "o", "high": "h", "low": "l",
                          "close": "c", "volume": "v"})
    assert store.candles("FOOBAR", "1m").column("close").to_pylist() == [1.5, 1.2]


def test_duplicates_and_conflicts_are_counted_not_merged(tmp_path: Path) -> None:
    f = tmp_path / "XYZBTC-1m-2021-11-27.csv"
    lines = ARCHIVE_HEAD.read_text().splitlines()
    conflict = lines[2].split(",")
    conflict[4] = "0.00009999"  # same open time, different close
    f.write_text("\n".join([*lines, lines[1], ",".join(conflict)]) + "\n")
    store = DataStore(tmp_path / "lake")
    report = import_files(store, [f], "binance-archive")
    stats = report["files"][0]
    assert (stats["duplicates"], stats["conflicts"]) == (1, 1)
    assert stats["conflict_keys"] == [int(lines[2].split(",")[0])]
    t = store.candles("XYZBTC", "1m")
    assert t.num_rows == 10
    assert t.column("close")[2].as_py() == float(lines[2].split(",")[4])  # first seen kept


def _bad_inputs(tmp_path: Path) -> list[tuple[Path, str, str]]:
    good = ARCHIVE_HEAD.read_text()
    out = []
    trunc = tmp_path / "AAABTC-1m-2021-11-27.zip"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("AAABTC-1m-2021-11-27.csv", good * 50)
    trunc.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    out.append((trunc, "binance-archive", "not a valid zip archive"))
    cols = tmp_path / "BBBBTC-1m-2021-11-27.csv"
    lines = good.splitlines()
    lines[3] = ",".join(lines[3].split(",")[:11])
    cols.write_text("\n".join(lines) + "\n")
    out.append((cols, "binance-archive", "Expected 12 columns, got 11"))
    text = tmp_path / "CCCBTC-1m-2021-11-27.csv"
    lines = good.splitlines()
    f = lines[4].split(",")
    f[2] = "abc"
    lines[4] = ",".join(f)
    text.write_text("\n".join(lines) + "\n")
    out.append((text, "binance-archive", "'abc'"))
    js = tmp_path / "DDD_BTC-1m.json"
    js.write_text('[[1509836520000, 1, 1, 1, 1, 1], [1509836580000, 1, "x", 1, 1, 1]]')
    out.append((js, "freqtrade", "row 2: column 'high': not a number: 'x'"))
    return out


def test_bad_inputs_name_file_and_row_and_write_nothing(tmp_path: Path) -> None:
    store = DataStore(tmp_path / "lake")
    good = {"freqtrade": sample("ETH_BTC-5m.feather"), "binance-archive": ARCHIVE_HEAD}
    for path, fmt, needle in _bad_inputs(tmp_path):
        # A good file listed first must not be written either: parse all, then write.
        with pytest.raises(UserError) as info:
            import_files(store, [good[fmt], path], fmt)
        assert str(path) in str(info.value) and needle in str(info.value), str(info.value)
    assert not (tmp_path / "lake").exists() or not list((tmp_path / "lake").rglob("*.parquet"))
    text_case = _bad_inputs(tmp_path)[2][0]
    with pytest.raises(UserError, match=r"row 5: column 'high': not a valid double: 'abc'"):
        import_files(store, [text_case], "binance-archive")


def test_cli_import_errors_exit_2(tmp_path: Path) -> None:
    res = run_cli("data", "import", "--store", str(tmp_path / "lake"), "--format", "freqtrade",
                  "--interval", "7m", str(sample("ETH_BTC-5m.feather")), cwd=tmp_path)
    assert res.code == 2 and "--interval: unknown interval '7m'" in res.err
    bad = _bad_inputs(tmp_path)[0][0]
    res = run_cli("data", "import", "--store", str(tmp_path / "lake"), "--format",
                  "binance-archive", str(bad), cwd=tmp_path)
    assert res.code == 2 and str(bad) in res.err and "Traceback" not in res.err

