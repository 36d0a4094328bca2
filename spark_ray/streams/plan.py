"""Pure planning helpers: symbol and stream-kind parsing, symbol shards over normalizers.

Venue-specific planning (stream names, connection shards, subscribe messages) is the adapter's
(:class:`spark_ray.adapters.base.Adapter`); reconnect backoff is :class:`spark_ray.http.Backoff`.
"""

from __future__ import annotations

from spark_ray.adapters.events import SYMBOL_RE


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


def parse_streams(raw: str | list[str] | tuple[str, ...], kinds: tuple[str, ...]) -> list[str]:
    """``"trade,depth"`` -> stream kinds, each one of ``kinds`` (the venue's capabilities)."""
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    out: list[str] = []
    for s in items:
        s = s.strip()
        if not s:
            continue
        if s not in kinds:
            raise ValueError(f"stream {s!r}: one of {', '.join(kinds)}")
        if s not in out:
            out.append(s)
    if not out:
        raise ValueError("at least one stream is required")
    return out


def shard_symbols(symbols: list[str], shards: int) -> list[list[str]]:
    """Round-robin symbols over normalizer shards (each shard gets at least one)."""
    shards = max(1, min(shards, len(symbols)))
    return [symbols[i::shards] for i in range(shards)]
