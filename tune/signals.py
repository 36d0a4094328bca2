"""``signals train --tune N``: a Ray Tune sweep over the signal models' hyperparameters.

Each trial is one configuration of one model kind (LightGBM ``gbm`` or the logistic ``linear``)
scored exactly as the report scores it: out-of-fold probabilities under purged k-fold with an
embargo (:func:`spark_ray.signals.train.out_of_fold`), then AUC and log loss by
:func:`spark_ray.signals.train.scores`. Using the report's own functions means the AUC a trial
reports is the AUC the report prints for the same parameters and seed, to the last bit.

The training set travels to the trials through ``tune.with_parameters`` (Ray's object store,
put once) rather than inside the config, which Tune would copy into every trial's folder and
search-algorithm state. Trials take one CPU each and run at most as many at once as the
cluster has CPUs; LightGBM runs with ``n_jobs=1`` (:func:`spark_ray.signals.train._model`), so
trials never oversubscribe the cores they were given.

Selection bias: the best of N configurations by out-of-fold AUC is an upward-biased estimate
of that configuration's AUC. The sweep therefore returns how many configurations it tried, and
the CLI records that number (``trials``) in the report it prints and saves.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray.tune import Callback

from spark_ray.signals.train import MODELS, TrainingSet, out_of_fold, scores
from spark_ray.tune.optimize import experiment_label, lean_loggers
from spark_ray.tune.trainable import yield_cpu_to_live_work

NAME = "signals"
METRIC = "auc"
OBJECTIVE = ("out-of-fold AUC under purged k-fold with an embargo (López de Prado 2018, 7.4); "
             "the best of N trials is biased upward by the selection")

# The search space as text, for the trial file a reviewer reads; :func:`param_space` is the
# same as Tune domains.
SPACE = {
    "gbm": {"num_leaves": "randint [4, 63]", "learning_rate": "log-uniform [0.01, 0.3]",
            "min_child_samples": "randint [10, 199]", "n_estimators": "50 to 400 in steps of 50",
            "colsample_bytree": "uniform [0.5, 1.0]"},
    "linear": {"C": "log-uniform [0.001, 100]"},
}
_INTS = {"num_leaves", "min_child_samples", "n_estimators"}


def param_space() -> dict[str, Any]:
    """One grid over the model kind x one random draw per kind's hyperparameters.

    Every trial draws both kinds' sub-configs but uses only its own kind's; a flat conditional
    space would need ``sample_from`` callbacks, and two Tuners would pay Tune's start-up twice.
    """
    from ray import tune

    return {
        "model": tune.grid_search(list(MODELS)),
        "gbm": {"num_leaves": tune.randint(4, 64),
                "learning_rate": tune.loguniform(0.01, 0.3),
                "min_child_samples": tune.randint(10, 200),
                "n_estimators": tune.qrandint(50, 400, 50),
                "colsample_bytree": tune.uniform(0.5, 1.0)},
        "linear": {"C": tune.loguniform(1e-3, 1e2)},
    }


def params_of(config: dict[str, Any]) -> dict[str, Any]:
    """The hyperparameters a trial's config sets for its own model kind, as plain Python
    numbers (Tune may hand NumPy scalars, which neither JSON nor a model card wants)."""
    own = config[config["model"]]
    return {k: int(v) if k in _INTS else float(v) for k, v in sorted(own.items())}


def evaluate(ts: TrainingSet, model: str, params: dict[str, Any], k: int, embargo: float,
             seed: int) -> dict[str, float]:
    """Out-of-fold AUC and log loss of one configuration: the numbers a trial reports."""
    s = scores(ts.y, out_of_fold(ts, model, k, embargo, seed, params), ts.forward,
               permutations=0, seed=seed)
    return {"auc": s.auc, "log_loss": s.log_loss}


def run_trial(config: dict[str, Any], ts: TrainingSet, k: int, embargo: float, seed: int) -> None:
    """Tune function trainable: one configuration, one report. ``ts`` arrives from the object
    store via ``tune.with_parameters``."""
    from ray import tune

    yield_cpu_to_live_work()  # a sweep is batch work: the live path keeps priority
    tune.report(evaluate(ts, config["model"], params_of(config), k, embargo, seed))


class Progress(Callback):
    """Runs in the driver: says "trial k/N" and the best AUC so far per model kind as each
    trial ends (Tune's own progress tables are off, verbose=0, in favour of these lines)."""

    def __init__(self, total: int, say: Callable[[str], None]) -> None:
        self.total, self.say = total, say
        self.done = 0
        self.best: dict[str, float] = {}

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any,
                          **info: Any) -> None:
        self.done += 1
        kind, auc = trial.config["model"], float(trial.last_result.get(METRIC, math.nan))
        if math.isfinite(auc):
            self.best[kind] = max(self.best.get(kind, -math.inf), auc)
        best = ", ".join(f"{m} {a:.3f}" for m, a in sorted(self.best.items()))
        self.say(f"tune: trial {self.done}/{self.total} {kind} AUC {auc:.3f}; "
                 f"best so far: {best or '-'}")

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any,
                       **info: Any) -> None:
        self.done += 1
        self.say(f"tune: trial {self.done}/{self.total} {trial.config['model']} FAILED")


def tune_models(ts: TrainingSet, samples: int, k: int, embargo: float, seed: int,
                storage: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """Sweep ``samples`` random configurations per model kind on the connected Ray.

    Returns ``best`` (kind -> hyperparameters with the highest out-of-fold AUC, the first
    trial on a tie), ``best_auc``, ``table`` (every trial: kind, params, AUC, log loss, in
    trial order), ``trials`` (configurations tried), and the space, objective and settings.
    Raises ``ValueError`` when the folds cannot be built (before any trial starts) or when no
    trial of a kind finished.
    """
    import ray
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from spark_ray.tune.metrics import TuneMetricsCallback

    if samples < 1:
        raise ValueError("tune: need at least one sample per model kind")
    # The folds' own errors (too few samples, a fold with no training data left) are the same
    # for every trial: raise them here, once, with the message the report would give.
    out_of_fold(ts, "majority", k, embargo, seed)
    total = samples * len(MODELS)
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    fn = tune.with_resources(tune.with_parameters(run_trial, ts=ts, k=k, embargo=embargo,
                                                  seed=seed), {"cpu": 1})
    tuner = tune.Tuner(
        fn,
        param_space=param_space(),
        tune_config=tune.TuneConfig(
            metric=METRIC, mode="max", num_samples=samples,
            # The limit goes to the generator itself: Tune ignores max_concurrent_trials (with
            # a warning) when handed a generator, and the seeded generator makes the draws
            # reproducible.
            search_alg=BasicVariantGenerator(random_state=seed, max_concurrent=cpus),
            reuse_actors=True),
        run_config=tune.RunConfig(
            name=NAME, storage_path=str(storage.resolve()), verbose=0,
            callbacks=[*lean_loggers(), TuneMetricsCallback(experiment_label(storage, NAME),
                                                            METRIC),
                       Progress(total, say)]),
    )
    say(f"tune: {total} trials ({samples} per model kind: {', '.join(MODELS)}), "
        f"{min(cpus, total)} at a time, purged {k}-fold, embargo {embargo}")
    # Tune prints its experiment box on stdout even at verbose=0; stdout is the report's.
    with contextlib.redirect_stdout(sys.stderr):
        grid = tuner.fit()
    table: list[dict[str, Any]] = []
    for result in (grid[i] for i in range(len(grid))):  # ResultGrid: no typed __iter__
        cfg, m = result.config or {}, result.metrics or {}
        table.append({"trial_id": m.get("trial_id") or result.path.rsplit("/", 1)[-1],
                      "model": cfg["model"], "params": params_of(cfg),
                      "auc": m.get(METRIC), "log_loss": m.get("log_loss"),
                      "error": None if result.error is None else str(result.error)})
    table.sort(key=lambda r: str(r["trial_id"]))  # Tune numbers trials in creation order
    best: dict[str, dict[str, Any]] = {}
    best_auc: dict[str, float] = {}
    for kind in MODELS:
        done = [r for r in table if r["model"] == kind and r["error"] is None
                and r["auc"] is not None and math.isfinite(r["auc"])]
        if not done:
            errors = [r["error"] for r in table if r["model"] == kind and r["error"]]
            raise ValueError(f"tune: no {kind} trial finished"
                             + (f"; first error: {errors[0]}" if errors else ""))
        top = max(done, key=lambda r: r["auc"])  # max keeps the first of equals
        best[kind], best_auc[kind] = top["params"], float(top["auc"])
    return {"objective": OBJECTIVE, "metric": METRIC, "space": SPACE,
            "cv": {"kind": "purged k-fold", "k": k, "embargo": embargo}, "seed": seed,
            "samples_per_model": samples, "trials": len(table), "best": best,
            "best_auc": best_auc, "table": table}
