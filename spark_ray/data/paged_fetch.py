"""Candle history paged in-process from an adapter's :class:`~spark_ray.adapters.base.
KlineHistory` (``data fetch --exchange btcturk``): the ETL's plan, one paced client.

Venues other than Binance publish request limits per IP rather than Binance's weight budget,
and one client pacing its calls is what keeps under them: BTCTurk's graph API allows 600
requests per 10 minutes (https://docs.btcturk.com/rate-limits), so its client asks for one page
a second at most (``request_spacing_s``), and a 429 waits out ``Retry-After``. Parallel Ray
tasks would each pace on their own and together exceed the limit, so this path, like the ccxt
one (:mod:`.ccxt_fetch`), does not fan out.

The rest is the Binance ETL's machinery, reused: :func:`~spark_ray.data.fetch.plan_jobs` cuts
symbol x month jobs after the last candle the lake holds (resume) and never asks for the open
candle; each month is written through the lake's candle writer (the same canonical checks:
duplicates dropped, OHLC-violating rows counted) before the next starts, so an interrupted run
loses at most the month in progress; transient failures back off under the shared
:class:`~spark_ray.http.RetryPolicy` (full jitter), a venue error stops with its message.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pyarrow as pa

from spark_ray.adapters.base import KlineHistory
from spark_ray.data.ccxt_fetch import candle_table, jobs_in_order
from spark_ray.data.fetch import FetchError, FetchJob, FetchSummary, RangeResult, plan_jobs
from spark_ray.errors import UserError
from spark_ray.http import RATE_LIMIT_STATUSES, RETRY_STATUSES, HttpError, RetryPolicy
from spark_ray.schemas import interval_ms

T = TypeVar("T")
RATE_LIMITED_MAX = 100  # consecutive rate-limit answers before a job gives up


@dataclass
class PagedFetcher:
    """Calls one :class:`KlineHistory` at most once per ``spacing_s``, with retries."""

    history: KlineHistory
    policy: RetryPolicy
    spacing_s: float
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    seed: int = 0
    totals: RangeResult = field(default_factory=lambda: RangeResult(table=pa.table({})))
    _last: float = -1e18

    async def call(self, make: Callable[[], Awaitable[T]], what: str,
                   result: RangeResult | None = None) -> T:
        rng = random.Random(self.seed)  # nosec B311  # seeded retry jitter, not cryptography
        attempt = limited = 0
        counters = [self.totals] if result is None else [self.totals, result]
        while True:
            wait = self._last + self.spacing_s - time.monotonic()
            if wait > 0:
                await self.sleep(wait)
            self._last = time.monotonic()
            for c in counters:
                c.requests += 1
            try:
                return await make()
            except HttpError as exc:
                if exc.status in RATE_LIMIT_STATUSES:
                    limited += 1
                    for c in counters:
                        c.rate_limited += 1
                    if limited > RATE_LIMITED_MAX:
                        raise FetchError(f"{what}: still rate-limited after {limited - 1} "
                                         f"waits") from None
                    await self.sleep(exc.retry_after or self.policy.delay(min(limited, 6), rng))
                    continue
                if exc.status not in RETRY_STATUSES:
                    raise FetchError(f"{what}: venue answered {exc}") from None
                err = f"{what}: {exc}"
            except OSError as exc:  # TransportError: reset, refused, timeout
                err = f"{what}: {exc}"
            except ValueError as exc:  # an answer that is not the documented format
                raise FetchError(f"{what}: {exc}") from None
            for c in counters:
                c.retries += 1
            if attempt >= self.policy.max_retries:
                raise FetchError(f"{err} (gave up after {attempt} retries)")
            await self.sleep(self.policy.delay(attempt, rng))
            attempt += 1

    async def fetch(self, job: FetchJob, now_ms: int) -> RangeResult:
        """Closed candles opening in ``[job.start_ms, job.end_ms)``, a page of
        ``history.page_candles`` bars per call."""
        step = interval_ms(job.interval)
        result = RangeResult(table=pa.table({}))
        rows: dict[int, list[float]] = {}
        cursor = job.start_ms
        while cursor < job.end_ms:
            hi = min(job.end_ms, cursor + self.history.page_candles * step)
            lo = cursor
            page = await self.call(
                functools.partial(self.history.klines, job.symbol, job.interval, lo, hi),
                f"{job.symbol} {job.month}", result)
            for t, o, h, low, c, v in page:
                if lo <= t < hi and t + step <= now_ms:  # the open candle is never stored
                    rows[t] = [o, h, low, c, v]
            cursor = hi
        result.table = candle_table(rows)
        return result


async def run_paged_fetch(store: Any, exchange: str, history: KlineHistory, symbols: list[str],
                          interval: str, start_ms: int, end_ms: int, *,
                          policy: RetryPolicy | None = None, progress: bool = True,
                          spacing_s: float | None = None, title: str = "") -> FetchSummary:
    """Fetch ``symbols`` into the lake under ``exchange=<exchange>``, one month written at a
    time (resumable), with a progress bar per month. Closes ``history``."""
    from tqdm import tqdm

    name = title or exchange
    if interval not in history.intervals:
        raise UserError(f"--interval: {name} offers {', '.join(history.intervals)}; "
                        f"not {interval}")
    fetcher = PagedFetcher(history, policy or RetryPolicy(),
                           history.request_spacing_s if spacing_s is None else spacing_s)
    summary = FetchSummary()
    try:
        listed = await fetcher.call(history.symbols, f"{name} pairs")
        missing = [s for s in symbols if s not in listed]
        if missing:
            raise UserError(f"--symbols: {name} has no pair {', '.join(missing)}")
        now_ms = await fetcher.call(history.server_time_ms, f"{name} clock")
        for s in symbols:
            last = store.last_open_time(s, interval, exchange)
            summary.resumed_from[s] = (
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last / 1000))
                if last is not None else None)
        jobs = plan_jobs(store, symbols, interval, start_ms, end_ms, now_ms, exchange)
        summary.jobs = len(jobs)
        bar = tqdm(total=len(jobs), unit="month", desc=f"fetch {exchange} {interval}",
                   disable=not progress, mininterval=0.5)
        try:
            for job in jobs_in_order(jobs):
                res = await fetcher.fetch(job, now_ms)
                written = store.write_candles(res.table, exchange, job.symbol, interval)
                summary.files.extend(written.files)
                n = res.table.num_rows
                summary.candles += n
                summary.per_symbol[job.symbol] = summary.per_symbol.get(job.symbol, 0) + n
                bar.update(1)
                bar.set_postfix(candles=summary.candles, refresh=False)
        finally:
            bar.close()
    finally:
        await history.close()
    summary.files = sorted(set(summary.files))
    t = fetcher.totals
    summary.requests, summary.retries, summary.rate_limited = t.requests, t.retries, \
        t.rate_limited
    summary.limiter = {"request_spacing_s": fetcher.spacing_s}
    return summary
