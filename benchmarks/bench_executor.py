"""What the executor costs per order, beside peers measured in the same run.

- tick-to-order: the venue's live stream through the fabric into the ExecutorActor, whose probe
  strategy orders on every bar; each sample is a closing trade's arrival at the executor to the
  PaperBroker's acknowledgement (bars, strategy, filters, the breaker actor's ``allow``, the
  fsync'd journal, the submit). Also fed directly (a trade every 20 ms, no fabric competing for
  the two cores), and, for the record, from the connector's socket receive (``recv_to_order``:
  adds the fabric's hops, including the sink's durable write before the normalizer publishes).
  Peers: the breaker actor's bare ``allow`` round trip from a driver, and the same pipeline
  in-process (the core with the breaker core, no actors).
- orders/s: bursts of orders (10 per bar) through the ExecutorActor fed trade batches directly,
  every order asked of the breaker actor and journaled; peers: the same core in-process, and the
  bare PaperBroker (accept + fill, no breaker, no journal).

Prints one JSON object. Bounded at about 60 s. Targets: tick-to-order p99 <= 20 ms,
>= 500 orders/s through the paper broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

LIVE_SECONDS = 30.0  # ~300 bars: enough samples for a p99
BURST = 10
ACTOR_BARS = 400
CORE_BARS = 2_000
BARE_ORDERS = 20_000
RTT_CALLS = 500
DIRECT_TICKS = 300
PROBE = "spark_ray.execution.probe:Alternate"
QUIET = {"consecutive_losses": {"enabled": False}, "order_rate": {"limit": 10**9},
         "daily_loss": {"enabled": False}, "max_drawdown": {"enabled": False},
         "max_notional": {"default": 1e12}, "max_total_notional": {"limit": 1e13}}


def _pcts(ms: list[float]) -> dict[str, float]:
    if not ms:
        return {"n": 0}
    a = np.asarray(ms)
    return {"n": len(a), "p50": round(float(np.percentile(a, 50)), 3),
            "p99": round(float(np.percentile(a, 99)), 3), "mean": round(float(a.mean()), 3),
            "max": round(float(a.max()), 3)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _trades(n: int, start_id: int = 1, t0: int = 1_795_000_000_000,
            symbol: str = "BTCUSDT") -> pa.Table:
    """n trades, one per second (each closes the previous 1s bar), a random walk."""
    from spark_ray.schemas import TIMESTAMP_MS_UTC, TRADE_SCHEMA

    rng = np.random.default_rng(start_id)
    ids = np.arange(start_id, start_id + n, dtype=np.int64)
    times = t0 + (ids - 1) * 1000
    price = np.round(60_000 + np.cumsum(rng.normal(0, 5, n)), 2)
    ms = pa.array(times, pa.int64()).cast(TIMESTAMP_MS_UTC)
    return pa.table({"exchange": ["binance"] * n, "symbol": [symbol] * n, "trade_id": ids,
                     "price": price, "qty": np.full(n, 0.01), "is_buyer_maker": [False] * n,
                     "trade_time": ms, "event_time": ms, "recv_time": ms,
                     "stored_time": pa.nulls(n, TIMESTAMP_MS_UTC)}, schema=TRADE_SCHEMA)


def _config(**kw: Any) -> Any:
    from spark_ray.execution.executor import ExecutorConfig

    base = dict(symbols=("BTCUSDT",), interval="1s", cash=1_000_000.0, warmup_bars=0,
                skip_first_bar=False, close_grace_ms=None, max_history=500)
    return ExecutorConfig(**{**base, **kw})


# --- peers in-process ------------------------------------------------------------------------
def bench_bare_broker() -> dict[str, Any]:
    """PaperBroker alone: accept an order, fill it on the next bar (no breaker, no journal)."""
    from spark_ray.execution.bars import ClosedBar
    from spark_ray.execution.orders import ManagedOrder
    from spark_ray.execution.paper import PaperBroker
    from spark_ray.fills.costs import CostModel
    from spark_ray.fills.orders import BUY, SELL

    broker = PaperBroker({"BTCUSDT": 1e9}, CostModel())
    t = time.perf_counter()
    for i in range(BARE_ORDERS):
        side = BUY if i % 2 == 0 else SELL
        broker.submit_now(ManagedOrder(f"b{i}", "BTCUSDT", side, "market", i, 0, qty=0.01))
        broker.on_bar(ClosedBar("BTCUSDT", i + 1, 60_000.0, 60_001.0, 59_999.0, 60_000.5,
                                1.0, 1, i, 0))
    dt = time.perf_counter() - t
    assert broker.fills == BARE_ORDERS
    return {"orders": BARE_ORDERS, "orders_per_s": round(BARE_ORDERS / dt)}


def bench_core(journal_dir: Path) -> dict[str, Any]:
    """The executor core in-process: bars, probe strategy, filters, the breaker core, the
    fsync'd journal, the PaperBroker; orders/s and per-bar tick-to-order."""
    from spark_ray.breaker.core import CircuitBreaker
    from spark_ray.breaker.models import BreakerConfig
    from spark_ray.execution.executor import ExecutorCore
    from spark_ray.execution.gate import LocalGate
    from spark_ray.execution.journal import ExecJournal
    from spark_ray.execution.paper import PaperBroker
    from spark_ray.execution.replay import trade_columns
    from spark_ray.strategy.loader import load_strategy

    cfg = _config(name="bench-core")
    core = ExecutorCore(cfg, load_strategy(PROBE), {"burst": BURST, "size_pct": 0.5},
                        PaperBroker({"BTCUSDT": cfg.cash}, cfg.costs()),
                        ExecJournal(journal_dir / "core.jsonl"),
                        LocalGate(CircuitBreaker(BreakerConfig.model_validate(QUIET))))
    cols = trade_columns(_trades(CORE_BARS))

    async def run() -> float:
        await core.start()
        t = time.perf_counter()
        for i in range(CORE_BARS):  # one trade per call: each closes a bar
            part = tuple(c[i:i + 1] for c in cols)
            await core.on_trades({"BTCUSDT": part}, time.perf_counter())  # type: ignore[dict-item]
        return time.perf_counter() - t

    dt = asyncio.run(run())
    submitted = core.stats["submitted"]
    core.journal.close()
    return {"bars": CORE_BARS, "orders": submitted, "orders_per_s": round(submitted / dt),
            "tick_to_order_ms": _pcts(list(core.t2o)), "stages_ms": core.status()["timing_ms"],
            "filled": core.om.counts()["FILLED"]}


# --- on Ray --------------------------------------------------------------------------------------
def _spec(name: str, tmp: Path, breaker: str, rest_url: str | None, burst: int) -> Any:
    from spark_ray.execution.spec import ExecutorSpec

    return ExecutorSpec(config=_config(name=name, cash=10_000_000.0), strategy=PROBE,
                        params={"burst": burst, "size_pct": 0.5},
                        journal_path=str(tmp / f"{name}.jsonl"), rest_url=rest_url,
                        breaker_name=breaker, control_port=None)


def bench_ray(tmp: Path) -> dict[str, Any]:
    import ray

    from spark_ray.actors.breaker import get_breaker
    from spark_ray.actors.executor import start_executor
    from spark_ray.app.fabric import Fabric, FabricConfig
    from spark_ray.app.session import connect, disconnect
    from spark_ray.breaker.models import BreakerConfig, Order
    from spark_ray.config import RayConfig
    from spark_ray.venue import Venue

    port = int(os.environ.get("BENCH_METRICS_PORT") or _free_port())
    connect(config=RayConfig(include_dashboard=False, num_cpus=2, log_to_driver=False,
                             metrics_export_port=port), quiet=True)
    tag = uuid.uuid4().hex[:6]
    handles: list[Any] = []
    try:
        bname = f"breaker:bench-{tag}"
        breaker, _ = get_breaker(bname, config=BreakerConfig.model_validate(QUIET),
                                 journal_path=tmp / "breaker.jsonl")
        handles.append(breaker)
        order = Order("BTCUSDT", "buy", 0.01, None, "x", "bench")
        for _ in range(100):
            ray.get(breaker.allow.remote(order))
        rtt = []
        for _ in range(RTT_CALLS):
            t = time.perf_counter()
            ray.get(breaker.allow.remote(order))
            rtt.append((time.perf_counter() - t) * 1000)

        # Throughput: trade batches straight into an executor (every trade closes a bar).
        thr = start_executor(_spec(f"bench-thr-{tag}", tmp, bname, None, BURST),
                             f"executor:bench-thr-{tag}")
        handles.append(thr)
        batches = [_trades(50, 1 + k * 50) for k in range(ACTOR_BARS // 50)]
        t = time.perf_counter()
        ray.get([thr.on_market_data.remote({"trades": {"trades": b}, "book": None})
                 for b in batches])
        ray.get(thr.drain.remote(120.0), timeout=150)
        dt = time.perf_counter() - t
        st = ray.get(thr.status.remote())
        ray.get(thr.stop.remote())
        throughput = {"bars": st["stats"]["bars"], "orders": st["stats"]["submitted"],
                      "orders_per_s": round(st["stats"]["submitted"] / dt),
                      "journal_writes": st["journal"]["writes"],
                      "journal_fsyncs": st["journal"]["fsyncs"], "stages_ms": st["timing_ms"],
                      "filled": st["orders"]["FILLED"]}

        # Latency, direct: one trade every 20 ms straight into an executor (each closes a bar).
        direct = start_executor(_spec(f"bench-dir-{tag}", tmp, bname, None, 1),
                                f"executor:bench-dir-{tag}")
        handles.append(direct)
        ticks = _trades(DIRECT_TICKS, 1_000_001)
        for i in range(DIRECT_TICKS):
            direct.on_market_data.remote({"trades": {"trades": ticks.slice(i, 1)}, "book": None})
            time.sleep(0.02)
        ray.get(direct.drain.remote(30.0), timeout=60)
        direct_samples = ray.get(direct.latencies.remote())
        direct_stages = ray.get(direct.status.remote())["timing_ms"]
        ray.get(direct.stop.remote())

        # Latency: the venue's live stream through the fabric into an executor.
        with Venue(symbols=("BTCUSDT",), seed=5, speed=10.0, trades_per_second=60,
                   history_minutes=30) as venue:
            lat = start_executor(_spec(f"bench-lat-{tag}", tmp, bname, venue.rest_url, 1),
                                 f"executor:bench-lat-{tag}")
            handles.append(lat)
            fabric = Fabric(FabricConfig(symbols=["BTCUSDT"], streams=["trade"],
                                         ws_url=venue.ws_url, rest_url=venue.rest_url,
                                         store=str(tmp / "lake"), namespace=f"bench-{tag}",
                                         flush_ms=5.0)).start()
            try:
                ray.get([n.subscribe.remote(lat, "on_market_data") for n in fabric.normalizers])
                time.sleep(LIVE_SECONDS)
                samples = ray.get(lat.latencies.remote())
                lst = ray.get(lat.status.remote())
            finally:
                fabric.kill()
            ray.get(lat.stop.remote())
        return {"breaker_allow_rtt_ms": _pcts(rtt), "actor_orders": throughput,
                "direct_tick_to_order_ms": _pcts(direct_samples), "direct_stages_ms":
                    {k: v for k, v in direct_stages.items() if k in ("breaker", "journal")},
                "live_tick_to_order_ms": _pcts(samples),
                "live": {"seconds": LIVE_SECONDS, "bars": lst["stats"].get("bars", 0),
                         "orders": lst["stats"].get("submitted", 0),
                         "trades_seen": lst["stats"].get("trades", 0),
                         "stages_ms": lst["timing_ms"]}}
    finally:
        for h in handles:
            with contextlib.suppress(Exception):
                ray.kill(h, no_restart=True)
        disconnect()


def main() -> None:
    t = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-executor-") as d:
        tmp = Path(d)
        bare = bench_bare_broker()
        core = bench_core(tmp)
        on_ray = bench_ray(tmp)
    live = on_ray["live_tick_to_order_ms"]
    actor = on_ray["actor_orders"]
    result = {
        "benchmark": "executor",
        "params": {"live_seconds": LIVE_SECONDS, "burst": BURST, "actor_bars": ACTOR_BARS,
                   "core_bars": CORE_BARS, "cpus": os.cpu_count(), "strategy": PROBE},
        "tick_to_order": {"executor_actor_live_ms": live,
                          "executor_actor_direct_feed_ms": on_ray["direct_tick_to_order_ms"],
                          "direct_feed_stages_ms": on_ray["direct_stages_ms"],
                          "peer_core_in_process_ms": core["tick_to_order_ms"],
                          "peer_breaker_allow_rtt_ms": on_ray["breaker_allow_rtt_ms"],
                          "live": on_ray["live"]},
        "orders_per_s": {"executor_actor": actor["orders_per_s"],
                         "peer_core_in_process": core["orders_per_s"],
                         "peer_bare_paper_broker": bare["orders_per_s"],
                         "detail": {"actor": actor, "core": core, "bare": bare}},
        "targets": {"tick_to_order_p99_ms": 20, "orders_per_s": 500,
                    "tick_to_order_p99_met": live.get("p99", 1e9) <= 20,
                    "tick_to_order_p99_met_direct_feed":
                        on_ray["direct_tick_to_order_ms"].get("p99", 1e9) <= 20,
                    "orders_per_s_met": actor["orders_per_s"] >= 500},
        "load_average_1m": round(os.getloadavg()[0], 1),
        "seconds": round(time.perf_counter() - t, 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
