"""Local venue simulator: a Binance-compatible exchange (and a BTCTurk feed) on loopback.

Clients keep real Binance endpoints as their defaults; tests and demos point them at a venue's
`rest_url` / `ws_url` instead. See :class:`Venue` for the Python API and `spark-ray venue` for the
command.
"""

from spark_ray.venue.config import TOKEN_ENV, VenueConfig
from spark_ray.venue.faults import FaultKind, FaultSpec
from spark_ray.venue.ratelimit import RateLimitConfig
from spark_ray.venue.venue import Venue

__all__ = ["TOKEN_ENV", "FaultKind", "FaultSpec", "RateLimitConfig", "Venue", "VenueConfig"]
