"""Market data pipeline: sources (REST, archives, synthetic), normalization, lake, quality."""

from spark_ray.data.lake import DataStore

__all__ = ["DataStore"]
