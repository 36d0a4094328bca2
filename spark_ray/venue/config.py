"""Venue settings, with Binance's real numbers as defaults and every timer configurable.

Tests shrink the timers (ping interval, pong timeout, lifetime, rate windows) so behaviour that
takes minutes or hours on Binance shows in seconds here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import field, replace
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    field_validator,
)
from pydantic.dataclasses import dataclass

from spark_ray.venue.ratelimit import RateLimitConfig
from spark_ray.venue.specs import SYMBOL_RE

TOKEN_ENV = "SPARK_RAY_VENUE_TOKEN"  # nosec B105  # the name of an environment variable, not a token
API_KEYS_ENV = "SPARK_RAY_VENUE_API_KEYS"  # "key1:secret1,key2:secret2"
_ASSET_RE = re.compile(r"^[A-Z0-9]{1,20}$")
_AMOUNT_RE = re.compile(r"^[0-9]{1,20}(\.[0-9]{1,8})?$")
_KEY_RE = re.compile(r"^[A-Za-z0-9]{1,128}$")
Rate = Annotated[float, Field(ge=0, lt=1)]  # a commission rate: 0.001 is 0.1%
Amount = str | int | float  # a starting balance, as decimal text ("100000", "0.5") or a number


def parse_api_keys(text: str) -> dict[str, str]:
    """``key:secret,key2:secret2`` -> {key: secret}; ValueError (never echoing a secret)."""
    keys: dict[str, str] = {}
    for i, part in enumerate(p for p in text.split(",") if p.strip()):
        key, sep, secret = part.strip().partition(":")
        if not sep or not key or not secret:
            raise ValueError(f"entry {i + 1} is not key:secret")
        keys[key] = secret
    return keys


def field_errors(error: ValidationError) -> list[tuple[str, str]]:
    """(field, reason) for each problem pydantic found, e.g. ("speed", "must be > 0")."""
    out = []
    for e in error.errors(include_url=False):
        name = str(e["loc"][0]) if e["loc"] else "config"
        reason = e["msg"].removeprefix("Value error, ")
        out.append((name, reason))
    return out


# Errors never echo what was given: api_keys holds secrets (and so may admin_token).
@dataclass(frozen=True, config=ConfigDict(extra="forbid", hide_input_in_errors=True))
class VenueConfig:
    """Everything a venue needs to start, checked when built (also by ``dataclasses.replace``).

    A bad or unknown setting raises pydantic's ValidationError (a ValueError) naming each bad
    field; :func:`field_errors` gives them as (field, reason) pairs. ``api_keys=None`` checks
    the keys in $SPARK_RAY_VENUE_API_KEYS.
    """

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8400
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")
    seed: int = 0
    store: Path | None = None  # replay 1m candles from this lake directory
    # whose candles: the lake's exchange= partition; an exchange with a trading calendar (bist)
    # is closed outside its sessions (spark_ray.venue.hours)
    store_exchange: str = "binance"
    speed: PositiveFloat = 1.0
    # per symbol, wall clock; None: 20 (replay: stored)
    trades_per_second: PositiveFloat | None = None
    start_time_ms: int | None = None  # market clock start; None: now (replay: first candle)
    history_minutes: NonNegativeInt = 3 * 1440  # synthetic closed candles before the start
    first_trade_id: NonNegativeInt = 1
    max_trades_per_symbol: NonNegativeInt | None = None  # halt the market after this many
    start_paused: bool = False  # clock frozen until resume(): clients can join before trade 1
    tick_s: PositiveFloat = 0.01  # engine step (wall seconds)
    max_batch: PositiveInt = 20_000  # trades per symbol per engine step
    book_levels: PositiveInt = 100
    # WebSocket limits (Binance values)
    ping_interval_s: PositiveFloat = 20.0
    pong_timeout_s: PositiveFloat = 60.0
    max_lifetime_s: PositiveFloat = 24 * 3600.0
    max_incoming_per_s: PositiveInt = 5
    max_streams: PositiveInt = 1024
    kline_push_s: PositiveFloat = 2.0  # Binance: 2 s (1 s for 1s klines)
    btcturk_push_s: PositiveFloat = 0.75  # BTCTurk batches book frames about every 764 ms
    write_high_water: int = 4 * 1024 * 1024  # bytes queued before the engine waits
    slow_consumer_bytes: int = 64 * 1024 * 1024  # bytes queued before a client is dropped
    # REST limits
    rate_limit: RateLimitConfig = field(default_factory=RateLimitConfig)
    admin_token: str | None = None  # None: take SPARK_RAY_VENUE_TOKEN from the environment
    # HTTPS/WSS with this PEM certificate chain and key (both or neither; paths): clients
    # then use https:// and wss:// and verify it (system CAs, or SSL_CERT_FILE for a private CA)
    tls_cert: str | None = None
    tls_key: str | None = None
    fault_log_size: int = 200_000
    # Trading (signed endpoints, user data streams). No keys: every signed call is refused, so
    # a venue without keys behaves exactly as a market-data-only venue.
    api_keys: Mapping[str, str] | None = Field(  # None: $API_KEYS_ENV, checked when built
        default=None, repr=False, validate_default=True)
    starting_balances: Mapping[str, Amount] = field(
        default_factory=lambda: {"USDT": "100000"})  # per account; unlisted assets start at 0
    # charged in the asset received (Binance without BNB); 0.001 is 0.1%
    maker_commission: Rate = 0.001
    taker_commission: Rate = 0.001
    listen_key_ttl_s: PositiveFloat = 3600.0  # a listenKey lives 60 min after the last keepalive

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, symbols: tuple[str, ...]) -> tuple[str, ...]:
        if not symbols:
            raise ValueError("at least one symbol is required")
        for s in symbols:
            if not SYMBOL_RE.match(s):
                raise ValueError(f"{s!r} is not an upper-case alphanumeric symbol")
        if len(set(symbols)) != len(symbols):
            raise ValueError("duplicates")
        return symbols

    @field_validator("store")
    @classmethod
    def _store(cls, store: Path | None) -> Path | None:
        if store is not None and not store.is_dir():
            raise ValueError(f"{store} is not a directory")
        return store

    @field_validator("api_keys")
    @classmethod
    def _api_keys(cls, keys: Mapping[str, str] | None) -> Mapping[str, str] | None:
        resolved = keys if keys is not None else parse_api_keys(os.environ.get(API_KEYS_ENV, ""))
        for key in resolved:
            if not _KEY_RE.match(key):
                raise ValueError("a key must be 1-128 letters and digits")
        return keys

    @field_validator("starting_balances")
    @classmethod
    def _balances(cls, balances: Mapping[str, Amount]) -> Mapping[str, Amount]:
        for asset, amount in balances.items():
            if not _ASSET_RE.match(asset):
                raise ValueError(f"{asset!r} is not an upper-case asset name")
            if not _AMOUNT_RE.match(str(amount)):
                raise ValueError(f"{asset} amount {amount!r} must be a non-negative decimal "
                                 "with at most 8 decimals")
        return balances

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

    def with_(self, **changes: Any) -> VenueConfig:
        return replace(self, **changes)
