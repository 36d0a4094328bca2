"""Binance REST kline ETL, the plain part: paging, retries, the jobs plan (Ray runs it: app/etl.py).

``GET /api/v3/klines`` is paged 1,000 candles at a time through the Binance adapter's client
(:class:`spark_ray.adapters.binance.rest.BinanceRest`, on the shared HTTP client). The still-
open candle is never stored (its values change until it closes). A fetch resumes after the last
candle the lake holds. Transient failures (5xx, timeouts, resets) are retried with exponential
backoff and jitter; 429/418 pause every task for ``Retry-After``; a client error (bad symbol)
stops with Binance's message."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import pyarrow as pa

from spark_ray.adapters.binance.rest import (
    DEFAULT_REST_URL,
    KLINES_LIMIT,
    KLINES_WEIGHT,
    WEIGHT_HEADER,
    BinanceRest,
    parse_klines,
)
from spark_ray.http import RETRY_STATUSES, RetryPolicy, TransportError
from spark_ray.lake import DataStore
from spark_ray.lake.layout import month_bounds
from spark_ray.schemas import interval_ms

BINANCE_REST = DEFAULT_REST_URL
T = TypeVar("T")


class FetchError(RuntimeError):
    """A fetch task gave up (after retries, or on a non-retryable venue error)."""


class Limiter(Protocol):
    def acquire(self, weight: int) -> float: ...
    def observe(self, server_used: int) -> None: ...
    def penalize(self, retry_after_s: float) -> None: ...


def run_async(make: Callable[[BinanceRest], Awaitable[T]], base_url: str,
              timeout_s: float = 15.0) -> T:
    """Run one coroutine against a fresh client of ``base_url`` and close the client (the ETL's
    Ray tasks and driver are synchronous; each call gets its own event loop)."""
    async def go() -> T:
        rest = BinanceRest(base_url, timeout_s=timeout_s)
        try:
            return await make(rest)
        finally:
            await rest.close()

    return asyncio.run(go())


def server_time_ms(base_url: str, timeout: float = 10.0,
                   retry: RetryPolicy | None = None) -> int:
    """The venue's clock; under ``retry`` a rate-limited or failing answer is retried like any
    ETL call (a fetch right after another one may find the weight window still full)."""
    try:
        return run_async(lambda rest: rest.server_time_ms(retry), base_url, timeout)
    except (OSError, ValueError) as exc:
        raise FetchError(f"{base_url}/api/v3/time: {exc}") from None
    except Exception as exc:  # HttpError: the venue answered, but not 200
        raise FetchError(f"{base_url}/api/v3/time answered: {exc}") from None


@dataclass
class RangeResult:
    table: pa.Table
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0


async def fetch_range(rest: BinanceRest, symbol: str, interval: str, start_ms: int,
                      end_ms: int, now_ms: int, limiter: Limiter,
                      policy: RetryPolicy | None = None,
                      sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                      seed: int = 0) -> RangeResult:
    """All closed candles with open time in ``[start_ms, end_ms)``, paging 1,000 at a time."""
    pol = policy or RetryPolicy()
    rng = random.Random(seed)  # nosec B311  # seeded retry jitter, not cryptography
    step = interval_ms(interval)
    pages: list[pa.Table] = []
    result = RangeResult(table=pa.table({}))
    cursor = start_ms
    attempt = 0
    while cursor < end_ms:
        wait = limiter.acquire(KLINES_WEIGHT)
        if wait > 0:
            await sleep(wait)
            continue
        result.requests += 1
        try:
            ans = await rest.klines_page(symbol, interval, cursor, end_ms)
        except TransportError as exc:  # reset, refused, timeout
            attempt = await _retry(attempt, pol, rng, sleep, f"{symbol} {interval}: {exc}")
            result.retries += 1
            continue
        used = ans.headers.get(WEIGHT_HEADER)
        if used and used.isdigit():
            limiter.observe(int(used))
        if ans.status in (429, 418):
            retry_after = ans.retry_after_s or 60.0
            limiter.penalize(retry_after)
            result.rate_limited += 1
            await sleep(retry_after)
            continue
        if ans.status in RETRY_STATUSES:
            attempt = await _retry(attempt, pol, rng, sleep,
                                   f"{symbol} {interval}: HTTP {ans.status}")
            result.retries += 1
            continue
        if ans.status != 200 or not isinstance(ans.body, list):
            code, msg = ans.venue_error()
            raise FetchError(f"{symbol} {interval}: venue answered HTTP {ans.status}"
                             f"{f' code {code}' if code is not None else ''}: {msg}")
        attempt = 0
        rows = [r for r in ans.body if int(r[0]) + step <= now_ms]  # closed candles only
        if rows:
            pages.append(parse_klines(rows))
        if len(ans.body) < KLINES_LIMIT:
            break
        cursor = int(ans.body[-1][0]) + step
    result.table = pa.concat_tables(pages) if pages else parse_klines([])
    return result


async def _retry(attempt: int, pol: RetryPolicy, rng: random.Random,
                 sleep: Callable[[float], Awaitable[None]], what: str) -> int:
    if attempt >= pol.max_retries:
        raise FetchError(f"{what} (gave up after {attempt} retries)")
    await sleep(pol.delay(attempt, rng))
    return attempt + 1


@dataclass(frozen=True)
class FetchJob:
    symbol: str
    interval: str
    month: str
    start_ms: int
    end_ms: int


def plan_jobs(store: DataStore, symbols: list[str], interval: str, start_ms: int, end_ms: int,
              now_ms: int, exchange: str = "binance") -> list[FetchJob]:
    """symbol x month jobs covering what the lake lacks (resuming after its last candle)."""
    step = interval_ms(interval)
    end_ms = min(end_ms, now_ms - (now_ms % step))  # never ask for the open candle
    jobs = []
    for symbol in symbols:
        last = store.last_open_time(symbol, interval, exchange)
        lo = max(start_ms, last + step) if last is not None else start_ms
        lo += (-lo) % step
        cursor = lo
        while cursor < end_ms:
            month = time.strftime("%Y-%m", time.gmtime(cursor / 1000))
            _, m_end = month_bounds(month)
            hi = min(m_end, end_ms)
            jobs.append(FetchJob(symbol, interval, month, cursor, hi))
            cursor = hi
    return jobs


@dataclass
class FetchSummary:
    jobs: int = 0
    candles: int = 0
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    files: list[str] = field(default_factory=list)
    per_symbol: dict[str, int] = field(default_factory=dict)
    limiter: dict[str, float] = field(default_factory=dict)
    resumed_from: dict[str, str | None] = field(default_factory=dict)
