"""report.png: price with entries and exits, equity against buy-and-hold, drawdown."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from spark_ray.backtest.result import BacktestResult


def plot_report(result: BacktestResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = (result.times.astype("datetime64[ms]"))
    eq = result.output.equity
    bh = result.close / result.close[0] * eq[0] if len(eq) else eq
    fig, axes = plt.subplots(3, 1, figsize=(11, 8), sharex=True,
                             gridspec_kw={"height_ratios": [3, 2, 1]})
    ax = axes[0]
    ax.plot(t, result.close, lw=0.7, color="#444", label=f"{result.symbols[0]} close")
    trades = result.output.trades
    if trades:
        ent = np.array([tr.entry_i for tr in trades])
        ex = np.array([tr.exit_i for tr in trades])
        ax.scatter(t[ent], [tr.entry_price for tr in trades], marker="^", s=18, color="green",
                   label="entry", zorder=3)
        ax.scatter(t[ex], [tr.exit_price for tr in trades], marker="v", s=18, color="red",
                   label="exit", zorder=3)
    ax.set_title(f"{result.strategy} {result.params}", fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    axes[1].plot(t, eq, lw=0.9, label="strategy equity")
    axes[1].plot(t, bh, lw=0.9, color="#999", label="buy & hold")
    axes[1].legend(loc="upper left", fontsize=8)
    peak = np.maximum.accumulate(eq) if len(eq) else eq
    axes[2].fill_between(t, eq / peak - 1, 0, color="#c44", alpha=0.6, lw=0)
    axes[2].set_ylabel("drawdown", fontsize=8)
    fig.tight_layout()
    # No timestamps or software tags in the file: identical runs give identical bytes.
    fig.savefig(path, dpi=90, metadata={"Software": None})
    plt.close(fig)
