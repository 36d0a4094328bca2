"""How much does each signal say about the returns that follow it, and for how long?

For every signal and every horizon h: the **information coefficient** (IC), Spearman's rank
correlation between the signal at a trade and the log return from that trade's price to the
first trade at or after t + h (Grinold & Kahn, *Active Portfolio Management*, 2nd ed. 2000,
ch. 6: IC as the correlation of forecasts with outcomes; rank form as is usual for
non-normal signals); the **hit rate**, the share of trades where the signal's sign and the
return's sign agree (both non-zero); and their **decay** as h grows. Volatility signals forecast
the size of a move, not its direction, so they are scored against ``|return|`` and get no hit
rate. Forward windows of neighbouring trades overlap, so the count of trades overstates the
independent observations: ``n_independent`` (span / h) says how many there are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from spark_ray.signals.features import Trades
from spark_ray.signals.inventory import Signal

SIZE_FAMILIES = frozenset({"volatility"})


def forward_returns(t: Trades, horizon_ms: int) -> np.ndarray:
    """log(price of the first trade at or after t + h / price now); NaN where none is."""
    j = np.searchsorted(t.time, t.time + horizon_ms, side="left")
    out = np.full(len(t.time), np.nan)
    ok = j < len(t.time)
    out[ok] = np.log(t.price[j[ok]] / t.price[ok])
    return out


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation over the pairs where both are finite (ties get average
    ranks); NaN with fewer than 3 pairs or a constant side."""
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return float("nan")
    rx = pd.Series(x[ok]).rank().to_numpy()
    ry = pd.Series(y[ok]).rank().to_numpy()
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def hit_rate(x: np.ndarray, y: np.ndarray) -> float:
    """Share of pairs with both signs non-zero where the signs agree."""
    ok = np.isfinite(x) & np.isfinite(y) & (x != 0) & (y != 0)
    if not ok.any():
        return float("nan")
    return float(np.mean(np.sign(x[ok]) == np.sign(y[ok])))


@dataclass(frozen=True)
class Study:
    symbol: str
    horizons_ms: list[int]
    rows: list[dict[str, Any]]  # one per signal: name, family, target, ic[], hit_rate[], n[]
    trades: int
    span_ms: int

    def to_dict(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "horizons_ms": self.horizons_ms, "trades": self.trades,
                "span_ms": self.span_ms,
                "n_independent": [self.span_ms // h for h in self.horizons_ms],
                "method": "Spearman IC and sign hit rate vs forward log return (|return| for "
                          "volatility signals); Grinold & Kahn 2000, ch. 6",
                "signals": self.rows}


def study(signals: list[Signal], t: Trades, symbol: str, horizons_ms: list[int]) -> Study:
    """Every signal against every horizon's forward return, from the batch path."""
    if not horizons_ms or any(h <= 0 for h in horizons_ms):
        raise ValueError("horizons: need at least one, each > 0")
    fwd = {h: forward_returns(t, h) for h in horizons_ms}
    rows = []
    for s in signals:
        x = s.feature.batch(t)
        size = s.family in SIZE_FAMILIES
        ic, hits, n = [], [], []
        for h in horizons_ms:
            y = np.abs(fwd[h]) if size else fwd[h]
            ic.append(spearman(x, y))
            hits.append(None if size else hit_rate(x, y))
            n.append(int((np.isfinite(x) & np.isfinite(y)).sum()))
        rows.append({"name": s.name, "family": s.family,
                     "target": "|forward return|" if size else "forward return",
                     "ic": ic, "hit_rate": hits, "n": n})
    span = int(t.time[-1] - t.time[0]) if len(t.time) else 0
    return Study(symbol, list(horizons_ms), rows, len(t.time), span)


def plot(result: Study, path: Any) -> None:
    """IC decay per signal over the horizons (log scale), one line each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    xs = [h / 1000 for h in result.horizons_ms]
    for r in result.rows:
        ax.plot(xs, r["ic"], marker="o", label=f"{r['name']} (vs {r['target']})")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("horizon (s)")
    ax.set_ylabel("information coefficient (Spearman)")
    ax.set_title(f"{result.symbol}: signal IC decay over {result.trades:,} trades")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
