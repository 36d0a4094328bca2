"""cluster.yaml validates against the cluster-config schema of the installed Ray."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import ray
import yaml

from helpers import REPO


def test_cluster_yaml_matches_rays_schema() -> None:
    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json")
                        .read_text())
    config = yaml.safe_load((REPO / "cluster.yaml").read_text())
    errors = [f"{'.'.join(map(str, e.path)) or '(top)'}: {e.message}"
              for e in jsonschema.Draft7Validator(schema).iter_errors(config)]
    assert errors == []
    assert config["provider"]["type"] == "local"
    assert "--metrics-export-port=8080" in " ".join(config["head_start_ray_commands"])
