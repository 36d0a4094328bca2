"""RateLimiterActor: one request-weight budget shared by all fetch tasks on the cluster."""

from __future__ import annotations

import time

import ray

from spark_ray.data.budget import WeightBudget


@ray.remote(num_cpus=0)
class RateLimiterActor:
    """Wraps :class:`WeightBudget`; callers sleep on their side, so the actor never blocks."""

    def __init__(self, limit_per_minute: int = 6000, safety: float = 0.8) -> None:
        self.budget = WeightBudget(limit_per_minute=limit_per_minute, safety=safety,
                                   window_start=time.monotonic())

    def acquire(self, weight: int) -> float:
        return self.budget.acquire(weight, time.monotonic())

    def observe(self, server_used: int) -> None:
        self.budget.observe(server_used, time.monotonic())

    def penalize(self, retry_after_s: float) -> None:
        self.budget.penalize(retry_after_s, time.monotonic())

    def stats(self) -> dict[str, float]:
        return self.budget.stats()
