"""Vectorized indicators (numpy). NaN until enough bars exist: no look-ahead."""

from __future__ import annotations

import numpy as np


def sma(x: np.ndarray, n: int) -> np.ndarray:
    """Simple moving average; ``out[i]`` uses ``x[i-n+1..i]``."""
    out = np.full(len(x), np.nan)
    if n <= len(x):
        c = np.cumsum(np.insert(x.astype(np.float64), 0, 0.0))
        out[n - 1:] = (c[n:] - c[:-n]) / n
    return out


def rolling_mean_exact(x: np.ndarray, n: int) -> np.ndarray:
    """Moving average by pandas' rolling mean (the numerics peers use, e.g. backtesting.py)."""
    import pandas as pd

    return pd.Series(x).rolling(n).mean().to_numpy()


def rsi(close: np.ndarray, n: int) -> np.ndarray:
    """Wilder's RSI."""
    d = np.diff(close, prepend=np.nan)
    up = np.where(d > 0, d, 0.0)
    dn = np.where(d < 0, -d, 0.0)
    out = np.full(len(close), np.nan)
    if len(close) <= n:
        return out
    au = up[1:n + 1].mean()
    ad = dn[1:n + 1].mean()
    alpha = 1.0 / n
    vals = np.empty(len(close) - n)
    vals[0] = 100.0 if ad == 0 else 100.0 - 100.0 / (1.0 + au / ad)
    for k, i in enumerate(range(n + 1, len(close)), start=1):
        au = au * (1 - alpha) + up[i] * alpha
        ad = ad * (1 - alpha) + dn[i] * alpha
        vals[k] = 100.0 if ad == 0 else 100.0 - 100.0 / (1.0 + au / ad)
    out[n:] = vals
    return out


def rolling_max(x: np.ndarray, n: int) -> np.ndarray:
    from numpy.lib.stride_tricks import sliding_window_view

    out = np.full(len(x), np.nan)
    if n <= len(x):
        out[n - 1:] = sliding_window_view(x, n).max(axis=1)
    return out


def rolling_min(x: np.ndarray, n: int) -> np.ndarray:
    from numpy.lib.stride_tricks import sliding_window_view

    out = np.full(len(x), np.nan)
    if n <= len(x):
        out[n - 1:] = sliding_window_view(x, n).min(axis=1)
    return out


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int) -> np.ndarray:
    """Average true range (simple mean of true range over n bars)."""
    prev = np.concatenate([[np.nan], close[:-1]])
    tr = np.nanmax(np.vstack([high - low, np.abs(high - prev), np.abs(low - prev)]), axis=0)
    return sma(tr, n)


def cross_above(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """True on bars where ``a`` crosses above ``b``: strictly below on the bar before, strictly
    above now (the definition backtesting.py and most peers use; a touch is not a cross)."""
    out = np.zeros(len(a), dtype=bool)
    with np.errstate(invalid="ignore"):
        out[1:] = (a[1:] > b[1:]) & (a[:-1] < b[:-1])
    return out


def cross_below(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return cross_above(b, a)
