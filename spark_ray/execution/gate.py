"""The circuit breaker as the executor sees it: ask before every order, report what happened.

:class:`Gate` is what :class:`~spark_ray.execution.executor.ExecutorCore` calls; the actor shell
passes one backed by the cluster's ``CircuitBreakerActor``; tests and benchmarks use
:class:`LocalGate` over the same breaker core in-process. Either way the answer fails closed: an
exception or a missing answer blocks the order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from spark_ray.breaker.core import CircuitBreaker
from spark_ray.breaker.models import Decision, Order, Signal


class Gate(Protocol):
    async def allow(self, orders: list[Order], signals: Sequence[Signal] = ()) -> list[Decision]:
        """Decide ``orders`` in order, after taking ``signals`` (the bar's price, position and
        equity): one message, so the breaker never decides on readings it has not seen."""
        ...

    def report(self, signals: list[Signal]) -> None: ...

    async def trip(self, reason: str, who: str) -> None: ...


class LocalGate:
    """The breaker core in this process (tests, benchmarks, the backtest-like replay)."""

    def __init__(self, core: CircuitBreaker | None = None) -> None:
        self.core = core or CircuitBreaker()

    async def allow(self, orders: list[Order], signals: Sequence[Signal] = ()) -> list[Decision]:
        for s in signals:
            self.core.report(s)
        return [self.core.allow(o) for o in orders]

    def report(self, signals: list[Signal]) -> None:
        for s in signals:
            self.core.report(s)

    async def trip(self, reason: str, who: str) -> None:
        self.core.trip(reason, who)


class OpenGate:
    """Allows everything: only as a benchmark's peer (what the gate costs)."""

    async def allow(self, orders: list[Order], signals: Sequence[Signal] = ()) -> list[Decision]:
        return [Decision(True)] * len(orders)

    def report(self, signals: list[Signal]) -> None:
        return None

    async def trip(self, reason: str, who: str) -> None:
        return None
