"""The long-lived fabric end to end, with real Ray, the venue simulator and the CLI:

`streams up` (a separate process that exits) leaves detached actors; a `trade` run and a second
driver's executor join it, and the venue sees one market-data connection; `streams status`
reports per symbol; a venue `stall` on one symbol reaches the breaker through the fabric's feed
(trip within the stale threshold + 5 s, entries refused, re-armed after the stall and the
cooldown); `streams down` drains into the lake, which then equals the venue's ground truth.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray

from spark_ray.breaker.models import BreakerConfig

from helpers import cli_env, run_cli
from streams_helpers import assert_lake_equals_truth

MAX_AGE_S = 4.0  # the breaker's stale threshold in this test
COOLDOWN_S = 3.0
# Nothing but market-data health may trip this breaker. (Two executors on one breaker still
# share one equity series before the breaker's per-account scopes: drawdown rules off.)
RULES: dict[str, Any] = {
    "cooldown_s": COOLDOWN_S, "consecutive_losses": {"enabled": False},
    "order_rate": {"limit": 100_000}, "daily_loss": {"enabled": False},
    "max_drawdown": {"enabled": False}, "reject_rate": {"enabled": False},
    "stale_data": {"max_age_s": MAX_AGE_S, "max_lag_s": 60.0},
}


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def market_data_connections(venue: Any) -> list[dict[str, Any]]:
    return [c for c in venue.connections() if any("@trade" in s for s in c["streams"])]


def paper_spec(approved: Path, venue: Any, symbol: str, breaker: str, journal: Path,
               name: str) -> Any:
    from spark_ray.execution.executor import ExecutorConfig
    from spark_ray.execution.params import load_approved
    from spark_ray.execution.spec import ExecutorSpec

    ap = load_approved(approved)
    return ExecutorSpec(
        config=ExecutorConfig(name=name.replace(":", "-"), symbols=(symbol,), interval="1s",
                              mode="paper", cash=5_000.0, warmup_bars=20),
        strategy=ap.strategy, params=ap.params, journal_path=str(journal),
        approved_path=ap.path, approval=ap.approval, broker="paper", rest_url=venue.rest_url,
        ws_url=venue.ws_url, breaker_name=breaker, control_port=0)


def test_long_lived_fabric_shared_by_two_executors_and_feeding_the_breaker(
        ray_session: Any, make_venue: Any, tmp_path: Path) -> None:
    from spark_ray.actors.breaker import get_breaker
    from spark_ray.app import fabric_service
    from spark_ray.app.trading import TradingRun
    from spark_ray.breaker.models import Order
    from spark_ray.chaos.approval import synthetic_approval

    venue = make_venue(trades_per_second=50)
    addr = ray_session.address
    env = cli_env()
    bname = f"breaker:t{uuid.uuid4().hex[:8]}"
    breaker, _ = get_breaker(bname, config=BreakerConfig.model_validate(RULES),
                             journal_path=tmp_path / "breaker.jsonl")
    store = tmp_path / "lake"
    sma = synthetic_approval(tmp_path / "sma", "sma_cross", {"fast": 2, "slow": 3}, "1s",
                             by="tester", note="fabric service")
    probe = synthetic_approval(tmp_path / "probe", "spark_ray.execution.probe:Alternate",
                               {"size_pct": 0.2}, "1s", by="tester", note="fabric service")
    run: TradingRun | None = None

    def cli(*args: str, timeout: float = 240) -> Any:
        return run_cli("streams", *args, "--address", addr, env=env, timeout=timeout)

    try:
        # --- up: a process that returns, leaving the fabric running --------------------------
        t0 = time.monotonic()
        up = cli("up", "--symbols", "BTCUSDT,ETHUSDT", "--store", str(store), "--ws-url",
                 venue.ws_url, "--rest-url", venue.rest_url, "--breaker", bname)
        up_s = time.monotonic() - t0
        assert up.code == 0, up.err[-3000:]
        assert "healthy" in up.err and "fabric:binance" in up.out, (up.out, up.err)
        print(f"streams up took {up_s:.1f} s")
        fabric = fabric_service.running("binance")
        assert fabric is not None and fabric.cfg.symbols == ["BTCUSDT", "ETHUSDT"]
        venue.resume()
        again = cli("up", "--symbols", "BTCUSDT", "--store", str(store), "--ws-url",
                    venue.ws_url, "--rest-url", venue.rest_url)
        assert again.code == 1 and "already runs" in again.err and "fabric:binance" in again.err
        assert len(market_data_connections(venue)) == 1

        # --- two paper executors on the one fabric: a `trade` run and this driver's ---------
        trade = subprocess.Popen(
            [sys.executable, "-m", "spark_ray", "trade", "--params", str(sma), "--symbols",
             "BTCUSDT", "--paper", "--rest-url", venue.rest_url, "--ws-url", venue.ws_url,
             "--warmup-bars", "20", "--duration", "12", "--breaker", bname, "--port", "0",
             "--name", f"executor:cli-{uuid.uuid4().hex[:6]}", "--journal",
             str(tmp_path / "cli-journal.jsonl"), "--out", str(tmp_path / "runs"),
             "--address", addr], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=env)
        spec = paper_spec(probe, venue, "ETHUSDT", bname, tmp_path / "probe-journal.jsonl",
                          f"executor:probe-{uuid.uuid4().hex[:6]}")
        shared = fabric_service.join("binance", ["ETHUSDT"])
        assert shared is not None
        run = TradingRun(spec, spec.config.name, fabric.cfg, shared=shared).start()
        ex = run.executor
        wait_for(lambda: ray.get(ex.status.remote())["stats"].get("bars", 0) >= 3, 90,
                 "the joined executor's first bars")
        counts = [len(market_data_connections(venue))]
        out, err = trade.communicate(timeout=240)
        counts.append(len(market_data_connections(venue)))
        assert trade.returncode == 0, err[-3000:]
        assert "joining the running fabric:binance" in err and "joined fabric:binance" in out
        summary = json.loads([ln for ln in out.splitlines() if ln.startswith('{"bars"')][-1])
        assert summary["bars"] >= 3, summary
        assert counts == [1, 1], counts  # one market-data connection, both executors fed
        lacking = run_cli("trade", "--params", str(sma), "--symbols", "SOLUSDT", "--paper",
                          "--address", addr, "--out", str(tmp_path / "runs"), env=env)
        assert lacking.code == 2 and "--symbols" in lacking.err and "SOLUSDT" in lacking.err

        # --- status ------------------------------------------------------------------------
        st = cli("status", "--json", "--max-age-s", str(MAX_AGE_S))
        assert st.code == 0, (st.out, st.err)
        doc = json.loads(st.out)
        assert doc["status"] == "ok" and set(doc["symbols"]) == {"BTCUSDT", "ETHUSDT"}
        for s in doc["symbols"].values():
            assert s["last_message_age_s"] < MAX_AGE_S and s["rate_msg_s"] > 0
            assert s["ingest_lag_s"] is not None and s["unrepaired_gaps"] == 0
        assert {"sink", "normalizer:binance:0", "connector:binance:0"} <= set(doc["actors"])
        assert doc["wal"]["buffered_rows"] is not None
        assert doc["breaker"] == {"name": bname, "reachable": True,
                                  "reports": doc["breaker"]["reports"], "dropped": 0}
        armed = ray.get(breaker.status.remote())
        assert armed["state"] == "ARMED", armed["conditions"]

        # --- the stall: BTCUSDT goes silent, ETHUSDT keeps flowing -------------------------
        fault = venue.inject("stall", symbol="BTCUSDT")
        t_stall = time.monotonic()
        ages: list[float] = []

        def tripped() -> bool:
            ages.append(fabric.feed_status()["symbols"]["BTCUSDT"]["last_message_age_s"])
            return bool(ray.get(breaker.status.remote())["state"] == "TRIPPED")

        wait_for(tripped, MAX_AGE_S + 20, "the breaker to trip on BTCUSDT's silence")
        trip_s = time.monotonic() - t_stall
        print(f"tripped {trip_s:.1f} s after the stall; BTCUSDT ages seen {ages}")
        assert trip_s <= MAX_AGE_S + 5, trip_s
        tail = ages[-8:]  # the first samples may still see frames sent before the stall
        assert tail == sorted(tail) and ages[-1] >= MAX_AGE_S - 1.5, ages  # the age grows
        snap = ray.get(breaker.status.remote())
        (cond,) = [c for c in snap["conditions"] if c["rule"] == "stale_data"]
        assert cond["values"]["source"] == "BTCUSDT", cond
        # After the breaker branch: assert the trip's scope is "symbol:BTCUSDT" here.
        refused = ray.get(breaker.allow.remote(Order("BTCUSDT", "buy", 0.01, who="test")))
        assert not refused.allowed and refused.reasons
        # The joined executor's next entry is refused by the breaker (the trip is global in
        # this branch; with per-symbol scopes this becomes a BTCUSDT executor's entry).
        wait_for(lambda: any(o["status"] == "REJECTED" and o["reason"].startswith("breaker:")
                             for o in ray.get(ex.orders.remote())), 30,
                 "an entry refused by the breaker")
        bad = cli("status", "--max-age-s", str(MAX_AGE_S))
        assert bad.code == 1 and "BTCUSDT" in bad.out and "no message for" in bad.out, bad.out

        # --- the stall ends: fresh data, cooldown, re-armed --------------------------------
        venue.clear_faults(fault)
        t_clear = time.monotonic()
        wait_for(lambda: ray.get(breaker.status.remote())["state"] == "ARMED",
                 COOLDOWN_S + 30, "the breaker to re-arm after fresh data and the cooldown")
        print(f"re-armed {time.monotonic() - t_clear:.1f} s after the stall ended")
        assert time.monotonic() - t_clear >= COOLDOWN_S
        assert cli("status", "--max-age-s", str(MAX_AGE_S)).code == 0
        run.stop(collect=False)
        run = None
        assert ray.get(fabric.normalizers[0].status.remote())["subscribers"] == [], \
            "the CLI run and this executor both left the shared fabric"

        # --- down: drained, sealed, stopped; the lake equals the venue's tape ----------------
        venue.pause()
        fabric.wait_stored({f"trades:{s}": venue.trade_count(s) for s in venue.config.symbols},
                           timeout_s=60)
        down = cli("down")
        assert down.code == 0, down.err[-3000:]
        assert fabric_service.running("binance") is None
        assert not (store / "_wal" / "binance").exists() or \
            not list((store / "_wal" / "binance").glob("*.arrows"))
        assert_lake_equals_truth(venue, str(store))
        again = cli("down")
        assert again.code == 0 and "nothing to do" in again.out
        gone = cli("status", "--json")
        assert gone.code == 1 and json.loads(gone.out)["status"] == "absent"
        assert "no fabric for binance runs" in gone.err
        # Stopped on purpose: the breaker forgot the symbols, so no stale trip follows.
        time.sleep(MAX_AGE_S + 2)
        assert ray.get(breaker.status.remote())["state"] == "ARMED"
    finally:
        if run is not None:
            run.stop(collect=False)
        left = fabric_service.running("binance")
        if left is not None:
            left.kill()
        with contextlib.suppress(Exception):
            ray.kill(breaker, no_restart=True)


def test_the_streams_trade_driver_joins_the_running_fabric(ray_session: Any, make_venue: Any,
                                                           tmp_path: Path) -> None:
    """The driver subscribes to the long-lived fabric (no simulator of its own, no second
    connection), leaves it running, and refuses symbols the fabric does not carry."""
    from spark_ray.app import fabric_service
    from spark_ray.app.fabric import FabricConfig
    from spark_ray.chaos.approval import synthetic_approval

    from helpers import REPO

    venue = make_venue(trades_per_second=40, symbols=("BTCUSDT",), speed=10.0)
    cfg = FabricConfig(symbols=["BTCUSDT"], ws_url=venue.ws_url, rest_url=venue.rest_url,
                       store=str(tmp_path / "lake"), breaker=None)
    approved = synthetic_approval(tmp_path / "p", "sma_cross", {"fast": 2, "slow": 3}, "1s",
                                  by="tester", note="driver joins")
    bname = f"breaker:t{uuid.uuid4().hex[:8]}"

    def driver(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(REPO / "drivers" / "streams_trade.py"), "--address",
             ray_session.address, "--approved", str(approved), "--out", str(tmp_path / "runs"),
             "--breaker", bname, "--warmup-bars", "20", *extra],
            capture_output=True, text=True, env=cli_env(), timeout=300)

    fabric = fabric_service.up(cfg, lambda line: None)
    try:
        venue.resume()
        out = driver("--seconds", "8")
        assert out.returncode == 0, out.stderr[-4000:]
        res = json.loads(out.stdout.split("SPARK_RAY_RESULT ", 1)[1].splitlines()[0])
        assert res["fabric"] == "joined" and res["lake"] == {}
        assert sum(res["orders"].values()) > 0, res  # it traded bars from the shared feed
        assert len(market_data_connections(venue)) == 1
        assert fabric_service.running("binance") is not None  # left running
        assert ray.get(fabric.normalizers[0].status.remote())["subscribers"] == []
        bad = driver("--seconds", "2", "--symbols", "ETHUSDT")
        assert bad.returncode == 2 and "--symbols" in bad.stderr and "ETHUSDT" in bad.stderr
    finally:
        from spark_ray.actors.naming import lookup

        fabric_service.down("binance", lambda line: None)
        if (h := lookup(bname)) is not None:
            ray.kill(h, no_restart=True)
