"""Scenarios: a market slice plus a cost model that every trial is evaluated on.

File shape (YAML)::

    scenarios:
      - {name: eth, symbol: ETHBTC, interval: 5m, start: 2018-01-10, end: 2018-01-30,
         fee_bps: 10, slippage_bps: 0}
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from spark_ray.schemas import INTERVAL_MS
from spark_ray.yamlmodels import load_yaml_model


class Scenario(BaseModel):
    """One market slice and cost model; start/end are UTC and optional (whole data when unset)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    symbol: str = Field(pattern=r"^[A-Z0-9]+$")
    interval: str
    exchange: str = "binance"
    start: datetime | None = None
    end: datetime | None = None
    fee_bps: float = Field(10.0, ge=0, le=1000)
    slippage_bps: float = Field(0.0, ge=0, le=1000)

    @field_validator("interval")
    @classmethod
    def _known_interval(cls, v: str) -> str:
        if v not in INTERVAL_MS:
            raise ValueError(f"unknown interval {v!r}; expected one of {', '.join(INTERVAL_MS)}")
        return v

    @field_validator("start", "end", mode="before")
    @classmethod
    def _utc(cls, v: object) -> object:
        if isinstance(v, date) and not isinstance(v, datetime):
            return datetime(v.year, v.month, v.day, tzinfo=UTC)
        if isinstance(v, datetime) and v.tzinfo is None:
            return v.replace(tzinfo=UTC)
        return v

    @model_validator(mode="after")
    def _ordered(self) -> Scenario:
        if self.start and self.end and self.start >= self.end:
            raise ValueError(f"start {self.start.isoformat()} must be before end "
                             f"{self.end.isoformat()}")
        return self


class ScenarioFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scenarios: list[Scenario] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> ScenarioFile:
        names = [s.name for s in self.scenarios]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"scenario names must be unique; repeated: {', '.join(dupes)}")
        return self


def load_scenarios(path: Path) -> list[Scenario]:
    """Read and validate a scenario file; UserError names the file and field on a problem."""
    return load_yaml_model(path, ScenarioFile).scenarios
