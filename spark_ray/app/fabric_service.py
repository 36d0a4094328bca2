"""The long-lived fabric as a service: up, status, down, and joining it.

``spark-ray streams up`` starts one fabric per exchange as detached, named actors in namespace
``spark_ray`` (see :mod:`spark_ray.app.fabric`), waits until it is healthy and returns; the
fabric keeps running with no driver. Several exchanges in one ``up`` are one fabric each, all
started and awaited together (all or none), plus the ``crossvenue`` actor
(:mod:`spark_ray.actors.crossvenue`) comparing their quotes. ``streams status`` reads every
actor plus the supervisor's per-symbol view; ``streams down`` drains, seals and stops it.
``spark-ray trade`` and the drivers call :func:`join` to subscribe to the running fabric
instead of opening a second set of exchange connections. Expects Ray connected.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import ray

from spark_ray.actors.naming import NAMESPACE
from spark_ray.app.fabric import Fabric, FabricConfig, supervisor_name
from spark_ray.errors import CheckFailed, UserError
from spark_ray.streams.control import health
from spark_ray.streams.feed import unhealthy_symbols

Progress = Callable[[str], None]


class FabricRunning(CheckFailed):
    """``streams up`` for an exchange whose fabric already runs (exit 1)."""


def running(exchange: str) -> Fabric | None:
    """The long-lived fabric of ``exchange`` on this cluster, or None."""
    return Fabric.attach(exchange, NAMESPACE)


def describe(f: Fabric) -> str:
    """One line naming a running fabric (for messages)."""
    c = f.cfg
    return (f"fabric:{c.exchange} ({','.join(c.symbols)}; streams {','.join(c.streams)}; "
            f"{c.ws_url}; lake {c.store})")


def up(cfg: FabricConfig, progress: Progress, timeout_s: float = 120.0) -> Fabric:
    """Start the fabric detached and wait until every connector holds its connections and the
    supervisor has polled every normalizer. Refuses a second fabric for the same exchange."""
    return up_many([cfg], progress, timeout_s)[0]


def up_many(cfgs: list[FabricConfig], progress: Progress, timeout_s: float = 120.0,
            cross: dict[str, Any] | None = None) -> list[Fabric]:
    """One fabric per exchange (each as :func:`up` starts it), all healthy within
    ``timeout_s``; with ``cross`` (``exchanges``, ``reference``, ``rates``, ``max_age_s``) also
    the cross-venue actor over them. Refused (exit 1) while a fabric for any of them runs; on
    any failure everything this call started is stopped again."""
    for cfg in cfgs:
        existing = running(cfg.exchange)
        if existing is not None:
            raise FabricRunning(f"streams up: a fabric for {cfg.exchange} already runs: "
                                f"{describe(existing)}; `spark-ray streams down --exchange "
                                f"{cfg.exchange}` stops it")
    several = len(cfgs) > 1
    started: list[Fabric] = []
    try:
        for cfg in cfgs:
            cfg.namespace, cfg.detached = NAMESPACE, True
            tag = f"{cfg.exchange}: " if several else ""
            progress(f"{tag}starting sink, {cfg.shards} normalizer(s) and connector(s) for "
                     f"{','.join(cfg.symbols)} (detached, namespace {NAMESPACE})")
            started.append(Fabric(cfg))
        # Side by side: most of a start is Ray starting worker processes, which overlaps.
        with ThreadPoolExecutor(max_workers=len(started)) as pool:
            for fut in [pool.submit(f.start) for f in started]:
                fut.result()
        progress("actors started; waiting for connections and the first health poll")
        deadline = time.monotonic() + timeout_s
        while True:
            why = next((f"{f.cfg.exchange}: {w}" if several else w
                        for f in started for ok, w in [_ready(f)] if not ok), None)
            if why is None:
                break
            if time.monotonic() >= deadline:
                raise CheckFailed(f"streams up: not healthy after {timeout_s:g} s: {why}")
            progress(f"waiting: {why}")
            time.sleep(1.0)
        if cross is not None:
            _cross_up(cross, progress)
    except BaseException:
        if cross is not None:
            with contextlib.suppress(Exception):
                cross_down(list(cross["exchanges"]))
        for f in started:  # each one, whatever state its start reached
            try:
                f.stop(compact=False, kill=True)
            except Exception:
                f.kill()
        raise
    for f in started:
        progress(f"healthy: {describe(f)}")
    return started


CROSS_NAME = "crossvenue"


def _cross_up(cross: dict[str, Any], progress: Progress) -> Any:
    """Start the ``crossvenue`` actor (detached; one per cluster: a stale one is replaced) and
    let it poll once, so ``streams up`` can print the first view."""
    from spark_ray.actors.crossvenue import CrossVenueActor
    from spark_ray.actors.naming import lookup

    old = lookup(CROSS_NAME, NAMESPACE)
    if old is not None:
        with contextlib.suppress(ray.exceptions.RayError, ValueError):
            ray.kill(old, no_restart=True)
        _wait_gone(CROSS_NAME)
    exchanges = list(cross["exchanges"])
    progress(f"starting the cross-venue view {CROSS_NAME} over {','.join(exchanges)} "
             f"(reference quote {cross['reference']})")
    actor = CrossVenueActor.options(name=CROSS_NAME, namespace=NAMESPACE, lifetime="detached",
                                    get_if_exists=True).remote(
        exchanges, {ex: supervisor_name(ex) for ex in exchanges}, NAMESPACE,
        cross["reference"], cross.get("rates") or {}, float(cross.get("max_age_s", 10.0)))
    ray.get(actor.refresh.remote(), timeout=60)
    return actor


def _wait_gone(name: str, timeout_s: float = 10.0) -> None:
    from spark_ray.actors.naming import lookup

    deadline = time.monotonic() + timeout_s
    while lookup(name, NAMESPACE) is not None and time.monotonic() < deadline:
        time.sleep(0.1)


def cross_view(exchanges: list[str] | None = None) -> dict[str, Any] | None:
    """The running cross-venue view (None: none runs, or it covers none of ``exchanges``)."""
    from spark_ray.actors.naming import lookup

    actor = lookup(CROSS_NAME, NAMESPACE)
    if actor is None:
        return None
    try:
        view = dict(ray.get(actor.view.remote(), timeout=30))
    except ray.exceptions.RayError as exc:
        return {"error": type(exc).__name__}
    if exchanges is not None and not set(exchanges) & set(view.get("venues", [])):
        return None
    return view


def cross_down(exchanges: list[str]) -> bool:
    """Stop the cross-venue actor when it covers any of ``exchanges`` (True: it did)."""
    from spark_ray.actors.naming import lookup

    actor = lookup(CROSS_NAME, NAMESPACE)
    if actor is None:
        return False
    try:
        covers = ray.get(actor.describe.remote(), timeout=30)["exchanges"]
    except ray.exceptions.RayError:
        covers = exchanges  # broken: remove it
    if not set(covers) & set(exchanges):
        return False
    with contextlib.suppress(ray.exceptions.RayError):
        ray.get(actor.close.remote(), timeout=15)
    with contextlib.suppress(ray.exceptions.RayError, ValueError):
        ray.kill(actor, no_restart=True)
    _wait_gone(CROSS_NAME)
    return True


def _ready(fabric: Fabric) -> tuple[bool, str]:
    st = fabric.status(timeout_s=10)
    for name, s in st.items():
        if "error" in s:
            return False, f"{name} unreachable ({s['error']})"
        if name.startswith("connector") and not (s.get("running") and s.get("connections")):
            return False, f"{name} not connected yet"
    try:  # a supervisor whose worker process is still starting (a loaded node) is not ready yet
        feed = fabric.feed_status() or {}
    except ray.exceptions.GetTimeoutError:
        return False, "supervisor not answering yet (its worker is still starting)"
    if not feed.get("polls") or feed.get("unreachable"):
        return False, "supervisor has not polled every normalizer yet"
    return True, ""


def report(fabric: Fabric, max_age_s: float = 30.0) -> tuple[bool, dict[str, Any]]:
    """(healthy, document) for ``streams status``: every actor's health (the control plane's
    rules), per symbol last-message age, rate, ingest lag, gaps, errors, and the WAL depth."""
    actors_ok, body = health(fabric.status(timeout_s=10))
    try:
        feed = fabric.feed_status() or {}
    except ray.exceptions.RayError as exc:
        feed = {"error": type(exc).__name__}
    symbols = feed.get("symbols", {})
    bad = unhealthy_symbols(symbols, max_age_s)
    for sym, why in bad.items():
        symbols[sym]["reason"] = why
    sink = body["actors"].get("sink", {})
    ok = actors_ok and not bad and "error" not in feed
    doc = {
        "status": "ok" if ok else "unhealthy", "exchange": fabric.cfg.exchange,
        "fabric": supervisor_name(fabric.cfg.exchange), "store": fabric.cfg.store,
        "ws_url": fabric.cfg.ws_url, "actors": body["actors"], "symbols": symbols,
        "wal": {"buffered_rows": sink.get("buffered_rows")},
        "breaker": {"name": feed.get("breaker"), "reachable": feed.get("breaker_reachable"),
                    "reports": feed.get("reports"), "dropped": feed.get("reports_dropped")},
        "max_age_s": max_age_s, "time": time.time(),
    }
    if "error" in feed:
        doc["actors"][supervisor_name(fabric.cfg.exchange)] = {
            "ok": False, "reason": f"unreachable: {feed['error']}"}
    return ok, doc


def down(exchange: str, progress: Progress) -> dict[str, Any] | None:
    """Drain (in-flight batches reach the lake), seal the WAL, stop the actors. None when no
    fabric of ``exchange`` runs (idempotent)."""
    fabric = running(exchange)
    if fabric is None:
        return None
    progress(f"draining {describe(fabric)}")
    try:
        result = fabric.stop(compact=True, kill=True)
    except ray.exceptions.RayError as exc:  # a broken fabric still goes away
        fabric.kill()
        raise CheckFailed(f"streams down: drain failed ({type(exc).__name__}); actors killed, "
                          "the WAL replays into the lake on the next `streams up`") from None
    progress("drained, WAL sealed, actors stopped")
    return result


def join(exchange: str, symbols: list[str]) -> Fabric | None:
    """The running fabric when it carries every one of ``symbols``; None when none runs.
    A fabric that lacks a symbol is a usage error (exit 2) naming ``--symbols``: joining it
    would need a second connection for the rest."""
    fabric = running(exchange)
    if fabric is None:
        return None
    lacking = fabric.missing(symbols)
    if lacking:
        raise UserError(f"--symbols: the running {describe(fabric)} does not carry "
                        f"{','.join(lacking)}; add them with `spark-ray streams down` and `up "
                        f"--symbols ...`, or pass --own-fabric")
    return fabric
