"""The system the canary attacks: venue simulator, streams fabric, control plane, circuit breaker,
a real Prometheus with the alert rules, a supervisor, and the lake ledger.

One stack serves every experiment of a run (a canary probes one live system, and restarting the
fabric between experiments would itself look like restarts to the alert rules). The fabric is
the production one (``spark_ray.app.fabric``) in a namespace of its own, supervised like
``spark-ray streams`` does (``Fabric.supervise`` every second); the control plane is the real
``/chaos`` endpoint with a random bearer token that never leaves this process.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import ray

from spark_ray.app.session import current_session_dir
from spark_ray.chaos.ledger import LakeLedger, covers
from spark_ray.httpopen import urlopen
from spark_ray.observe import prom

Log = Callable[[str], None]
BREAKER_NAME = "breaker:chaos"


@dataclass
class StackConfig:
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")
    trades_per_second: float = 40.0  # per symbol
    seed: int = 7
    exchange: str = "binance"
    # Ours when we start Prometheus: short, so detection time measures the system, not polling
    # (the scrape timeout equals the interval: 2 s leaves room for a slow export under load).
    scrape_interval: str = "2s"
    evaluation_interval: str = "1s"
    prometheus_url: str | None = None  # an existing Prometheus with our rules (else we start one)
    sink_flush_ms: int = 1_000
    supervise_s: float = 1.0


class Stack:
    def __init__(self, work: Path, cfg: StackConfig | None = None, cluster: Any = None,
                 log: Log = print) -> None:
        self.work = Path(work)
        self.cfg = cfg or StackConfig()
        self.cluster = cluster  # ray.cluster_utils.Cluster when running multi-node
        self.log = log
        self.namespace = f"chaos-{uuid.uuid4().hex[:8]}"
        self.venue: Any = None
        self.fabric: Any = None
        self.plane: Any = None
        self.plane_token = secrets.token_urlsafe(24)
        # A trading account at the venue (kill_executor trades live against it); never logged.
        self.api_key = (f"chaos{secrets.token_hex(4)}", secrets.token_hex(24))
        self.breaker: Any = None
        self.prom_state: prom.PromState | None = None
        self.client: prom.PromClient | None = None
        self.ledger: LakeLedger | None = None
        self.first_ids: dict[str, int] = {}
        self.supervise_errors = 0
        self._stop = threading.Event()
        self._supervisor: threading.Thread | None = None

    @property
    def store(self) -> str:
        return str(self.work / "lake")

    @property
    def gcs_address(self) -> str:
        return str(ray.get_runtime_context().gcs_address)

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> Stack:
        from spark_ray.actors.breaker import CircuitBreakerActor
        from spark_ray.app.fabric import Fabric, FabricConfig
        from spark_ray.streams.control import ControlPlane, fabric_chaos
        from spark_ray.venue import Venue

        cfg = self.cfg
        self.work.mkdir(parents=True, exist_ok=True)
        if cfg.prometheus_url:
            self.client = prom.PromClient(cfg.prometheus_url)
        else:
            sd = prom.sd_file(current_session_dir())
            self.prom_state = prom.start(self.work / "prometheus", sd_path=sd,
                                         port=prom.free_port(),
                                         scrape_interval=cfg.scrape_interval,
                                         evaluation_interval=cfg.evaluation_interval)
            self.client = prom.PromClient(self.prom_state.url)
        self.log(f"prometheus {self.client.url}")
        self.venue = Venue(symbols=cfg.symbols, seed=cfg.seed, history_minutes=30,
                           trades_per_second=cfg.trades_per_second,
                           api_keys=dict([self.api_key])).start()
        # No start_ids: the fabric answers for every trade from the first one it receives, so
        # nothing is backfilled at start-up (a backfill would itself look like a fault).
        self.fabric = Fabric(FabricConfig(
            exchange=cfg.exchange, symbols=list(cfg.symbols), streams=["trade"],
            ws_url=self.venue.ws_url, rest_url=self.venue.rest_url, store=self.store,
            namespace=self.namespace, grace_ms=150, idle_check_ms=1000,
            sink_flush_ms=cfg.sink_flush_ms, ping_s=1.0)).start()
        self.plane = ControlPlane(self.fabric.status, fabric_chaos(self.fabric, self.venue),
                                  exchange=cfg.exchange, port=0, token=self.plane_token,
                                  poll_s=1.0).start()
        self.breaker = CircuitBreakerActor.options(
            name=BREAKER_NAME, namespace=self.namespace, max_restarts=-1).remote(
            None, str(self.work / "breaker-journal.jsonl"), BREAKER_NAME)
        ray.get(self.breaker.status.remote(), timeout=60)
        self._supervisor = threading.Thread(target=self._supervise, name="chaos-supervisor",
                                            daemon=True)
        self._supervisor.start()
        self.log(f"venue {self.venue.ws_url} ({cfg.trades_per_second:g} trades/s x "
                 f"{len(cfg.symbols)}), fabric in namespace {self.namespace}, "
                 f"control plane {self.plane.url}")
        self._wait_flowing()
        return self

    def _supervise(self) -> None:
        """What ``spark-ray streams`` does every second: restarted connectors are started."""
        while not self._stop.wait(self.cfg.supervise_s):
            try:
                self.fabric.supervise()
            except Exception:  # an actor restarting: next round
                self.supervise_errors += 1

    def _wait_flowing(self, timeout_s: float = 90.0) -> None:
        """Until the sink stores every symbol and Prometheus has the fabric's metrics."""
        assert self.client is not None  # nosec B101  # narrows Optional for mypy, not a check
        deadline = time.monotonic() + timeout_s
        cov: dict[str, Any] = {}
        while time.monotonic() < deadline:
            cov = self.coverage() or {}
            if all(cov.get(s) for s in self.cfg.symbols):
                break
            time.sleep(0.5)
        else:
            raise RuntimeError(f"the fabric stored nothing for {timeout_s:.0f} s: {cov}")
        self.first_ids = {s: int(cov[s][0][0]) for s in self.cfg.symbols}
        self.ledger = LakeLedger(self.store, self.cfg.exchange, list(self.cfg.symbols))
        left = max(30.0, deadline - time.monotonic())
        client = self.client
        seen_all = client.wait_for(lambda: not self._unseen(), left, interval_s=1.0)
        if not seen_all and (unseen := self._unseen()):
            raise RuntimeError(f"Prometheus {client.url} does not see {', '.join(unseen)} after "
                               f"{timeout_s:.0f} s: is it scraping every node of this Ray?")

    def _unseen(self) -> list[str]:
        """What Prometheus does not see yet: a node's metrics export, or an actor's metrics
        (every actor must be visible before a fault, or its restart could not be told)."""
        assert self.client is not None  # nosec B101  # narrows Optional for mypy, not a check
        try:
            up = {t["labels"].get("instance") for t in self.client.targets()
                  if t["health"] == "up"}
            out = [f"node exporter 127.0.0.1:{n['MetricsExportPort']}" for n in ray.nodes()
                   if n.get("Alive") and n.get("MetricsExportPort")
                   and f"{n['NodeManagerAddress']}:{n['MetricsExportPort']}" not in up]
            for q in ("ray_streams_heartbeat", "ray_streams_last_seq",
                      "ray_streams_event_to_db_ms_count",
                      f'ray_breaker_state{{breaker="{BREAKER_NAME}"}}'):
                if not self.client.query(q):
                    out.append(q)
        except prom.PrometheusError as e:
            out = [f"(Prometheus: {e})"]
        return out

    def stop(self) -> dict[str, Any]:
        """Stop the fabric (flush, compact), then the lake against the full ground truth."""
        self._stop.set()
        if self._supervisor is not None:
            self._supervisor.join(35)
        final: dict[str, Any] = {}
        try:
            if self.fabric is not None and self.venue is not None:
                self.venue.pause()
                wm = self.watermark()
                self.drain(wm, 60.0)
                self.fabric.stop(compact=True)
                final = self.lake_check(wm, flush=False)
                final["watermark"] = wm
        finally:
            if self.fabric is not None:
                self.fabric.kill()
            if self.plane is not None:
                self.plane.stop()
            if self.breaker is not None:
                with contextlib.suppress(ValueError, ray.exceptions.RayError):
                    ray.kill(self.breaker, no_restart=True)
            if self.venue is not None:
                with contextlib.suppress(Exception):
                    (self.work / "venue-fault-log.json").write_text(
                        json.dumps(self.venue.fault_log(), indent=1) + "\n")
                self.venue.stop()
            if self.prom_state is not None:
                prom.stop(self.prom_state)
        return final

    # --- what the experiments use ---------------------------------------------------------------
    def alerts(self) -> list[dict[str, Any]] | None:
        """Active alerts; None when Prometheus did not answer (not the same as none active)."""
        assert self.client is not None  # nosec B101  # narrows Optional for mypy, not a check
        try:
            return self.client.alerts()
        except prom.PrometheusError:
            return None

    def rule_names(self) -> set[str]:
        assert self.client is not None  # nosec B101  # narrows Optional for mypy, not a check
        return {r["name"] for g in self.client.rules() for r in g["rules"]
                if r.get("type") == "alerting"}

    def chaos_post(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /chaos`` on the control plane, with its bearer token."""
        req = urllib.request.Request(
            f"{self.plane.url}/chaos", data=json.dumps(body).encode(), method="POST",
            headers={"Authorization": f"Bearer {self.plane_token}",
                     "Content-Type": "application/json"})
        with urlopen(req, timeout=60) as r:
            out: dict[str, Any] = json.loads(r.read())
        return out

    def watermark(self) -> dict[str, int]:
        """The newest trade id the venue has published, per symbol."""
        first = self.venue.config.first_trade_id
        return {s: first + self.venue.trade_count(s) - 1 for s in self.cfg.symbols}

    def coverage(self) -> dict[str, Any] | None:
        """The sink's stored id intervals per symbol; None while it is unreachable."""
        try:
            return dict(ray.get(self.fabric.sink.coverage.remote("trades"), timeout=5))
        except (ray.exceptions.RayError, TimeoutError):
            return None

    def healed(self, wm: dict[str, int]) -> bool:
        cov = self.coverage()
        return cov is not None and all(covers(cov.get(s, []), self.first_ids[s], hi)
                                       for s, hi in wm.items())

    def drain(self, wm: dict[str, int], timeout_s: float) -> float | None:
        """Wait until the sink holds every id up to ``wm``; the time it did, or None."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self.healed(wm):
                return time.time()
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.5)

    def truth(self, wm: dict[str, int]) -> dict[str, np.ndarray]:
        out = {}
        for s, hi in wm.items():
            ids = np.asarray(self.venue.ground_truth_ids(s), dtype=np.int64)
            out[s] = ids[(ids >= self.first_ids[s]) & (ids <= hi)]
        return out

    def lake_check(self, wm: dict[str, int], flush: bool = True) -> dict[str, Any]:
        """Lost and duplicated trades: the Parquet lake against the venue's ground truth."""
        assert self.ledger is not None  # nosec B101  # narrows Optional for mypy, not a check
        if flush:
            with contextlib.suppress(ray.exceptions.RayError, TimeoutError):
                ray.get(self.fabric.sink.flush.remote(), timeout=30)
        return self.ledger.check(self.truth(wm))

    def account(self, drain_s: float = 90.0) -> dict[str, Any]:
        """Drain to the venue's current watermark, then check the lake."""
        wm = self.watermark()
        drained = self.drain(wm, drain_s) is not None
        out = self.lake_check(wm)
        out.update(watermark=wm, drained=drained)
        return out

    def actors(self) -> dict[str, dict[str, Any]]:
        """This stack's actors by name: state, pid, node (Ray's state API)."""
        from ray.util.state import list_actors

        rows = list_actors(address=self.gcs_address,
                           filters=[("ray_namespace", "=", self.namespace)], detail=True,
                           raise_on_missing_output=False)
        out: dict[str, dict[str, Any]] = {}
        for a in rows:
            if a.name and (a.state == "ALIVE" or a.name not in out):
                out[a.name] = {"state": a.state, "pid": a.pid, "node_id": a.node_id,
                               "num_restarts": getattr(a, "num_restarts", None)}
        return out
