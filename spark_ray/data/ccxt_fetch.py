"""Candle history from any exchange ccxt supports (``data fetch --exchange ccxt:<id>``).

ccxt (https://docs.ccxt.com, "Unified API" / ``fetchOHLCV``) gives one OHLCV call for over a
hundred exchanges: ``fetch_ohlcv(symbol, timeframe, since, limit)`` returns
``[timestamp_ms, open, high, low, close, volume]`` rows from ``since`` on. We page it forward
until ``end``, keep closed candles only, and write each month into the same candle lake as the
Binance ETL (so ``data check``, ``data ls`` and the backtest read it alike; quote volume, trade
count and taker volumes are null: OHLCV does not carry them).

Rate limits: one ccxt client with ``enableRateLimit`` (its documented ``rateLimit`` between
calls) does all requests, one after another. Parallel tasks would each run their own throttle
and together exceed the exchange's limit, so this path does not fan out on Ray; history is
limited by the exchange, not by us. Network errors and rate-limit answers are retried with
exponential backoff; an exchange error (unknown symbol, unsupported timeframe) stops with
ccxt's message. A fetch resumes after the last candle the lake holds (the same plan as the
Binance ETL), month by month, so an interrupted run loses at most the month in progress.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pyarrow as pa

from spark_ray.data.fetch import FetchError, FetchJob, FetchSummary, RangeResult, plan_jobs
from spark_ray.errors import UserError
from spark_ray.http import RetryPolicy
from spark_ray.schemas import interval_ms

PREFIX = "ccxt:"
PAGE = 1000  # candles asked per call (exchanges cap it lower on their own: we page by result)
RATE_LIMITED_MAX = 100  # consecutive rate-limit answers before a job gives up
T = TypeVar("T")


def ccxt_id(exchange: str) -> str | None:
    """The ccxt exchange id of ``ccxt:<id>``, None for our own exchange names."""
    return exchange[len(PREFIX):] if exchange.startswith(PREFIX) else None


def make_client(exchange_id: str, base_url: str | None = None) -> Any:
    """A ccxt client of ``exchange_id`` (spot markets), its API host swapped for ``base_url``.

    ``base_url`` replaces scheme and host of every REST URL the client has (a mirror, a proxy,
    or the local venue for Binance); paths stay as ccxt has them."""
    import ccxt

    if exchange_id not in ccxt.exchanges:
        near = [e for e in ccxt.exchanges if exchange_id.lower() in e][:5]
        hint = f" (did you mean {', '.join(near)}?)" if near else ""
        raise UserError(f"--exchange: ccxt has no exchange {exchange_id!r}{hint}")
    client = getattr(ccxt, exchange_id)({
        "enableRateLimit": True,
        "options": {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]},
                    "fetchCurrencies": False},
    })
    if not client.has.get("fetchOHLCV"):
        raise UserError(f"--exchange: ccxt's {exchange_id} has no OHLCV history (fetchOHLCV)")
    if base_url:
        new = urlsplit(base_url)
        if not new.scheme or not new.netloc:
            raise UserError(f"--base-url: {base_url!r} is not scheme://host[:port]")
        client.urls["api"] = _rebase(client.urls["api"], new.scheme, new.netloc)
    return client


def _rebase(api: Any, scheme: str, netloc: str) -> Any:
    if isinstance(api, dict):
        return {k: _rebase(v, scheme, netloc) for k, v in api.items()}
    if isinstance(api, str) and api.startswith(("http://", "https://")):
        return urlsplit(api)._replace(scheme=scheme, netloc=netloc).geturl()
    return api


def market_of(client: Any, symbol: str, markets: dict[str, Any]) -> str:
    """ccxt's unified symbol (``BTC/USDT``) for our canonical one (``BTCUSDT``): the market
    whose exchange id or unified name without separators is ``symbol``."""
    for name, m in markets.items():
        if not m.get("spot", True):
            continue
        if m.get("id", "").upper() == symbol or name.replace("/", "").upper() == symbol:
            return str(name)
    raise UserError(f"--symbols: {client.id} has no spot market {symbol}")


def check_timeframe(client: Any, interval: str) -> None:
    frames = getattr(client, "timeframes", None) or {}
    if frames and interval not in frames:
        raise UserError(f"--interval: {client.id} offers {', '.join(frames)}; not {interval}")


@dataclass
class CcxtFetcher:
    """Pages one client's OHLCV; counts requests, retries and rate-limit answers."""

    client: Any
    policy: RetryPolicy
    sleep: Callable[[float], None] = time.sleep
    seed: int = 0
    totals: RangeResult = field(default_factory=lambda: RangeResult(table=pa.table({})))

    def call(self, fn: Callable[[], T], what: str, result: RangeResult | None = None) -> T:
        """``fn()`` with the retries: network errors back off (``policy``), rate-limit answers
        wait ``Retry-After`` (or back off) and are not failures unless endless; an exchange
        error (unknown symbol, bad timeframe) stops with ccxt's message."""
        import ccxt

        rng = random.Random(self.seed)  # nosec B311  # seeded retry jitter, not cryptography
        attempt = limited = 0
        counters = [self.totals] if result is None else [self.totals, result]
        while True:
            for c in counters:
                c.requests += 1
            try:
                return fn()
            except (ccxt.RateLimitExceeded, ccxt.DDoSProtection) as exc:
                limited += 1
                for c in counters:
                    c.rate_limited += 1
                if limited > RATE_LIMITED_MAX:
                    raise FetchError(f"{what}: still rate-limited after {RATE_LIMITED_MAX} "
                                     f"waits: {str(exc)[:200]}") from None
                self.sleep(self._retry_after() or self.policy.delay(min(limited, 6), rng))
            except (ccxt.NetworkError, ccxt.ExchangeNotAvailable) as exc:
                for c in counters:
                    c.retries += 1
                attempt = self._retry(attempt, rng, f"{what}: {str(exc)[:200]}")
            except ccxt.BaseError as exc:
                raise FetchError(f"{what}: {type(exc).__name__}: {str(exc)[:300]}") from None

    def fetch(self, job: FetchJob, market: str, now_ms: int) -> RangeResult:
        """Closed candles with open time in ``[job.start_ms, job.end_ms)``."""
        step = interval_ms(job.interval)
        result = RangeResult(table=pa.table({}))
        rows: dict[int, list[float]] = {}
        cursor = job.start_ms
        while cursor < job.end_ms:
            page = self.call(functools.partial(self.client.fetch_ohlcv, market, job.interval,
                                               since=cursor, limit=PAGE),
                             f"{job.symbol} {job.month}", result)
            fresh = [r for r in page if cursor <= int(r[0]) < job.end_ms]
            for r in fresh:
                if int(r[0]) + step <= now_ms:  # the open candle is never stored
                    rows[int(r[0])] = [float(x) for x in r[1:6]]
            if not fresh:
                break
            cursor = max(int(r[0]) for r in fresh) + step
        result.table = candle_table(rows)
        return result

    def _retry_after(self) -> float | None:
        headers = getattr(self.client, "last_response_headers", None) or {}
        raw = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
        try:
            return min(float(raw), 300.0) if raw is not None else None
        except ValueError:
            return None

    def _retry(self, attempt: int, rng: random.Random, what: str) -> int:
        if attempt >= self.policy.max_retries:
            raise FetchError(f"{what} (gave up after {attempt} retries)")
        self.sleep(self.policy.delay(attempt, rng))
        return attempt + 1


def candle_table(rows: dict[int, list[float]]) -> pa.Table:
    """OHLCV rows by open time -> the columns the lake's candle writer accepts."""
    times = sorted(rows)

    def col(i: int) -> pa.Array:
        return pa.array([rows[t][i] for t in times], pa.float64())

    return pa.table({"open_time": pa.array(times, pa.int64()), "open": col(0), "high": col(1),
                     "low": col(2), "close": col(3), "volume": col(4)})


def exchange_now_ms(fetcher: CcxtFetcher) -> int:
    """The exchange's clock when it tells (``fetchTime``), else ours."""
    if fetcher.client.has.get("fetchTime"):
        try:
            return int(fetcher.call(fetcher.client.fetch_time, "server time"))
        except FetchError:  # a clock is a nicety here: the open-candle cut uses ours then
            pass
    return int(time.time() * 1000)


def jobs_in_order(jobs: list[FetchJob]) -> Iterator[FetchJob]:
    """Oldest month first per symbol, so a resume always continues after a complete month."""
    yield from sorted(jobs, key=lambda j: (j.symbol, j.start_ms))


def run_ccxt_fetch(store: Any, exchange_id: str, symbols: list[str], interval: str,
                   start_ms: int, end_ms: int, *, base_url: str | None = None,
                   policy: RetryPolicy | None = None, progress: bool = True,
                   client: Any = None) -> FetchSummary:
    """Fetch ``symbols`` from ccxt's ``exchange_id`` into the lake under ``exchange=<id>``,
    one month written at a time (resumable), with a progress bar per month."""
    from tqdm import tqdm

    client = client or make_client(exchange_id, base_url)
    check_timeframe(client, interval)
    fetcher = CcxtFetcher(client, policy or RetryPolicy())
    loaded = fetcher.call(client.load_markets, f"{exchange_id} markets")
    markets = {s: market_of(client, s, loaded) for s in symbols}  # all checked before fetching
    now_ms = exchange_now_ms(fetcher)
    summary = FetchSummary()
    for s in symbols:
        last = store.last_open_time(s, interval, exchange_id)
        summary.resumed_from[s] = (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last / 1000))
                                   if last is not None else None)
    jobs = plan_jobs(store, symbols, interval, start_ms, end_ms, now_ms, exchange_id)
    summary.jobs = len(jobs)
    bar = tqdm(total=len(jobs), unit="month", desc=f"fetch {exchange_id} {interval}",
               disable=not progress, mininterval=0.5)
    try:
        for job in jobs_in_order(jobs):
            res = fetcher.fetch(job, markets[job.symbol], now_ms)
            written = store.write_candles(res.table, exchange_id, job.symbol, interval)
            summary.files.extend(written.files)
            n = res.table.num_rows
            summary.candles += n
            summary.per_symbol[job.symbol] = summary.per_symbol.get(job.symbol, 0) + n
            bar.update(1)
            bar.set_postfix(candles=summary.candles, refresh=False)
    finally:
        bar.close()
        close = getattr(client, "close", None)
        if callable(close):
            close()
    summary.files = sorted(set(summary.files))
    t = fetcher.totals  # every call: markets and clock too
    summary.requests, summary.retries, summary.rate_limited = t.requests, t.retries, \
        t.rate_limited
    summary.limiter = {"rate_limit_ms": float(getattr(client, "rateLimit", 0) or 0)}
    return summary
