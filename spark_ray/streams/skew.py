"""Ingest lag that is never silently negative.

Ingest lag is receive time (our clock) minus the exchange's event time (its clock). A negative
lag is not "faster than light": the two clocks disagree (a venue clock ahead of ours, or event
times that are not wall-clock times at all, e.g. a replayed or sped-up market). Reporting such a
value as lag (a gauge at -170 s) or silently flooring it at 0 both hide that; so lags are clamped
at 0 *and* the events whose event time was ahead of our clock are counted, with how far ahead
the worst one was, for the status and the ``streams_clock_skew_total`` metric.
"""

from __future__ import annotations

import numpy as np


def clamp_lags(lags_ms: np.ndarray) -> tuple[np.ndarray, int, float]:
    """(lags clamped at 0, events ahead of our clock, ms the furthest one was ahead)."""
    ahead = lags_ms < 0
    n = int(np.count_nonzero(ahead))
    if n == 0:
        return lags_ms, 0, 0.0
    return np.maximum(lags_ms, 0.0), n, float(-lags_ms.min())
