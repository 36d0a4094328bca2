"""Paper and live trading: the executor core, its brokers, journal and reconciliation.

Plain Python, testable without Ray; ``spark_ray.actors.executor.ExecutorActor`` wraps
:class:`~spark_ray.execution.executor.ExecutorCore` on the cluster. The modules:
``ids`` (client order ids), ``filters`` (exchange filters), ``bars`` (bars from trades),
``runner`` and ``context`` (the strategy live), ``orders`` (order manager), ``positions``
(PnL), ``journal`` (write-ahead journal), ``reconcile``, ``gate`` (the circuit breaker),
``broker`` (the protocol every venue's broker meets), ``paper`` (PaperBroker; live brokers are
in ``spark_ray.adapters``),
``executor`` (the core), ``spec`` (what an actor is built from), ``params`` (approved.json),
``control`` (HTTP control plane), ``metrics`` (names), ``replay`` (paper over recorded trades),
``run`` (a trading run, driver side), ``cli`` (``spark-ray trade``), ``demo``, ``probe`` (a
strategy for benchmarks and tests).
"""

from __future__ import annotations

from spark_ray.execution.executor import ExecutorConfig, ExecutorCore

__all__ = ["ExecutorConfig", "ExecutorCore"]
