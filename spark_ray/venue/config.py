"""Venue settings, with Binance's real numbers as defaults and every timer configurable.

Tests shrink the timers (ping interval, pong timeout, lifetime, rate windows) so behaviour that
takes minutes or hours on Binance shows in seconds here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from spark_ray.venue.ratelimit import RateLimitConfig
from spark_ray.venue.specs import SYMBOL_RE

TOKEN_ENV = "SPARK_RAY_VENUE_TOKEN"
API_KEYS_ENV = "SPARK_RAY_VENUE_API_KEYS"  # "key1:secret1,key2:secret2"
_ASSET_RE = re.compile(r"^[A-Z0-9]{1,20}$")
_AMOUNT_RE = re.compile(r"^[0-9]{1,20}(\.[0-9]{1,8})?$")
_KEY_RE = re.compile(r"^[A-Za-z0-9]{1,128}$")


def parse_api_keys(text: str) -> dict[str, str]:
    """``key:secret,key2:secret2`` -> {key: secret}; ValueError (never echoing a secret)."""
    keys: dict[str, str] = {}
    for i, part in enumerate(p for p in text.split(",") if p.strip()):
        key, sep, secret = part.strip().partition(":")
        if not sep or not key or not secret:
            raise ValueError(f"api_keys: entry {i + 1} is not key:secret")
        keys[key] = secret
    return keys


@dataclass(frozen=True)
class VenueConfig:
    """Everything a venue needs to start. Field names are what `validate` errors name."""

    host: str = "127.0.0.1"
    port: int = 8400
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")
    seed: int = 0
    store: Path | None = None
    speed: float = 1.0
    trades_per_second: float | None = None  # per symbol, wall clock; None: 20 (replay: stored)
    start_time_ms: int | None = None  # market clock start; None: now (replay: first candle)
    history_minutes: int = 3 * 1440  # synthetic closed candles before the start
    first_trade_id: int = 1
    max_trades_per_symbol: int | None = None  # halt the market after this many trades
    start_paused: bool = False  # clock frozen until resume(): clients can join before trade 1
    tick_s: float = 0.01  # engine step (wall seconds)
    max_batch: int = 20_000  # trades per symbol per engine step
    book_levels: int = 100
    # WebSocket limits (Binance values)
    ping_interval_s: float = 20.0
    pong_timeout_s: float = 60.0
    max_lifetime_s: float = 24 * 3600.0
    max_incoming_per_s: int = 5
    max_streams: int = 1024
    kline_push_s: float = 2.0  # Binance: 2 s (1 s for 1s klines)
    btcturk_push_s: float = 0.75  # BTCTurk batches book frames about every 764 ms
    write_high_water: int = 4 * 1024 * 1024  # bytes queued before the engine waits
    slow_consumer_bytes: int = 64 * 1024 * 1024  # bytes queued before a client is dropped
    # REST limits
    rate_limit: RateLimitConfig = field(default_factory=RateLimitConfig)
    admin_token: str | None = None  # None: take SPARK_RAY_VENUE_TOKEN from the environment
    fault_log_size: int = 200_000
    # Trading (signed endpoints, user data streams). No keys: every signed call is refused, so
    # a venue without keys behaves exactly as a market-data-only venue.
    api_keys: Mapping[str, str] | None = field(default=None, repr=False)  # None: $API_KEYS_ENV
    starting_balances: Mapping[str, str] = field(
        default_factory=lambda: {"USDT": "100000"})  # per account; unlisted assets start at 0
    maker_commission: float = 0.001  # 0.1%, charged in the asset received (Binance without BNB)
    taker_commission: float = 0.001
    listen_key_ttl_s: float = 3600.0  # a listenKey lives 60 minutes after the last keepalive

    def resolved_token(self) -> str | None:
        """The admin token: explicit, else from the environment; empty means none."""
        token = self.admin_token if self.admin_token is not None else os.environ.get(TOKEN_ENV)
        return token or None

    def resolved_api_keys(self) -> dict[str, str]:
        """API key -> secret: explicit, else from SPARK_RAY_VENUE_API_KEYS; empty means none."""
        if self.api_keys is not None:
            return dict(self.api_keys)
        return parse_api_keys(os.environ.get(API_KEYS_ENV, ""))

    @property
    def rate(self) -> float:
        """Trades per wall second per symbol for the synthetic market."""
        return 20.0 if self.trades_per_second is None else self.trades_per_second

    def validate(self) -> VenueConfig:
        """Raise ValueError naming the field when a setting is unusable; return self."""
        if not self.symbols:
            raise ValueError("symbols: at least one symbol is required")
        for s in self.symbols:
            if not SYMBOL_RE.match(s):
                raise ValueError(f"symbols: {s!r} is not an upper-case alphanumeric symbol")
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError("symbols: duplicates")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port: {self.port} is outside 0..65535")
        if not self.speed > 0:
            raise ValueError("speed: must be > 0")
        if self.trades_per_second is not None and not self.trades_per_second > 0:
            raise ValueError("trades_per_second: must be > 0")
        for name in ("ping_interval_s", "pong_timeout_s", "max_lifetime_s", "tick_s",
                     "kline_push_s", "btcturk_push_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: must be > 0")
        for name in ("max_incoming_per_s", "max_streams", "book_levels", "max_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1")
        if self.history_minutes < 0:
            raise ValueError("history_minutes: must be >= 0")
        if self.max_trades_per_symbol is not None and self.max_trades_per_symbol < 0:
            raise ValueError("max_trades_per_symbol: must be >= 0")
        if self.first_trade_id < 0:
            raise ValueError("first_trade_id: must be >= 0")
        for key in self.resolved_api_keys():
            if not _KEY_RE.match(key):
                raise ValueError("api_keys: a key must be 1-128 letters and digits")
        for asset, amount in self.starting_balances.items():
            if not _ASSET_RE.match(str(asset)):
                raise ValueError(f"starting_balances: {asset!r} is not an upper-case asset name")
            if not _AMOUNT_RE.match(str(amount)):
                raise ValueError(f"starting_balances: {asset} amount {amount!r} must be a "
                                 "non-negative decimal with at most 8 decimals")
        for name in ("maker_commission", "taker_commission"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name}: must be in [0, 1), e.g. 0.001 for 0.1%")
        if not self.listen_key_ttl_s > 0:
            raise ValueError("listen_key_ttl_s: must be > 0")
        if self.store is not None and not Path(self.store).is_dir():
            raise ValueError(f"store: {self.store} is not a directory")
        return self

    def with_(self, **changes: Any) -> VenueConfig:
        return replace(self, **changes)
