"""Which adapter serves an exchange name: the only place that maps names to venues."""

from __future__ import annotations

from spark_ray.adapters.base import Adapter
from spark_ray.adapters.binance import BinanceAdapter
from spark_ray.adapters.btcturk import BTCTurkAdapter

ADAPTERS: dict[str, Adapter] = {a.name: a for a in (BinanceAdapter(), BTCTurkAdapter())}


def exchange_names() -> tuple[str, ...]:
    return tuple(ADAPTERS)


def get_adapter(exchange: str) -> Adapter:
    """The adapter of ``exchange``; ValueError lists the known ones."""
    try:
        return ADAPTERS[exchange]
    except KeyError:
        raise ValueError(f"exchange {exchange!r}: one of {', '.join(ADAPTERS)}") from None
