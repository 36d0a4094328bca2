"""The review's risk rules: thresholds a candidate must meet on held-out data. Part of the
approval format (the risk report records them), so they live with it, below tune."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RiskRules(BaseModel):
    """Thresholds of the review; every rule PASSes or FAILs on its own."""

    model_config = ConfigDict(extra="forbid")

    min_oos_sharpe: float = Field(0.0, description="Median hold-out Sharpe across scenarios.")
    max_drawdown: float = Field(0.25, gt=0, lt=1, description="Worst hold-out drawdown.")
    min_trades: int = Field(5, ge=0, description="Hold-out trades over all scenarios.")
    neighbourhood_tolerance: float = Field(
        1.0, ge=0, description="Neighbours' median objective may trail the candidate by this.")
    min_positive_scenarios: float = Field(
        0.5, ge=0, le=1, description="Share of scenarios with positive hold-out Sharpe.")
    min_dsr: float = Field(
        0.95, ge=0, le=1, description="Deflated Sharpe ratio of the candidate among all trials "
        "(Bailey & López de Prado 2014): the probability its Sharpe beats the best of N trials "
        "of no skill.")
    max_pbo: float = Field(
        0.5, ge=0, le=1, description="Probability of backtest overfitting of the sweep (CSCV, "
        "Bailey, Borwein, López de Prado & Zhu 2015).")
    require_lookahead_clean: bool = Field(
        True, description="The candidate's decisions must not change when the data after any "
                          "bar is cut or replaced by noise.")
    min_bootstrap_sharpe_p05: float = Field(
        0.0, description="The 5th percentile of the block-bootstrapped hold-out Sharpe (median "
                         "over scenarios) must exceed this.")
    bootstrap_resamples: int = Field(2000, ge=100, le=100_000,
                                     description="Resamples of each bootstrap.")
    lookahead_cuts: int = Field(40, ge=1, le=1000,
                                description="Cut points of the look-ahead check per scenario.")

