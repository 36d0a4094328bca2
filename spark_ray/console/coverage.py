"""The data page: what the lake holds per exchange/symbol/interval, and its quality.

Coverage comes from the partition layout and each file's Parquet footer (row counts, no data
read). Quality is ``spark-ray data quality``'s own assessment (:func:`check_store`), cached
until a partition file changes, since it reads the candles.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any

import pyarrow.parquet as pq

from spark_ray.data.quality import check_store
from spark_ray.lake.store import DataStore

MAX_GAPS = 20  # gaps listed per series on the page (the count is always whole)


class LakeView:
    def __init__(self, store: str) -> None:
        self.store = store
        self._quality_key: tuple[Any, ...] | None = None
        self._quality: list[dict[str, Any]] = []

    def _files(self, ds: DataStore) -> list[tuple[str, str, str, str | None, str, str]]:
        out = []
        for dataset, exchange, symbol, interval in ds.series():
            for month, path in ds.partition_files(dataset, exchange, symbol, interval):
                out.append((dataset, exchange, symbol, interval, month, path))
        return out

    def doc(self) -> dict[str, Any]:
        if not self.store:
            return {"store": None, "coverage": [], "quality": [],
                    "note": "no lake given (spark-ray console --store DIR)"}
        ds = DataStore(self.store)
        files = self._files(ds)
        cov: dict[tuple[str, str, str, str | None], dict[str, Any]] = {}
        for dataset, exchange, symbol, interval, month, path in files:
            c = cov.setdefault((dataset, exchange, symbol, interval), {
                "dataset": dataset, "exchange": exchange, "symbol": symbol,
                "interval": interval, "months": [], "rows": 0, "bytes": 0})
            c["months"].append(month)
            try:
                c["rows"] += pq.read_metadata(path, filesystem=ds.fs).num_rows
                c["bytes"] += ds.fs.get_file_info(path).size or 0
            except (OSError, ValueError) as exc:
                c.setdefault("errors", []).append(f"{month}: {exc}")
        return {"store": self.store, "coverage": list(cov.values()),
                "quality": self.quality(ds, files)}

    def quality(self, ds: DataStore, files: list[Any]) -> list[dict[str, Any]]:
        key = tuple((f[-1], _mtime(ds, f[-1])) for f in files if f[0] == "candles")
        if key != self._quality_key:
            rows = []
            for q in check_store(ds):
                gaps = [g for m in q.months for g in (asdict(x) for x in m.gaps)]
                rows.append({"exchange": q.exchange, "symbol": q.symbol,
                             "interval": q.interval, "first": q.first, "last": q.last,
                             "expected": q.expected, "present": q.present,
                             "missing_bars": q.missing, "missing_ratio": q.missing_ratio,
                             "duplicates": q.duplicates, "gap_count": len(gaps),
                             "gaps": gaps[:MAX_GAPS],
                             "ok": q.missing == 0 and q.duplicates == 0})
            self._quality, self._quality_key = rows, key
        return self._quality


def _mtime(ds: DataStore, path: str) -> int | None:
    if ds.local:
        try:
            return os.stat(path).st_mtime_ns
        except OSError:
            return None
    return ds.fs.get_file_info(path).mtime_ns
