"""One HTTP client and one retry policy for every venue call: ETL, gap repair and trading.

Before, three clients (urllib in the kline ETL, two aiohttp wrappers for gap repair and the
executor) and three backoff formulas did the same job with different rules. Now:

- :class:`RetryPolicy` says how often and how long to wait: exponential backoff with full jitter
  (``uniform(0, min(cap, base * 2**attempt))``, never below a floor), as AWS's architecture blog
  "Exponential Backoff And Jitter" recommends so that many clients retrying after one outage
  spread out instead of hammering the venue in step. :class:`Backoff` is the same policy with
  an attempt counter, for reconnect loops.
- :class:`HttpClient` is one aiohttp session per base URL. It never uses an environment proxy
  (loopback venues in tests, and keys must not travel through a proxy nobody chose), and it
  honours ``Retry-After`` on 429/418 for *every* caller of the client: Binance bans an IP that
  keeps asking after a 429. :meth:`HttpClient.request` is one attempt (the caller decides what
  is safe to repeat: a lost order submit is not); :meth:`HttpClient.get_json` retries what is
  always safe to repeat (transport errors and 5xx of a GET) under a policy.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field
from typing import Any

import aiohttp

RETRY_STATUSES = frozenset({500, 502, 503, 504})
RATE_LIMIT_STATUSES = frozenset({418, 429})


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to retry and how long to wait before retry number ``attempt`` (0-based)."""

    max_retries: int = 6
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    min_delay_s: float = 0.02
    timeout_s: float = 15.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** attempt)
        return max(self.min_delay_s, (rng or random).uniform(0, ceiling))


@dataclass
class Backoff:
    """A :class:`RetryPolicy`'s delays for one reconnect loop: ``next()`` after a failure,
    ``reset()`` once the connection works again."""

    policy: RetryPolicy = field(default_factory=RetryPolicy)
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next(self) -> float:
        d = self.policy.delay(self.attempt, self.rng)
        self.attempt += 1
        return d

    def reset(self) -> None:
        self.attempt = 0


@dataclass
class HttpAnswer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON, else the text

    @property
    def retry_after_s(self) -> float | None:
        raw = self.headers.get("retry-after", "")
        try:
            return float(raw) if raw else None
        except ValueError:
            return None

    def venue_error(self) -> tuple[int | None, str]:
        """Binance-style ``{"code": ..., "msg": ...}`` error body, as (code, msg)."""
        if isinstance(self.body, dict):
            code = self.body.get("code")
            return (code if isinstance(code, int) else None), str(self.body.get("msg", ""))
        return None, str(self.body)[:200] if self.body is not None else ""


class TransportError(OSError):
    """No answer at all: connection refused or reset, timeout, a broken response."""


class HttpError(Exception):
    """An answer that is not 200 (after the policy's retries, where it applied)."""

    def __init__(self, answer: HttpAnswer, what: str = "") -> None:
        code, msg = answer.venue_error()
        super().__init__(f"{what + ': ' if what else ''}HTTP {answer.status}"
                         + (f" code {code}: {msg}" if code is not None else ""))
        self.answer = answer
        self.status = answer.status
        self.code = code
        self.msg = msg
        self.retry_after = answer.retry_after_s


class HttpClient:
    """An aiohttp session for one base URL; created on first use inside the caller's loop."""

    def __init__(self, base_url: str, timeout_s: float = 10.0,
                 headers: dict[str, str] | None = None) -> None:
        self.base = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._headers = dict(headers or {})
        self._session: aiohttp.ClientSession | None = None
        self.blocked_until = 0.0  # loop time before which a 429/418 asked us not to call
        self.calls = 0
        self.rate_limited = 0

    def __repr__(self) -> str:  # headers may carry a key: never shown
        return f"HttpClient({self.base!r})"

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s), trust_env=False,
                headers={"User-Agent": "spark-ray", **self._headers})
        return self._session

    async def request(self, method: str, path: str, params: dict[str, Any] | str | None = None,
                      headers: dict[str, str] | None = None,
                      wait_rate_limit: bool = True) -> HttpAnswer:
        """One attempt. ``params`` as a dict, or an already encoded (signed) query string.
        Raises :class:`TransportError` when no answer came."""
        loop = asyncio.get_running_loop()
        wait = self.blocked_until - loop.time()
        if wait > 0 and wait_rate_limit:
            await asyncio.sleep(wait)
        url = self.base + path
        if isinstance(params, str):
            url, params = (url + "?" + params if params else url), None
        self.calls += 1
        try:
            async with self._http().request(method, url, params=params,
                                            headers=headers) as r:
                text = await r.text()
                answer = HttpAnswer(r.status, {k.lower(): v for k, v in r.headers.items()},
                                    _body(text))
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise TransportError(f"{method} {path}: {type(exc).__name__}") from None
        if answer.status in RATE_LIMIT_STATUSES:
            self.rate_limited += 1
            after = answer.retry_after_s
            if after is not None:
                self.blocked_until = max(self.blocked_until, loop.time() + after)
        return answer

    async def get(self, path: str, params: dict[str, Any] | None = None,
                  headers: dict[str, str] | None = None) -> HttpAnswer:
        return await self.request("GET", path, params, headers)

    async def get_json(self, path: str, params: dict[str, Any] | None = None,
                       headers: dict[str, str] | None = None, retry: RetryPolicy | None = None,
                       rng: random.Random | None = None) -> Any:
        """GET and return the JSON body of a 200; retries transport errors, 5xx and rate
        limits under ``retry`` (None: one attempt). :class:`HttpError` or
        :class:`TransportError` when it gives up."""
        attempt = 0
        while True:
            try:
                ans = await self.get(path, params, headers)
            except TransportError:
                if retry is None or attempt >= retry.max_retries:
                    raise
            else:
                if ans.status == 200:
                    return ans.body
                retryable = ans.status in RETRY_STATUSES or ans.status in RATE_LIMIT_STATUSES
                if retry is None or not retryable or attempt >= retry.max_retries:
                    raise HttpError(ans, f"GET {path}")
            assert retry is not None  # nosec B101  # narrows Optional for mypy, not a check
            await asyncio.sleep(retry.delay(attempt, rng))
            attempt += 1

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _body(text: str) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text
