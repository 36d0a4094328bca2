"""Pure planning helpers: stream names, symbol shards, connection shards, reconnect backoff."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from spark_ray.streams.frames import SYMBOL_RE, btcturk_pair

STREAM_KINDS = ("trade", "aggTrade", "depth", "bookTicker", "kline_1m")
MAX_STREAMS_PER_CONNECTION = 1024  # Binance's limit per connection


def parse_symbols(raw: str | list[str] | tuple[str, ...]) -> list[str]:
    """``"btcusdt, ETHUSDT"`` -> ``["BTCUSDT", "ETHUSDT"]``; ValueError names a bad one."""
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    out: list[str] = []
    for s in items:
        s = s.strip().upper()
        if not s:
            continue
        if not SYMBOL_RE.match(s):
            raise ValueError(f"symbol {s!r} must be 2-20 letters or digits")
        if s not in out:
            out.append(s)
    if not out:
        raise ValueError("at least one symbol is required")
    return out


def parse_streams(raw: str | list[str] | tuple[str, ...]) -> list[str]:
    """``"trade,depth"`` -> stream kinds; ``depth`` means the 100 ms diff stream."""
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    out: list[str] = []
    for s in items:
        s = s.strip()
        if not s:
            continue
        if s not in STREAM_KINDS:
            raise ValueError(f"stream {s!r}: one of {', '.join(STREAM_KINDS)}")
        if s not in out:
            out.append(s)
    if not out:
        raise ValueError("at least one stream is required")
    return out


def stream_names(symbols: list[str], kinds: list[str]) -> list[str]:
    """Binance stream names, e.g. ``btcusdt@trade``, ``btcusdt@depth@100ms``."""
    names = []
    for s in symbols:
        for k in kinds:
            suffix = "depth@100ms" if k == "depth" else k
            names.append(f"{s.lower()}@{suffix}")
    return names


def btcturk_channels(symbols: list[str]) -> list[tuple[str, str]]:
    """BTCTurk (channel, event) joins for our symbols (trades only)."""
    return [("trade", btcturk_pair(s)) for s in symbols]


def shard_symbols(symbols: list[str], shards: int) -> list[list[str]]:
    """Round-robin symbols over normalizer shards (each shard gets at least one)."""
    shards = max(1, min(shards, len(symbols)))
    return [symbols[i::shards] for i in range(shards)]


def connection_shards(streams: list[str],
                      max_per_connection: int = MAX_STREAMS_PER_CONNECTION) -> list[list[str]]:
    """Split streams into connections of at most ``max_per_connection`` streams."""
    if max_per_connection < 1:
        raise ValueError("max_per_connection must be >= 1")
    return [streams[i:i + max_per_connection]
            for i in range(0, len(streams), max_per_connection)] or [[]]


@dataclass
class Backoff:
    """Exponential backoff with full jitter: delay = uniform(0, min(cap, base * 2**attempt)).

    Jitter spreads reconnects of many clients after a venue-wide outage; the floor keeps a
    flapping venue from being hammered."""

    base_s: float = 0.1
    cap_s: float = 10.0
    floor_s: float = 0.02
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next(self) -> float:
        ceiling = min(self.cap_s, self.base_s * 2 ** self.attempt)
        self.attempt += 1
        return max(self.floor_s, self.rng.uniform(0, ceiling))

    def reset(self) -> None:
        self.attempt = 0
