"""Market hours of a replayed exchange that closes (BIST): which minutes the market is open.

The replay venue speaks Binance's protocol whatever the data's origin; when the stored candles
come from an exchange with a trading calendar (``spark_ray.sessions.calendar_code``, BIST ->
exchange_calendars XIST), the market is closed outside its sessions: no trade prints there and
no kline is served for a closed minute, and the replay clock jumps over the closed hours (a
night has nothing to show) rather than make a client wait them out.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from spark_ray.sessions import session_grid

MINUTE_MS = 60_000


@dataclass(frozen=True)
class MarketHours:
    """The open 1m candles (open times, UTC ms, sorted) of the replayed span."""

    minutes: tuple[int, ...]

    def is_open(self, open_time: int) -> bool:
        """True when the minute opening at ``open_time`` lies inside a session."""
        i = bisect.bisect_left(self.minutes, open_time)
        return i < len(self.minutes) and self.minutes[i] == open_time

    def next_open(self, ms: int) -> int | None:
        """The first open minute starting at or after ``ms``; None when no session follows."""
        i = bisect.bisect_left(self.minutes, ms)
        return self.minutes[i] if i < len(self.minutes) else None


def market_hours(exchange: str, first_ms: int, last_ms: int) -> MarketHours | None:
    """The sessions' minutes from ``first_ms`` through the day of ``last_ms``; None for an
    exchange that never closes (every minute is open, as before)."""
    end_of_day = last_ms - last_ms % 86_400_000 + 86_400_000 - 1
    grid = session_grid(exchange, "1m", first_ms - first_ms % MINUTE_MS, end_of_day)
    if grid is None:
        return None
    return MarketHours(tuple(int(t) for t in np.asarray(grid, dtype=np.int64)))
