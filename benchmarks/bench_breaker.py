"""What the circuit breaker costs per order, beside peers measured in the same run.

- core ``allow`` (every rule enabled, a realistic state: 5 symbols priced and held, 8 data
  sources, filled reject/error/order windows), per call, next to a bare dict-lookup position
  check and the timer's own floor, so the breaker's own work is visible;
- core ``allow`` on the blocked path with the fsync'd file journal (the price of durability);
- the actor's ``allow`` round trip next to a no-op actor method on the same Ray.

Prints one JSON object. Bounded well under 60 s.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

CORE_CALLS = 200_000
BLOCKED_CALLS = 300
ACTOR_CALLS = 2_000
PIPELINED = 4_000
ROUNDS = 4
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT")
PRICES = (60_000.0, 3_000.0, 150.0, 600.0, 0.6)


def _pcts(samples_ns: list[int], scale: float) -> dict[str, float]:
    s = sorted(samples_ns)
    n = len(s)
    return {"p50": round(s[n // 2] / scale, 3), "p99": round(s[int(n * 0.99)] / scale, 3),
            "mean": round(statistics.fmean(s) / scale, 3)}


def _time_each(fn: Callable[[int], Any], n: int) -> list[int]:
    clock = time.perf_counter_ns
    out = [0] * n
    for i in range(n):
        t = clock()
        fn(i)
        out[i] = clock() - t
    return out


def _config() -> Any:
    from spark_ray.breaker.models import BreakerConfig

    return BreakerConfig.model_validate({
        "cooldown_s": 60, "stale_data": {"max_age_s": 3600, "required_sources": ["feed-0"]},
        "max_position": {"default": 1e6}, "max_notional": {"default": 1e12},
        "max_total_notional": {"limit": 1e13}, "order_rate": {"limit": 10**9},
        "reject_rate": {"min_orders": 10**6}, "error_rate": {"limit": 10**6},
    })


def _loaded_core(t0: float, journal: Any = None) -> Any:
    from spark_ray.breaker.core import CircuitBreaker
    from spark_ray.breaker.models import Signal

    b = CircuitBreaker(_config(), journal=journal, clock=lambda: t0)
    for i, (sym, px) in enumerate(zip(SYMBOLS, PRICES, strict=True)):
        b.report(Signal("price", px, sym), now=t0)
        b.report(Signal("position", 0.5 * (i + 1), sym), now=t0)
    for k in range(8):
        b.report(Signal("lag", 0.2, f"feed-{k}", ts=t0), now=t0)
    for k in range(200):
        b.report(Signal("order_ack" if k % 10 else "order_reject", ts=t0 - k * 0.1), now=t0)
        if k % 20 == 0:
            b.report(Signal("error", ts=t0 - k * 0.1), now=t0)
    b.on_equity(t0, 100_000.0)
    b.on_equity(t0 + 0.001, 99_000.0)
    return b


def bench_core() -> dict[str, Any]:
    from spark_ray.breaker.journal import FileJournal
    from spark_ray.breaker.models import Order

    t0 = 1_800_000_000.0
    b = _loaded_core(t0)
    orders = [Order(sym, "buy" if i % 2 else "sell", 0.01, px * (1.0005 if i % 2 else 0.9995))
              for i, (sym, px) in enumerate(zip(SYMBOLS * 2, PRICES * 2, strict=True))]
    allow = b.allow
    k = len(orders)
    for i in range(20_000):  # warm up
        allow(orders[i % k], t0 + 1 + i * 5e-4)
    base = t0 + 20.0
    ns = _time_each(lambda i: allow(orders[i % k], base + i * 5e-4), CORE_CALLS)
    assert b.state.name == "ARMED" and b.blocked_total == 0, "benchmark state must stay ARMED"

    limits = {s: 1e6 for s in SYMBOLS}
    positions = {s: 0.5 for s in SYMBOLS}

    def dict_check(i: int) -> bool:
        o = orders[i % k]
        lim = limits.get(o.symbol)
        return lim is None or abs(positions.get(o.symbol, 0.0) + o.signed_qty) <= lim

    peer = _time_each(dict_check, CORE_CALLS)
    floor = _time_each(lambda i: None, CORE_CALLS)

    with tempfile.TemporaryDirectory(prefix="bench-breaker-") as tmp:
        fj = FileJournal(Path(tmp) / "journal.jsonl")
        tb = _loaded_core(t0, journal=fj)
        tb.trip("bench", "bench", t0 + 1)
        blocked = _time_each(lambda i: tb.allow(orders[i % k], t0 + 2 + i * 1e-3), BLOCKED_CALLS)
        fj.close()
    return {
        "core_allow_us": _pcts(ns, 1e3),
        "core_allow_calls_per_s": round(1e9 / statistics.fmean(ns)),
        "peer_dict_lookup_check_us": _pcts(peer, 1e3),
        "timer_floor_us": _pcts(floor, 1e3),
        "core_allow_blocked_fsync_journal_us": _pcts(blocked, 1e3),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _round_trip(handle: Any, order: Any, i: int) -> Any:
    import ray

    return ray.get(handle.allow.remote(order))


def bench_actor() -> dict[str, Any]:
    import ray

    from spark_ray.actors.breaker import CircuitBreakerActor
    from spark_ray.app.session import connect, disconnect
    from spark_ray.breaker.core import ALLOWED
    from spark_ray.breaker.models import Decision, Order, Signal
    from spark_ray.config import RayConfig

    port = int(os.environ.get("BENCH_METRICS_PORT") or _free_port())
    connect(config=RayConfig(include_dashboard=False, num_cpus=2, log_to_driver=False,
                             metrics_export_port=port), quiet=True)
    try:
        @ray.remote(num_cpus=0)
        class Noop:
            """Same messages as the breaker (an Order in, a Decision out), no work."""

            def allow(self, order: Any) -> Decision:
                return ALLOWED

        with tempfile.TemporaryDirectory(prefix="bench-breaker-") as tmp:
            cfg = _config()
            breaker = CircuitBreakerActor.options(
                name=f"breaker:bench:{os.getpid()}", namespace="spark_ray").remote(
                cfg, str(Path(tmp) / "journal.jsonl"), "breaker:bench")
            noop = Noop.remote()  # type: ignore[attr-defined]
            ray.get(breaker.report_many.remote(
                [Signal("price", px, s) for s, px in zip(SYMBOLS, PRICES, strict=True)]
                + [Signal("heartbeat", key=f"feed-{k}") for k in range(8)]))
            order = Order("BTCUSDT", "buy", 0.001, 60_010.0)
            handles = {"breaker_actor": breaker, "peer_noop_actor": noop}
            samples: dict[str, list[int]] = {k: [] for k in handles}
            pipelined: dict[str, list[float]] = {k: [] for k in handles}
            for h in handles.values():
                for _ in range(200):  # warm up
                    ray.get(h.allow.remote(order))
            for _ in range(ROUNDS):  # alternate, so drift on a busy machine hits both alike
                for label, h in handles.items():
                    samples[label] += _time_each(partial(_round_trip, h, order),
                                                 ACTOR_CALLS // ROUNDS)
                    t = time.perf_counter()
                    ray.get([h.allow.remote(order) for _ in range(PIPELINED // ROUNDS)])
                    pipelined[label].append((PIPELINED // ROUNDS) / (time.perf_counter() - t))
            results = {label: {"round_trip_ms": _pcts(ns, 1e6),
                               "calls_per_s_sync": round(1e9 / statistics.fmean(ns)),
                               "calls_per_s_pipelined": round(statistics.fmean(pipelined[label]))}
                       for label, ns in samples.items()}
            decision = ray.get(breaker.allow.remote(order))
            assert decision.allowed, decision
            ray.kill(breaker, no_restart=True)
            ray.kill(noop, no_restart=True)
        return results
    finally:
        disconnect()


def main() -> None:
    t = time.perf_counter()
    core = bench_core()
    actor = bench_actor()
    b, p = actor["breaker_actor"], actor["peer_noop_actor"]
    result = {
        "benchmark": "breaker",
        "params": {"core_calls": CORE_CALLS, "actor_calls": ACTOR_CALLS,
                   "pipelined": PIPELINED, "rules_enabled": 12, "symbols": len(SYMBOLS),
                   "sources": 8, "cpus": os.cpu_count()},
        "core": core,
        "actor": actor,
        "derived": {
            "core_allow_own_cost_p50_us": round(
                core["core_allow_us"]["p50"] - core["timer_floor_us"]["p50"], 3),
            "core_over_dict_check_p50": round(
                core["core_allow_us"]["p50"] / core["peer_dict_lookup_check_us"]["p50"], 1),
            "actor_allow_over_noop_rtt_p50": round(
                b["round_trip_ms"]["p50"] / p["round_trip_ms"]["p50"], 2),
        },
        "seconds": round(time.perf_counter() - t, 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
