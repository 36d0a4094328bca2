"""Guardrails in simulation: the live circuit breaker's own core, driven by bar time.

The backtest feeds :class:`~spark_ray.breaker.core.CircuitBreaker` the equity at each visited
bar's close and every closed trade's PnL; while the breaker is not ARMED, new entries are
refused (exits always go through). When the engine skips bars (declared signals), it asks
:meth:`BreakerGuard.first_trip` for the first skipped bar where drawdown or daily loss would
cross its limit (found vectorized), visits it, and also feeds the breaker the skipped stretch's
high-water mark and day opens, so the core sees what it would have seen bar by bar.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from spark_ray.breaker.core import CircuitBreaker
from spark_ray.breaker.models import DEFAULT_ACCOUNT, BreakerConfig, BreakerState
from spark_ray.errors import UserError

DAY_MS = 86_400_000
# Rules that make sense on simulated bars; live-only ones (stale data, gaps, rates) are off.
SIM_RULES = ("max_drawdown", "daily_loss", "consecutive_losses")
LIVE_ONLY = ("reject_rate", "error_rate", "stale_data", "sequence_gaps", "fat_finger",
             "max_position", "max_notional", "max_total_notional", "order_rate")


def sim_config(config: BreakerConfig | dict[str, Any] | None = None) -> BreakerConfig:
    """A breaker config with the live-only rules disabled."""
    base = config if isinstance(config, BreakerConfig) else BreakerConfig.model_validate(
        config or {})
    data = base.model_dump()
    for name in LIVE_ONLY:
        data[name]["enabled"] = False
    return BreakerConfig.model_validate(data)


class BreakerGuard:
    """Adapts the breaker core to the engine's Guard protocol."""

    def __init__(self, config: BreakerConfig | dict[str, Any] | None = None) -> None:
        self.config = sim_config(config)
        self._now = 0.0
        self.core = CircuitBreaker(self.config, clock=lambda: self._now)
        self.trip_times: list[tuple[int, str]] = []
        self._last_state = BreakerState.ARMED

    def _feed(self, time_ms: int, equity: float) -> None:
        self._now = time_ms / 1000.0
        state = self.core.on_equity(self._now, equity, who="backtest")
        self._note(time_ms, state)

    def _note(self, time_ms: int, state: BreakerState) -> None:
        if state is not self._last_state:
            rule = self.core.snapshot().get("last_trip") or {}
            self.trip_times.append((time_ms, f"{state.name}"
                                    + (f" ({rule.get('rule')})" if state is not
                                       BreakerState.ARMED and rule else "")))
            self._last_state = state

    def on_bar(self, time_ms: int, equity: float) -> None:
        self._feed(time_ms, equity)

    def on_trade_closed(self, time_ms: int, pnl: float) -> None:
        self._now = time_ms / 1000.0
        self._note(time_ms, self.core.on_trade_closed(self._now, pnl, who="backtest"))

    def allows_entry(self, time_ms: int) -> bool:
        self._now = time_ms / 1000.0
        state = self.core.tick(self._now)
        self._note(time_ms, state)
        return state is BreakerState.ARMED or self.config.dry_run

    def first_trip(self, times: np.ndarray, equity: np.ndarray) -> int | None:
        """First index where drawdown or daily loss would trip; feeds the stretch's marks."""
        if len(equity) == 0:
            return None
        r = self.core.scope_readings(f"account:{DEFAULT_ACCOUNT}")  # where on_equity lands
        cfg = self.config
        peak0 = r.peak if r.peak is not None else -np.inf
        peaks = np.maximum.accumulate(np.maximum(equity, peak0))
        cand = np.zeros(len(equity), dtype=bool)
        if cfg.max_drawdown.enabled:
            cand |= 1.0 - equity / peaks > cfg.max_drawdown.limit
        day = times // DAY_MS
        first_of_day = np.concatenate([[True], day[1:] != day[:-1]])
        idx = np.maximum.accumulate(np.where(first_of_day, np.arange(len(day)), 0))
        day_start = equity[idx]
        if r.day is not None and r.day_start is not None:
            # Bars still in the day the breaker already opened keep its opening equity.
            day_start = np.where(day == int(r.day), r.day_start, day_start)
        if cfg.daily_loss.enabled:
            loss = day_start - equity
            cand |= loss / day_start > cfg.daily_loss.limit
            if cfg.daily_loss.limit_abs is not None:
                cand |= loss > cfg.daily_loss.limit_abs
        hit = int(np.argmax(cand)) if cand.any() else None
        end = hit if hit is not None else len(equity)
        # Feed what per-bar feeding would have left behind: day opens and the high-water mark.
        points = set(np.flatnonzero(first_of_day[:end]).tolist())
        if end:
            points.add(int(np.argmax(equity[:end])))
        for k in sorted(points):
            self._feed(int(times[k]), float(equity[k]))
        return hit

    def summary(self) -> dict[str, Any]:
        snap = self.core.snapshot()
        return {"rules": [n for n in SIM_RULES if getattr(self.config, n).enabled],
                "trips": snap.get("trips", {}), "final_state": self.core.state.name,
                "transitions": [{"time": t, "state": s} for t, s in self.trip_times]}


def guard_from_file(path: Path) -> BreakerGuard:
    from spark_ray.yamlmodels import load_yaml_model

    if not path.is_file():
        raise UserError(f"--breaker: {path}: file not found")
    return BreakerGuard(load_yaml_model(path, BreakerConfig))
