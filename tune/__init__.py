"""Ray Tune optimization lab: scenarios, search spaces, walk-forward trials, leaderboard,
approval gate. Installed as ``spark_ray.tune`` (never a top-level ``tune``, which would shadow
a PyPI package)."""

from spark_ray.tune.scenarios import Scenario, ScenarioFile, load_scenarios

__all__ = ["Scenario", "ScenarioFile", "load_scenarios", "optimize"]


def __getattr__(name: str) -> object:
    # Lazy: importing spark_ray.tune must not import Ray Tune (the CLI's --help stays fast).
    if name == "optimize":
        from spark_ray.tune.api import optimize

        return optimize
    raise AttributeError(name)
