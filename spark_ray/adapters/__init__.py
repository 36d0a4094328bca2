"""Venue adapters: everything the platform knows about one exchange, behind one protocol.

``get_adapter("binance")`` returns the exchange's :class:`~spark_ray.adapters.base.Adapter`
(URLs, stream names, subscribe messages, frame parser, REST client, symbol mapping, capability
flags); :mod:`spark_ray.adapters.events` holds the canonical types every parser produces.
"""

from __future__ import annotations

from spark_ray.adapters.base import Adapter, Capabilities
from spark_ray.adapters.registry import exchange_names, get_adapter

__all__ = ["Adapter", "Capabilities", "exchange_names", "get_adapter"]
