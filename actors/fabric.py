"""``FabricSupervisorActor``: the part of a long-lived fabric that outlives every driver.

``spark-ray streams up`` leaves the fabric's actors running with no driver attached, so someone
else must do what a driver's loop did: start connectors that Ray restarted (they come back
idle), and tell the circuit breaker how the market data is doing. This actor, named
``fabric:<exchange>`` next to the fabric's own actors, does both in a background thread (it
also runs after Ray restarts it), and keeps the fabric's configuration so drivers can find and
join the fabric (``describe``) and ``spark-ray streams status`` can print per-symbol health.
The same poll brings each symbol's best bid/ask (or last trade), which ``quotes`` serves to the
cross-venue view (:mod:`spark_ray.streams.crossvenue`).

Breaker readings (see :mod:`spark_ray.streams.feed`) go to the named breaker with
``report_many``, fire-and-forget: at most ``MAX_PENDING`` reports in flight, later ones dropped
(counted), and a missing breaker is looked up again later. Ingest never waits for any of it:
the only call into the data path is the normalizers' small ``feed`` poll.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any

import ray

from spark_ray.actors.naming import lookup
from spark_ray.streams.crossvenue import QuoteTracker
from spark_ray.streams.feed import FeedTracker, SymbolReading

log = logging.getLogger(__name__)
MAX_PENDING = 4
SUPERVISE_EVERY_S = 2.0
POLL_TIMEOUT_S = 5.0
_UNKNOWN_KIND = re.compile(r"unknown signal kind '([a-z_]+)'")


@ray.remote(num_cpus=0, max_restarts=-1)
class FabricSupervisorActor:
    def __init__(self, config: dict[str, Any], names: dict[str, str], namespace: str,
                 breaker: str | None = None, breaker_namespace: str = "spark_ray",
                 period_s: float = 1.0) -> None:
        self.config = config
        self.names = names
        self.namespace = namespace
        self.breaker_name = breaker
        self.breaker_namespace = breaker_namespace
        self.period_s = period_s
        self.started = time.time()
        self.tracker = FeedTracker(config["exchange"], list(config["symbols"]), self.started)
        self.quote_tracker = QuoteTracker()  # best quote per symbol, for the cross-venue view
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._handles: dict[str, Any] = {}
        self._breaker: Any = None
        self._pending: list[Any] = []
        self._unsupported: set[str] = set()  # kinds an older breaker refuses
        self.stats: dict[str, Any] = {"polls": 0, "poll_failures": 0, "reports": 0,
                                      "reports_dropped": 0, "breaker_missing": 0,
                                      "supervise_failures": 0, "last_poll_ms": 0,
                                      "unreachable": []}
        self._thread = threading.Thread(target=self._run, name="fabric-supervisor", daemon=True)
        self._thread.start()

    # --- the API -----------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """What a joining driver needs: the configuration and every actor's name."""
        return {"config": dict(self.config), "names": dict(self.names),
                "namespace": self.namespace, "breaker": self.breaker_name,
                "started": self.started}

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"symbols": self.tracker.view(time.time()), **self.stats,
                    "breaker": self.breaker_name, "breaker_reachable": self._breaker is not None,
                    "last_poll_age_s": round(time.time() - self.stats["last_poll_ms"] / 1000, 3)
                    if self.stats["last_poll_ms"] else None, "started": self.started}

    def quotes(self) -> dict[str, Any]:
        """Per symbol the latest best bid/ask (or last trade) and its age, from the same poll
        (the ``crossvenue`` actor reads this; see :mod:`spark_ray.streams.crossvenue`)."""
        now = time.time()
        with self._lock:
            return {"exchange": self.config["exchange"],
                    "symbols": self.quote_tracker.snapshot(now), "time": now}

    def close(self) -> dict[str, Any]:
        """Stop the loop and tell the breaker these symbols stop on purpose (no stale trip)."""
        self._stop.set()
        self._thread.join(timeout=10)
        with self._lock:
            readings = self.tracker.closing()
        h = self._breaker_handle()
        if h is not None and readings:
            try:
                ray.get(h.report_many.remote(readings), timeout=10)
            except Exception as exc:  # the breaker is gone: nothing to tell
                log.info("fabric supervisor: source_closed not delivered: %s", exc)
        return self.status()

    # --- the loop ------------------------------------------------------------------------------
    def _run(self) -> None:
        next_supervise = 0.0
        while not self._stop.wait(self.period_s):
            try:
                if time.monotonic() >= next_supervise:
                    next_supervise = time.monotonic() + SUPERVISE_EVERY_S
                    self._supervise()
                readings = self._poll()
                if readings:
                    self._report(readings)
            except Exception:
                log.exception("fabric supervisor: round failed")

    def _handle(self, key: str) -> Any:
        h = self._handles.get(key)
        if h is None:
            h = lookup(self.names[key], self.namespace)
            if h is not None:
                self._handles[key] = h
        return h

    def _keys(self, role: str) -> list[str]:
        return sorted(k for k in self.names if k.startswith(f"{role}:"))

    def _supervise(self) -> None:
        """Connectors Ray restarted come back idle: start them again (idempotent)."""
        refs = [h.start.remote() for k in self._keys("connector")
                if (h := self._handle(k)) is not None]
        try:
            ray.get(refs, timeout=30)
        except Exception as exc:
            self.stats["supervise_failures"] += 1
            log.info("fabric supervisor: connector start failed: %s", exc)

    def _poll(self) -> list[dict[str, Any]]:
        """Every normalizer's ``feed`` and every connector's error counters, per symbol."""
        polls: dict[str, SymbolReading] = {}
        unreachable: list[str] = []
        shard_errors: dict[str, int] = {}
        for k in self._keys("connector"):
            h = self._handle(k)
            try:
                st = ray.get(h.status.remote(), timeout=POLL_TIMEOUT_S) if h else None
            except Exception:
                st = None
                self._handles.pop(k, None)
            if st is None:
                unreachable.append(self.names[k])
                continue
            shard_errors[k.split(":", 1)[1]] = int(st.get("errors", 0)) + \
                int(st.get("reconnects", 0))
        for k in self._keys("normalizer"):
            h = self._handle(k)
            try:
                feed = ray.get(h.feed.remote(), timeout=POLL_TIMEOUT_S) if h else None
            except Exception:
                feed = None
                self._handles.pop(k, None)
            if feed is None:
                unreachable.append(self.names[k])
                continue
            errors = int(feed["errors"]) + shard_errors.get(k.split(":", 1)[1], 0)
            with self._lock:
                self.quote_tracker.update(feed.get("quotes") or {}, time.time())
            for sym, f in feed["symbols"].items():
                polls[sym] = SymbolReading(int(f["messages"]), f["lag_ms"], int(f["gaps"]),
                                           int(f["unrepaired"]), errors)
        with self._lock:
            self.stats["polls"] += 1
            self.stats["poll_failures"] += bool(unreachable)
            self.stats["unreachable"] = unreachable
            self.stats["last_poll_ms"] = int(time.time() * 1000)
            return self.tracker.update(polls, time.time())

    def _breaker_handle(self) -> Any:
        if self.breaker_name is None:
            return None
        if self._breaker is None:
            self._breaker = lookup(self.breaker_name, self.breaker_namespace)
        return self._breaker

    def _report(self, readings: list[dict[str, Any]]) -> None:
        """Fire-and-forget, bounded; no breaker: skip quietly, look again next round."""
        h = self._breaker_handle()
        if h is None:
            if self.breaker_name is not None:
                self.stats["breaker_missing"] += 1
            return
        if self._pending:
            done, self._pending = ray.wait(self._pending, num_returns=len(self._pending),
                                           timeout=0)
            for ref in done:
                try:
                    ray.get(ref, timeout=0)
                except Exception as exc:
                    m = _UNKNOWN_KIND.search(str(exc))
                    if m:  # a breaker that predates a kind: keep feeding it the others
                        self._unsupported.add(m.group(1))
                    else:  # the breaker died or restarts: find it again next time
                        self._breaker = None
        readings = [r for r in readings if r["kind"] not in self._unsupported]
        if len(self._pending) >= MAX_PENDING:
            self.stats["reports_dropped"] += 1
            return
        self._pending.append(h.report_many.remote(readings))
        self.stats["reports"] += 1
