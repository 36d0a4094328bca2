"""Import + normalize + quality-check + write, beside a bare pyarrow CSV -> Parquet conversion.

``data import`` reports the quality of what it wrote (from the partitions in memory and the
sha256 of the bytes written); the from-disk ``data check`` of the whole lake is timed apart.

Both read the same Binance-archive-format CSV (synthetic 1m candles, 12 columns, no header) in
the same run. Target: >= 1,000,000 candles/s and within 2x of the bare conversion.
Prints one JSON object.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from spark_ray.data.importer import import_files
from spark_ray.data.quality import check_store
from spark_ray.data.readers import KLINE_COLUMNS, KLINE_TYPES
from spark_ray.data.synth import synth_candles
from spark_ray.lake import DataStore

N_MINUTES = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
START = 1_577_836_800_000  # 2020-01-01
REPEATS = 3


def make_csv(path: Path) -> int:
    t = synth_candles("BTCUSDT", "1m", START, START + N_MINUTES * 60_000, seed=1)
    n = t.num_rows
    close_time = pa.array(t.column("open_time").to_numpy() + 59_999)
    table = pa.table({
        "open_time": t.column("open_time"), "open": t.column("open"), "high": t.column("high"),
        "low": t.column("low"), "close": t.column("close"), "volume": t.column("volume"),
        "close_time": close_time, "quote_volume": t.column("quote_volume"),
        "trades": t.column("trades"), "taker_buy_base": t.column("taker_buy_base"),
        "taker_buy_quote": t.column("taker_buy_quote"), "ignore": pa.array(["0"] * n),
    })
    pacsv.write_csv(table, path, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    return n


def bare(path: Path, out: Path) -> float:
    t0 = time.perf_counter()
    table = pacsv.read_csv(path, read_options=pacsv.ReadOptions(column_names=KLINE_COLUMNS),
                           convert_options=pacsv.ConvertOptions(column_types=KLINE_TYPES))
    pq.write_table(table, out, compression="zstd")
    return time.perf_counter() - t0


def ours(path: Path, root: Path) -> tuple[float, float, float]:
    store = DataStore(root)
    t0 = time.perf_counter()
    report = import_files(store, [path], "binance-archive")
    t1 = time.perf_counter()
    quality = report["files"][0]["quality"]
    assert quality["present"] == N_MINUTES and quality["missing"] == 0
    reports = check_store(store)  # the separate, from-disk check of the whole lake
    t2 = time.perf_counter()
    assert reports[0].present == N_MINUTES
    return t1 - t0, t1 - t0, t2 - t1


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        d = Path(tmp)
        csv = d / "BTCUSDT-1m-2020.csv"
        n = make_csv(csv)
        bare_s, ours_s, imp_s, chk_s = [], [], [], []
        for i in range(REPEATS):
            bare_s.append(bare(csv, d / f"bare{i}.parquet"))
            total, imp, chk = ours(csv, d / f"lake{i}")
            ours_s.append(total)
            imp_s.append(imp)
            chk_s.append(chk)
        b, o = min(bare_s), min(ours_s)
        print(json.dumps({
            "benchmark": "data_import",
            "candles": n,
            "csv_mib": round(csv.stat().st_size / 2**20, 1),
            "repeats": REPEATS,
            "spark_ray": {"seconds": round(o, 3), "candles_per_s": round(n / o),
                          "what": "import + normalize + quality report + write",
                          "lake_check_from_disk_s": round(min(chk_s), 3)},
            "peer_bare_pyarrow_csv_to_parquet": {"seconds": round(b, 3),
                                                 "candles_per_s": round(n / b)},
            "ratio_ours_over_bare_time": round(o / b, 2),
            "targets": {"candles_per_s>=1e6": n / o >= 1e6, "within_2x_of_bare": o / b <= 2.0},
        }, indent=2))


if __name__ == "__main__":
    main()
