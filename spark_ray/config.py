"""Configuration: one pydantic model from ``spark-ray.yaml``, ``SPARK_RAY_`` env vars, CLI flags.

Precedence is file < environment < command line. Environment overrides are
``SPARK_RAY_<SECTION>__<FIELD>`` (e.g. ``SPARK_RAY_RAY__DASHBOARD_PORT=8266``) or
``SPARK_RAY_<FIELD>`` for top-level fields; values are parsed as YAML scalars. An invalid value
raises :class:`~spark_ray.errors.UserError` naming the field, where the value came from, and why.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from spark_ray.breaker.models import BreakerConfig
from spark_ray.errors import UserError

ENV_PREFIX = "SPARK_RAY_"
CONFIG_ENV = "SPARK_RAY_CONFIG"
DEFAULT_CONFIG_FILE = "spark-ray.yaml"


class StrictModel(BaseModel):
    """Base for config sections: unknown keys are errors, so a typo names itself."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


class RayConfig(StrictModel):
    """How to reach (or start) Ray."""

    address: str | None = Field(None, description="Cluster to join; unset starts a local Ray.")
    namespace: str = "spark_ray"
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = Field(8265, ge=1, le=65535)
    include_dashboard: bool = True
    metrics_export_port: int = Field(
        8080, ge=1024, le=65535, description="Fixed so Prometheus knows where to scrape."
    )
    num_cpus: int | None = Field(None, ge=1)
    object_store_memory: int | None = Field(None, ge=78_643_200, description="Bytes (Ray's min).")
    logging_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    log_to_driver: bool = True


class Settings(StrictModel):
    """The whole configuration. Capabilities add their own section here."""

    ray: RayConfig = Field(default_factory=RayConfig)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    out: Path = Field(Path("runs"), description="Where run folders (evidence bundles) go.")
    store: str = Field("lake", description="Parquet lake root: a path or pyarrow filesystem URI.")


def _deep_set(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = tree
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[path[-1]] = value


def _env_overrides(environ: dict[str, str]) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    """Collect ``SPARK_RAY_*`` overrides for known sections and fields.

    Variables that name no section or top-level field (e.g. secrets read elsewhere, like
    ``SPARK_RAY_VENUE_TOKEN``) are left alone; within a known section an unknown field is an error.
    """
    sections = {name for name, f in Settings.model_fields.items()
                if isinstance(f.default_factory, type) and issubclass(f.default_factory, BaseModel)}
    top_fields = set(Settings.model_fields) - sections
    tree: dict[str, Any] = {}
    sources: dict[tuple[str, ...], str] = {}
    for var in sorted(environ):
        if not var.startswith(ENV_PREFIX) or var == CONFIG_ENV:
            continue
        rest = var[len(ENV_PREFIX):].lower()
        path = tuple(rest.split("__"))
        if len(path) == 1 and path[0] not in top_fields:
            continue
        if len(path) > 1 and path[0] not in sections:
            continue
        try:
            value = yaml.safe_load(environ[var]) if environ[var] != "" else None
        except yaml.YAMLError:
            value = environ[var]
        _deep_set(tree, path, value)
        sources[path] = f"environment variable {var}"
    return tree, sources


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _describe(err: ValidationError, sources: dict[tuple[str, ...], str]) -> str:
    lines = []
    for e in err.errors():
        loc = tuple(str(p) for p in e["loc"])
        field = ".".join(loc) or "(root)"
        where = sources.get(loc, "")
        got = e.get("input")
        detail = e["msg"]
        if e["type"] != "missing" and not isinstance(got, dict) and "token" not in field \
                and "secret" not in field and "key" not in field:
            detail += f" (got {got!r})"
        lines.append(f"{field}: {detail}" + (f" [from {where}]" if where else ""))
    return "invalid configuration:\n  " + "\n  ".join(lines)


def load_settings(
    config_file: str | Path | None = None,
    cli_overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Build :class:`Settings` from file, environment and CLI (in rising precedence).

    ``cli_overrides`` maps dotted field names (``"ray.address"``) to values; ``None`` values are
    ignored so unset flags do not mask the file or environment.
    """
    env = dict(os.environ if environ is None else environ)
    path = Path(config_file) if config_file else None
    if path is None and env.get(CONFIG_ENV):
        path = Path(env[CONFIG_ENV])
    if path is None and Path(DEFAULT_CONFIG_FILE).is_file():
        path = Path(DEFAULT_CONFIG_FILE)

    file_tree: dict[str, Any] = {}
    sources: dict[tuple[str, ...], str] = {}
    if path is not None:
        if not path.is_file():
            raise UserError(f"config file {path}: not found")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise UserError(f"config file {path}: not valid YAML: {exc}") from None
        except UnicodeDecodeError:
            raise UserError(f"config file {path}: not UTF-8 text") from None
        except RecursionError:
            raise UserError(f"config file {path}: nested too deeply") from None
        if not isinstance(loaded, dict):
            raise UserError(f"config file {path}: top level must be a mapping of sections")
        file_tree = loaded

        def mark(tree: dict[str, Any], prefix: tuple[str, ...]) -> None:
            for k, v in tree.items():
                if isinstance(v, dict):
                    mark(v, (*prefix, str(k)))
                sources[(*prefix, str(k))] = f"config file {path}"

        try:
            mark(file_tree, ())
        except RecursionError:  # a YAML alias that contains itself
            raise UserError(f"config file {path}: nested too deeply (or refers to "
                            "itself)") from None

    env_tree, env_sources = _env_overrides(env)
    sources.update(env_sources)
    cli_tree: dict[str, Any] = {}
    for dotted, value in (cli_overrides or {}).items():
        if value is None:
            continue
        key = tuple(dotted.split("."))
        _deep_set(cli_tree, key, value)
        sources[key] = "command line"

    merged = _merge(_merge(file_tree, env_tree), cli_tree)
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        raise UserError(_describe(exc, sources)) from None
    except RecursionError:
        raise UserError("settings: nested too deeply (or refer to themselves)") from None


def redacted(settings: BaseModel) -> dict[str, Any]:
    """The settings as JSON-safe data with secrets masked (SecretStr dumps as '**********')."""
    return settings.model_dump(mode="json")
