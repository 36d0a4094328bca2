"""The same backtests serially in one process vs through Ray Tune on this machine's CPUs.

Trials are sma_cross walk-forwards (4 folds) over 3 scenarios, each a year of 5-minute bars
(synthetic, 105,120 bars). Both sides evaluate the identical list of parameter sets (Tune's
trial i takes set i), so the work is the same. Reports parallel efficiency (serial time /
(Tune wall time x CPUs); target >= 80%), Ray/Tune overhead per trial, and trials per minute for
--trials (default 1,000). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from spark_ray.app.session import connect, disconnect
from spark_ray.config import RayConfig
from spark_ray.data.synth import synth_candles
from spark_ray.fills.costs import CostModel
from spark_ray.lake import DataStore
from spark_ray.tune.optimize import make_payload, prepare
from spark_ray.tune.scenarios import Scenario
from spark_ray.tune.trainable import evaluate_params

YEAR = (1_672_531_200_000, 1_704_067_200_000)  # 2023
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


def param_sets(n: int, seed: int = 1) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    fast = rng.integers(4, 31, n)
    slow = rng.integers(40, 201, n)
    return [{"fast": int(f), "slow": int(s)} for f, s in zip(fast, slow, strict=True)]


def bench_trainable(config: dict[str, Any], payload_ref: list[Any],
                    sets: list[dict[str, Any]]) -> None:
    from ray import tune

    from spark_ray.tune.trainable import resolve_payload

    evaluate_params(resolve_payload(payload_ref), sets[config["idx"]], report=tune.report)


def measure(interval: str, trials: int, serial: int, tmp: str, cpus: int) -> dict[str, Any]:
    """Serial vs Tune on the same parameter sets, for one bar interval (trial granularity)."""
    from ray import tune

    from spark_ray.tune.optimize import lean_loggers

    store = DataStore(Path(tmp) / f"lake-{interval}")
    for k, s in enumerate(SYMBOLS):
        store.write_candles(synth_candles(s, interval, *YEAR, seed=k), "binance", s, interval)
    scenarios = [Scenario(name=s.lower(), symbol=s, interval=interval, fee_bps=10)
                 for s in SYMBOLS]
    prepared = prepare(store, scenarios, folds=4, holdout=0.2)
    payload = make_payload(prepared, "sma_cross", 4, 2.0, report_every_fold=False)
    sets = param_sets(trials)
    t0 = time.perf_counter()
    for params in sets[:serial]:
        evaluate_params(payload, params)
    serial_s = time.perf_counter() - t0
    per_trial = serial_s / serial

    def run(n: int) -> float:
        from spark_ray.tune.optimize import put_payload

        fn = tune.with_resources(tune.with_parameters(
            bench_trainable, payload_ref=put_payload(payload), sets=sets), {"cpu": 1})
        tuner = tune.Tuner(fn, param_space={"idx": tune.grid_search(list(range(n)))},
                           tune_config=tune.TuneConfig(metric="objective", mode="max",
                                                       reuse_actors=True),
                           run_config=tune.RunConfig(storage_path=f"{tmp}/tune-{interval}",
                                                     name=f"bench{n}", verbose=0,
                                                     callbacks=lean_loggers()))
        t = time.perf_counter()
        results = tuner.fit()
        wall = time.perf_counter() - t
        assert len(results) == n and not results.errors
        return wall

    same = run(serial)
    big = run(trials) if trials != serial else same
    return {
        "interval": interval, "bars_per_scenario": round(len(prepared[0].bars) / 0.8),
        "serial": {"trials": serial, "seconds": round(serial_s, 2),
                   "seconds_per_trial": round(per_trial, 4)},
        "tune_same_trials": {"trials": serial, "seconds": round(same, 2),
                             "parallel_efficiency": round(serial_s / (same * cpus), 3)},
        "tune_all_trials": {"trials": trials, "seconds": round(big, 2),
                            "trials_per_minute": round(trials / big * 60, 1),
                            "parallel_efficiency": round(per_trial * trials / (big * cpus), 3),
                            "overhead_per_trial_ms": round((big * cpus / trials - per_trial)
                                                           * 1000, 1)},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--serial", type=int, default=60, help="sets also run serially")
    ap.add_argument("--heavy-trials", type=int, default=200)
    args = ap.parse_args()
    cpus = os.cpu_count() or 2
    with tempfile.TemporaryDirectory(prefix="bench-tune-") as tmp:
        connect(config=RayConfig(include_dashboard=False, num_cpus=cpus, log_to_driver=False,
                                 metrics_export_port=int(os.environ.get("BENCH_METRICS_PORT",
                                                                        18093))), quiet=True)
        try:
            spec = measure("5m", args.trials, args.serial, tmp, cpus)
            heavy = measure("1m", args.heavy_trials, args.heavy_trials, tmp, cpus)
        finally:
            disconnect()
    print(json.dumps({
        "benchmark": "tune_parallel", "cpus": cpus, "scenarios": len(SYMBOLS), "folds": 4,
        "strategy": "sma_cross walk-forward", "costs": str(CostModel(fee_bps=10)),
        "spec_workload_year_of_5m": spec,
        "heavier_trials_year_of_1m": heavy,
        "targets": {
            "parallel_efficiency>=0.8_spec_workload":
                spec["tune_same_trials"]["parallel_efficiency"] >= 0.8,
            "parallel_efficiency>=0.8_heavier_trials":
                heavy["tune_same_trials"]["parallel_efficiency"] >= 0.8,
        },
    }, indent=2))


if __name__ == "__main__":
    main()
