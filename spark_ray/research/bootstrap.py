"""Robustness by resampling: how wide are a backtest's Sharpe ratio, drawdown and final equity
once the luck of one particular sequence of returns is taken out?

A backtest is one path. Resampling its returns gives many paths the same strategy could as well
have produced, and the spread of their statistics is an honest error bar: the 5th percentile of
final equity is what a bad-but-ordinary run looks like, not a worst case.

- :func:`block_bootstrap`, per-period returns: the **moving-block bootstrap** of Künsch, H. R.
  (1989), "The jackknife and the bootstrap for general stationary observations", *Annals of
  Statistics* 17(3), 1217-1241, DOI 10.1214/aos/1176347265. Returns are drawn in overlapping
  blocks of ``block`` consecutive periods (starts uniform over the ``n - block + 1`` possible
  ones), concatenated and cut to ``n``: serial dependence inside a block survives (volatility
  clusters, trends a position rides), which resampling single periods would destroy and so
  understate the variance. Default block length ``round(n ** (1/3))``: P. Hall, J. L.
  Horowitz and B.-Y. Jing (1995), "On blocking rules for the bootstrap with dependent data",
  *Biometrika* 82(3), 561-574, DOI 10.1093/biomet/82.3.561, show the optimal block length for
  estimating a variance or bias grows as n^(1/3) (n^(1/4), n^(1/5) for distribution
  quantiles); the constant depends on the unknown dependence, and 1 is the common default.
- :func:`trade_bootstrap`, closed trades: the ordinary (iid) bootstrap of Efron, B. and
  R. J. Tibshirani (1993), *An Introduction to the Bootstrap*, Chapman & Hall (Monographs on
  Statistics and Applied Probability 57): trades drawn with replacement, in random order,
  compounded. Trades are treated as independent, so this answers "what if the same edge had
  dealt its trades in another order and mix"; use the block bootstrap on per-period returns
  when trades overlap or cluster.

Each resample gives the annualized Sharpe ratio (mean / ddof=1 std x sqrt(periods per year)),
the maximum drawdown of the compounded equity curve (a negative fraction, -0.12 for 12 %, 0 if
the curve never falls below a peak; the start counts as a peak) and the final equity. Results
are deterministic for a seed (``numpy.random.default_rng(seed)``). Index matrices are built for
all resamples at once (chunked only to bound memory on long series), not one loop per resample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

BLOCK, TRADE = "block", "trade"
PERCENTILES = (5.0, 50.0, 95.0)
# Resampled values held at once (resamples x periods): bounds memory on long series (~32 MB per
# float array); a series up to this many periods runs all resamples in one matrix.
_CHUNK_CELLS = 4_000_000


@dataclass(frozen=True)
class Interval:
    """A statistic on the original series (``point``), the 5th, 50th and 95th percentiles of
    its bootstrap distribution, and its bootstrap standard error ``se`` (ddof=1 standard
    deviation of the replicates, Efron & Tibshirani 1993, ch. 6)."""

    point: float
    p05: float
    p50: float
    p95: float
    se: float

    def to_dict(self) -> dict[str, float]:
        return {"point": self.point, "p05": self.p05, "p50": self.p50, "p95": self.p95,
                "se": self.se}


@dataclass(frozen=True)
class BootstrapResult:
    """What a bootstrap found. ``block`` is the block length (1 for the trade bootstrap: trades
    are drawn one at a time); ``n`` the observations (periods or trades) resampled.
    ``sharpe_undefined`` counts resamples whose draws were all equal (no standard deviation):
    they are left out of the Sharpe interval only, and can only happen on very short series."""

    method: str
    n_boot: int
    block: int
    n: int
    seed: int
    periods_per_year: float
    start_equity: float
    sharpe: Interval
    max_drawdown: Interval
    final_equity: Interval
    sharpe_undefined: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: plain ints, floats and strings (every value finite)."""
        return {"method": self.method, "n_boot": self.n_boot, "block": self.block,
                "n": self.n, "seed": self.seed, "periods_per_year": self.periods_per_year,
                "start_equity": self.start_equity, "sharpe": self.sharpe.to_dict(),
                "max_drawdown": self.max_drawdown.to_dict(),
                "final_equity": self.final_equity.to_dict(),
                "sharpe_undefined": self.sharpe_undefined}


def default_block(n: int) -> int:
    """Block length ``round(n ** (1/3))``, at least 1 (Hall, Horowitz & Jing 1995)."""
    return max(1, round(n ** (1.0 / 3.0)))


def block_indices(n: int, block: int, n_boot: int, rng: np.random.Generator) -> IntArray:
    """``n_boot`` x ``n`` indices of moving-block resamples (Künsch 1989): each row concatenates
    ``ceil(n / block)`` runs ``s, s+1, ..., s+block-1`` with ``s`` uniform on
    ``0 .. n-block``, cut to ``n``. ``block == 1`` is the iid bootstrap; ``block == n`` gives the
    original order every time."""
    if not 1 <= block <= n:
        raise ValueError(f"block must be between 1 and n={n}, got {block}")
    per_row = -(-n // block)
    starts = rng.integers(0, n - block + 1, size=(n_boot, per_row))
    idx = (starts[:, :, None] + np.arange(block)).reshape(n_boot, per_row * block)
    return idx[:, :n]


def block_bootstrap(returns: npt.ArrayLike, periods_per_year: float, n_boot: int = 2000,
                    block: int | None = None, seed: int = 0,
                    start_equity: float = 1.0) -> BootstrapResult:
    """Moving-block bootstrap (Künsch 1989) of per-period returns (fractions: 0.01 is +1 %).

    ``block`` defaults to :func:`default_block` (``round(n ** (1/3))``). Sharpe ratios are
    annualized with ``sqrt(periods_per_year)``; drawdown and final equity compound
    ``start_equity * prod(1 + r)``. Raises ValueError for fewer than 2 returns, a non-finite
    value, a return below -100 %, zero variance, a non-positive ``periods_per_year``,
    ``n_boot`` or ``start_equity``, or a block outside ``1 .. n``.
    """
    x = _check_series(returns, "returns", "returns")
    ppy = _check_positive(periods_per_year, "periods_per_year")
    b = default_block(x.size) if block is None else _check_block(block, x.size)
    return _bootstrap(x, BLOCK, b, ppy, n_boot, seed, start_equity)


def trade_bootstrap(trade_returns: npt.ArrayLike, trades_per_year: float, n_boot: int = 2000,
                    seed: int = 0, start_equity: float = 1.0) -> BootstrapResult:
    """Trade-order bootstrap (Efron & Tibshirani 1993): the closed trades' returns drawn with
    replacement in random order, compounded ``start_equity * prod(1 + r)``.

    The Sharpe ratio is per trade, annualized with ``sqrt(trades_per_year)``. Raises
    ValueError for fewer than 2 trades, a non-finite value, a trade below -100 %, all trades
    equal, or a non-positive ``trades_per_year``, ``n_boot`` or ``start_equity``.
    """
    x = _check_series(trade_returns, "trade_returns", "trades")
    ppy = _check_positive(trades_per_year, "trades_per_year")
    return _bootstrap(x, TRADE, 1, ppy, n_boot, seed, start_equity)


def _bootstrap(x: FloatArray, method: str, block: int, ppy: float, n_boot: int, seed: int,
               start_equity: float) -> BootstrapResult:
    equity0 = _check_positive(start_equity, "start_equity")
    if isinstance(n_boot, bool) or int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"n_boot must be an integer >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    n = x.size
    sharpe = np.empty(n_boot)
    drawdown = np.empty(n_boot)
    final = np.empty(n_boot)
    rows_per_chunk = max(1, _CHUNK_CELLS // n)
    for start in range(0, n_boot, rows_per_chunk):
        rows = slice(start, min(start + rows_per_chunk, n_boot))
        sample = x[block_indices(n, block, rows.stop - rows.start, rng)]
        sharpe[rows], drawdown[rows], final[rows] = _path_stats(sample, ppy, equity0)
    point = _path_stats(x[None, :], ppy, equity0)
    undefined = int(np.isnan(sharpe).sum())
    return BootstrapResult(
        method=method, n_boot=int(n_boot), block=block, n=n, seed=int(seed),
        periods_per_year=ppy, start_equity=equity0,
        sharpe=_interval(float(point[0][0]), sharpe[~np.isnan(sharpe)]),
        max_drawdown=_interval(float(point[1][0]), drawdown),
        final_equity=_interval(float(point[2][0]), final), sharpe_undefined=undefined)


def _path_stats(paths: FloatArray, ppy: float,
                start_equity: float) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per row of ``paths`` (resamples x periods): annualized Sharpe ratio (NaN where the row is
    constant), maximum drawdown of the compounded curve (<= 0) and final equity."""
    mean = paths.mean(axis=1)
    std = paths.std(axis=1, ddof=1)
    constant = np.all(paths == paths[:, :1], axis=1)
    safe_std = np.where(constant, 1.0, std)
    sharpe = np.where(constant, np.nan, mean / safe_std * math.sqrt(ppy))
    equity = start_equity * np.cumprod(1.0 + paths, axis=1)
    peak = np.maximum(np.maximum.accumulate(equity, axis=1), start_equity)
    drawdown = np.minimum((equity / peak - 1.0).min(axis=1), 0.0)
    return (sharpe.astype(np.float64), drawdown.astype(np.float64),
            equity[:, -1].astype(np.float64))


def _interval(point: float, replicates: FloatArray) -> Interval:
    if replicates.size == 0:
        return Interval(point=point, p05=point, p50=point, p95=point, se=0.0)
    p05, p50, p95 = (float(v) for v in np.percentile(replicates, PERCENTILES))
    se = float(replicates.std(ddof=1)) if replicates.size > 1 else 0.0
    return Interval(point=point, p05=p05, p50=p50, p95=p95, se=se)


def _check_series(values: npt.ArrayLike, name: str, unit: str) -> FloatArray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {x.shape}")
    if x.size < 2:
        raise ValueError(f"{name}: need at least 2 {unit}, got {x.size}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} has NaN or infinite values")
    if np.any(x < -1.0):
        raise ValueError(f"{name} has a value below -1 (a loss of more than 100 %): returns "
                         f"are fractions, 0.01 for +1 %")
    if np.all(x == x[0]):
        raise ValueError(f"{name} are all equal: the Sharpe ratio is undefined")
    return x


def _check_block(block: int, n: int) -> int:
    if isinstance(block, bool) or int(block) != block or not 1 <= block <= n:
        raise ValueError(f"block must be an integer between 1 and n={n}, got {block}")
    return int(block)


def _check_positive(value: float, name: str) -> float:
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} must be a positive number, got {value}")
    return float(value)
