"""Binance REST kline ETL: symbol x month Ray tasks sharing one weight budget, resumable.

``GET /api/v3/klines`` is paged 1,000 candles at a time. The still-open candle is never stored
(its values change until it closes). A fetch resumes after the last candle the lake holds.
Transient failures (5xx, timeouts, resets) are retried with exponential backoff and jitter;
429/418 pause every task for ``Retry-After``; a client error (bad symbol) stops with Binance's
message.
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa

from spark_ray.errors import UserError
from spark_ray.lake import DataStore
from spark_ray.lake.layout import month_bounds
from spark_ray.schemas import interval_ms

BINANCE_REST = "https://api.binance.com"
KLINES_LIMIT = 1000
KLINES_WEIGHT = 2  # Binance: weight 2 for limit 100 < n <= 500, ... see docs; 2 for 1000 today
RETRY_STATUSES = {500, 502, 503, 504}


class FetchError(RuntimeError):
    """A fetch task gave up (after retries, or on a non-retryable venue error)."""


class Limiter(Protocol):
    def acquire(self, weight: int) -> float: ...
    def observe(self, server_used: int) -> None: ...
    def penalize(self, retry_after_s: float) -> None: ...


@dataclass
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: Any


def http_get(base_url: str, path: str, params: dict[str, Any], timeout: float) -> HttpAnswer:
    """One GET returning status, headers and parsed JSON (or text); network errors raise OSError."""
    url = f"{base_url.rstrip('/')}{path}?{urllib.parse.urlencode(params)}"
    req = urllib.request.Request(url, headers={"User-Agent": "spark-ray"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            status, headers = resp.status, {k.lower(): v for k, v in resp.headers.items()}
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        status, headers = exc.code, {k.lower(): v for k, v in (exc.headers or {}).items()}
    try:
        body: Any = json.loads(raw) if raw else None
    except json.JSONDecodeError:
        body = raw.decode(errors="replace")
    return HttpAnswer(status, headers, body)


def server_time_ms(base_url: str, timeout: float = 10.0) -> int:
    ans = http_get(base_url, "/api/v3/time", {}, timeout)
    if ans.status != 200 or not isinstance(ans.body, dict) or "serverTime" not in ans.body:
        raise FetchError(f"{base_url}/api/v3/time answered {ans.status}: {ans.body!r}")
    return int(ans.body["serverTime"])


def parse_klines(rows: list[list[Any]]) -> pa.Table:
    """Binance kline arrays (prices as strings) -> columns the normalizer accepts."""
    def col(i: int, typ: type) -> list[Any]:
        return [typ(r[i]) for r in rows]

    return pa.table({
        "open_time": pa.array(col(0, int), pa.int64()),
        "open": pa.array(col(1, float)), "high": pa.array(col(2, float)),
        "low": pa.array(col(3, float)), "close": pa.array(col(4, float)),
        "volume": pa.array(col(5, float)), "close_time": pa.array(col(6, int), pa.int64()),
        "quote_volume": pa.array(col(7, float)), "trades": pa.array(col(8, int), pa.int64()),
        "taker_buy_base": pa.array(col(9, float)), "taker_buy_quote": pa.array(col(10, float)),
    })


@dataclass
class RetryPolicy:
    max_retries: int = 6
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    timeout_s: float = 15.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        return min(self.max_delay_s, self.base_delay_s * 2 ** attempt) * (0.5 + rng.random())


@dataclass
class RangeResult:
    table: pa.Table
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0


def fetch_range(base_url: str, symbol: str, interval: str, start_ms: int, end_ms: int,
                now_ms: int, limiter: Limiter, policy: RetryPolicy | None = None,
                sleep: Callable[[float], None] = time.sleep, seed: int = 0) -> RangeResult:
    """All closed candles with open time in ``[start_ms, end_ms)``, paging 1,000 at a time."""
    pol = policy or RetryPolicy()
    rng = random.Random(seed)
    step = interval_ms(interval)
    pages: list[pa.Table] = []
    result = RangeResult(table=pa.table({}))
    cursor = start_ms
    attempt = 0
    while cursor < end_ms:
        wait = limiter.acquire(KLINES_WEIGHT)
        if wait > 0:
            sleep(wait)
            continue
        params = {"symbol": symbol, "interval": interval, "startTime": cursor,
                  "endTime": end_ms - 1, "limit": KLINES_LIMIT}
        result.requests += 1
        try:
            ans = http_get(base_url, "/api/v3/klines", params, pol.timeout_s)
        except (OSError, TimeoutError) as exc:  # reset, refused, timeout
            attempt = _retry(attempt, pol, rng, sleep, f"{symbol} {interval}: {exc}")
            result.retries += 1
            continue
        used = ans.headers.get("x-mbx-used-weight-1m")
        if used and used.isdigit():
            limiter.observe(int(used))
        if ans.status in (429, 418):
            retry_after = float(ans.headers.get("retry-after", "60") or 60)
            limiter.penalize(retry_after)
            result.rate_limited += 1
            sleep(retry_after)
            continue
        if ans.status in RETRY_STATUSES:
            attempt = _retry(attempt, pol, rng, sleep, f"{symbol} {interval}: HTTP {ans.status}")
            result.retries += 1
            continue
        if ans.status != 200 or not isinstance(ans.body, list):
            msg = ans.body.get("msg") if isinstance(ans.body, dict) else ans.body
            code = ans.body.get("code") if isinstance(ans.body, dict) else None
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


def _retry(attempt: int, pol: RetryPolicy, rng: random.Random, sleep: Callable[[float], None],
           what: str) -> int:
    if attempt >= pol.max_retries:
        raise FetchError(f"{what} (gave up after {attempt} retries)")
    sleep(pol.delay(attempt, rng))
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


class _ActorLimiter:
    """The shared RateLimiterActor seen through the :class:`Limiter` protocol."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def acquire(self, weight: int) -> float:
        import ray

        return float(ray.get(self.handle.acquire.remote(weight)))

    def observe(self, server_used: int) -> None:
        self.handle.observe.remote(server_used)

    def penalize(self, retry_after_s: float) -> None:
        self.handle.penalize.remote(retry_after_s)


def _fetch_task(base_url: str, job: FetchJob, now_ms: int, limiter: Any,
                policy: RetryPolicy) -> RangeResult:
    return fetch_range(base_url, job.symbol, job.interval, job.start_ms, job.end_ms, now_ms,
                       _ActorLimiter(limiter), policy, seed=hash(job) & 0xFFFF)


def run_fetch(store: DataStore, symbols: list[str], interval: str, start_ms: int, end_ms: int,
              base_url: str = BINANCE_REST, exchange: str = "binance",
              weight_limit: int = 6000, policy: RetryPolicy | None = None,
              max_in_flight: int = 8, progress: bool = True) -> FetchSummary:
    """Fetch on Ray (the caller has connected) and write each month into the lake as it lands."""
    import ray
    from tqdm import tqdm

    from spark_ray.actors.rate_limiter import RateLimiterActor

    if start_ms >= end_ms:
        raise UserError("--start must be before --end")
    now_ms = server_time_ms(base_url)
    summary = FetchSummary()
    for s in symbols:
        last = store.last_open_time(s, interval, exchange)
        summary.resumed_from[s] = (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last / 1000))
                                   if last is not None else None)
    jobs = plan_jobs(store, symbols, interval, start_ms, end_ms, now_ms, exchange)
    summary.jobs = len(jobs)
    limiter = RateLimiterActor.remote(weight_limit)
    task = ray.remote(num_cpus=0.25, max_retries=0)(_fetch_task)
    pol = policy or RetryPolicy()
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
