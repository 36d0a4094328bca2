"""Closing the sink while its timed flush is writing: the flush finishes before the compaction,
so the compacted ``data.parquet`` holds every row and no part is left behind.

Found by CI: ``close`` cancelled the flush task mid-write, the write's thread went on and put a
part into the lake after the compaction; ``DataStore.trades`` (which reads compacted files only)
then missed those rows. The sink's own class runs here in-process (its methods are plain
coroutines), with a store whose Parquet writes are slowed to make the overlap certain.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from spark_ray.actors.sink import SinkActor
from spark_ray.lake import DataStore
from spark_ray.streams.normalize import warmup_trades


def _trades(first_id: int, n: int) -> pa.Table:
    one = warmup_trades()
    t = pa.concat_tables([one] * n)
    return t.set_column(t.schema.get_field_index("trade_id"), "trade_id",
                        pa.array(range(first_id, first_id + n), pa.int64()))


def test_close_waits_for_a_flush_in_progress(ray_session: Any, tmp_path: Path) -> None:
    root = str(tmp_path / "lake")
    sink = SinkActor.__ray_actor_class__(root, "binance", str(tmp_path / "wal"), flush_ms=10)
    real = sink.store.write_flush
    started: list[float] = []

    def slow_write(job: Any) -> list[str]:
        started.append(time.monotonic())
        if len(started) == 1:
            time.sleep(0.6)  # the timed flush meets a slow disk; close's own flush does not
        return real(job)

    sink.store.write_flush = slow_write

    async def run() -> dict[str, Any]:
        await sink.write({"trades": _trades(1, 50)})
        while not started:  # the timed flush has begun writing
            await asyncio.sleep(0.005)
        await sink.write({"trades": _trades(51, 50)})  # buffered meanwhile, flushed by close
        return await sink.close(True)

    res = asyncio.run(run())
    time.sleep(0.8)  # a write cut loose by the old close would land by now
    want = list(range(1, 101))
    assert DataStore(root).read("trades", "binance", "BTCUSDT")["trade_id"].to_pylist() == want
    assert DataStore(root).trades("BTCUSDT")["trade_id"].to_pylist() == want
    files = list(DataStore(root).files("trades", "binance", "BTCUSDT"))
    assert [f.rsplit("/", 1)[1] for f in files] == ["data.parquet"], files
    assert res["buffered_rows"] == 0 and res["parts_compacted"] >= 1
