"""A writer killed mid-write never leaves a partial file under a final name."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq

WRITER = """
import sys
from spark_ray.lake import DataStore
from spark_ray.data.synth import synth_candles
store = DataStore(sys.argv[1])
t = synth_candles("BTCUSDT", "1m", 1672531200000, 1704067200000, seed=int(sys.argv[2]))
print("ready", flush=True)
store.write_candles(t, "binance", "BTCUSDT", "1m")
print("done", flush=True)
"""


def _digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("data.parquet"))}


def test_kill_mid_write_leaves_only_whole_files(tmp_path: Path) -> None:
    clean = tmp_path / "clean"
    subprocess.run([sys.executable, "-c", WRITER, str(clean), "1"], check=True, timeout=300)
    expected = _digest(clean)
    assert len(expected) == 12

    lake = tmp_path / "lake"
    # Seed 2 first: the killed run (seed 1) must leave every file either seed 2's or whole.
    subprocess.run([sys.executable, "-c", WRITER, str(lake), "2"], check=True, timeout=300)
    before = _digest(lake)
    for delay in (0.05, 0.15, 0.3):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(lake), "1"],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        for path in lake.rglob("data.parquet"):
            pq.read_table(path)  # every final-name file is a whole Parquet file
        # Readers ignore leftover temp files (dot-prefixed).
        assert ds.dataset(lake / "candles", partitioning="hive").count_rows() > 0
        now = _digest(lake)
        assert set(now) == set(before)
    # Finishing the interrupted write converges to exactly the clean result... merged with
    # seed 2's rows, which win every conflict (the lake never silently overwrites).
    subprocess.run([sys.executable, "-c", WRITER, str(lake), "1"], check=True, timeout=300)
    assert set(_digest(lake)) == set(expected)
