"""The wiring: where the plain-Python domain meets Ray (one of the edges, beside actors/, tune/
and chaos/).

- ``session``: the Ray session (embedded loopback Ray or a cluster, token auth);
- ``placement``: where actors go on a multi-node cluster;
- ``fabric``: the streams fabric's launcher (named connector, normalizer and sink actors);
- ``trading``: a trading run (fabric, breaker and executor actors, supervised);
- ``etl``: the kline ETL as Ray tasks sharing one rate limiter;
- ``slo``: a measured fabric run against the venue simulator;
- ``cli``: the ``spark-ray`` command line, one module per command group;
- ``demo``: ``spark-ray demo``, the platform end to end, one module per stage.

Nothing below ``spark_ray/app`` imports it; the domain packages stay testable without Ray.
"""
