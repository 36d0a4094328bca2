"""Chaos-canary: declared fault experiments, their injection and their verdicts.

Installed as ``spark_ray.chaos``.
"""

from spark_ray.chaos.experiments import Experiment, load_experiments

__all__ = ["Experiment", "load_experiments"]
