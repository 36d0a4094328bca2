"""Deterministic synthetic candles with the structure real crypto markets show.

Log returns follow a two-state (calm/turbulent) Markov volatility regime, scaled by an intraday
seasonality curve, with rare Poisson jumps; volume rises with absolute returns and with the
intraday cycle. The same seed gives the same bytes. Faults (gaps, duplicates, bad rows) can be
injected to exercise the quality checks and the normalizer.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from spark_ray.schemas import interval_ms

MINUTES_PER_YEAR = 365 * 24 * 60


@dataclass(frozen=True)
class SynthParams:
    start_price: float = 30_000.0
    annual_vol: float = 0.6  # calm regime
    turbulent_mult: float = 3.0
    p_enter_turbulent: float = 0.0005  # per bar
    p_leave_turbulent: float = 0.005
    jump_rate_per_day: float = 0.5
    jump_sigmas: float = 8.0
    base_volume: float = 50.0
    season_amplitude: float = 0.4  # intraday activity swing, peak ~14:00 UTC
    volume_return_beta: float = 1.5


@dataclass(frozen=True)
class Faults:
    gaps: int = 0  # runs of removed candles
    gap_len: int = 5
    duplicates: int = 0  # repeated rows (identical values)
    bad_rows: int = 0  # rows with high < low, negative or NaN prices


def symbol_seed(seed: int, symbol: str) -> int:
    """A per-symbol stream of randomness that does not depend on which other symbols exist."""
    return (seed * 1_000_003 + zlib.crc32(symbol.encode())) % (2**63)


def synth_candles(symbol: str, interval: str, start_ms: int, end_ms: int, seed: int,
                  params: SynthParams | None = None, faults: Faults | None = None) -> pa.Table:
    """Candles with ``open_time`` in ``[start_ms, end_ms)`` (int ms) and full Binance columns."""
    p = params or SynthParams()
    f = faults or Faults()
    step = interval_ms(interval)
    first = start_ms + (-start_ms) % step
    t = np.arange(first, end_ms, step, dtype=np.int64)
    n = len(t)
    rng = np.random.Generator(np.random.PCG64(symbol_seed(seed, symbol)))
    bar_minutes = step / 60_000
    sigma = p.annual_vol * np.sqrt(bar_minutes / MINUTES_PER_YEAR)

    # Regimes: a two-state Markov chain, simulated by run lengths (vectorized).
    turbulent = np.zeros(n, dtype=bool)
    i, state = 0, False
    while i < n:
        rate = p.p_leave_turbulent if state else p.p_enter_turbulent
        run = int(rng.geometric(min(1.0, rate * max(bar_minutes, 1e-9)) or 1e-9))
        turbulent[i:i + run] = state
        i += run
        state = not state

    hour = (t // 3_600_000) % 24
    season = 1.0 + p.season_amplitude * np.cos(2 * np.pi * (hour - 14) / 24)
    vol = sigma * season * np.where(turbulent, p.turbulent_mult, 1.0)
    r = rng.standard_normal(n) * vol
    jumps = rng.random(n) < p.jump_rate_per_day * bar_minutes / 1440
    r[jumps] += rng.standard_normal(int(jumps.sum())) * sigma * p.jump_sigmas

    close = p.start_price * np.exp(np.cumsum(r))
    open_ = np.empty(n)
    if n:
        open_[0] = p.start_price
        open_[1:] = close[:-1]
    body_hi = np.maximum(open_, close)
    body_lo = np.minimum(open_, close)
    high = body_hi * np.exp(np.abs(rng.standard_normal(n)) * vol * 0.5)
    low = body_lo * np.exp(-np.abs(rng.standard_normal(n)) * vol * 0.5)
    activity = season * (1.0 + p.volume_return_beta * np.abs(r) / sigma)
    volume = p.base_volume * bar_minutes * activity * rng.lognormal(0.0, 0.3, n)
    mid = (high + low) / 2
    trades = np.maximum(1, (volume * 40 * rng.lognormal(0, 0.2, n)).astype(np.int64))
    taker_share = np.clip(0.5 + np.tanh(r / (2 * sigma)) * 0.3 + rng.normal(0, 0.05, n),
                          0.01, 0.99)

    # Prices and sizes on a realistic tick/lot grid.
    dec = int(max(0, 6 - np.floor(np.log10(p.start_price))))
    cols = {
        "open_time": t,
        "open": np.round(open_, dec),
        "high": np.round(high, dec),
        "low": np.round(low, dec),
        "close": np.round(close, dec),
        "volume": np.round(volume, 5),
        "quote_volume": np.round(volume * mid, 8),
        "trades": trades,
        "taker_buy_base": np.round(volume * taker_share, 5),
        "taker_buy_quote": np.round(volume * taker_share * mid, 8),
    }
    # Rounding must not break OHLC consistency.
    cols["high"] = np.maximum.reduce([cols["high"], cols["open"], cols["close"]])
    cols["low"] = np.minimum.reduce([cols["low"], cols["open"], cols["close"]])
    table = pa.table(cols)
    return inject_faults(table, f, rng) if (f.gaps or f.duplicates or f.bad_rows) else table


def inject_faults(table: pa.Table, f: Faults, rng: np.random.Generator) -> pa.Table:
    """Remove runs (gaps), repeat rows (duplicates) and corrupt rows (bad values)."""
    n = table.num_rows
    keep = np.ones(n, dtype=bool)
    for s in rng.choice(max(n - f.gap_len, 1), size=min(f.gaps, max(n - f.gap_len, 0)),
                        replace=False):
        keep[s:s + f.gap_len] = False
    idx = np.flatnonzero(keep)
    if f.duplicates and idx.size:
        idx = np.sort(np.concatenate([idx, rng.choice(idx, size=f.duplicates)]), kind="stable")
    out = table.take(pa.array(idx))
    if f.bad_rows and out.num_rows:
        rows = rng.choice(out.num_rows, size=min(f.bad_rows, out.num_rows), replace=False)
        high = out.column("high").to_numpy().copy()
        low = out.column("low").to_numpy().copy()
        close = out.column("close").to_numpy().copy()
        for k, row in enumerate(rows):
            kind = k % 3
            if kind == 0:
                high[row], low[row] = low[row] * 0.99, high[row] * 1.01  # high below low
            elif kind == 1:
                close[row] = -close[row]  # negative price
            else:
                close[row] = np.nan  # non-finite
        out = out.set_column(out.column_names.index("high"), "high", pa.array(high))
        out = out.set_column(out.column_names.index("low"), "low", pa.array(low))
        out = out.set_column(out.column_names.index("close"), "close", pa.array(close))
    return out
