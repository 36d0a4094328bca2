"""Binance's REST request-weight limiter: used weight per window, 429 with Retry-After, then 418.

Binance counts request weight per IP per minute and reports it in X-MBX-USED-WEIGHT-1M; past the
limit it answers 429 with Retry-After, and a client that keeps going gets an IP ban (418) whose
length grows with repeat offences (2 minutes up to 3 days). The window and ban lengths are
configurable so tests see all three answers in seconds. Pure: time is passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Request weight per endpoint (Binance spot docs); depth and tickers depend on parameters.
WEIGHTS: dict[str, int] = {
    "/api/v3/ping": 1,
    "/api/v3/time": 1,
    "/api/v3/exchangeInfo": 20,
    "/api/v3/klines": 2,
    "/api/v3/uiKlines": 2,
    "/api/v3/trades": 25,
    "/api/v3/historicalTrades": 25,
    "/api/v3/aggTrades": 4,
    "/api/v3/avgPrice": 2,
}


def depth_weight(limit: int) -> int:
    """Weight of GET /api/v3/depth by limit (1-100: 5, 101-500: 25, 501-1000: 50, else 250)."""
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


def ticker_weight(n_symbols: int | None) -> int:
    """Weight of ticker/price and ticker/bookTicker: 2 for one symbol, 4 for several or all."""
    return 2 if n_symbols == 1 else 4


def day_ticker_weight(n_symbols: int | None) -> int:
    """Weight of ticker/24hr (Binance spot docs): 1-20 symbols 2, 21-100 40, more or all 80."""
    if n_symbols is None or n_symbols > 100:
        return 80
    return 2 if n_symbols <= 20 else 40


@dataclass(frozen=True)
class RateLimitConfig:
    weight_limit: int = 6000
    window_s: float = 60.0
    ban_after: int = 3  # 429s answered in one window before the IP is banned
    ban_s: float = 120.0
    ban_max_s: float = 3 * 86_400.0


@dataclass(frozen=True)
class Verdict:
    """The limiter's answer for one request: HTTP status, weight to report, Retry-After."""

    status: int
    used_weight: int
    retry_after: int | None = None
    banned_until: float | None = None


@dataclass
class _Client:
    window_end: float = 0.0
    used: int = 0
    rejections: int = 0
    banned_until: float = 0.0
    bans: int = 0


class RateLimiter:
    """Per-client (per IP) fixed-window weight counter with escalating bans."""

    def __init__(self, config: RateLimitConfig) -> None:
        self.config = config
        self._clients: dict[str, _Client] = {}

    def used(self, key: str, now: float) -> int:
        c = self._clients.get(key)
        if c is None or now >= c.window_end:
            return 0
        return c.used

    def check(self, key: str, weight: int, now: float) -> Verdict:
        """Count a request of `weight`; 200 if within budget, else 429 or (repeatedly) 418."""
        cfg = self.config
        c = self._clients.setdefault(key, _Client())
        if now < c.banned_until:
            return Verdict(418, c.used if now < c.window_end else 0,
                           retry_after=max(1, math.ceil(c.banned_until - now)),
                           banned_until=c.banned_until)
        if now >= c.window_end:
            c.window_end = now + cfg.window_s
            c.used = 0
            c.rejections = 0
        c.used += weight
        if c.used <= cfg.weight_limit:
            return Verdict(200, c.used)
        c.rejections += 1
        if c.rejections > cfg.ban_after:
            ban = min(cfg.ban_max_s, cfg.ban_s * (2**c.bans))
            c.bans += 1
            c.banned_until = now + ban
            return Verdict(418, c.used, retry_after=max(1, math.ceil(ban)),
                           banned_until=c.banned_until)
        return Verdict(429, c.used, retry_after=max(1, math.ceil(c.window_end - now)))
