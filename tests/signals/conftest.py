"""The real XRP/ETH trades (freqtrade's recording of Binance, shipped in spark_ray/samples) as
columns and as a lake: what the signal tests run on."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from spark_ray.data.importer import import_files
from spark_ray.lake import DataStore
from spark_ray.samples import sample
from spark_ray.signals.features import Trades


@pytest.fixture(scope="module")
def trades() -> Trades:
    # freqtrade rows: [timestamp_ms, trade_id, order_id, side, price, amount, cost]
    rows = json.loads(gzip.decompress(sample("XRP_ETH-trades.json.gz").read_bytes()))
    return Trades(np.array([r[0] for r in rows], dtype=np.int64),
                  np.array([r[4] for r in rows], dtype=float),
                  np.array([r[5] for r in rows], dtype=float),
                  np.array([1 if r[3] == "buy" else -1 for r in rows], dtype=np.int64))


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("signals") / "lake"
    import_files(DataStore(root), [sample("XRP_ETH-trades.json.gz")], "freqtrade")
    return root
