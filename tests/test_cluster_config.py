"""cluster.yaml, and the cloud variants documented in docs/OPERATIONS.md, validate against the
cluster-config schema of the installed Ray; the file mounts carry every package folder."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import ray
import yaml

from helpers import REPO

SCHEMA = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())


def _errors(config: dict[str, Any]) -> list[str]:
    return [f"{'.'.join(map(str, e.path)) or '(top)'}: {e.message}"
            for e in jsonschema.Draft7Validator(SCHEMA).iter_errors(config)]


def _cluster() -> dict[str, Any]:
    return dict(yaml.safe_load((REPO / "cluster.yaml").read_text()))


def _variants() -> dict[str, dict[str, Any]]:
    """The ``# variant: NAME`` YAML blocks of the operations guide."""
    text = (REPO / "docs" / "OPERATIONS.md").read_text()
    out = {}
    for block in re.findall(r"```yaml\n(.*?)```", text, flags=re.S):
        m = re.match(r"# variant: (\w+)\n", block)
        if m:
            out[m.group(1)] = yaml.safe_load(block)
    return out


def test_cluster_yaml_matches_rays_schema() -> None:
    config = _cluster()
    assert _errors(config) == []
    assert config["provider"]["type"] == "local"
    assert set(config["provider"]) >= {"head_ip", "worker_ips"}


def test_every_package_folder_is_mounted_and_installed() -> None:
    config = _cluster()
    mounts = config["file_mounts"]
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    folders = set(pyproject["tool"]["setuptools"]["package-dir"].values())
    needed = folders | {"pyproject.toml", "README.md", "drivers"}
    assert {f"~/spark-ray/{f}": f"./{f}" for f in needed}.items() <= mounts.items()
    for local in mounts.values():  # every source exists (ray up asserts it too, less kindly)
        assert local == "~/.ray/auth_token" or (REPO / local).exists(), local
    assert mounts["~/.ray/auth_token"] == "~/.ray/auth_token"  # one token, every node
    assert any("pip install" in c and c.rstrip().endswith("~/spark-ray")
               for c in config["setup_commands"])


def test_start_commands_fix_the_ports_and_keep_token_auth() -> None:
    config = _cluster()
    head = " ".join(config["head_start_ray_commands"])
    worker = " ".join(config["worker_start_ray_commands"])
    for flag in ("--port=6379", "--dashboard-port=8265", "--metrics-export-port=8080",
                 "--object-store-memory=", "--autoscaling-config=~/ray_bootstrap_config.yaml"):
        assert flag in head, flag
    assert "--address=$RAY_HEAD_IP:6379" in worker and "--metrics-export-port=8080" in worker
    assert "RAY_AUTH_MODE=token ray start" in head and "RAY_AUTH_MODE=token ray start" in worker


@pytest.mark.parametrize("name", ["aws", "gcp"])
def test_documented_cloud_variants_match_rays_schema(name: str) -> None:
    variants = _variants()
    assert set(variants) == {"aws", "gcp"}
    config = {**_cluster(), **variants[name]}  # the snippet replaces whole sections
    assert config["provider"]["type"] == name
    assert _errors(config) == []
    assert config["head_node_type"] in config["available_node_types"]
    assert config["available_node_types"][config["head_node_type"]]["resources"] == {"CPU": 0}
