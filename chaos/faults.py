"""Injecting one experiment's fault into a running :class:`~spark_ray.chaos.stack.Stack`.

Each :class:`Injection` injects once, says when the fault ended (a venue fault expires or is
exhausted, a ``/chaos`` count is used up, a kill is instant), cleans up whatever it left (always
called), and after recovery verifies what its fault must not break (a killed actor came back as
a new process; the breaker's state survived; actors left the dead node). ``poll`` is called
every loop of the runner so injections can time what they watch (e.g. the restart).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, ClassVar

import ray

from spark_ray.chaos.experiments import Experiment
from spark_ray.chaos.stack import BREAKER_NAME, Stack


class NotRunnable(Exception):
    """The fault needs a component or setting this stack does not have (-> PENDING)."""


class Injection:
    def __init__(self, exp: Experiment, stack: Stack) -> None:
        self.exp = exp
        self.stack = stack
        self.t0: float | None = None
        self.end: float | None = None
        self.details: dict[str, Any] = {"kind": exp.fault.kind, "target": exp.fault.target,
                                        "params": dict(exp.fault.params)}

    def describe(self) -> str:
        p = " ".join(f"{k}={v}" for k, v in self.exp.fault.params.items())
        dur = f" for {self.exp.duration_s:g} s" if self.exp.duration_s else ""
        return f"{self.exp.fault.kind} {self.exp.fault.target} {p}".rstrip() + dur

    def inject(self) -> None:
        raise NotImplementedError

    def poll(self, now: float) -> None:
        """Called every runner loop (about twice a second)."""

    def ended(self) -> float | None:
        return self.end

    def cleanup(self) -> None:
        """Undo what is left of the fault (idempotent; always called)."""

    def verify(self) -> dict[str, bool]:
        return {}


class VenueFault(Injection):
    """A venue knob; it ends when the venue logs it expired, exhausted or cleared."""

    def __init__(self, exp: Experiment, stack: Stack) -> None:
        super().__init__(exp, stack)
        self.fid: int | None = None
        self._next_look = 0.0

    def inject(self) -> None:
        params = dict(self.exp.fault.params)
        if self.exp.duration_s > 0:
            params["duration_s"] = self.exp.duration_s
        self.t0 = time.time()
        self.fid = self.stack.venue.inject(self.exp.fault.target, **params)
        self.details["venue_fault_id"] = self.fid

    def poll(self, now: float) -> None:
        if self.end is not None or self.fid is None or now < self._next_look:
            return
        self._next_look = now + 1.0
        for e in self.stack.venue.fault_log():
            if e["fault_id"] == self.fid and e["action"] in ("expired", "exhausted", "cleared"):
                self.end = e["time_ms"] / 1000
                self.details["venue_end_action"] = e["action"]
                return
        # Safety net: a timed fault the venue did not retire, or a gap that never completed.
        assert self.t0 is not None  # nosec B101  # narrows Optional for mypy, not a check
        limit = self.t0 + (self.exp.duration_s or 30.0) + 5.0
        if now > limit:
            self.stack.venue.clear_faults(self.fid)
            self.end = now
            self.details["venue_end_action"] = "cleared by the canary"

    def cleanup(self) -> None:
        if self.fid is not None:
            with contextlib.suppress(Exception):
                self.stack.venue.clear_faults(self.fid)

    def verify(self) -> dict[str, bool]:
        assert self.fid is not None  # nosec B101  # narrows Optional for mypy, not a check
        injected = [e for e in self.stack.venue.fault_log()
                    if e["fault_id"] == self.fid and e["action"] == "injected"]
        self.details["venue_injections"] = len(injected)
        return {"the venue injected the fault": bool(injected)}


class ChaosEndpointFault(Injection):
    """``POST /chaos`` on the fabric's control plane; a count-based fault ends when the
    connectors report it used up."""

    COUNTERS: ClassVar[dict[str, str]] = {"duplicate": "chaos_duplicated",
                                          "drop": "chaos_dropped", "gap": "chaos_dropped"}

    def __init__(self, exp: Experiment, stack: Stack) -> None:
        super().__init__(exp, stack)
        self._base = 0
        self._want = 0
        self._next_look = 0.0

    def _counted(self) -> int | None:
        key = self.COUNTERS[self.exp.fault.target]
        st = self.stack.fabric.status(timeout_s=5)
        vals = [s.get(key) for n, s in st.items() if n.startswith("connector")]
        if any(v is None for v in vals):
            return None
        return sum(int(v) for v in vals)

    def inject(self) -> None:
        f = self.exp.fault
        body = {"kind": f.target, **f.params}
        if f.target in self.COUNTERS:
            self._base = self._counted() or 0
            self._want = int(f.params.get("count", 10)) * len(self.stack.fabric.connectors)
        self.t0 = time.time()
        self.details["response"] = self.stack.chaos_post(body)
        if f.target == "disconnect":
            self.end = self.t0
        elif f.target == "lag":
            self.end = self.t0 + float(f.params.get("delay_ms", 500)) / 1000

    def poll(self, now: float) -> None:
        if self.end is not None or now < self._next_look:
            return
        self._next_look = now + 1.0
        n = self._counted()
        if n is not None and n - self._base >= self._want:
            self.end = now
            self.details["frames_affected"] = n - self._base

    def verify(self) -> dict[str, bool]:
        if self.exp.fault.target in self.COUNTERS:
            return {"the connectors applied the whole count": self.end is not None}
        return {}


class KillActor(Injection):
    """``ray.kill`` (Ray restarts it: ``max_restarts=-1``) of one of the stack's actors."""

    def __init__(self, exp: Experiment, stack: Stack) -> None:
        super().__init__(exp, stack)
        role = exp.fault.target
        f = stack.fabric
        handles = {"connector": (f.connectors[0] if f.connectors else None, f.names.get(
                       "connector:0")),
                   "normalizer": (f.normalizers[0] if f.normalizers else None, f.names.get(
                       "normalizer:0")),
                   "sink": (f.sink, f.names.get("sink")),
                   "breaker": (stack.breaker, BREAKER_NAME)}
        if role not in handles:
            raise NotRunnable(f"killing the {role} is not wired into the canary yet")
        self.handle, self.name = handles[role]
        self.before: dict[str, Any] = {}
        self.after: dict[str, Any] = {}
        self.breaker_before: dict[str, Any] = {}
        self.probe: dict[str, Any] = {}
        self._next_look = 0.0

    def inject(self) -> None:
        role = self.exp.fault.target
        params = self.exp.fault.params
        self.before = self.stack.actors().get(self.name, {})
        if role == "sink" and params.get("mid_write"):
            # Kill while acknowledged rows are only in the WAL (not yet in a Parquet part).
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                st = ray.get(self.handle.stats.remote(), timeout=10)
                if st.get("buffered_rows", 0) > 0:
                    self.details["rows_only_in_wal_at_kill"] = st["buffered_rows"]
                    break
                time.sleep(0.05)
        if role == "breaker" and params.get("trip_first"):
            ray.get(self.handle.trip.remote("chaos canary: kill_breaker", "chaos"), timeout=30)
            self.breaker_before = ray.get(self.handle.status.remote(), timeout=30)
        self.t0 = time.time()
        ray.kill(self.handle, no_restart=False)
        self.end = self.t0
        if role == "breaker":
            self._probe_breaker()

    def _probe_breaker(self) -> None:
        """An order asked of the breaker once its process is gone must not pass: Ray holds the
        call until the restart (a caller's timeout then fails closed) and the restarted breaker,
        TRIPPED again from its journal, refuses it."""
        old = self.before.get("pid")
        deadline = time.monotonic() + 3
        seen: dict[str, Any] = {}
        while time.monotonic() < deadline:  # until Ray noticed: not ALIVE with the old pid
            with contextlib.suppress(Exception):
                seen = self.stack.actors().get(self.name, {})
            if seen.get("state") != "ALIVE" or seen.get("pid") != old:
                break
            time.sleep(0.05)
        order = {"symbol": "BTCUSDT", "side": "buy", "qty": 0.001}
        t = time.time()
        try:
            d = ray.get(self.handle.allow.remote(order), timeout=10)
            self.probe = {"allowed": bool(d.allowed), "answer": str(d)[:200]}
        except (ray.exceptions.RayError, TimeoutError) as e:
            self.probe = {"allowed": False, "answer": f"{type(e).__name__} (caller fails closed)"}
        self.probe.update(asked_when=seen.get("state"), old_pid=old, pid_seen=seen.get("pid"),
                          answered_after_s=round(time.time() - t, 2))
        self.details["order_while_down"] = self.probe

    def poll(self, now: float) -> None:
        if self.after or self.t0 is None or now < self._next_look:
            return
        self._next_look = now + 1.0
        with contextlib.suppress(Exception):
            cur = self.stack.actors().get(self.name, {})
            if cur.get("state") == "ALIVE" and cur.get("pid") != self.before.get("pid"):
                self.after = cur
                self.details["restarted_after_s"] = round(now - self.t0, 1)

    def verify(self) -> dict[str, bool]:
        deadline = time.time() + 60
        while not self.after and time.time() < deadline:
            self.poll(time.time())
            time.sleep(0.5)
        self.details.update(before=self.before, after=self.after)
        checks = {f"{self.name} came back as a new process": bool(self.after)}
        if self.exp.fault.target == "breaker":
            st = ray.get(self.handle.status.remote(), timeout=30)
            rec = st.get("recovered", {})
            self.details["breaker"] = {"before": _brief(self.breaker_before),
                                       "after": _brief(st), "recovered": rec}
            checks["no order passed while the breaker was down"] = \
                not self.probe.get("allowed", True)
            if self.breaker_before:  # what the restarted breaker rebuilt from its journal
                checks["TRIPPED state recovered from the journal"] = \
                    rec.get("state") == self.breaker_before.get("state") == "TRIPPED"
                checks["no journal event lost"] = \
                    rec.get("events_replayed", 0) >= self.breaker_before.get("seq", 0)
        return checks

    def cleanup(self) -> None:
        if self.exp.fault.target == "breaker" and self.exp.fault.params.get("trip_first"):
            deadline = time.time() + 60
            while time.time() < deadline:
                try:
                    ray.get(self.handle.reset.remote("chaos canary: done", "chaos"), timeout=10)
                    return
                except (ray.exceptions.RayError, TimeoutError):
                    time.sleep(1)


def _brief(st: dict[str, Any]) -> dict[str, Any]:
    return {k: st.get(k) for k in ("state", "seq", "trips_total", "blocked_total")}


class KillNode(Injection):
    """Remove the worker node hosting the most of the stack's actors (SIGKILL, no grace)."""

    def __init__(self, exp: Experiment, stack: Stack) -> None:
        super().__init__(exp, stack)
        if stack.cluster is None:
            raise NotRunnable("a node kill runs on a local multi-node cluster (kill_node mode)")
        self.removed: str | None = None
        self.moved: dict[str, dict[str, Any]] = {}
        self.before: dict[str, dict[str, Any]] = {}
        self._next_look = 0.0

    def inject(self) -> None:
        cluster = self.stack.cluster
        self.before = self.stack.actors()
        hosting: dict[str, list[str]] = {}
        for name, a in self.before.items():
            hosting.setdefault(a.get("node_id") or "", []).append(name)
        workers = {n.node_id: n for n in cluster.worker_nodes}
        candidates = [(len(hosting.get(nid, [])), nid) for nid in workers]
        count, victim = max(candidates)
        if count == 0:
            raise RuntimeError(f"no actor on any worker node: {self.before}")
        self.removed = victim
        self.details.update(removed_node=victim, actors_on_it=sorted(hosting[victim]),
                            placement_before={n: a.get("node_id") for n, a in
                                              self.before.items()},
                            scrape_targets_before=self._targets())
        self.t0 = time.time()
        cluster.remove_node(workers[victim], allow_graceful=False)
        self.end = self.t0
        self.details["remove_node_s"] = round(time.time() - self.t0, 2)

    def _targets(self) -> list[dict[str, Any]]:
        """Which node exporters Prometheus scrapes, and how many of our series each serves."""
        client = self.stack.client
        assert client is not None  # nosec B101  # narrows Optional for mypy, not a check
        with contextlib.suppress(Exception):
            per = {r["metric"].get("instance"): int(float(r["value"][1])) for r in client.query(
                'count by (instance) ({__name__=~"ray_streams_.*|ray_breaker_.*"})')}
            return [{"url": t["scrapeUrl"], "health": t["health"],
                     "our_series": per.get(t["labels"].get("instance"), 0)}
                    for t in client.targets()]
        return []

    def poll(self, now: float) -> None:
        if self.removed is None or now < self._next_look:
            return
        self._next_look = now + 1.0
        want = self.details["actors_on_it"]
        if len(self.moved) == len(want):
            return
        with contextlib.suppress(Exception):
            cur = self.stack.actors()
            for name in want:
                a = cur.get(name, {})
                if (name not in self.moved and a.get("state") == "ALIVE"
                        and a.get("node_id") not in (None, self.removed)):
                    self.moved[name] = {**a, "after_s": round(now - (self.t0 or now), 1)}

    def verify(self) -> dict[str, bool]:
        deadline = time.time() + 60
        while len(self.moved) < len(self.details["actors_on_it"]) and time.time() < deadline:
            self.poll(time.time())
            time.sleep(0.5)
        alive = [n for n in ray.nodes() if n.get("Alive")]
        self.details.update(moved=self.moved, nodes_alive=len(alive),
                            scrape_targets_after=self._targets())
        return {"every actor of the dead node runs on a surviving node":
                len(self.moved) == len(self.details["actors_on_it"]),
                "the dead node is gone from the cluster":
                all(n["NodeID"] != self.removed for n in alive)}


def make_injection(exp: Experiment, stack: Stack) -> Injection:
    kinds: dict[str, type[Injection]] = {"venue": VenueFault,
                                         "chaos_endpoint": ChaosEndpointFault,
                                         "kill_actor": KillActor, "kill_node": KillNode}
    if exp.fault.kind == "kill_actor" and exp.fault.target == "executor":
        from spark_ray.chaos.executor_fault import KillExecutor

        return KillExecutor(exp, stack)
    return kinds[exp.fault.kind](exp, stack)
