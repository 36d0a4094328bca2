"""The platform under its own load: the streams fabric, a paper executor and a Tune sweep at once.

The fabric alone meets its SLO with room to spare (47 ms at 5,000 msg/s); a user runs all of it
on one machine, and a Tune sweep takes every core it is given. This runs the three together on
the local venue simulator and measures event-to-store exactly as :mod:`spark_ray.app.slo` does
(the sinks' exact histograms), over the window in which the sweep ran, so the demo's observe
stage and the test share one measurement and one verdict. Expects Ray connected.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray

from spark_ray.app.fabric import Fabric, FabricConfig, supervisor_name
from spark_ray.streams.metrics import LatencyHist


@dataclass(frozen=True)
class LoadSpec:
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")
    trades_per_second: float = 40.0  # per symbol
    min_seconds: float = 20.0  # traffic at least this long, sweep or not
    max_seconds: float = 150.0  # the sweep is not waited for longer
    tune_trials: int = 8
    tune_symbol: str = "ETHBTC"  # candles the sweep backtests (must be in the lake)
    tune_interval: str = "5m"
    executor: bool = True


def _hist(fabric: Fabric) -> tuple[LatencyHist, LatencyHist]:
    st = fabric.slo_stats()
    return st["event_to_db"], st["lag"]


def _sweep(lake: Any, spec: LoadSpec, work: Path) -> dict[str, Any]:
    from spark_ray.tune.api import optimize
    from spark_ray.tune.scenarios import Scenario
    from spark_ray.tune.spaces import builtin_space, load_space

    t0 = time.monotonic()
    board = optimize(lake, "sma_cross", load_space(builtin_space("sma_cross")),
                     [Scenario(name="load", symbol=spec.tune_symbol,
                               interval=spec.tune_interval)],
                     trials=spec.tune_trials, folds=2, holdout=0.2, storage=work / "tune",
                     name=f"load-{uuid.uuid4().hex[:6]}", verbose=0)
    return {"trials": len(board.rows), "seconds": round(time.monotonic() - t0, 1)}


def run_platform_load(work: Path, lake: Any | None, spec: LoadSpec = LoadSpec(),
                      during: Callable[[Fabric], None] | None = None,
                      shared: Fabric | None = None) -> dict[str, Any]:
    """Venue -> fabric -> sink, a paper executor subscribed to it, and (with ``lake``) a Tune
    sweep, all at once. Returns the measured window's event-to-store and ingest-lag summaries
    (the keys :func:`spark_ray.app.slo.enforce` judges), the sweep's and the executor's facts.
    ``during`` is called once with the fabric while the load runs (the demo trips a breaker).
    With ``shared`` (a running long-lived fabric whose market runs) the executor joins it as
    ``spark-ray trade`` does, and nothing else is started or stopped: no venue, no fabric."""
    from spark_ray.venue import Venue

    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    if shared is not None:
        return _measure(work, lake, spec, during, shared.cfg, shared)
    # Paused until everything is subscribed: trades published before the fabric connects come
    # over REST backfill, seconds old by design, and are not what the live SLO measures.
    venue = Venue(symbols=spec.symbols, seed=7, history_minutes=30, start_paused=True,
                  trades_per_second=spec.trades_per_second).start()
    fcfg = FabricConfig(symbols=list(spec.symbols), streams=["trade"], ws_url=venue.ws_url,
                        rest_url=venue.rest_url, store=str(work / "lake"),
                        namespace=f"load-{uuid.uuid4().hex[:6]}", sink_flush_ms=300,
                        ping_s=1.0, start_ids={f"trades:{s}": venue.config.first_trade_id
                                               for s in spec.symbols})
    try:
        return _measure(work, lake, spec, during, fcfg, None, venue.resume)
    finally:
        venue.stop()


def _measure(work: Path, lake: Any | None, spec: LoadSpec,
             during: Callable[[Fabric], None] | None, fcfg: FabricConfig,
             shared: Fabric | None, go: Callable[[], None] | None = None) -> dict[str, Any]:
    """The load itself on the fabric of ``fcfg`` (own: started and killed here) or ``shared``
    (joined, left running); ``go`` starts the market once everything is subscribed."""
    from spark_ray.app.trading import TradingRun
    from spark_ray.chaos.approval import load_synthetic
    from spark_ray.execution.executor import ExecutorConfig
    from spark_ray.execution.spec import ExecutorSpec

    tag = uuid.uuid4().hex[:6]
    run: TradingRun | None = None
    fabric: Fabric | None = shared
    stop = threading.Event()
    errors: list[BaseException] = []
    try:
        if spec.executor:
            approved = load_synthetic(work / "params", "sma_cross", {"fast": 2, "slow": 3},
                                      "1s", by="load", note="platform load")
            exec_spec = ExecutorSpec(
                config=ExecutorConfig(name=f"load-{tag}", symbols=(spec.symbols[0],),
                                      interval="1s", warmup_bars=30),
                strategy=approved.strategy, params=approved.params,
                journal_path=str(work / "journal.jsonl"), approved_path=approved.path,
                trusted_keys=approved.trusted_keys,
                approval=approved.approval, rest_url=fcfg.rest_url or "", ws_url=fcfg.ws_url,
                breaker_name=f"breaker:load-{tag}",
                control_port=0)  # any free port: 4001 may be another run's
            run = TradingRun(exec_spec, f"executor:load-{tag}", fcfg, shared=shared,
                             breaker_journal=str(work / "breaker-journal.jsonl")).start()
            fabric = run.fabric
        elif fabric is None:
            fabric = Fabric(fcfg).start()
        assert fabric is not None  # nosec B101  # narrows Optional for mypy, not a check
        if go is not None:
            go()
        e0, l0 = _hist(fabric)
        t0 = time.monotonic()

        def supervise() -> None:
            while not stop.wait(1.0):
                try:
                    if run is not None:
                        run.supervise()
                    elif shared is None:
                        fabric.supervise()
                except BaseException as e:  # reported after the run, not swallowed
                    errors.append(e)
                    return

        sup = threading.Thread(target=supervise, name="load-supervisor", daemon=True)
        sup.start()
        if during is not None:
            during(fabric)
        # Ray Tune wants the driver's main thread: the sweep runs here, supervision beside it.
        sweep = _sweep(lake, spec, work) if lake is not None and spec.tune_trials else None
        while time.monotonic() - t0 < spec.min_seconds:
            time.sleep(0.25)
        elapsed = time.monotonic() - t0
        stop.set()
        sup.join(timeout=30)
        e1, l1 = _hist(fabric)
        e2db = LatencyHist(e1.counts - e0.counts)
        lag = LatencyHist(l1.counts - l0.counts)
        norm = ray.get([n.status.remote() for n in fabric.normalizers], timeout=30)
        ex = ray.get(run.executor.status.remote(), timeout=30) if run is not None else {}
    finally:
        stop.set()
        if run is not None:
            run.stop(collect=False)  # a shared fabric is left, an own one stopped
            if run.breaker is not None:
                ray.kill(run.breaker, no_restart=True)
        if fabric is not None and shared is None:
            fabric.kill()
    if errors:
        raise RuntimeError(f"supervising the load failed: {errors[0]!r}") from errors[0]
    rows = e2db.n
    return {
        "seconds": round(elapsed, 1),
        "rows": rows,
        "msg_per_s": round(rows / elapsed, 1) if elapsed else None,
        "event_to_store_p95_ms": e2db.quantile(0.95),
        "event_to_store": e2db.summary(),
        "ingest_lag_p95_ms": lag.quantile(0.95),
        "ingest_lag": lag.summary(),
        "unrepaired_gaps": sum(sum(n["gaps_unrepaired"].values()) for n in norm),
        "batches_reordered": sum(n["batches_reordered"] for n in norm),
        "batch_order_timeouts": sum(n["batch_order_timeouts"] for n in norm),
        "clock_skew_events": sum(sum(n.get("clock_skew", {}).values()) for n in norm),
        "sweep": sweep,
        "executor": {k: ex.get(k) for k in ("batches", "bars", "orders", "fills")
                     if k in ex} if ex else None,
        "fabric": supervisor_name(fcfg.exchange) if shared is not None else fcfg.namespace,
        "joined": shared is not None,
    }
