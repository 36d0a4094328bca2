"""Configuration: file < env < CLI, and errors that name the field (exit 2, no traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr

from spark_ray.config import load_settings, redacted
from spark_ray.errors import UserError

from helpers import cli_env, run_cli


def test_precedence_file_env_cli(tmp_path: Path) -> None:
    cfg = tmp_path / "spark-ray.yaml"
    cfg.write_text("ray:\n  dashboard_port: 9001\n  namespace: fromfile\nstore: /lake/a\n")
    s = load_settings(cfg, environ={})
    assert (s.ray.dashboard_port, s.ray.namespace, s.store) == (9001, "fromfile", "/lake/a")
    env = {"SPARK_RAY_RAY__DASHBOARD_PORT": "9002", "SPARK_RAY_STORE": "s3://bucket/lake"}
    s = load_settings(cfg, environ=env)
    assert (s.ray.dashboard_port, s.ray.namespace, s.store) == (9002, "fromfile",
                                                                 "s3://bucket/lake")
    s = load_settings(cfg, {"ray.dashboard_port": 9003, "ray.address": None}, environ=env)
    assert s.ray.dashboard_port == 9003
    assert s.ray.address is None


def test_config_file_from_env_var(tmp_path: Path) -> None:
    cfg = tmp_path / "other.yaml"
    cfg.write_text("out: /tmp/elsewhere\n")
    s = load_settings(environ={"SPARK_RAY_CONFIG": str(cfg)})
    assert str(s.out) == "/tmp/elsewhere"


def test_unrelated_prefixed_env_vars_are_ignored() -> None:
    s = load_settings(environ={"SPARK_RAY_VENUE_TOKEN": "x", "SPARK_RAY_CONFIG_X": "1"})
    assert s.ray.dashboard_port == 8265


@pytest.mark.parametrize(
    ("yaml_text", "env", "needle"),
    [
        ("ray:\n  dashboard_port: 70000\n", {}, "ray.dashboard_port: Input should be less than"),
        ("ray:\n  dashbord_port: 1\n", {}, "ray.dashbord_port: Extra inputs are not permitted"),
        ("rayy: {}\n", {}, "rayy: Extra inputs are not permitted"),
        ("ray:\n  logging_level: LOUD\n", {}, "ray.logging_level: Input should be"),
        ("", {"SPARK_RAY_RAY__NUM_CPUS": "zero"},
         "ray.num_cpus: Input should be a valid integer"),
    ],
)
def test_invalid_values_name_the_field(tmp_path: Path, yaml_text: str, env: dict[str, str],
                                       needle: str) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml_text)
    with pytest.raises(UserError) as info:
        load_settings(cfg, environ=env)
    assert needle in str(info.value)


def test_env_error_says_which_variable() -> None:
    with pytest.raises(UserError, match=r"\[from environment variable SPARK_RAY_RAY__NUM_CPUS\]"):
        load_settings(environ={"SPARK_RAY_RAY__NUM_CPUS": "-3"})


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("ray: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_settings(bad, environ={})
    with pytest.raises(UserError, match="not found"):
        load_settings(tmp_path / "nope.yaml", environ={})


def test_cli_config_error_exits_2_without_traceback(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("ray:\n  metrics_export_port: banana\n")
    env = cli_env()
    del env["SPARK_RAY_RAY__METRICS_EXPORT_PORT"]  # env would (rightly) win over the file
    res = run_cli("--config", str(cfg), "config", "show", env=env)
    assert res.code == 2
    assert "ray.metrics_export_port" in res.err
    assert "banana" in res.err
    assert "Traceback" not in res.err


def test_cli_env_and_flag_override_show(tmp_path: Path) -> None:
    env = cli_env(SPARK_RAY_RAY__NAMESPACE="fromenv")
    res = run_cli("config", "show", "--json", env=env, cwd=tmp_path)
    assert res.code == 0, res.err
    assert '"namespace": "fromenv"' in res.out


def test_redaction_masks_secrets() -> None:
    class WithSecret(BaseModel):
        api_key: SecretStr
        name: str

    data = redacted(WithSecret(api_key=SecretStr("hunter2-very-secret"), name="x"))
    assert "hunter2" not in repr(data)
    assert data["name"] == "x"
