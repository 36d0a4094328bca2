"""Market data pipeline: sources (REST, archives, synthetic) into the lake, and its quality.

``spark_ray.data.DataStore`` is the lake's :class:`spark_ray.lake.DataStore` (the same class),
kept importable from here for code written against it.
"""

from spark_ray.lake import DataStore

__all__ = ["DataStore"]
