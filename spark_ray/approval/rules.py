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
