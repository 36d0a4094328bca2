"""``optimize``: a Ray Tune sweep of one strategy over many scenarios, into a leaderboard.

The same call runs on a laptop's embedded Ray and on a cluster (``--address``): trials are Tune
trials with one CPU each, market data rides the object store, results land in Tune's experiment
folder (resumable after an interruption with Tune's restore) and in the leaderboard.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spark_ray.backtest.data import (
    bars_from_store,
    bars_with_signals,
    load_signal_model,
    signals_model_entry,
)
from spark_ray.errors import UserError
from spark_ray.fills.costs import CostModel
from spark_ray.strategy.bars import BarData, fingerprint
from spark_ray.tune.cv import CVScheme
from spark_ray.tune.metrics import TuneMetricsCallback
from spark_ray.tune.overfit import record_period
from spark_ray.tune.scenarios import Scenario
from spark_ray.tune.spaces import SearchSpace
from spark_ray.tune.trainable import Payload, ScenarioData, trainable
from spark_ray.tune.walkforward import Objective, Window, holdout_cut, slice_bars

SEARCHES = ("random", "grid", "optuna")
SCHEDULERS = ("fifo", "asha")


@dataclass
class Prepared:
    """Scenario data split into the optimization window and the hold-out tail."""

    scenario: Scenario
    bars: BarData  # optimization window
    holdout: BarData | None  # never seen by trials; the review re-runs the candidate here
    costs: CostModel
    # With a signal model: {path, model_sha256}; its signals ride in ``bars.extra`` (and the
    # hold-out's), attached once here, so trials get them with the bars through the object
    # store and never load the model themselves.
    signals_model: dict[str, str] | None = None


def as_cv(cv: CVScheme | int) -> CVScheme:
    """A scheme; a bare number means that many walk-forward folds (the lab's original)."""
    return cv if isinstance(cv, CVScheme) else CVScheme("walkforward", int(cv))


def prepare(store: Any, scenarios: list[Scenario], cv: CVScheme | int,
            holdout: float, signals_model: str | Path | None = None) -> list[Prepared]:
    """Each scenario's bars, read once on the driver and split into the optimization window
    and the hold-out tail. With ``signals_model`` (a model folder) the bars are built from the
    lake's trades with the model's signals beside them (:func:`bars_with_signals`): scored
    once per scenario here, not once per trial."""
    scheme = as_cv(cv)
    model, entry = None, None
    if signals_model is not None:
        model = load_signal_model(signals_model)
        entry = signals_model_entry(signals_model, model)
    out = []
    for sc in scenarios:
        if model is None:
            data = bars_from_store(store, [sc.symbol], sc.interval, sc.start, sc.end,
                                   sc.exchange)
        else:
            data = bars_with_signals(store, [sc.symbol], sc.interval, sc.start, sc.end,
                                     sc.exchange, model)
        cut = holdout_cut(len(data), holdout)
        opt = slice_bars(data, Window(0, cut))
        opt.fingerprint = data.fingerprint + f"[:{cut}]"
        try:
            scheme.splits(len(opt))
        except ValueError as exc:
            raise UserError(f"scenario {sc.name}: {exc}") from None
        hold = slice_bars(data, Window(cut, len(data))) if cut < len(data) else None
        if hold is not None:  # its own hash, so a review can prove it reads the same bars
            s = sc.symbol
            hold.fingerprint = fingerprint(hold.time, [hold.open[s], hold.high[s], hold.low[s],
                                                       hold.close[s], hold.volume[s]])
        out.append(Prepared(sc, opt, hold, CostModel(fee_bps=sc.fee_bps,
                                                     slippage_bps=sc.slippage_bps), entry))
    return out


def _search_alg(search: str, metric: str, seed: int,
                points: list[dict[str, Any]] | None = None) -> Any:
    if search == "optuna" and not points:
        try:
            from ray.tune.search.optuna import OptunaSearch
        except ImportError as exc:  # pragma: no cover - optuna is a dependency
            raise UserError(f"--search optuna: {exc}") from None
        import optuna

        return OptunaSearch(metric=metric, mode="max",
                            sampler=optuna.samplers.TPESampler(seed=seed))
    from ray.tune.search.basic_variant import BasicVariantGenerator

    return BasicVariantGenerator(random_state=seed, points_to_evaluate=points)


def _scheduler(name: str, folds: int) -> Any:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    if name == "asha":
        return ASHAScheduler(time_attr="training_iteration", max_t=folds, grace_period=1,
                             reduction_factor=2)
    return FIFOScheduler()


def build_tuner(prepared: list[Prepared], strategy: str, space: SearchSpace, trials: int,
                search: str, scheduler: str, metric: str, cv: CVScheme | int, penalty: float,
                seed: int, storage: Path, name: str, verbose: int = 1,
                points: list[dict[str, Any]] | None = None) -> Any:
    """The Tuner for a new sweep; ``points`` runs exactly those parameter sets instead of
    searching (a torn sweep's unfinished trials, :mod:`spark_ray.tune.salvage`)."""
    from ray import tune

    payload = make_payload(prepared, strategy, cv, penalty,
                           report_every_fold=scheduler == "asha")
    fn = tune.with_resources(tune.with_parameters(trainable, payload_ref=put_payload(payload)),
                             {"cpu": 1})
    return tune.Tuner(
        fn,
        param_space=space.param_space(search),
        tune_config=tune.TuneConfig(
            metric=metric, mode="max",
            num_samples=len(points) if points else 1 if search == "grid" else trials,
            search_alg=_search_alg(search, metric, seed, points),
            scheduler=_scheduler(scheduler, payload.folds), reuse_actors=True),
        run_config=tune.RunConfig(name=name, storage_path=str(storage.resolve()),
                                  verbose=verbose,
                                  callbacks=[*lean_loggers(),
                                             TuneMetricsCallback(experiment_label(storage, name),
                                                                 metric)]),
    )


def make_payload(prepared: list[Prepared], strategy: str, cv: CVScheme | int, penalty: float,
                 report_every_fold: bool = True) -> Payload:
    """What every trial needs: the strategy, each scenario's bars and costs, the folds, the
    objective, and the period its out-of-sample returns are recorded in."""
    period = record_period([p.bars for p in prepared])
    return Payload(strategy, tuple(ScenarioData(p.scenario.name, p.bars, p.costs, period)
                                   for p in prepared), as_cv(cv), Objective(penalty),
                   report_every_fold=report_every_fold)


def put_payload(payload: Payload) -> list[Any]:
    """Market data into Ray's object store once; trials read it zero-copy (see
    :func:`~spark_ray.tune.trainable.resolve_payload`)."""
    import ray

    return [ray.put(payload)]


def experiment_label(storage: Path, name: str) -> str:
    """The ``experiment`` metric label: the run folder's name (its NONCE) when under one."""
    parent = storage.resolve().parent.name
    return f"{parent}/{name}" if parent else name


def lean_loggers() -> list[Any]:
    """Only Tune's JSON logger (ResultGrid and resume read result.json); no CSV or
    TensorBoard writers: on this 2-core machine they doubled Tune's ~80 ms per-trial overhead,
    and a trial here is itself only ~80 ms of work."""
    import os

    from ray.tune.logger import JsonLoggerCallback

    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    return [JsonLoggerCallback()]


def restore_tuner(path: Path, prepared: list[Prepared], strategy: str, cv: CVScheme | int,
                  penalty: float) -> Any:
    from ray import tune

    payload = make_payload(prepared, strategy, cv, penalty)
    fn = tune.with_resources(tune.with_parameters(trainable, payload_ref=put_payload(payload)),
                             {"cpu": 1})
    lean_loggers()
    if not tune.Tuner.can_restore(str(path)):
        raise UserError(f"--resume: {path} is not a Tune experiment folder")
    return tune.Tuner.restore(str(path), trainable=fn, resume_unfinished=True,
                              resume_errored=True)
