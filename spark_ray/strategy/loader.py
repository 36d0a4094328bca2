"""Strategies by name: the built-ins or ``pkg.module:Class``, with parameters validated by the
strategy's own model. The CLI, Tune trials and the executor all resolve strategies here, so an
unknown name or a bad parameter reads the same everywhere (a UserError naming the flag).

It sits apart from :mod:`~spark_ray.strategy.base` because it needs the built-ins, which
themselves subclass the base: base <- builtins <- loader, no import cycle.
"""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import ValidationError

from spark_ray.errors import UserError
from spark_ray.strategy.base import Strategy
from spark_ray.strategy.builtins import BUILTINS


def parse_param_value(raw: str) -> Any:
    """``--param fast=10``: ints, floats, booleans and strings, as YAML would read them."""
    import yaml

    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def load_strategy(spec: str) -> type[Strategy]:
    """A built-in name (``sma_cross``) or an import path (``pkg.mod:Class``)."""
    if spec in BUILTINS:
        return BUILTINS[spec]
    if ":" not in spec:
        raise UserError(f"--strategy: unknown strategy {spec!r}; built-in: "
                        f"{', '.join(sorted(BUILTINS))}, or give pkg.module:Class")
    mod_name, _, cls_name = spec.partition(":")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as exc:
        raise UserError(f"--strategy: cannot import {mod_name!r}: {exc}") from None
    cls = getattr(mod, cls_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise UserError(f"--strategy: {spec!r} is not a spark_ray Strategy subclass")
    return cls


def make_strategy(cls: type[Strategy], params: dict[str, Any]) -> Strategy:
    """Instantiate with validated params; UserError names the bad parameter."""
    try:
        return cls(params)
    except ValidationError as exc:
        msgs = [f"--param {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise UserError("; ".join(msgs)) from None
