"""The bootstrap against what is known exactly: Lo's (2002) standard error of the Sharpe ratio
on iid returns, the exact variance of an AR(1) sample mean (where the moving-block bootstrap must
beat the iid one), hand-computed drawdowns, degenerate blocks, determinism and the errors."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np
import pytest

from spark_ray.research.bootstrap import (
    BootstrapResult,
    Interval,
    block_bootstrap,
    block_indices,
    default_block,
    trade_bootstrap,
)

PPY = 252


def _iid_returns(seed: int = 0, n: int = 2000) -> np.ndarray:
    # Per-period mean 0.0005, sd 0.01: a per-period Sharpe ratio of 0.05 (0.79 annualized).
    return np.random.default_rng(seed).normal(0.0005, 0.01, n)


def test_same_seed_same_result_other_seed_other_result() -> None:
    x = _iid_returns(n=500)
    a = block_bootstrap(x, PPY, n_boot=300, seed=7)
    b = block_bootstrap(x, PPY, n_boot=300, seed=7)
    c = block_bootstrap(x, PPY, n_boot=300, seed=8)
    assert a == b
    assert a.to_dict() == b.to_dict()
    assert a.sharpe.p05 != c.sharpe.p05
    assert a.sharpe.point == c.sharpe.point  # the original series does not depend on the seed
    t1 = trade_bootstrap(x[:80], 100, n_boot=300, seed=3)
    assert t1 == trade_bootstrap(x[:80], 100, n_boot=300, seed=3)


def test_point_estimates_by_hand() -> None:
    # Equity 1.1, 0.55, 0.66: the peak 1.1 falls to 0.55, a drawdown of -50 %; final 0.66.
    r = np.array([0.1, -0.5, 0.2])
    result = block_bootstrap(r, 12, n_boot=50, start_equity=1.0)
    assert result.max_drawdown.point == pytest.approx(-0.5, rel=1e-15)
    assert result.final_equity.point == pytest.approx(0.66, rel=1e-15)
    mean, sd = r.mean(), r.std(ddof=1)
    assert result.sharpe.point == pytest.approx(mean / sd * math.sqrt(12), rel=1e-15)
    # The start counts as a peak: a first-period loss is a drawdown.
    first_loss = trade_bootstrap([-0.2, 0.1, 0.1], 50, n_boot=10, start_equity=100.0)
    assert first_loss.max_drawdown.point == pytest.approx(-0.2, rel=1e-15)
    assert first_loss.final_equity.point == pytest.approx(100 * 0.8 * 1.1 * 1.1, rel=1e-15)


def test_sharpe_standard_error_matches_lo_2002_on_iid_returns() -> None:
    # Lo, A. W. (2002), "The Statistics of Sharpe Ratios", Financial Analysts Journal 58(4),
    # 36-52: for iid normal returns the estimated Sharpe ratio has asymptotic standard error
    # sqrt((1 + SR^2/2) / T) per period; annualized, times sqrt(periods per year).
    # Tolerances: with 2,000 resamples the bootstrap sd itself has a relative Monte Carlo error
    # of ~1/sqrt(2 * 2000) = 1.6 %, and the bootstrap's estimate from one sample of T = 2000
    # misses the true sd by a few % more (max 4.4 % over 5 seeds for the iid bootstrap, 9 % for
    # blocks of 13, whose variance estimate is noisier): 10 % and 15 % are > 3 sd.
    x = _iid_returns(seed=0)
    sr = x.mean() / x.std(ddof=1)
    lo_se = math.sqrt((1 + sr**2 / 2) / x.size) * math.sqrt(PPY)
    iid = block_bootstrap(x, PPY, block=1, seed=1)
    blocks = block_bootstrap(x, PPY, seed=1)
    trades = trade_bootstrap(x, PPY, seed=1)
    assert blocks.block == default_block(2000) == 13
    assert iid.sharpe.se == pytest.approx(lo_se, rel=0.10)
    assert trades.sharpe.se == pytest.approx(lo_se, rel=0.10)
    assert blocks.sharpe.se == pytest.approx(lo_se, rel=0.15)
    # The 5-95 % band of a near-normal distribution spans 2 x 1.645 sd.
    assert (iid.sharpe.p95 - iid.sharpe.p05) / (2 * 1.6449) == pytest.approx(lo_se, rel=0.10)
    assert iid.sharpe.p50 == pytest.approx(iid.sharpe.point, abs=0.2 * lo_se)


def test_strictly_positive_returns_never_lose() -> None:
    x = np.random.default_rng(2).uniform(0.001, 0.01, 250)
    for result in (block_bootstrap(x, PPY, n_boot=500, start_equity=1000.0),
                   trade_bootstrap(x, PPY, n_boot=500, start_equity=1000.0)):
        assert result.final_equity.p05 > 1000.0
        # Each resample compounds 250 draws of at least +0.1 %: at least 1000 * 1.001^250.
        assert result.final_equity.p05 >= 1000.0 * 1.001**250
        assert result.max_drawdown.to_dict() == {"point": 0.0, "p05": 0.0, "p50": 0.0,
                                                 "p95": 0.0, "se": 0.0}
        assert result.sharpe.p05 > 0.0


def _ar1(phi: float, n: int, seed: int) -> np.ndarray:
    e = np.random.default_rng(seed).normal(size=n + 200)
    x = np.empty_like(e)
    x[0] = e[0]
    for i in range(1, e.size):
        x[i] = phi * x[i - 1] + e[i]
    return 0.01 * x[200:]  # burn-in: start from the stationary distribution


def test_block_bootstrap_keeps_autocorrelation_better_than_iid() -> None:
    # AR(1), phi = 0.6, innovations of sd s = 0.01 (returns are fractions): autocovariances
    # gamma_k = s^2 phi^k / (1 - phi^2), and the exact variance of the mean of n = 2000 values
    # is gamma_0/n * (1 + 2 sum_{k<n} (1 - k/n) phi^k), about 4 gamma_0 / n
    # ((1 + phi)/(1 - phi) = 4). Resampling single periods sees only gamma_0: it estimates
    # about 1/4 of the truth. Blocks of 13 keep the lags inside a block (weighted 1 - k/13):
    # about 0.86 of it. One series' estimate varies (0.69 to 0.96 over 6 seeds, measured).
    phi, n = 0.6, 2000
    x = _ar1(phi, n, seed=101)
    lags = np.arange(1, n)
    true_var = 0.01**2 / (1 - phi**2) / n * (1 + 2 * np.sum((1 - lags / n) * phi**lags))
    rng = np.random.default_rng(5)
    block_var = x[block_indices(n, default_block(n), 2000, rng)].mean(axis=1).var(ddof=1)
    iid_var = x[block_indices(n, 1, 2000, rng)].mean(axis=1).var(ddof=1)
    assert abs(block_var - true_var) < abs(iid_var - true_var)
    assert 0.6 < block_var / true_var < 1.2
    assert 0.15 < iid_var / true_var < 0.35
    # The same through the public API: the Sharpe ratio's bootstrap error is dominated by the
    # mean's, so the iid bootstrap understates it by about sqrt(1/4) = 1/2.
    blocks = block_bootstrap(x, PPY, seed=1)
    iid = block_bootstrap(x, PPY, block=1, seed=1)
    assert blocks.sharpe.se > 1.6 * iid.sharpe.se


def test_block_indices_shape_and_extremes() -> None:
    rng = np.random.default_rng(0)
    idx = block_indices(10, 3, 4, rng)
    assert idx.shape == (4, 10)
    assert idx.min() >= 0
    assert idx.max() <= 9
    # Runs of 3 consecutive periods (the last one cut after its first element).
    for row in idx:
        for start in (0, 3, 6):
            assert row[start + 1] == row[start] + 1
            assert row[start + 2] == row[start] + 2
    # block == n: every resample is the series itself, so every percentile is the point.
    x = _iid_returns(n=60)
    whole = block_bootstrap(x, PPY, n_boot=20, block=60)
    for interval in (whole.sharpe, whole.max_drawdown, whole.final_equity):
        assert interval.p05 == interval.p50 == interval.p95 == pytest.approx(interval.point)
        assert interval.se == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="block"):
        block_indices(10, 11, 4, rng)


def test_two_trades_can_resample_to_no_variance() -> None:
    # With 2 trades a resample draws the same trade twice half the time: no standard deviation,
    # so no Sharpe ratio. Those resamples are counted and left out of the Sharpe interval only.
    result = trade_bootstrap([0.02, -0.01], 100, n_boot=1000, seed=0)
    assert 400 < result.sharpe_undefined < 600
    assert math.isfinite(result.sharpe.p05)
    # The defined resamples are the original pair (either order): one Sharpe value.
    assert result.sharpe.p05 == result.sharpe.p95 == pytest.approx(result.sharpe.point)
    # Final equity takes three values: 1.02^2, 1.02*0.99, 0.99^2.
    assert result.final_equity.p05 == pytest.approx(0.99**2)
    assert result.final_equity.p95 == pytest.approx(1.02**2)


def test_result_fields_and_json() -> None:
    x = _iid_returns(n=300)
    result = block_bootstrap(x, PPY, n_boot=200, block=5, seed=4, start_equity=10_000.0)
    assert isinstance(result, BootstrapResult)
    assert isinstance(result.sharpe, Interval)
    assert (result.method, result.n_boot, result.block, result.n, result.seed) == (
        "block", 200, 5, 300, 4)
    d = result.to_dict()
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    assert set(d["sharpe"]) == {"point", "p05", "p50", "p95", "se"}
    assert d["final_equity"]["p05"] <= d["final_equity"]["p50"] <= d["final_equity"]["p95"]
    assert d["max_drawdown"]["p95"] <= 0.0
    trades = trade_bootstrap(x[:40], 120, n_boot=100)
    assert (trades.method, trades.block, trades.n) == ("trade", 1, 40)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: block_bootstrap([0.01], PPY), "at least 2 returns"),
    (lambda: trade_bootstrap([0.01], 100), "at least 2 trades"),
    (lambda: trade_bootstrap([], 100), "at least 2 trades"),
    (lambda: block_bootstrap([0.01, math.nan, 0.02], PPY), "NaN"),
    (lambda: trade_bootstrap([0.01, math.inf], 100), "NaN or infinite"),
    (lambda: block_bootstrap([0.01, 0.02], 0), "periods_per_year"),
    (lambda: block_bootstrap([0.01, 0.02], -12), "periods_per_year"),
    (lambda: trade_bootstrap([0.01, 0.02], math.nan), "trades_per_year"),
    (lambda: block_bootstrap([0.01, 0.02], PPY, n_boot=0), "n_boot"),
    (lambda: block_bootstrap([0.01, 0.02], PPY, block=3), "block"),
    (lambda: block_bootstrap([0.01, 0.02], PPY, block=0), "block"),
    (lambda: block_bootstrap([0.01, 0.02], PPY, start_equity=0.0), "start_equity"),
    (lambda: block_bootstrap([0.01, -1.5], PPY), "below -1"),
    (lambda: block_bootstrap([0.01, 0.01, 0.01], PPY), "all equal"),
    (lambda: block_bootstrap([[0.01, 0.02]], PPY), "1-D"),
])
def test_errors(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
