"""Streams fabric: exchange WebSockets -> connector -> normalizer -> sink (WAL + Parquet lake).

The plain-Python cores live here (parsing, dedup, gaps and repairs, depth sync, WAL, store, SLO
math, control plane); the Ray actors in ``spark_ray.actors.connector|normalizer|sink`` only add
messaging, timers and I/O. :class:`~spark_ray.app.fabric.Fabric` wires them up.
"""
