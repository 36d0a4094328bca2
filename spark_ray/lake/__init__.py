"""The Parquet lake: hive-partitioned, zstd, atomic, idempotent, readable without this package.

One package owns the tree every writer shares (the REST ETL and imports, the streaming sink):

- :mod:`~spark_ray.lake.layout`: which folder a dataset's rows go to (one function,
  :func:`~spark_ray.lake.layout.partition_dir`), the datasets' schemas, keys and time columns;
- :mod:`~spark_ray.lake.files`: the filesystem behind a root (a local path or any pyarrow URI:
  ``file://``, ``s3://bucket/lake``) and the one atomic write (temp file, fsync, rename);
- :mod:`~spark_ray.lake.canonical`: the canonical, sorted, deduplicated form rows are merged in;
- :mod:`~spark_ray.lake.store`: :class:`DataStore`, the reads (candles, trades, aggregate trades,
  book) and writes (merge, append, compact).

Plain ``pyarrow.dataset.dataset("lake/candles", partitioning="hive")``, pandas, DuckDB and polars
read the tree without this package.
"""

from spark_ray.lake.store import Coverage, DataStore, WriteResult

__all__ = ["Coverage", "DataStore", "WriteResult"]
