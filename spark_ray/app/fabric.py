"""Driver side of the fabric: create the named actors, wire them, supervise, drain, stop.

One sink per exchange, and per shard of symbols one normalizer and one connector:
``connector:<exchange>:<i>`` -> ``normalizer:<exchange>:<i>`` -> ``sink:<exchange>``. Actors are
named in ``namespace`` (tests use a unique one each), restartable (``max_restarts=-1``) and
spread over nodes when the cluster has several (:func:`spark_ray.app.placement.streams_options`).

A fabric that is ``detached`` (``spark-ray streams up``) or feeds a ``breaker`` also gets a
supervisor, ``fabric:<exchange>`` (:class:`spark_ray.actors.fabric.FabricSupervisorActor`), which
restarts idle connectors, reports per-symbol market-data health to the breaker and keeps the
configuration, so :meth:`Fabric.attach` can find a running fabric and join it.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import ray

from spark_ray.adapters.registry import get_adapter
from spark_ray.errors import CheckFailed
from spark_ray.lake.layout import DEADLETTER_DIR
from spark_ray.streams.metrics import LatencyHist
from spark_ray.streams.normalize import NormalizerConfig
from spark_ray.streams.plan import shard_symbols


@dataclass
class FabricConfig:
    exchange: str = "binance"
    symbols: list[str] = field(default_factory=lambda: ["BTCUSDT"])
    streams: list[str] = field(default_factory=lambda: ["trade"])
    ws_url: str = "wss://stream.binance.com:9443"
    rest_url: str | None = "https://api.binance.com"
    store: str = "lake"
    wal_dir: str | None = None
    shards: int = 1
    namespace: str = "spark_ray"
    # connector
    batch_max: int = 5_000
    flush_ms: float = 20.0
    max_inflight: int = 16
    rollover_s: float = 23.5 * 3600
    ping_s: float = 5.0
    max_streams_per_connection: int = 1024
    ws_client: str = "aiohttp"  # or "websockets" (spark_ray.streams.wsclient)
    # normalizer
    grace_ms: int = 250
    idle_check_ms: int = 3_000
    start_ids: dict[str, int] = field(default_factory=dict)
    # sink
    sink_flush_ms: int = 1_000
    sink_flush_rows: int = 200_000
    # extra Ray options for the normalizers, e.g. placement.colocate_with(executor) so a
    # subscriber and the normalizer feeding it share a node
    normalizer_options: dict[str, Any] = field(default_factory=dict)
    # long-lived: detached actors that outlive the driver (``spark-ray streams up``)
    detached: bool = False
    # the circuit breaker (namespace spark_ray) the supervisor feeds; None: none
    breaker: str | None = None
    feed_s: float = 1.0  # how often the supervisor polls and reports

    def describe(self) -> dict[str, Any]:
        """The configuration as plain data (what the supervisor keeps for joiners)."""
        return {k: v for k, v in asdict(self).items() if k != "normalizer_options"}

    @classmethod
    def from_description(cls, d: dict[str, Any]) -> FabricConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


class FabricWalLocked(CheckFailed):
    """This fabric's sink found its write-ahead log held by another fabric's sink (one writer
    per WAL). The message is the sink's :class:`~spark_ray.streams.wal.WalLocked` text: it
    names the holder (actor, namespace, pid, host) and the way out. A ``CheckFailed``, so the
    CLI prints that one line and exits 1 instead of Ray's actor-died traceback."""


_WAL_LOCKED = re.compile(r"WalLocked: (write-ahead log [^\n]*)")


def wal_locked_message(exc: BaseException) -> str | None:
    """The WalLocked sentence inside a Ray error about a sink whose constructor was refused the
    WAL (Ray wraps the constructor's exception in an actor-died error), else None."""
    m = _WAL_LOCKED.search(str(exc))
    return m.group(1).strip() if m else None


def supervisor_name(exchange: str) -> str:
    from spark_ray.actors.naming import actor_name

    return actor_name("fabric", exchange)


class Fabric:
    def __init__(self, cfg: FabricConfig) -> None:
        self.cfg = cfg
        self.sink: Any = None
        self.normalizers: list[Any] = []
        self.connectors: list[Any] = []
        self.names: dict[str, str] = {}
        self.supervisor: Any = None
        self.joined = False  # attached to a fabric someone else started (never stopped here)

    @classmethod
    def attach(cls, exchange: str, namespace: str = "spark_ray") -> Fabric | None:
        """The running long-lived fabric of ``exchange`` (handles to its actors), or None."""
        from spark_ray.actors.naming import lookup

        sup = lookup(supervisor_name(exchange), namespace)
        if sup is None:
            return None
        try:
            d = ray.get(sup.describe.remote(), timeout=30)
        except ray.exceptions.RayError:
            return None
        f = cls(FabricConfig.from_description(d["config"]))
        f.supervisor, f.names, f.joined = sup, dict(d["names"]), True
        ns = d["namespace"]
        f.sink = lookup(f.names["sink"], ns)
        for i in range(len([k for k in f.names if k.startswith("normalizer:")])):
            f.normalizers.append(lookup(f.names[f"normalizer:{i}"], ns))
            f.connectors.append(lookup(f.names[f"connector:{i}"], ns))
        return f

    def missing(self, symbols: list[str]) -> list[str]:
        """Which of ``symbols`` this fabric does not carry."""
        have = {s.upper() for s in self.cfg.symbols}
        return [s for s in symbols if s.upper() not in have]

    @property
    def deadletter_dir(self) -> str:
        return os.path.join(_local_root(self.cfg.store), DEADLETTER_DIR)

    def start(self) -> Fabric:
        """Create and wire the actors and wait until they are up. :class:`FabricWalLocked` when
        the sink may not write its WAL (another fabric on the same lake and exchange holds it);
        whatever this call created is killed then."""
        try:
            return self._start()
        except ray.exceptions.RayError as exc:
            msg = wal_locked_message(exc)
            if msg is None:
                raise
            self.kill()
            raise FabricWalLocked(msg) from None

    def _start(self) -> Fabric:
        from spark_ray.actors.connector import ConnectorActor, ConnectorConfig
        from spark_ray.actors.naming import actor_name, actor_ref
        from spark_ray.actors.normalizer import NormalizerActor
        from spark_ray.actors.sink import SinkActor
        from spark_ray.app.placement import streams_options

        cfg = self.cfg
        opts: dict[str, Any] = {"namespace": cfg.namespace, "get_if_exists": True,
                                "max_restarts": -1}
        if cfg.detached:
            opts["lifetime"] = "detached"
        opts.update(streams_options())  # spread over nodes; nothing on a single node
        sink_name = actor_name("sink", cfg.exchange)
        self.sink = SinkActor.options(name=sink_name, **opts).remote(
            cfg.store, cfg.exchange, cfg.wal_dir, cfg.sink_flush_rows, cfg.sink_flush_ms,
            sink_name, cfg.namespace)
        self.names["sink"] = sink_name
        adapter = get_adapter(cfg.exchange)
        kinds = list(cfg.streams)
        for i, syms in enumerate(shard_symbols(cfg.symbols, cfg.shards)):
            nname = actor_name("normalizer", cfg.exchange, i)
            ncfg = NormalizerConfig(exchange=cfg.exchange, symbols=tuple(syms),
                                    grace_ms=cfg.grace_ms, idle_check_ms=cfg.idle_check_ms,
                                    start_ids=dict(cfg.start_ids),
                                    detect_gaps=adapter.caps.contiguous_trade_ids,
                                    repair=bool(adapter.caps.rest_backfill),
                                    latest_poll_ms=adapter.caps.latest_trades_poll_ms)
            norm = NormalizerActor.options(name=nname, **{**opts, **cfg.normalizer_options}).remote(
                ncfg, actor_ref(sink_name, cfg.namespace), cfg.rest_url, self.deadletter_dir,
                nname)
            cname = actor_name("connector", cfg.exchange, i)
            ccfg = ConnectorConfig(
                exchange=cfg.exchange, ws_url=cfg.ws_url, symbols=syms,
                channels=adapter.channels(syms, kinds),
                batch_max=cfg.batch_max, flush_ms=cfg.flush_ms, max_inflight=cfg.max_inflight,
                rollover_s=cfg.rollover_s, ping_s=cfg.ping_s,
                max_streams_per_connection=cfg.max_streams_per_connection,
                ws_client=cfg.ws_client)
            conn = ConnectorActor.options(name=cname, **opts).remote(
                ccfg, actor_ref(nname, cfg.namespace), cname)
            self.normalizers.append(norm)
            self.connectors.append(conn)
            self.names[f"normalizer:{i}"] = nname
            self.names[f"connector:{i}"] = cname
        ray.get([self.sink.warmup.remote(), *(n.warmup.remote() for n in self.normalizers)],
                timeout=120)
        ray.get([c.start.remote() for c in self.connectors], timeout=60)
        if cfg.detached or cfg.breaker is not None:
            from spark_ray.actors.fabric import FabricSupervisorActor

            sname = supervisor_name(cfg.exchange)
            self.supervisor = FabricSupervisorActor.options(name=sname, **opts).remote(
                cfg.describe(), dict(self.names), cfg.namespace, cfg.breaker, "spark_ray",
                cfg.feed_s)
            self.names["supervisor"] = sname
        return self

    def feed_status(self, timeout_s: float = 10.0) -> dict[str, Any] | None:
        """The supervisor's per-symbol view (None without a supervisor)."""
        if self.supervisor is None:
            return None
        return dict(ray.get(self.supervisor.status.remote(), timeout=timeout_s))

    def subscribe(self, handle: Any, method: str = "on_market_data") -> None:
        ray.get([n.subscribe.remote(handle, method) for n in self.normalizers], timeout=30)

    def unsubscribe(self, handle: Any) -> None:
        """Leave a shared fabric: its normalizers stop queueing rows for ``handle``."""
        for n in self.normalizers:
            with contextlib.suppress(ray.exceptions.RayError):
                ray.get(n.unsubscribe.remote(handle), timeout=30)

    def supervise(self) -> None:
        """Restarted connectors come back idle: start them again (idempotent)."""
        ray.get([c.start.remote() for c in self.connectors], timeout=30)

    def status(self, timeout_s: float = 5.0) -> dict[str, Any]:
        """Every actor's status; an unreachable actor reports ``{"error": ...}``."""
        out: dict[str, Any] = {}
        calls = [("sink", self.sink.stats.remote())]
        calls += [(self.names[f"normalizer:{i}"], n.status.remote())
                  for i, n in enumerate(self.normalizers)]
        calls += [(self.names[f"connector:{i}"], c.status.remote())
                  for i, c in enumerate(self.connectors)]
        for name, ref in calls:
            try:
                out[name] = ray.get(ref, timeout=timeout_s)
            except (ray.exceptions.RayError, TimeoutError) as e:
                out[name] = {"error": type(e).__name__}
        return out

    def chaos(self, kind: str, count: int, delay_ms: float) -> list[Any]:
        """Inject a connector fault at every connector (see ``ConnectorCore.chaos``)."""
        return list(ray.get([c.chaos.remote(kind, count, delay_ms) for c in self.connectors],
                            timeout=30))

    def stored_counts(self) -> dict[str, int]:
        return dict(ray.get(self.sink.stats.remote(), timeout=30)["stored"])

    def coverage(self, dataset: str = "trades") -> dict[str, list[tuple[int, int]]]:
        """Stored id intervals per symbol (the sink's dedup state)."""
        return dict(ray.get(self.sink.coverage.remote(dataset), timeout=30))

    def wait_stored(self, expected: dict[str, int], timeout_s: float = 60.0) -> dict[str, int]:
        """Block until the sink stores at least ``expected`` rows per "dataset:SYMBOL"."""
        deadline = time.monotonic() + timeout_s
        got: dict[str, int] = {}
        while time.monotonic() < deadline:
            try:
                self.supervise()
                got = self.stored_counts()
            except ray.exceptions.RayError:
                time.sleep(0.2)
                continue
            if all(got.get(k, 0) >= v for k, v in expected.items()):
                return got
            time.sleep(0.1)
        return got

    def quiesce(self, timeout_s: float = 20.0) -> bool:
        return all(ray.get([n.quiesce.remote(timeout_s) for n in self.normalizers],
                           timeout=timeout_s + 30))

    def slo_stats(self) -> dict[str, Any]:
        """Merged latency histograms and totals from every actor (for the SLO summary)."""
        st = self.status(timeout_s=30)
        lag = LatencyHist()
        totals = {"frames": 0, "dead_letters": 0, "dups": 0, "gaps_unrepaired": 0,
                  "repaired_rows": 0, "chaos_dropped": 0}
        for name, s in st.items():
            if "lag_hist" in s:
                lag = lag.merge(LatencyHist.from_sparse(s["lag_hist"]))
                totals["frames"] += s["frames"]
                totals["dead_letters"] += sum(s["dead_letters"].values())
                totals["dups"] += sum(s["dups"].values())
                totals["gaps_unrepaired"] += sum(s["gaps_unrepaired"].values())
                totals["repaired_rows"] += s["repaired_rows"]
            if name.startswith("connector"):
                totals["chaos_dropped"] += s.get("chaos_dropped", 0)
        e2db = LatencyHist.from_sparse(st["sink"].get("event_to_db_hist", {}))
        return {"lag": lag, "event_to_db": e2db, "totals": totals, "status": st}

    def stop(self, compact: bool = True, kill: bool = True) -> dict[str, Any]:
        """Connectors hand off what they read, normalizers finish repairs, the sink flushes
        (and compacts); then the actors are killed (``kill=False`` leaves them for a restart)."""
        result: dict[str, Any] = {}
        try:
            if self.supervisor is not None:  # no connector restarts, and no stale trip
                with contextlib.suppress(ray.exceptions.RayError):
                    ray.get(self.supervisor.close.remote(), timeout=30)
            ray.get([c.stop.remote() for c in self.connectors], timeout=60)
            self.quiesce(10.0)
            ray.get([n.close.remote() for n in self.normalizers], timeout=30)
            result = ray.get(self.sink.close.remote(compact), timeout=120)
        finally:
            if kill:
                self.kill()
        return result

    def kill(self) -> None:
        for h in [self.supervisor, *self.connectors, *self.normalizers, self.sink]:
            if h is not None:
                with contextlib.suppress(ValueError, ray.exceptions.RayError):
                    ray.kill(h, no_restart=True)
        self.connectors, self.normalizers, self.sink, self.supervisor = [], [], None, None


def _local_root(store: str) -> str:
    if "://" in store:
        if store.startswith("file://"):
            return store[len("file://"):]
        return os.path.abspath("_streams_local")
    return os.path.abspath(store)
