"""Ingest job: build or extend a Parquet lake (REST fetch, archive import, or synthetic data)
and print its quality summary.

    python drivers/ingest.py --store lake --synth BTCUSDT,ETHUSDT --interval 1m \
        --start 2024-01-01 --end 2024-01-08
    python drivers/ingest.py --store lake --fetch BTCUSDT --interval 1m --start ... --end ... \
        [--base-url https://api.binance.com]
    python drivers/ingest.py --store lake --import-freqtrade FILE [FILE ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import run


def build(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", required=True)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--synth", metavar="SYMBOLS")
    src.add_argument("--fetch", metavar="SYMBOLS")
    src.add_argument("--import-freqtrade", nargs="+", metavar="FILE")
    p.add_argument("--interval", default="1m")
    p.add_argument("--start")
    p.add_argument("--end")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--base-url", default=None)


def job(args: argparse.Namespace) -> dict[str, Any]:
    from spark_ray.app.cli.data import parse_symbols, parse_time
    from spark_ray.data.quality import check_store
    from spark_ray.lake import DataStore

    store = DataStore(args.store)
    out: dict[str, Any] = {"store": store.uri}
    if args.import_freqtrade:
        from spark_ray.data.importer import import_files

        out["imported_rows"] = import_files(store, [Path(f) for f in args.import_freqtrade],
                                            "freqtrade")["rows_in"]
    else:
        symbols = parse_symbols(args.synth or args.fetch)
        start, end = parse_time("--start", args.start), parse_time("--end", args.end)
        if args.synth:
            from spark_ray.data.synth import synth_candles

            for s in symbols:
                store.write_candles(synth_candles(s, args.interval, start, end, args.seed),
                                    "binance", s, args.interval)
            out["synthesized"] = symbols
        else:
            from spark_ray.app.etl import BINANCE_REST, run_fetch

            res = run_fetch(store, symbols, args.interval, start, end,
                            base_url=args.base_url or BINANCE_REST, progress=False)
            out["fetched_candles"] = res.candles
    out["series"] = [{"symbol": q.symbol, "interval": q.interval, "present": q.present,
                      "missing": q.missing} for q in check_store(store)]
    return out


if __name__ == "__main__":
    sys.exit(run(__doc__.splitlines()[0], build, job))
