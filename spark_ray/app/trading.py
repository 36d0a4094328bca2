"""One trading run on Ray, driver side: the breaker, the executor and the streams fabric feeding
it, supervised until told to stop; then the orders, fills, trades and positions collected.

The fabric is either the run's own (started and stopped here) or a running long-lived one
(``shared``, from :func:`spark_ray.app.fabric_service.join`): then the executor only subscribes
to its normalizers, and leaves (unsubscribes) at the end without stopping it.

``spark-ray trade`` and the demo both drive a :class:`TradingRun`. Expects Ray connected.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import ray

from spark_ray.app.fabric import Fabric, FabricConfig
from spark_ray.breaker.models import BreakerConfig
from spark_ray.execution.spec import ExecutorSpec

log = logging.getLogger(__name__)
STALE_DATA_S = 5.0


class TradingRun:
    def __init__(self, spec: ExecutorSpec, name: str, fabric: FabricConfig,
                 breaker_config: BreakerConfig | None = None,
                 breaker_journal: str | None = None, namespace: str | None = None,
                 shared: Fabric | None = None) -> None:
        self.spec = spec
        self.name = name
        self.fabric_cfg = fabric
        self.breaker_config = breaker_config
        self.breaker_journal = breaker_journal
        self.namespace = namespace
        self.executor: Any = None
        self.signals: Any = None  # the SignalActor when the spec names a signal model
        self.breaker: Any = None
        self.breaker_started = False
        self.fabric: Fabric | None = None
        self.shared = shared
        self.references: list[Fabric] = []  # other exchanges' fabrics the signal actor reads
        self.resubscribed = 0
        self.restarts = 0
        self.executor_pid: int | None = None
        self.started_at = time.time()
        self.t0 = 0.0

    def start(self) -> TradingRun:
        from spark_ray.actors.breaker import get_breaker
        from spark_ray.actors.executor import start_executor

        self.t0 = time.monotonic()
        self.breaker, self.breaker_started = get_breaker(
            self.spec.breaker_name, config=self.breaker_config,
            journal_path=self.breaker_journal)
        from spark_ray.actors.naming import NAMESPACE
        from spark_ray.app.placement import colocate_with

        self.executor = start_executor(self.spec, self.name, self.namespace or NAMESPACE)
        self.started_at = time.time()
        try:
            if self.spec.signals_model:
                from spark_ray.actors.signal import start_signals

                self.signals = start_signals(
                    self.spec.signals_model, list(self.spec.config.symbols), [self.name],
                    f"signals:{self.name}", self.namespace or NAMESPACE,
                    trusted_keys=self.spec.trusted_keys, **colocate_with(self.executor))
                self._subscribe_references()
            if self.shared is not None:
                self.fabric = self.shared
                self._subscribe()
                return self
            if len([n for n in ray.nodes() if n.get("Alive")]) > 1:
                # The executor started first (it must not miss the first trades), so its
                # normalizer joins it on its node.
                self.fabric_cfg.normalizer_options = {**colocate_with(self.executor),
                                                      **self.fabric_cfg.normalizer_options}
            self.fabric = Fabric(self.fabric_cfg).start()
            self._subscribe()
        except BaseException:
            self.stop(collect=False)
            raise
        return self

    def _subscribe_references(self) -> None:
        """The signal actor joins the fabrics of the other exchanges its model reads."""
        assert self.spec.signals_model is not None  # nosec B101  # narrows Optional for mypy, not a check
        for ref in reference_fabrics(self.spec.signals_model, list(self.spec.config.symbols)):
            ray.get([n.subscribe.remote(self.signals, "on_market_data")
                     for n in ref.normalizers], timeout=30)
            self.references.append(ref)

    def _subscribe(self) -> None:
        assert self.fabric is not None  # nosec B101  # narrows Optional for mypy, not a check
        subscribers = [self.executor] + ([self.signals] if self.signals is not None else [])
        ray.get([n.subscribe.remote(h, "on_market_data")
                 for n in self.fabric.normalizers for h in subscribers], timeout=30)

    def supervise(self) -> dict[str, Any]:
        """Restart idle connectors; start a restarted executor again; re-subscribe the executor
        when its data went quiet (a restarted normalizer forgets its subscribers)."""
        assert self.fabric is not None  # nosec B101  # narrows Optional for mypy, not a check
        if self.shared is None:  # a shared fabric's own supervisor does this
            self.fabric.supervise()
        st: dict[str, Any] = ray.get(self.executor.status.remote(), timeout=30)
        if self.executor_pid is not None and st.get("pid") != self.executor_pid:
            # Ray restarted the executor: start it now (approval, journal, reconciliation)
            # rather than on its first batch, and say so.
            st = ray.get(self.executor.start.remote(), timeout=120)
            self.restarts += 1
            log.warning("executor %s restarted (pid %s -> %s); started: %s", self.name,
                        self.executor_pid, st.get("pid"), st.get("started"))
        self.executor_pid = st.get("pid")
        last = st.get("last_data_time")
        quiet_since = last if last is not None else self.started_at
        if time.time() - quiet_since > STALE_DATA_S:
            self._subscribe()  # idempotent: a subscriber is never fed twice
            self.resubscribed += 1
        return st

    def collect(self) -> dict[str, Any]:
        ex = self.executor
        status, orders, fills, trades, positions = ray.get(
            [ex.status.remote(), ex.orders.remote(), ex.fills.remote(), ex.trades.remote(),
             ex.positions.remote()], timeout=60)
        return {"status": status, "orders": orders, "fills": fills, "trades": trades,
                "positions": positions}

    def stop(self, collect: bool = True) -> dict[str, Any]:
        """Stop the feed first, let the executor trade what it has, collect, release all."""
        out: dict[str, Any] = {}
        try:
            if self.fabric is not None:
                with contextlib.suppress(Exception):
                    if self.shared is not None:  # leave it running for everyone else
                        self.fabric.unsubscribe(self.executor)
                        if self.signals is not None:
                            self.fabric.unsubscribe(self.signals)
                    else:
                        self.fabric.stop(compact=True, kill=True)
                self.fabric = None
            if self.executor is not None:
                with contextlib.suppress(Exception):
                    ray.get(self.executor.drain.remote(10.0), timeout=30)
                if collect:
                    out = self.collect()
                    if self.signals is not None:
                        with contextlib.suppress(Exception):
                            out["signals"] = ray.get(self.signals.status.remote(), timeout=30)
                with contextlib.suppress(Exception):
                    ray.get(self.executor.stop.remote(), timeout=30)
        finally:
            if self.signals is not None:
                for ref in self.references:
                    with contextlib.suppress(Exception):
                        ref.unsubscribe(self.signals)
                self.references = []
                with contextlib.suppress(Exception):
                    ray.kill(self.signals, no_restart=True)
                self.signals = None
            if self.executor is not None:
                with contextlib.suppress(Exception):
                    ray.kill(self.executor, no_restart=True)
                self.executor = None
        out["seconds"] = round(time.monotonic() - self.t0, 2)
        return out


def write_outputs(out: dict[str, Any], folder: Path) -> dict[str, Path]:
    """orders.json, fills.json, trades.json, positions.json, status.json into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for key in ("orders", "fills", "trades", "positions", "status", "signals"):
        if key in out:
            p = folder / f"{key}.json"
            p.write_text(json.dumps(out[key], indent=2, sort_keys=True, default=str) + "\n")
            paths[key] = p
    return paths


def summary(out: dict[str, Any]) -> dict[str, Any]:
    """The headline of a run (what the CLI and the demo print)."""
    st = out.get("status") or {}
    counts = st.get("orders") or {}
    return {"mode": st.get("mode"), "strategy": st.get("strategy"), "params": st.get("params"),
            "bars": (st.get("stats") or {}).get("bars", 0),
            "orders": sum(counts.values()) if counts else 0,
            "filled": counts.get("FILLED", 0), "rejected": counts.get("REJECTED", 0),
            "fills": len(out.get("fills") or []), "closed_trades": len(out.get("trades") or []),
            "equity": st.get("equity"), "tick_to_order": st.get("tick_to_order"),
            "halted": st.get("halted"), "seconds": out.get("seconds")}


def reference_fabrics(model_dir: str, symbols: list[str]) -> list[Fabric]:
    """The running long-lived fabrics of the other exchanges a signal model reads (its
    cross-exchange spread features), each carrying ``symbols``; a missing one is a usage error
    (exit 2) saying how to start it. They are left running at the end of the run."""
    from spark_ray.app import fabric_service
    from spark_ray.errors import UserError
    from spark_ray.signals.source import model_references

    out = []
    for ex in model_references(model_dir):
        ref = fabric_service.join(ex, symbols)
        if ref is None:
            raise UserError(
                f"--signals-model: the model reads the {ex} book (cross-exchange spread); "
                f"start that fabric first: spark-ray streams up --exchange {ex} "
                f"--symbols {','.join(symbols)} with a book stream (e.g. --streams "
                "trade,bookTicker)")
        out.append(ref)
    return out
