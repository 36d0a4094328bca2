"""Ray Tune optimization lab: scenarios, search spaces, trainable, leaderboard.

Installed as ``spark_ray.tune`` (never as a top-level ``tune``, which would shadow a PyPI
package).
"""

from spark_ray.tune.scenarios import Scenario, ScenarioFile, load_scenarios

__all__ = ["Scenario", "ScenarioFile", "load_scenarios"]
