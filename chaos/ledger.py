"""The lake against the venue's ground truth: trades published and never stored, and duplicates.

The canary reads the Parquet lake itself (every visible file's ``trade_id`` column, what any
reader of the lake sees) rather than asking the sink, and reads each part file once: the sink
only ever adds part files while it runs (compaction happens at its close), so a run of many
experiments re-reads nothing. :func:`compare` and :func:`covers` are the pure math.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def compare(truth: np.ndarray, stored_raw: np.ndarray) -> dict[str, int]:
    """``truth``: ids published (the window that counts); ``stored_raw``: every stored id, with
    repeats. Lost: published, never stored; duplicates: stored more than once (in the window)."""
    inside = stored_raw[(stored_raw >= truth.min()) & (stored_raw <= truth.max())] \
        if len(truth) else stored_raw[:0]
    uniq = np.unique(inside)
    return {"published": len(truth), "stored": len(uniq),
            "lost": len(np.setdiff1d(truth, uniq, assume_unique=True)),
            "extra": len(np.setdiff1d(uniq, truth, assume_unique=True)),
            "duplicates": int(len(inside) - len(uniq))}


def covers(intervals: list[tuple[int, int]] | list[list[int]], lo: int, hi: int) -> bool:
    """Do the sink's stored id intervals contain every id in ``[lo, hi]``?"""
    if hi < lo:
        return True
    return any(a <= lo and hi <= b for a, b in intervals)


class LakeLedger:
    """Stored trade ids per symbol, read incrementally from the lake's Parquet files."""

    def __init__(self, store: str, exchange: str, symbols: list[str]) -> None:
        self.store = store
        self.exchange = exchange
        self.symbols = list(symbols)
        self._files: dict[str, dict[str, np.ndarray]] = {s: {} for s in self.symbols}

    def refresh(self) -> int:
        """Read files not read yet; returns how many. A vanished file (compaction) resets."""
        from spark_ray.lake import DataStore

        lake = DataStore(self.store)
        read = 0
        for sym in self.symbols:
            paths = list(lake.files("trades", self.exchange, sym))
            cache = self._files[sym]
            if any(p not in paths for p in cache):
                cache.clear()
            for p in paths:
                if p not in cache:
                    cache[p] = lake.read_file(p, columns=["trade_id"])["trade_id"].to_numpy()
                    read += 1
        return read

    def stored(self, symbol: str) -> np.ndarray:
        parts = list(self._files[symbol].values())
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def check(self, truth: dict[str, np.ndarray]) -> dict[str, Any]:
        """Per symbol and in total, after reading what is new in the lake."""
        self.refresh()
        per = {s: compare(np.asarray(ids, dtype=np.int64), self.stored(s))
               for s, ids in truth.items()}
        total = {k: sum(v[k] for v in per.values())
                 for k in ("published", "stored", "lost", "extra", "duplicates")}
        return {"per_symbol": per, **total}
