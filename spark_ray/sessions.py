"""Trading sessions of exchanges that close (BIST): which candles exist, which bars may trade,
and how many bars make a year.

A base module (no domain package below it) so the data checks, the backtest and the venue
simulator all read the one calendar map, :data:`CALENDARS`, without importing each other;
``exchange_calendars`` and pandas are imported only when a calendar is consulted.

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

import functools
from typing import Any

import numpy as np

from spark_ray.schemas import INTERVAL_MS, interval_ms

# Our exchange name -> exchange_calendars code: the one place an exchange gets a calendar.
CALENDARS: dict[str, str] = {"bist": "XIST"}
DAY_MS = 86_400_000
YEAR_MS = 365 * DAY_MS
_STEPS: dict[str, int] = {k: v for k, v in INTERVAL_MS.items() if v}


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


@functools.cache
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


def _bounds(code: str, lo_ms: int, hi_ms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(session days at 00:00 UTC, opens, closes) in UTC ms of the sessions in [lo, hi]."""
    import pandas as pd

    cal = _calendar(code, lo_ms, hi_ms)
    sched = cal.schedule.loc[pd.Timestamp(lo_ms, unit="ms").normalize():
                             pd.Timestamp(hi_ms, unit="ms").normalize()]
    idx = sched.index.tz_localize(None) if sched.index.tz is not None else sched.index
    days = np.asarray(idx.as_unit("ms").asi8, dtype=np.int64)
    opens = sched["open"].dt.tz_convert("UTC").dt.as_unit("ms").astype("int64").to_numpy()
    closes = sched["close"].dt.tz_convert("UTC").dt.as_unit("ms").astype("int64").to_numpy()
    return days, np.asarray(opens, np.int64), np.asarray(closes, np.int64)


def in_session(exchange: str, interval: str, times: np.ndarray) -> np.ndarray | None:
    """Which bars (open times, UTC ms) lie inside one of ``exchange``'s sessions; None when the
    exchange never closes or the interval is longer than a day (nothing to mask).

    Intraday: a bar is inside when a session's open <= its open time < that session's close,
    the same rule :func:`session_grid` builds the expected candles by; daily: its 00:00 UTC
    label is a session's date."""
    code = calendar_code(exchange)
    if code is None or interval not in _STEPS or _STEPS[interval] > DAY_MS:
        return None
    t = np.asarray(times, dtype=np.int64)
    if len(t) == 0:
        return np.zeros(0, dtype=bool)
    days, opens, closes = _bounds(code, int(t.min()), int(t.max()))
    if _STEPS[interval] == DAY_MS:
        return np.isin(t, days)
    k = np.searchsorted(opens, t, side="right") - 1
    ok = k >= 0
    ok[ok] = t[ok] < closes[k[ok]]
    return ok


def _last_full_years(code: str) -> tuple[np.ndarray, np.ndarray]:
    """Opens and closes (UTC ms) of the calendar's last five full years of sessions."""
    import exchange_calendars as xc

    cal = xc.get_calendar(code)
    last = cal.last_session.year - 1
    sched = cal.schedule.loc[f"{last - 4}-01-01":f"{last}-12-31"]
    opens = sched["open"].dt.tz_convert("UTC").dt.as_unit("ms").astype("int64").to_numpy()
    closes = sched["close"].dt.tz_convert("UTC").dt.as_unit("ms").astype("int64").to_numpy()
    return np.asarray(opens, np.int64), np.asarray(closes, np.int64)


@functools.cache
def periods_per_year(exchange: str, interval: str, step_ms: int | None = None
                     ) -> tuple[float, str]:
    """Bars a year for annualizing per-bar statistics, and the convention in words.

    Venues that never close: 365 days x 24 h / the interval. An exchange with a calendar
    (BIST: XIST): trading days a year (the mean over the calendar's last five full years,
    about 250) for daily bars, times the bars a session holds for intraday bars (the same five
    years' session bars divided by five, so half days count as the short sessions they are).
    Intervals longer than a day, and bars of no standard interval (``step_ms``, e.g. ticks),
    use calendar time.
    Sharpe, Sortino and volatility scale by sqrt(periods) as for IID returns (SR(q) = sqrt(q) SR;
    Lo 2002, "The Statistics of Sharpe Ratios", Financial Analysts Journal 58(4),
    https://rpc.cfainstitute.org/research/financial-analysts-journal/2002/the-statistics-of-sharpe-ratios).
    """
    step = _STEPS.get(interval) or step_ms
    if not step:
        raise ValueError(f"interval: {interval!r} has no fixed length to annualize by")
    code = calendar_code(exchange)
    if code is None or step > DAY_MS or interval not in _STEPS:
        per = YEAR_MS / step
        how = "365 days a year, 24/7" if code is None else "calendar time, 365 days a year"
        return per, f"{how}: {per:,.2f} {interval} bars a year"
    days = sessions_per_year(exchange)
    if step == DAY_MS:
        return days, f"{code} trading calendar: {days:g} trading days a year (1d bars)"
    opens, closes = _last_full_years(code)
    bars = int(sum(len(range(o + (-o) % step, c, step)) for o, c in
                   zip(opens.tolist(), closes.tolist(), strict=True)))
    per = bars / 5
    return per, (f"{code} trading calendar: {days:g} trading days a year x "
                 f"{per / days:.2f} {interval} bars a session = {per:,.2f} bars a year")
