"""Import candle and trade files into the lake: parse everything first, then write.

Parsing every file before writing any means one bad file (truncated zip, text in a price
column) stops the import with a clear error and leaves the lake exactly as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from spark_ray.data import readers
from spark_ray.data.quality import assess_written
from spark_ray.errors import UserError
from spark_ray.lake import DataStore


@dataclass
class Parsed:
    path: Path
    dataset: str  # candles | trades | agg_trades
    symbol: str
    interval: str | None
    table: pa.Table


def _kind(path: Path, kind: str | None) -> str:
    if kind:
        return kind
    name = path.name.lower()
    if "aggtrades" in name:
        return "agg_trades"
    if "trades" in name:
        return "trades"
    return "candles"


def parse_file(path: Path, fmt: str, symbol: str | None, interval: str | None,
               kind: str | None = None, mapping: dict[str, str] | None = None,
               time_unit: readers.TimeUnit = "ms") -> Parsed:
    """Parse one file into a normalizer-ready table; UserError names what is wrong."""
    dataset = _kind(path, kind)
    f_symbol, f_interval = readers.infer_symbol_interval(path)
    sym = readers.strip_market_suffix(symbol).upper() if symbol else f_symbol
    ivl = interval or f_interval
    if not sym:
        raise UserError(f"{path}: cannot tell the symbol from the file name; pass --symbol")
    if dataset == "candles" and not ivl:
        raise UserError(f"{path}: cannot tell the interval from the file name; pass --interval")
    if fmt == "binance-archive":
        table = (readers.read_binance_klines(path) if dataset == "candles"
                 else readers.read_binance_trades(path, agg=dataset == "agg_trades"))
    elif fmt == "freqtrade":
        table = (readers.read_freqtrade_candles(path) if dataset == "candles"
                 else readers.read_freqtrade_trades(path))
    elif fmt == "csv":
        if dataset != "candles":
            raise UserError(f"{path}: --format csv imports candles; use binance-archive or "
                            "freqtrade for trades")
        table = readers.read_generic_csv(path, mapping or {}, time_unit)
    else:
        raise UserError(f"--format: unknown format {fmt!r}; expected one of "
                        f"{', '.join(readers.FORMATS)}")
    return Parsed(path, dataset, sym, ivl if dataset == "candles" else None, table)


def import_files(store: DataStore, paths: list[Path], fmt: str, symbol: str | None = None,
                 interval: str | None = None, exchange: str = "binance",
                 kind: str | None = None, mapping: dict[str, str] | None = None,
                 time_unit: readers.TimeUnit = "ms") -> dict[str, Any]:
    """Import ``paths``; returns a JSON-ready report (per file: rows, duplicates, conflicts)."""
    parsed = [parse_file(p, fmt, symbol, interval, kind, mapping, time_unit) for p in paths]
    files: list[dict[str, Any]] = []
    total = 0
    for item in parsed:
        quality: dict[str, Any] | None = None
        if item.dataset == "candles":
            assert item.interval is not None  # nosec B101  # narrows Optional for mypy, not a check
            res = store.write_candles(item.table, exchange, item.symbol, item.interval)
            # Only partitions this file touched: the report covers what the import wrote.
            quality = assess_written(exchange, item.symbol, item.interval, res.tables,
                                     res.sha256).as_dict()
        else:
            res = store.write_trades(item.table, exchange, item.symbol, dataset=item.dataset)
        total += item.table.num_rows
        files.append({"path": str(item.path), "dataset": item.dataset, "symbol": item.symbol,
                      "interval": item.interval, **res.stats.as_dict(),
                      "written": res.files, "sha256": res.sha256, "quality": quality})
    return {"store": store.uri, "exchange": exchange, "format": fmt, "rows_in": total,
            "files": files}
