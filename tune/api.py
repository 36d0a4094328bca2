"""``spark_ray.tune.optimize(...)``: the whole sweep, from lake to leaderboard and best.json."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spark_ray.errors import UserError
from spark_ray.schemas import iso_ms
from spark_ray.tune.cv import CVScheme
from spark_ray.tune.leaderboard import Leaderboard
from spark_ray.tune.optimize import (
    SCHEDULERS,
    SEARCHES,
    Prepared,
    build_tuner,
    prepare,
    restore_tuner,
)
from spark_ray.tune.overfit import record_period
from spark_ray.tune.salvage import salvage, torn_state
from spark_ray.tune.scenarios import Scenario
from spark_ray.tune.spaces import SearchSpace

OBJECTIVE_KIND = "median out-of-sample Sharpe over scenarios - penalty x median |OOS max DD|"


def code_version() -> dict[str, Any]:
    from spark_ray import __version__
    from spark_ray.backtest.result import ENGINE_VERSION
    from spark_ray.evidence import _git_commit

    return {"spark_ray": __version__, "engine": ENGINE_VERSION, "git_commit": _git_commit()}


def backtest_window(p: Prepared) -> tuple[str, str]:
    """[start, end) of the optimization window as the backtest CLI takes it."""
    from spark_ray.schemas import interval_ms

    t = p.bars.time
    end = int(p.holdout.time[0]) if p.holdout is not None else int(t[-1]) + interval_ms(
        p.scenario.interval)
    return iso_ms(int(t[0])), iso_ms(end)


def reproduce(p: Prepared, strategy: str, params: dict[str, Any], store: str) -> dict[str, Any]:
    """Full-window backtest of ``params`` on a scenario, and the CLI line that reproduces it."""
    from spark_ray.backtest import run_bars

    start, end = backtest_window(p)
    res = run_bars(p.bars, strategy, params, costs=p.costs)
    cmd = ["spark-ray", "backtest", "--store", store, "--exchange", p.scenario.exchange,
           "--symbol", p.scenario.symbol,
           "--interval", p.scenario.interval, "--strategy", strategy,
           *[a for k, v in sorted(params.items()) for a in ("--param", f"{k}={v}")],
           "--fee-bps", f"{p.scenario.fee_bps:g}", "--slippage-bps",
           f"{p.scenario.slippage_bps:g}", "--start", start, "--end", end,
           *(["--signals-model", p.signals_model["path"]] if p.signals_model else [])]
    return {"symbol": p.scenario.symbol, "interval": p.scenario.interval, "start": start,
            "end": end, "fee_bps": p.scenario.fee_bps, "slippage_bps": p.scenario.slippage_bps,
            "metrics": res.metrics, "data_fingerprint": res.data_fingerprint,
            "command": shlex.join(cmd)}


def build_best(board: Leaderboard, prepared: list[Prepared], strategy: str, store: str,
               settings: dict[str, Any]) -> dict[str, Any]:
    valid = board.valid
    if not valid:
        raise UserError("no valid trial: every parameter set was rejected by the strategy")
    full = [r for r in valid if not r["stopped_early"]] or valid
    top = full[0]
    per: dict[str, Any] = {}
    for p in prepared:
        name = p.scenario.name
        win = max(full, key=lambda r: r["scenarios"].get(name, {}).get("oos_sharpe", -1e18))
        per[name] = {"params": win["params"], "rank": win["rank"],
                     "walk_forward": win["scenarios"].get(name, {}),
                     "backtest": reproduce(p, strategy, win["params"], store)}
    scen = []
    for p in prepared:
        start, end = backtest_window(p)
        scen.append({**p.scenario.model_dump(mode="json"),
                     "optimization_window": {"start": start, "end": end,
                                             "bars": len(p.bars),
                                             "fingerprint": p.bars.fingerprint},
                     "holdout_window": None if p.holdout is None else {
                         "start": iso_ms(int(p.holdout.time[0])),
                         "end": iso_ms(int(p.holdout.time[-1])), "bars": len(p.holdout),
                         "fingerprint": p.holdout.fingerprint}})
    best = {
        "strategy": strategy,
        "store": store,
        "objective": {"kind": OBJECTIVE_KIND, **settings},
        "overall": {"params": top["params"], "objective": top["objective"],
                    "rank": top["rank"], "trial_id": top["trial_id"],
                    "walk_forward": top["scenarios"],
                    "backtests": {p.scenario.name: reproduce(p, strategy, top["params"], store)
                                  for p in prepared}},
        "per_scenario": per,
        "scenarios": scen,
        "trials": len(board.rows),
        "code_version": code_version(),
    }
    # The model whose signals the trials traded on: the review re-runs the candidate only on
    # this model's signals, and approve binds it beside the parameters.
    model = prepared[0].signals_model if prepared else None
    if model is not None:
        best["signals_model"] = dict(model)
    return best


def optimize(store: Any, strategy: str, space: SearchSpace, scenarios: list[Scenario],
             trials: int = 20, search: str = "random", scheduler: str = "fifo",
             metric: str = "objective", folds: int = 4, holdout: float = 0.2,
             drawdown_penalty: float = 2.0, seed: int = 0, storage: Path | None = None,
             name: str = "optimize", resume: Path | None = None,
             verbose: int = 1, cv: str = "walkforward", test_groups: int = 2,
             purge: float = 0.01, embargo: float = 0.01, pbo_splits: int = 16,
             say: Callable[[str], None] = print,
             signals_model: str | Path | None = None) -> Leaderboard:
    """Run the sweep on the connected Ray (``spark_ray.connect()`` first) -> Leaderboard.

    ``cv`` picks the folds (:mod:`spark_ray.tune.cv`: ``walkforward`` with ``folds`` folds,
    ``purged`` k-fold with k = ``folds``, ``cpcv`` with ``folds`` groups and ``test_groups`` in
    each test set; ``purge``/``embargo`` as shares of the bars). After the sweep the board
    carries every trial's deflated Sharpe ratio and the experiment's PBO (CSCV with
    ``pbo_splits`` blocks), from the returns the trials recorded. ``say`` gets notices the
    user must see (a torn experiment resumed from its trial folders). ``signals_model`` (a
    model folder from ``spark-ray signals train``) puts its signals beside every scenario's
    bars, built from the lake's trades; best.json then names it (``signals_model``)."""
    from spark_ray.backtest.data import require_signals_model
    from spark_ray.lake import DataStore
    from spark_ray.strategy.loader import load_strategy

    if search not in SEARCHES:
        raise UserError(f"--search: {search!r}; expected one of {', '.join(SEARCHES)}")
    if scheduler not in SCHEDULERS:
        raise UserError(f"--scheduler: {scheduler!r}; expected one of {', '.join(SCHEDULERS)}")
    if space.strategy != strategy:
        raise UserError(f"--space: the space is for {space.strategy!r}, not {strategy!r}")
    if trials < 1:
        raise UserError("--trials: must be at least 1")
    scheme = CVScheme(cv, folds, test_groups, purge, embargo)
    if pbo_splits < 2 or pbo_splits % 2:
        raise UserError(f"--pbo-splits: {pbo_splits} must be an even number >= 2")
    if not 0 <= holdout < 0.9:
        raise UserError("--holdout: must be in [0, 0.9)")
    require_signals_model(load_strategy(strategy), signals_model)
    st = store if hasattr(store, "candles_numpy") else DataStore(store)
    prepared = prepare(st, scenarios, scheme, holdout, signals_model)
    storage = storage or Path("runs") / "tune"
    results: list[Any] = []
    torn = torn_state(resume) if resume is not None else None
    if resume is not None and torn:
        # Tune would silently start over with an empty space: resume from the trial folders.
        left = salvage(resume, scheme.n_splits, torn)
        say(left.notice())
        results.extend(left.kept)
        exp_path = storage / f"{name}-resumed"
        if left.rerun:
            tuner = build_tuner(prepared, strategy, space, len(left.rerun), "random",
                                scheduler, metric, scheme, drawdown_penalty, seed, storage,
                                f"{name}-resumed", verbose, points=left.rerun)
            results.extend(tuner.fit())
    else:
        if resume is not None:
            tuner = restore_tuner(resume, prepared, strategy, scheme, drawdown_penalty)
            exp_path = resume
        else:
            tuner = build_tuner(prepared, strategy, space, trials, search, scheduler, metric,
                                scheme, drawdown_penalty, seed, storage, name, verbose)
            exp_path = storage / name
        results.extend(tuner.fit())
    board = Leaderboard.from_results(strategy, results, [s.name for s in scenarios],
                                     scheme.n_splits)
    board.experiment_path = str(exp_path)
    board.assess_overfitting(record_period([p.bars for p in prepared]), pbo_splits)
    board.best = build_best(board, prepared, strategy, st.uri, {
        "metric": metric, "drawdown_penalty": drawdown_penalty, "folds": folds,
        "holdout": holdout, "search": search, "scheduler": scheduler, "seed": seed,
        "cv": scheme.to_dict(), "cv_description": scheme.describe(),
        "pbo_splits": pbo_splits})
    board.best["overfitting"] = board.overfitting_summary()
    return board
