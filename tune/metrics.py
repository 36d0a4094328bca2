"""Tune progress as Prometheus metrics: trials running, finished, best objective so far.

A Tune callback in the driver records them with ``ray.util.metrics`` (exported by Ray as
``ray_tune_trials_running``, ``ray_tune_trials_finished_total``, ``ray_tune_best_objective``,
label ``experiment``), which the Optimization dashboard reads. Ray 2.60 stops exporting a gauge
about 20 s after its last ``set()``, so the gauges are re-set every few seconds while Tune runs.
"""

from __future__ import annotations

import math
import time
from typing import Any

from ray.tune import Callback

REFRESH_S = 5.0


class TuneMetricsCallback(Callback):
    """Counts trials and tracks the best objective of one experiment."""

    def __init__(self, experiment: str, metric: str = "objective") -> None:
        from ray.util.metrics import Counter, Gauge

        self.experiment = experiment
        self.metric = metric
        tags = ("experiment",)
        self._running = Gauge("tune_trials_running", "Trials running now.", tag_keys=tags)
        self._finished = Counter("tune_trials_finished_total", "Trials that finished.",
                                 tag_keys=tags)
        self._best = Gauge("tune_best_objective", "Best objective reported so far.",
                           tag_keys=tags)
        self._tags = {"experiment": experiment}
        self.running = 0
        self.finished = 0
        self.best = -math.inf
        self._last_refresh = 0.0

    def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_refresh >= REFRESH_S:
            self._running.set(self.running, tags=self._tags)
            if math.isfinite(self.best):
                self._best.set(self.best, tags=self._tags)
            self._last_refresh = now

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.running += 1
        self._refresh(force=True)

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any,
                        result: dict[str, Any], **info: Any) -> None:
        value = result.get(self.metric)
        if isinstance(value, int | float) and math.isfinite(value) and value > self.best \
                and value > -1e5:  # invalid parameter sets score -1e6: not a "best"
            self.best = float(value)
            self._refresh(force=True)

    def _ended(self) -> None:
        self.running = max(0, self.running - 1)
        self.finished += 1
        self._finished.inc(1, tags=self._tags)
        self._refresh(force=True)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any,
                          **info: Any) -> None:
        self._ended()

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._ended()

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        self._refresh()
