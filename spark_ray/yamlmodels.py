"""Load YAML files into pydantic models with errors that name the file and the field.

Scenario files, search spaces and chaos experiments are all user-written YAML: a typo must come
back as ``scenarios.0.fee_bsp: Extra inputs are not permitted``, not a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from spark_ray.errors import UserError

M = TypeVar("M", bound=BaseModel)


def validation_message(source: str, err: ValidationError) -> str:
    """One line per problem: ``source: dotted.field: reason``."""
    lines = []
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "(root)"
        lines.append(f"{source}: {field}: {e['msg']}")
    return "\n".join(lines)


def load_yaml_model(path: Path, model: type[M]) -> M:
    """Parse ``path`` as YAML and validate it as ``model``; UserError on any problem."""
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML: {exc}") from None
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise UserError(validation_message(str(path), exc)) from None
