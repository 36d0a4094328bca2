"""Search spaces: YAML per strategy, turned into Ray Tune distributions.

    strategy: sma_cross
    params:
      fast: {type: int, low: 5, high: 40, step: 1}
      slow: {type: int, low: 20, high: 200, step: 5}
      size_pct: {type: choice, values: [1.0]}

Types: ``int`` (low..high inclusive, optional step), ``float`` (uniform; ``log: true`` for
log-uniform; optional step for grids), ``choice`` (values). Grid search enumerates every int
and choice value (and float steps); random and optuna search sample.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from spark_ray.errors import UserError
from spark_ray.yamlmodels import load_yaml_model

SPACES_DIR = Path(__file__).resolve().parent / "spaces"
GRID_LIMIT = 100_000


class ParamSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["int", "float", "choice"]
    low: float | None = None
    high: float | None = None
    step: float | None = Field(None, gt=0)
    log: bool = False
    values: list[Any] | None = None

    @model_validator(mode="after")
    def _complete(self) -> ParamSpec:
        if self.type == "choice":
            if not self.values:
                raise ValueError("choice needs a non-empty 'values' list")
        else:
            if self.low is None or self.high is None:
                raise ValueError(f"{self.type} needs 'low' and 'high'")
            if self.low > self.high:
                raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
            if self.log and self.low <= 0:
                raise ValueError("log scale needs low > 0")
        return self

    def grid_values(self) -> list[Any]:
        if self.type == "choice":
            return list(self.values or [])
        assert self.low is not None and self.high is not None  # nosec B101  # narrows Optional for mypy, not a check
        if self.type == "int":
            step = int(self.step or 1)
            return list(range(int(self.low), int(self.high) + 1, step))
        if self.step is None:
            raise ValueError("a float needs 'step' for grid search")
        n = int(np.floor((self.high - self.low) / self.step + 1e-9)) + 1
        return [round(self.low + k * self.step, 12) for k in range(n)]

    def to_tune(self, grid: bool) -> Any:
        from ray import tune

        if grid:
            return tune.grid_search(self.grid_values())
        if self.type == "choice":
            return tune.choice(list(self.values or []))
        assert self.low is not None and self.high is not None  # nosec B101  # narrows Optional for mypy, not a check
        if self.type == "int":
            if self.step and self.step > 1:
                return tune.qrandint(int(self.low), int(self.high), int(self.step))
            return tune.randint(int(self.low), int(self.high) + 1)  # randint's high is exclusive
        if self.log:
            return tune.loguniform(self.low, self.high)
        if self.step:
            return tune.quniform(self.low, self.high, self.step)
        return tune.uniform(self.low, self.high)


class SearchSpace(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strategy: str
    params: dict[str, ParamSpec] = Field(min_length=1)

    def param_space(self, search: str) -> dict[str, Any]:
        grid = search == "grid"
        if grid:
            size = 1
            for spec in self.params.values():
                size *= len(spec.grid_values())
            if size > GRID_LIMIT:
                raise UserError(f"--space: the grid has {size} points (limit {GRID_LIMIT}); "
                                "coarsen the steps or use random/optuna search")
        return {name: spec.to_tune(grid) for name, spec in self.params.items()}

    def neighbours(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Parameter sets one step away in one dimension (for the stability rule)."""
        out = []
        for name, spec in self.params.items():
            if name not in params:
                continue
            if spec.type == "choice":
                vals = list(spec.values or [])
                if params[name] in vals:
                    k = vals.index(params[name])
                    for j in (k - 1, k + 1):
                        if 0 <= j < len(vals):
                            out.append({**params, name: vals[j]})
                continue
            assert spec.low is not None and spec.high is not None  # nosec B101  # narrows Optional for mypy, not a check
            step = spec.step or (1 if spec.type == "int" else (spec.high - spec.low) / 20)
            for d in (-step, step):
                v = params[name] + d
                if spec.low <= v <= spec.high:
                    out.append({**params, name: int(v) if spec.type == "int" else v})
        return out


def load_space(path: Path) -> SearchSpace:
    return load_yaml_model(path, SearchSpace)


def builtin_space(strategy: str) -> Path:
    path = SPACES_DIR / f"{strategy}.yaml"
    if not path.is_file():
        raise UserError(f"--space: no shipped space for {strategy!r}; give --space FILE")
    return path
