"""The kline ETL on Ray: symbol x month tasks sharing one request-weight budget.

The paging, retries and planning are plain Python in :mod:`spark_ray.data.fetch`; this module
only fans the jobs out as Ray tasks, gives them the shared :class:`RateLimiterActor` (through
the :class:`~spark_ray.data.fetch.Limiter` protocol) and writes each month into the lake as it
lands, with a progress bar.
"""

from __future__ import annotations

import time
from typing import Any

import ray
from tqdm import tqdm

from spark_ray.actors.rate_limiter import RateLimiterActor
from spark_ray.data.fetch import (
    BINANCE_REST,
    FetchError,
    FetchJob,
    FetchSummary,
    RangeResult,
    fetch_range,
    plan_jobs,
    run_async,
    server_time_ms,
)
from spark_ray.errors import UserError
from spark_ray.http import RetryPolicy
from spark_ray.lake import DataStore


class _ActorLimiter:
    """The shared RateLimiterActor seen through the :class:`Limiter` protocol."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def acquire(self, weight: int) -> float:
        return float(ray.get(self.handle.acquire.remote(weight)))

    def observe(self, server_used: int) -> None:
        self.handle.observe.remote(server_used)

    def penalize(self, retry_after_s: float) -> None:
        self.handle.penalize.remote(retry_after_s)


def _fetch_task(base_url: str, job: FetchJob, now_ms: int, limiter: Any,
                policy: RetryPolicy) -> RangeResult:
    return run_async(lambda rest: fetch_range(
        rest, job.symbol, job.interval, job.start_ms, job.end_ms, now_ms, _ActorLimiter(limiter),
        policy, seed=hash(job) & 0xFFFF), base_url, policy.timeout_s)


def run_fetch(store: DataStore, symbols: list[str], interval: str, start_ms: int, end_ms: int,
              base_url: str = BINANCE_REST, exchange: str = "binance",
              weight_limit: int = 6000, policy: RetryPolicy | None = None,
              max_in_flight: int = 8, progress: bool = True) -> FetchSummary:
    """Fetch on Ray (the caller has connected) and write each month into the lake as it lands."""
    if start_ms >= end_ms:
        raise UserError("--start must be before --end")
    pol = policy or RetryPolicy()
    now_ms = server_time_ms(base_url, retry=pol)
    summary = FetchSummary()
    for s in symbols:
        last = store.last_open_time(s, interval, exchange)
        summary.resumed_from[s] = (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last / 1000))
                                   if last is not None else None)
    jobs = plan_jobs(store, symbols, interval, start_ms, end_ms, now_ms, exchange)
    summary.jobs = len(jobs)
    limiter = RateLimiterActor.remote(weight_limit)
    task = ray.remote(num_cpus=0.25, max_retries=0)(_fetch_task)
    pending: dict[Any, FetchJob] = {}
    queue = list(jobs)
    bar = tqdm(total=len(jobs), unit="month", desc=f"fetch {interval}", disable=not progress,
               mininterval=0.5)
    try:
        while queue or pending:
            while queue and len(pending) < max_in_flight:
                job = queue.pop(0)
                pending[task.remote(base_url, job, now_ms, limiter, pol)] = job
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                job = pending.pop(ref)
                try:
                    res: RangeResult = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    cause = exc.cause if isinstance(exc.cause, Exception) else exc
                    raise FetchError(f"{job.symbol} {job.month}: {cause}") from None
                written = store.write_candles(res.table, exchange, job.symbol, interval)
                summary.files.extend(written.files)
                n = res.table.num_rows
                summary.candles += n
                summary.per_symbol[job.symbol] = summary.per_symbol.get(job.symbol, 0) + n
                summary.requests += res.requests
                summary.retries += res.retries
                summary.rate_limited += res.rate_limited
                bar.update(1)
                bar.set_postfix(candles=summary.candles, refresh=False)
        summary.limiter = ray.get(limiter.stats.remote())
    finally:
        bar.close()
        for ref in pending:
            ray.cancel(ref, force=True)
        ray.kill(limiter)
    summary.files = sorted(set(summary.files))
    return summary
