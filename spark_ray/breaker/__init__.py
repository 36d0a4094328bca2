"""Circuit breaker: one plain-Python core shared by the backtest and live trading.

``core`` holds the state machine, ``rules`` one class per trip rule, ``journal`` the append-only
event log it recovers from, ``models`` the config and messages; the Ray actor lives in
``spark_ray.actors.breaker`` and the kill switch CLI in ``spark_ray.app.cli.breaker``.
"""

from spark_ray.breaker.core import CircuitBreaker
from spark_ray.breaker.journal import FileJournal, MemoryJournal, read_journal
from spark_ray.breaker.models import (
    BreakerConfig,
    BreakerState,
    Decision,
    Event,
    Order,
    Signal,
)

__all__ = [
    "BreakerConfig",
    "BreakerState",
    "CircuitBreaker",
    "Decision",
    "Event",
    "FileJournal",
    "MemoryJournal",
    "Order",
    "Signal",
    "read_journal",
]
