"""Statistics in one module: how much a Sharpe ratio means once the sample's length, its fat
tails and the number of strategies tried are counted, and how often the in-sample winner of a
search is an out-of-sample loser.

Every Sharpe ratio here is **per period** (the mean of per-period returns over their standard
deviation, not annualized) and every kurtosis is **Pearson's** (a normal distribution has 3, not
0), because that is how the papers state their formulas; annualize only for display. The tests
reproduce each paper's printed worked examples.

- :func:`moments`: the sample moments the other functions take.
- :func:`probabilistic_sharpe_ratio`, :func:`min_track_record_length`: Bailey, D. H. and
  M. López de Prado (2012), "The Sharpe Ratio Efficient Frontier", *Journal of Risk* 15(2),
  3-44. DOI 10.21314/JOR.2012.255; https://ssrn.com/abstract=1821643.
- :func:`expected_max_sharpe`, :func:`deflated_sharpe_ratio`: Bailey, D. H. and M. López de
  Prado (2014), "The Deflated Sharpe Ratio: Correcting for Selection Bias, Backtest Overfitting
  and Non-Normality", *Journal of Portfolio Management* 40(5), 94-107.
  DOI 10.3905/jpm.2014.40.5.094; https://ssrn.com/abstract=2460551.
- :func:`pbo_cscv`: Bailey, D. H., J. M. Borwein, M. López de Prado and Q. J. Zhu (2017; SSRN
  2015), "The Probability of Backtest Overfitting", *Journal of Computational Finance* 20(4),
  39-69. DOI 10.21314/JCF.2016.322; https://ssrn.com/abstract=2326253.

Plain NumPy and the standard library (``statistics.NormalDist`` for the normal CDF and its
inverse); no Ray, no SciPy. Errors a caller can fix are plain :class:`ValueError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

_NORMAL = NormalDist()
# Euler-Mascheroni constant, in the expected maximum of N normal draws (DSR paper, eq. 1).
EULER_GAMMA = 0.5772156649015329
# A subset whose (centered) sum of squares is below this share of its mean square is treated as
# constant: what is left is rounding, not variance (see pbo_cscv).
_ZERO_VARIANCE_RTOL = 1e-12
# Combinations evaluated at once in pbo_cscv: bounds memory to a few (chunk x N) float arrays
# whatever the number of combinations.
_PBO_CHUNK = 1024
# C(24, 12) = 2.7 million combinations still run in seconds per thousand trials; C(26, 13) is
# 10 million and up it doubles with every 2 splits: refuse rather than run for hours.
MAX_PBO_COMBINATIONS = 5_000_000


# --------------------------------------------------------------------------------------------
# Moments
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Moments:
    """Sample moments of a return series, in the papers' conventions.

    ``std`` has ddof=1 and ``sharpe`` is ``mean / std`` per period (not annualized). ``skew``
    and ``kurtosis`` are the plain (biased) moment ratios ``m3 / m2**1.5`` and ``m4 / m2**2``
    with ``m_k = mean((x - mean)**k)``; ``kurtosis`` is Pearson's (normal = 3, not excess).
    """

    n: int
    mean: float
    std: float
    sharpe: float
    skew: float
    kurtosis: float

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "mean": self.mean, "std": self.std, "sharpe": self.sharpe,
                "skew": self.skew, "kurtosis": self.kurtosis}


def moments(returns: npt.ArrayLike) -> Moments:
    """The moments PSR, MinTRL and DSR take, from per-period returns.

    Estimators, and why: the Sharpe ratio uses the ddof=1 standard deviation (the usual sample
    Sharpe ratio; at the lengths these statistics need the choice moves it by a factor
    ``sqrt(n / (n - 1))``, far inside its own standard error). Skewness and kurtosis are the
    plain moment ratios without small-sample correction: the papers' formulas are stated for
    the sample moments ``gamma3 = m3 / m2**1.5`` and ``gamma4 = m4 / m2**2`` (the estimators of
    the code in the Sharpe Ratio Efficient Frontier paper's appendix, SciPy's defaults
    ``skew(bias=True)`` and ``kurtosis(fisher=False, bias=True)``).

    Raises ValueError for fewer than 2 returns, a non-finite value, or zero variance (no
    Sharpe ratio, skewness or kurtosis exists for a constant series).
    """
    x = _finite_1d(returns, "returns")
    n = x.size
    if n < 2:
        raise ValueError(f"returns: need at least 2 observations, got {n}")
    if np.all(x == x[0]):
        raise ValueError("returns have zero variance: their Sharpe ratio, skewness and "
                         "kurtosis are undefined")
    mean = float(x.mean())
    dev = x - mean
    m2 = float(np.mean(dev**2))
    std = math.sqrt(m2 * n / (n - 1))
    return Moments(n=n, mean=mean, std=std, sharpe=mean / std,
                   skew=float(np.mean(dev**3)) / m2**1.5,
                   kurtosis=float(np.mean(dev**4)) / m2**2)


# --------------------------------------------------------------------------------------------
# Probabilistic Sharpe ratio and minimum track record length (Bailey & López de Prado 2012)
# --------------------------------------------------------------------------------------------


def _sr_variance_factor(sr: float, skew: float, kurtosis: float) -> float:
    """``1 - gamma3*SR + (gamma4 - 1)/4 * SR**2``: (n - 1) times the variance of the estimated
    Sharpe ratio under non-normal iid returns (Mertens 2002, as used in the 2012 paper)."""
    factor = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr
    if not factor > 0.0:
        raise ValueError(
            f"1 - skew*SR + (kurtosis-1)/4*SR^2 = {factor:.6g} is not positive (SR={sr:.6g}, "
            f"skew={skew:.6g}, kurtosis={kurtosis:.6g}): is the Sharpe ratio annualized or the "
            f"kurtosis excess? Both must be per period and Pearson (normal = 3)")
    return factor


def probabilistic_sharpe_ratio(sr: float, sr_benchmark: float, n: float, skew: float,
                               kurtosis: float) -> float:
    """Probability that the true Sharpe ratio exceeds ``sr_benchmark``, given an estimate
    ``sr`` from ``n`` iid returns with skewness ``skew`` and Pearson kurtosis ``kurtosis``.

    Bailey, D. H. and M. López de Prado (2012), "The Sharpe Ratio Efficient Frontier",
    *Journal of Risk* 15(2), 3-44, DOI 10.21314/JOR.2012.255, eq. for PSR::

        PSR(SR*) = Z[(SR - SR*) * sqrt(n - 1) / sqrt(1 - gamma3*SR + (gamma4 - 1)/4 * SR**2)]

    Fat tails and negative skew widen the estimate's distribution, so a positive Sharpe ratio
    earns less confidence than the normal-returns formula (gamma3 = 0, gamma4 = 3) would give.
    All Sharpe ratios per period (not annualized). ``n`` may be fractional (a MinTRL).
    """
    _check_finite(sr=sr, sr_benchmark=sr_benchmark, n=n, skew=skew, kurtosis=kurtosis)
    if n < 2:
        raise ValueError(f"n: need at least 2 observations, got {n}")
    z = (sr - sr_benchmark) * math.sqrt(n - 1) / math.sqrt(
        _sr_variance_factor(sr, skew, kurtosis))
    return _NORMAL.cdf(z)


def min_track_record_length(sr: float, sr_benchmark: float, skew: float, kurtosis: float,
                            alpha: float = 0.05) -> float:
    """Observations needed before an estimated Sharpe ratio ``sr`` is above ``sr_benchmark``
    with confidence ``1 - alpha`` (the ``n`` at which PSR reaches ``1 - alpha``).

    Bailey & López de Prado (2012), "The Sharpe Ratio Efficient Frontier", *Journal of Risk*
    15(2), DOI 10.21314/JOR.2012.255::

        MinTRL = 1 + (1 - gamma3*SR + (gamma4 - 1)/4 * SR**2) * (Z_alpha / (SR - SR*))**2

    with ``Z_alpha = Z^-1(1 - alpha)``. In observations at the frequency of ``sr`` (divide by
    periods per year for years). ``inf`` when ``sr <= sr_benchmark``: no track record is long
    enough. The paper notes the asymptotics want at least ~30 observations whatever this says.
    """
    _check_finite(sr=sr, sr_benchmark=sr_benchmark, skew=skew, kurtosis=kurtosis)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if sr <= sr_benchmark:
        return math.inf
    z_alpha = _NORMAL.inv_cdf(1.0 - alpha)
    return 1.0 + _sr_variance_factor(sr, skew, kurtosis) * (z_alpha / (sr - sr_benchmark)) ** 2


# --------------------------------------------------------------------------------------------
# Deflated Sharpe ratio (Bailey & López de Prado 2014)
# --------------------------------------------------------------------------------------------


def expected_max_sharpe(n_trials: int, sr_variance: float) -> float:
    """The Sharpe ratio the best of ``n_trials`` independent zero-skill trials is expected to
    show, when the trials' estimated Sharpe ratios have variance ``sr_variance``.

    Bailey & López de Prado (2014), "The Deflated Sharpe Ratio", *Journal of Portfolio
    Management* 40(5), DOI 10.3905/jpm.2014.40.5.094, eq. 1 (from Bailey, Borwein, López de
    Prado & Zhu 2014, "Pseudo-Mathematics and Financial Charlatanism", Proposition 2.1)::

        SR0 = sqrt(V) * ((1 - gamma) * Z^-1[1 - 1/N] + gamma * Z^-1[1 - 1/(N e)])

    with gamma the Euler-Mascheroni constant. ``n_trials == 1`` gives 0: nothing was selected.
    ``sr_variance`` is per period, like the Sharpe ratios (annualized variance / periods per
    year).
    """
    _check_finite(sr_variance=sr_variance)
    if isinstance(n_trials, bool) or int(n_trials) != n_trials or n_trials < 1:
        raise ValueError(f"n_trials must be an integer >= 1, got {n_trials}")
    if sr_variance < 0.0:
        raise ValueError(f"sr_variance must be >= 0, got {sr_variance}")
    n = int(n_trials)
    if n == 1:
        return 0.0
    z_max = ((1.0 - EULER_GAMMA) * _NORMAL.inv_cdf(1.0 - 1.0 / n)
             + EULER_GAMMA * _NORMAL.inv_cdf(1.0 - 1.0 / (n * math.e)))
    return math.sqrt(sr_variance) * z_max


@dataclass(frozen=True)
class DeflatedSharpe:
    """A deflated Sharpe ratio with the inputs it came from.

    ``dsr`` is the probability that the selected strategy's true Sharpe ratio is above zero
    once its selection among ``n_trials`` is counted; ``sr0`` the rejection threshold (the
    expected maximum Sharpe ratio of the trials under no skill). Per-period units throughout.
    """

    dsr: float
    sr0: float
    sr: float
    sr_variance: float
    n_trials: int
    n: int
    skew: float
    kurtosis: float

    def to_dict(self) -> dict[str, Any]:
        return {"dsr": self.dsr, "sr0": self.sr0, "sr": self.sr,
                "sr_variance": self.sr_variance, "n_trials": self.n_trials, "n": self.n,
                "skew": self.skew, "kurtosis": self.kurtosis}


def deflated_sharpe_ratio(sr: float, sr_variance: float, n_trials: int, n: int, skew: float,
                          kurtosis: float) -> DeflatedSharpe:
    """The probabilistic Sharpe ratio against the best that ``n_trials`` zero-skill trials
    would show: ``DSR = PSR(SR0)`` with ``SR0 = expected_max_sharpe(n_trials, sr_variance)``.

    Bailey & López de Prado (2014), "The Deflated Sharpe Ratio: Correcting for Selection Bias,
    Backtest Overfitting and Non-Normality", *Journal of Portfolio Management* 40(5), 94-107,
    DOI 10.3905/jpm.2014.40.5.094, eq. 2. ``sr`` is the selected trial's per-period Sharpe
    ratio over ``n`` returns with skewness ``skew`` and Pearson kurtosis ``kurtosis``;
    ``sr_variance`` the variance of all trials' per-period Sharpe ratios (losers included);
    ``n_trials`` the number of distinct configurations tried.
    """
    sr0 = expected_max_sharpe(n_trials, sr_variance)
    dsr = probabilistic_sharpe_ratio(sr, sr0, n, skew, kurtosis)
    return DeflatedSharpe(dsr=dsr, sr0=sr0, sr=float(sr), sr_variance=float(sr_variance),
                          n_trials=int(n_trials), n=int(n), skew=float(skew),
                          kurtosis=float(kurtosis))


# --------------------------------------------------------------------------------------------
# Probability of backtest overfitting (Bailey, Borwein, López de Prado & Zhu 2017)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Degradation:
    """OLS fit of the selected trial's out-of-sample performance on its in-sample performance
    across combinations (the paper's performance-degradation scatter): a negative slope means
    the better a trial looked in sample, the worse it did out of sample."""

    slope: float
    intercept: float
    r2: float

    def to_dict(self) -> dict[str, float]:
        return {"slope": self.slope, "intercept": self.intercept, "r2": self.r2}


@dataclass(frozen=True, eq=False)
class PBOResult:
    """What :func:`pbo_cscv` found. Arrays have one entry per combination, in the order of
    ``itertools.combinations(range(splits), splits // 2)`` (the in-sample blocks): ``selected``
    is n* (0-based column), ``oos_rank`` its out-of-sample rank (1 = worst), ``logits`` lambda.
    Compared by identity (it holds arrays)."""

    pbo: float
    logits: FloatArray = field(repr=False)
    n_combinations: int
    splits: int
    n_trials: int
    n_periods: int
    block_size: int
    selected: npt.NDArray[np.int64] = field(repr=False)
    oos_rank: FloatArray = field(repr=False)
    is_performance: FloatArray = field(repr=False)
    oos_performance: FloatArray = field(repr=False)
    degradation: Degradation
    prob_oos_loss: float

    @property
    def n_periods_used(self) -> int:
        """Rows that entered a block: the last ``n_periods mod splits`` rows are dropped."""
        return self.block_size * self.splits

    def to_dict(self, include_arrays: bool = False) -> dict[str, Any]:
        """JSON-safe summary; with ``include_arrays`` the per-combination arrays as lists."""
        out: dict[str, Any] = {
            "pbo": self.pbo, "n_combinations": self.n_combinations, "splits": self.splits,
            "n_trials": self.n_trials, "n_periods": self.n_periods,
            "n_periods_used": self.n_periods_used, "block_size": self.block_size,
            "logit_median": float(np.median(self.logits)),
            "degradation": self.degradation.to_dict(), "prob_oos_loss": self.prob_oos_loss,
        }
        if include_arrays:
            out.update({
                "logits": self.logits.tolist(), "selected": self.selected.tolist(),
                "oos_rank": self.oos_rank.tolist(),
                "is_performance": self.is_performance.tolist(),
                "oos_performance": self.oos_performance.tolist(),
            })
        return out


def pbo_cscv(matrix: npt.ArrayLike, splits: int = 16) -> PBOResult:
    """Probability of backtest overfitting by combinatorially symmetric cross-validation.

    Bailey, D. H., J. M. Borwein, M. López de Prado and Q. J. Zhu (2017), "The Probability of
    Backtest Overfitting", *Journal of Computational Finance* 20(4), 39-69,
    DOI 10.21314/JCF.2016.322 (SSRN 2326253, 2015).

    ``matrix`` is T x N: T periods of returns (rows, in time order) of N trials (columns, the
    configurations a search tried). The rows are cut into ``splits`` (S, even, >= 2) contiguous
    blocks of ``T // S`` rows; **the last ``T mod S`` rows are dropped** so the blocks are
    equal. Each of the C(S, S/2) ways to pick S/2 blocks is one combination: those blocks are
    in-sample (J), the others out-of-sample (J-bar). Per combination:

    - performance is each trial's Sharpe ratio (mean / ddof=1 std of its rows in the subset;
      a trial whose rows are constant in the subset, to rounding, has no Sharpe ratio there
      and gets 0, the value of a trial that did not trade, which is what such a column
      usually is; a constant non-zero return that would deserve +/-inf does not occur in
      real backtests);
    - n* = the trial with the best in-sample Sharpe ratio (a tie goes to the lowest column);
    - its out-of-sample rank r among the N trials, 1 = worst ... N = best, ties sharing their
      average rank; omega = r / (N + 1) and the logit lambda = ln(omega / (1 - omega)).
      Dividing by N + 1 (the paper's choice) keeps omega inside (0, 1), so lambda is finite.

    PBO = the share of combinations with lambda <= 0: the paper's phi, the integral of the
    logits' empirical distribution over (-inf, 0], so lambda == 0 (n* exactly at the
    out-of-sample median: odd N, or a tie) counts as overfit; the R package ``pbo`` does the
    same (``lambda <= 0``). With N even and no skill anywhere, E[PBO] = 1/2 exactly.

    Computation is vectorized from per-block sufficient statistics: count, sum and sum of
    squares per block and trial (of the returns centered on each trial's mean, for accuracy);
    the combination indicator matrix times those gives every subset's statistics at once.
    16 splits x 1,000 trials x 2,000 rows (12,870 combinations) take well under a second.

    Raises ValueError for a non-2-D or non-finite matrix, fewer than 2 trials, odd or < 2
    splits, more than :data:`MAX_PBO_COMBINATIONS` combinations (splits > 24), fewer rows than
    splits, or halves of fewer than 2 rows.
    """
    m = _check_pbo_input(matrix, splits)
    t_rows, n_trials = m.shape
    block = t_rows // splits
    half = splits // 2
    sums, sumsq, shift = _block_stats(m[: block * splits], splits)
    combos = np.array(list(combinations(range(splits), half)), dtype=np.intp)
    indicator = np.zeros((len(combos), splits))
    indicator[np.arange(len(combos))[:, None], combos] = 1.0
    count = float(block * half)
    total_sum, total_sumsq = sums.sum(axis=0), sumsq.sum(axis=0)

    n_comb = len(combos)
    selected = np.empty(n_comb, dtype=np.int64)
    rank = np.empty(n_comb)
    is_perf = np.empty(n_comb)
    oos_perf = np.empty(n_comb)
    for start in range(0, n_comb, _PBO_CHUNK):
        rows = slice(start, min(start + _PBO_CHUNK, n_comb))
        is_sum, is_sumsq = indicator[rows] @ sums, indicator[rows] @ sumsq
        is_sr = _subset_sharpe(is_sum, is_sumsq, count, shift)
        oos_sr = _subset_sharpe(total_sum - is_sum, total_sumsq - is_sumsq, count, shift)
        best = np.argmax(is_sr, axis=1)
        pick = np.arange(best.size)
        chosen_oos = oos_sr[pick, best]
        less = np.sum(oos_sr < chosen_oos[:, None], axis=1)
        equal = np.sum(oos_sr == chosen_oos[:, None], axis=1)
        selected[rows] = best
        rank[rows] = less + (equal + 1) / 2.0
        is_perf[rows] = is_sr[pick, best]
        oos_perf[rows] = chosen_oos

    omega = rank / (n_trials + 1)
    logits = np.log(omega / (1.0 - omega))
    return PBOResult(
        pbo=float(np.mean(logits <= 0.0)), logits=logits, n_combinations=n_comb,
        splits=splits, n_trials=n_trials, n_periods=t_rows, block_size=block,
        selected=selected, oos_rank=rank, is_performance=is_perf, oos_performance=oos_perf,
        degradation=_ols(is_perf, oos_perf), prob_oos_loss=float(np.mean(oos_perf < 0.0)))


def _check_pbo_input(matrix: npt.ArrayLike, splits: int) -> FloatArray:
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"matrix must be 2-D (T periods x N trials), got shape {m.shape}")
    if not np.all(np.isfinite(m)):
        raise ValueError("matrix has NaN or infinite values")
    if isinstance(splits, bool) or int(splits) != splits or splits < 2 or splits % 2:
        raise ValueError(f"splits must be an even integer >= 2, got {splits}")
    t_rows, n_trials = m.shape
    if n_trials < 2:
        raise ValueError(f"need at least 2 trials (columns) to select among, got {n_trials}")
    if t_rows < splits:
        raise ValueError(f"need at least as many periods (rows) as splits: T={t_rows} < "
                         f"splits={splits}")
    if math.comb(int(splits), int(splits) // 2) > MAX_PBO_COMBINATIONS:
        raise ValueError(f"splits={splits} gives {math.comb(int(splits), int(splits) // 2):,} "
                         f"combinations (limit {MAX_PBO_COMBINATIONS:,}): use fewer splits")
    if (t_rows // splits) * (splits // 2) < 2:
        raise ValueError(f"each half must hold at least 2 periods for a standard deviation: "
                         f"T={t_rows}, splits={splits}")
    return m


def _block_stats(m: FloatArray, splits: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per-block sums and sums of squares (splits x N) of the returns centered on each trial's
    mean, and that mean. Centering keeps ``sumsq - sum**2 / n`` from cancelling away the
    variance of series whose mean is large against their spread; the mean is added back."""
    shift = m.mean(axis=0)
    blocks = (m - shift).reshape(splits, -1, m.shape[1])
    return blocks.sum(axis=1), np.square(blocks).sum(axis=1), shift


def _subset_sharpe(s: FloatArray, ss: FloatArray, count: float, shift: FloatArray) -> FloatArray:
    """Sharpe ratio (ddof=1) of each subset from its centered sum and sum of squares; 0 where
    the subset is constant (its variance is rounding noise against its mean square)."""
    centered_mean = s / count
    var = np.maximum(ss - s * centered_mean, 0.0) / (count - 1.0)
    constant = var <= _ZERO_VARIANCE_RTOL * (ss / count)
    std = np.sqrt(np.where(constant, 1.0, var))
    return np.where(constant, 0.0, (centered_mean + shift) / std)


def _ols(x: FloatArray, y: FloatArray) -> Degradation:
    """OLS of y on x. A degenerate fit (x or y constant) has slope 0, intercept mean(y) and
    R² 0: nothing is explained, and every field stays a finite, JSON-safe number."""
    xc, yc = x - x.mean(), y - y.mean()
    sxx, syy = float(xc @ xc), float(yc @ yc)
    if sxx <= 0.0 or syy <= 0.0:
        return Degradation(slope=0.0, intercept=float(y.mean()), r2=0.0)
    slope = float(xc @ yc) / sxx
    residual = yc - slope * xc
    return Degradation(slope=slope, intercept=float(y.mean() - slope * x.mean()),
                       r2=1.0 - float(residual @ residual) / syy)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _finite_1d(values: npt.ArrayLike, name: str) -> FloatArray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} has NaN or infinite values")
    return x


def _check_finite(**values: float) -> None:
    for name, value in values.items():
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
