"""Labels for supervised signals: forward returns and the triple-barrier method.

Triple barrier (López de Prado, *Advances in Financial Machine Learning*, 2018, section 3.4):
from each event bar, an upper barrier at ``+pt x vol`` and a lower one at ``-sl x vol`` (log
return from the entry close, ``vol`` the event's volatility estimate) and a vertical barrier
``horizon`` bars later. The label is +1 or -1 for whichever horizontal barrier the path touches
first, and at the vertical barrier the sign of the return then (0 when it is flat), as in the
book's ``getBins``. The label of bar i is built from bars i+1 .. i+horizon only, so the last
``horizon`` bars have none (NaN): a label is future by definition, which is why training purges
and embargoes around it (:mod:`spark_ray.tune.cv`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def forward_return(close: np.ndarray, horizon: int) -> np.ndarray:
    """log(close[i + horizon] / close[i]); NaN for the last ``horizon`` bars."""
    if horizon < 1:
        raise ValueError("horizon: must be at least 1")
    out = np.full(len(close), np.nan)
    if len(close) > horizon:
        out[:-horizon] = np.log(close[horizon:] / close[:-horizon])
    return out


@dataclass(frozen=True)
class Barriers:
    """Label of each bar, the bar offset the barrier was touched at, and which barrier it was
    (+1 upper, -1 lower, 0 vertical)."""

    label: np.ndarray
    touched_after: np.ndarray
    barrier: np.ndarray


def triple_barrier(close: np.ndarray, vol: np.ndarray, horizon: int, pt: float = 1.0,
                   sl: float = 1.0) -> Barriers:
    """Triple-barrier labels for every bar (see the module docstring). ``vol`` is per bar and
    must itself use only data up to that bar; a bar whose ``vol`` is NaN or not positive gets
    no label."""
    if horizon < 1:
        raise ValueError("horizon: must be at least 1")
    if pt <= 0 or sl <= 0:
        raise ValueError("pt and sl: must be positive")
    n = len(close)
    label = np.full(n, np.nan)
    when = np.full(n, -1, dtype=np.int64)
    which = np.zeros(n, dtype=np.int64)
    logc = np.log(close)
    # paths[i, k] = log return from bar i to bar i + 1 + k, for every bar with a full horizon
    m = n - horizon
    if m <= 0:
        return Barriers(label, when, which)
    paths = np.lib.stride_tricks.sliding_window_view(logc[1:], horizon)[:m] - logc[:m, None]
    v = vol[:m]
    good = np.isfinite(v) & (v > 0)
    up = paths >= (pt * v)[:, None]
    down = paths <= (-sl * v)[:, None]
    first_up = np.where(up.any(axis=1), up.argmax(axis=1), horizon)
    first_down = np.where(down.any(axis=1), down.argmax(axis=1), horizon)
    hit_up = first_up < first_down
    hit_down = first_down < first_up
    end = paths[:, -1]
    lab = np.where(hit_up, 1.0, np.where(hit_down, -1.0, np.sign(end)))
    at = np.where(hit_up, first_up, np.where(hit_down, first_down, horizon - 1)) + 1
    label[:m] = np.where(good, lab, np.nan)
    when[:m] = np.where(good, at, -1)
    which[:m] = np.where(good, np.where(hit_up, 1, np.where(hit_down, -1, 0)), 0)
    return Barriers(label, when, which)
