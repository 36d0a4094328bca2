"""Demo stage: paper-trade the approved parameters on the venue's simulated live stream.

Venue (market clock at 10x, so 1s bars close ten a second) -> the running long-lived fabric,
joined as ``spark-ray trade`` joins it (:func:`spark_ray.app.fabric_service.join`: the executor
subscribes to its normalizers, no second exchange connection; checked at the venue) ->
ExecutorActor (the approved strategy and parameters, the breaker the fabric feeds asked before
every order, the PaperBroker) for ``seconds``; then the control plane is used as an operator
would: ``/health``, ``/positions``, and ``POST /kill`` with flatten, which cancels, flattens and
trips the demo's breaker. Orders, fills, trades, positions and the journal land in
``out_dir``. Expects Ray to be connected already (the platform demo does that).
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spark_ray.app.demo import live as live_platform
from spark_ray.app.demo.live import LivePlatform
from spark_ray.app.fabric import supervisor_name
from spark_ray.app.trading import TradingRun, summary, write_outputs
from spark_ray.breaker.models import BreakerConfig
from spark_ray.execution.control import TOKEN_ENV
from spark_ray.execution.executor import ExecutorConfig
from spark_ray.execution.params import load_approved
from spark_ray.execution.spec import ExecutorSpec
from spark_ray.httpopen import urlopen
from spark_ray.secrets import PrivateSecrets


def _http(url: str, token: str | None = None, body: dict[str, Any] | None = None
          ) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def run_demo(out_dir: Path, approved_path: Path | str | None,
             seconds: float = 15.0, live: LivePlatform | None = None,
             during: Callable[[], Any] | None = None,
             signals_model: str | None = None,
             trusted_keys: str | None = None) -> dict[str, Any]:
    """Paper-trade on the running long-lived fabric ``live`` (joined, never stopped here; the
    market is resumed for the run and paused after). Without ``live`` the stage brings one up
    itself, exactly as the demo does, and takes it down at the end. ``during`` is called once,
    half-way, while the executor trades (the console's screenshots of the live pages). With
    ``signals_model`` (an approved model folder) a SignalActor scores the same stream and the
    executor's bars carry its signals."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if approved_path is None or not Path(approved_path).is_file():
        return {"result": "skipped", "reason": "no approved.json (nothing passed the review)"}
    # Refuses a tampered, unsigned or untrusted approval.
    approved = load_approved(approved_path, trusted_keys)
    tag = uuid.uuid4().hex[:6]
    own = live is None
    if live is None:
        live = live_platform.start(out_dir / "lake", symbols=("BTCUSDT",),
                                   breaker=f"breaker:demo-{tag}")
    try:
        result = _trade(out_dir, approved, seconds, live, tag, during, signals_model)
    except BaseException:
        if own:
            live.kill()
        raise
    if own:
        down = live.down()
        result["streams_down"] = {k: v for k, v in down.items() if k != "per_symbol"}
    return result


def _trade(out_dir: Path, approved: Any, seconds: float, live: LivePlatform,
           tag: str, during: Callable[[], Any] | None = None,
           signals_model: str | None = None) -> dict[str, Any]:
    from spark_ray.app import fabric_service

    symbol = "BTCUSDT"
    token = secrets.token_hex(16)
    # The executor reads the kill token on its node from a private secrets file (0700 dir,
    # outside the run folder), never from its spec.
    vault = PrivateSecrets({TOKEN_ENV: token})
    venue = live.venue
    # The breaker the fabric feeds market-data health to, when it feeds one: then a stall
    # stops this executor's entries, as on the platform.
    breaker_name = live.breaker or f"breaker:demo-{tag}"
    live.resume()
    run: TradingRun | None = None
    try:
        live.wait_fresh([symbol])
        shared = fabric_service.join(live_platform.EXCHANGE, [symbol])
        if shared is None:
            raise RuntimeError("trade: no long-lived fabric runs to join")
        before = live.connections()
        fed0 = (live.fabric.feed_status() or {}).get("reports", 0)
        spec = ExecutorSpec(
            config=ExecutorConfig(name=f"demo-{tag}", symbols=(symbol,), interval="1s",
                                  cash=10_000.0, warmup_bars=300),
            strategy=approved.strategy, params=approved.params,
            journal_path=str(out_dir / "journal.jsonl"), approved_path=approved.path,
            trusted_keys=approved.trusted_keys,
            approval=approved.approval, rest_url=venue.rest_url, ws_url=venue.ws_url,
            breaker_name=breaker_name, control_port=0, control_token=vault.ref(TOKEN_ENV),
            signals_model=signals_model)
        run = TradingRun(spec, f"executor:demo-{tag}", shared.cfg, shared=shared,
                         # The platform's rules, but a longer losing streak: a 1s-bar demo
                         # churns through more round trips in seconds than a day usually has.
                         breaker_config=BreakerConfig.model_validate(
                             {"cooldown_s": 30.0, "consecutive_losses": {"limit": 25}}),
                         breaker_journal=str(out_dir / "breaker-journal.jsonl"))
        run.start()
        counts = [len(live.connections())]
        deadline = time.monotonic() + seconds
        st = run.supervise()
        while time.monotonic() < deadline:
            time.sleep(1.0)
            st = run.supervise()
            counts.append(len(live.connections()))
            if during is not None and deadline - time.monotonic() < seconds / 2:
                during()
                during = None
        url = st["control_url"]
        health = _http(url + "/health")
        killed = _http(url + "/kill", token, {"reason": "demo over", "flatten": True})
        time.sleep(0.5)
        positions = _http(url + "/positions")[1]
        counts.append(len(live.connections()))
        after = live.connections()
        feed = live.fabric.feed_status() or {}
        out = run.stop()
        still_up = fabric_service.running(live_platform.EXCHANGE) is not None
    finally:
        if run is not None and run.executor is not None:
            run.stop(collect=False)
        if run is not None and run.breaker is not None:
            import ray

            ray.kill(run.breaker, no_restart=True)
        live.pause()
        vault.close()
    shards = shared.cfg.shards
    if set(counts) != {shards}:
        raise RuntimeError(f"trade: the venue saw {sorted(set(counts))} market-data "
                           f"connection(s) while trading, expected one per shard ({shards}): "
                           "the executor did not join the running fabric")
    if not still_up:
        raise RuntimeError("trade: leaving the shared fabric stopped it")
    fabric_facts = {"fabric": fabric_service.describe(shared), "joined": shared.joined,
                    # the supervisor a joiner found it by, and the actors it named
                    "fabric_actors": sorted({supervisor_name(shared.cfg.exchange),
                                             *shared.names.values()}), "shards": shards,
                    "connections_per_shard": max(counts) // shards,
                    "connection_samples": len(counts),
                    "same_connections": sorted(c["id"] for c in before)
                    == sorted(c["id"] for c in after),
                    "fabric_running_after": still_up, "breaker": breaker_name,
                    # market-data health the fabric's supervisor reported to that breaker
                    "breaker_fed": {"by": feed.get("breaker"),
                                    "reports": feed.get("reports", 0) - fed0,
                                    "reachable": feed.get("breaker_reachable")}}
    paths = write_outputs(out, out_dir)
    head = summary(out)
    head.update(health=health[1].get("status"), health_reasons=health[1].get("reasons"),
                kill_status=killed[0],
                kill=killed[1], flat_after_kill=all(abs(p["qty"]) < 1e-12
                                                    for p in positions.values()))
    head.update(fabric_facts)
    (out_dir / "summary.json").write_text(json.dumps(head, indent=2, sort_keys=True,
                                                     default=str) + "\n")
    t2o = head.get("tick_to_order") or {}
    sig = out.get("signals") or {}
    signal_facts = {"signals_published": sum((sig.get("published") or {}).values()),
                    "signal_latency_p99_ms": (sig.get("latency_ms") or {}).get("p99_ms"),
                    "signal_bars": ((out.get("status") or {}).get("stats") or {}).get(
                        "signal_bars", 0)} if signals_model else {}
    if signal_facts:
        print(f"signals: a SignalActor published {signal_facts['signals_published']} signals "
              f"(trade received -> published p99 {signal_facts['signal_latency_p99_ms']} ms); "
              f"{signal_facts['signal_bars']} bars carried them", flush=True)
    print(f"executor: {approved.strategy} {approved.params} paper-traded {head['bars']} 1s bars "
          f"in {seconds:g} s: {head['orders']} orders, {head['fills']} fills, "
          f"{head['closed_trades']} closed trades, equity {head['equity']:.2f}; "
          f"tick-to-order p99 {t2o.get('p99_ms')} ms; /kill flattened: "
          f"{head['flat_after_kill']}", flush=True)
    return {"result": "ok", **{k: head[k] for k in ("strategy", "params", "bars", "orders",
                                                    "fills", "closed_trades", "equity",
                                                    "flat_after_kill")},
            "tick_to_order_p99_ms": t2o.get("p99_ms"), "health": head["health"],
            "health_reasons": head["health_reasons"],
            "files": sorted(p.name for p in paths.values()), **fabric_facts, **signal_facts}
