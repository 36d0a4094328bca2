"""Trading sessions of exchanges that close (BIST), for counting missing candles honestly.

Crypto venues trade around the clock: every grid point is an expected candle. Borsa Istanbul
trades on weekdays that are not holidays, 10:00-18:00 Istanbul time (07:00-15:00 UTC), with
half days before some holidays; a candle outside a session never existed, so it is not missing.
The calendar comes from ``exchange_calendars`` (XIST, https://github.com/gerrymanoim/
exchange_calendars), the field's maintained source of sessions, holidays and early closes.

Daily candles are labelled with the session's date at 00:00 UTC (how daily exports such as
``Date,Open,High,Low,Close,Adj Close,Volume`` name them); intraday candles are expected on the
interval's grid from the session's open up to its close.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spark_ray.schemas import interval_ms

# Our exchange name -> exchange_calendars code.
CALENDARS: dict[str, str] = {"bist": "XIST"}
DAY_MS = 86_400_000


def calendar_code(exchange: str) -> str | None:
    """The calendar of ``exchange``; None for venues that never close."""
    return CALENDARS.get(exchange)


def _calendar(code: str, lo_ms: int, hi_ms: int) -> Any:
    import exchange_calendars as xc
    import pandas as pd

    default = xc.get_calendar(code)  # cached: covers the last 20 years to next year
    lo, hi = pd.Timestamp(lo_ms, unit="ms"), pd.Timestamp(hi_ms, unit="ms")
    if lo.normalize() >= default.first_session and hi.normalize() <= default.last_session:
        return default
    return xc.get_calendar(code, start=lo.normalize(), end=hi.normalize() + pd.Timedelta(days=1))


def session_grid(exchange: str, interval: str, lo_ms: int, hi_ms: int) -> np.ndarray | None:
    """Open times (UTC ms, sorted) of every candle ``exchange`` trades in ``[lo_ms, hi_ms]``;
    None when the exchange never closes or the interval is longer than a day (weeks and months
    are counted on the plain grid)."""
    code = calendar_code(exchange)
    step = interval_ms(interval)
    if code is None or step > DAY_MS:
        return None
    import pandas as pd

    cal = _calendar(code, lo_ms, hi_ms)
    day_lo = pd.Timestamp(lo_ms, unit="ms").normalize()
    day_hi = pd.Timestamp(hi_ms, unit="ms").normalize()
    sched = cal.schedule.loc[day_lo:day_hi]
    if step == DAY_MS:
        days = sched.index.tz_localize(None) if sched.index.tz is not None else sched.index
        grid = days.as_unit("ms").asi8
    else:
        opens = sched["open"].dt.tz_convert("UTC").dt.as_unit("ms").astype("int64").to_numpy()
        closes = sched["close"].dt.tz_convert("UTC").dt.as_unit("ms").astype("int64").to_numpy()
        parts = [np.arange(o + (-o) % step, c, step, dtype=np.int64)
                 for o, c in zip(opens, closes, strict=True)]
        grid = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    grid = np.asarray(grid, dtype=np.int64)
    return grid[(grid >= lo_ms) & (grid <= hi_ms)]


def sessions_per_year(exchange: str) -> float:
    """Trading sessions a year (for annualizing returns): 365 for venues that never close,
    else the calendar's mean over its last five full years."""
    code = calendar_code(exchange)
    if code is None:
        return 365.0
    import exchange_calendars as xc

    cal = xc.get_calendar(code)
    last = cal.last_session.year - 1
    counts = [len(cal.sessions_in_range(f"{y}-01-01", f"{y}-12-31"))
              for y in range(last - 4, last + 1)]
    return float(np.mean(counts))
