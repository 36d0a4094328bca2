"""Performance metrics from an equity curve and closed trades.

Per-bar statistics are annualized with the venue's bars a year, ``periods_per_year``
(:func:`spark_ray.sessions.periods_per_year`): crypto trades 24/7, so a year is 365 days of
bars; an exchange with sessions (BIST) has about 250 trading days of session bars. Volatility,
Sharpe and Sortino scale by sqrt(periods a year), the conversion that holds for IID returns:
SR(q) = sqrt(q) * SR for q-period returns (Andrew W. Lo, "The Statistics of Sharpe Ratios",
Financial Analysts Journal 58(4), 2002, the IID case of its section on time aggregation,
https://rpc.cfainstitute.org/research/financial-analysts-journal/2002/the-statistics-of-sharpe-ratios).
The risk-free rate is taken as 0. CAGR divides by calendar time (a year is a year, whether or
not the market was open).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

YEAR_MS = 365 * 86_400_000


def _f(x: float) -> float | None:
    """JSON-safe float: NaN and infinities become None."""
    return None if not math.isfinite(x) else float(x)


def compute(equity: np.ndarray, times: np.ndarray, interval_ms: int,
            trade_pnls: np.ndarray, trade_rets: np.ndarray, holding_ms: np.ndarray,
            positions_any: np.ndarray, fees: float, turnover: float,
            periods_per_year: float | None = None) -> dict[str, Any]:
    """All metrics from the equity curve (one value per bar close) and the closed trades;
    ``periods_per_year`` defaults to 365 days of ``interval_ms`` bars (a venue that never
    closes)."""
    n = len(equity)
    if n == 0:
        return {"bars": 0}
    start_equity = float(equity[0])
    end = float(equity[-1])
    span_ms = float(times[-1] - times[0] + interval_ms) if n else 0.0
    years = span_ms / YEAR_MS
    total_return = end / start_equity - 1
    try:  # over a few minutes the annualized figure is astronomically large: not meaningful
        cagr = (end / start_equity) ** (1 / years) - 1 if years > 0 and end > 0 else math.nan
    except OverflowError:
        cagr = math.inf
    rets = np.diff(equity) / equity[:-1] if n > 1 else np.zeros(0)
    per_year = float(periods_per_year) if periods_per_year else YEAR_MS / interval_ms
    vol = float(np.std(rets, ddof=1)) * math.sqrt(per_year) if len(rets) > 1 else math.nan
    mean = float(np.mean(rets)) if len(rets) else math.nan
    sharpe = mean / float(np.std(rets, ddof=1)) * math.sqrt(per_year) \
        if len(rets) > 1 and np.std(rets, ddof=1) > 0 else math.nan
    downside = rets[rets < 0]
    dd_dev = float(np.sqrt(np.mean(np.minimum(rets, 0.0) ** 2))) if len(rets) else 0.0
    sortino = mean / dd_dev * math.sqrt(per_year) if dd_dev > 0 else math.nan
    peak = np.maximum.accumulate(equity)
    dd = equity / peak - 1
    max_dd = float(dd.min())
    # Longest stretch below a previous peak, in bars and time.
    under = np.concatenate([[0], (dd < 0).astype(np.int8), [0]])
    edges = np.diff(under)
    runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    longest = int(runs.max()) if runs.size else 0
    calmar = cagr / abs(max_dd) if max_dd < 0 and math.isfinite(cagr) else math.nan
    wins = trade_pnls[trade_pnls > 0]
    losses = trade_pnls[trade_pnls < 0]
    n_trades = len(trade_pnls)
    profit_factor = float(wins.sum() / -losses.sum()) if len(losses) and losses.sum() < 0 \
        else (math.inf if len(wins) else math.nan)
    return {
        "bars": n,
        "start": int(times[0]),
        "end": int(times[-1]),
        "years": years,
        "periods_per_year": per_year,
        "start_equity": start_equity,
        "end_equity": end,
        "total_return": _f(total_return),
        "cagr": _f(cagr),
        "volatility_ann": _f(vol),
        "sharpe": _f(sharpe),
        "sortino": _f(sortino),
        "calmar": _f(calmar),
        "max_drawdown": _f(max_dd),
        "max_drawdown_bars": longest,
        "max_drawdown_duration_days": longest * interval_ms / 86_400_000,
        "trades": n_trades,
        "win_rate": _f(len(wins) / n_trades) if n_trades else None,
        "profit_factor": _f(profit_factor),
        "expectancy": _f(float(trade_pnls.mean())) if n_trades else None,
        "avg_trade_return": _f(float(trade_rets.mean())) if n_trades else None,
        "avg_holding_hours": _f(float(holding_ms.mean()) / 3_600_000) if n_trades else None,
        "exposure": _f(float(positions_any.mean())),
        "fees": fees,
        "turnover": _f(turnover / float(np.mean(equity))),
        "downside_bars": len(downside),
    }
