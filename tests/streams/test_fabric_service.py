"""The long-lived fabric end to end, with real Ray, the venue simulator and the CLI:

`streams up` (a separate process that exits) leaves detached actors; a `trade` run and two more
executors join it (one account: their equity adds up), and the venue sees one market-data
connection; `streams status` reports per symbol; a venue `stall` on BTCUSDT reaches the breaker
through the fabric's feed and trips the scope `symbol:BTCUSDT` only (within the stale threshold
+ 5 s): the BTCUSDT executor's entries are refused while a reduce-only exit on BTCUSDT goes
through (journaled), the ETHUSDT executor on the same fabric and breaker keeps trading, a real
Prometheus running the repo's alert rules fires BreakerSymbolTripped for that scope, and fresh
data re-arms it after the cooldown (the alert resolves); `streams down` drains into the lake,
which then equals the venue's ground truth.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import ray

from spark_ray.breaker.models import BreakerConfig

from helpers import cli_env, run_cli, signer
from streams_helpers import assert_lake_equals_truth

MAX_AGE_S = 4.0  # the breaker's stale threshold in this test
COOLDOWN_S = 6.0  # long enough for a few BTCUSDT bars (entries to refuse) after the stall
ACCOUNT = "desk"  # every executor here trades for one account: their equity adds up
# Only market-data health should trip this breaker. The drawdown and daily-loss rules stay on
# (their defaults): three executors on one account add up instead of overwriting one equity
# series, so neither rule may trip here. The probe trades every bar and pays fees on each, so
# the losing-streak rule stays off; the refused entries must not trip the reject-rate rule.
RULES: dict[str, Any] = {
    "cooldown_s": COOLDOWN_S, "consecutive_losses": {"enabled": False},
    "order_rate": {"limit": 100_000}, "reject_rate": {"enabled": False},
    "stale_data": {"max_age_s": MAX_AGE_S, "max_lag_s": 60.0},
}
SYMBOL_ALERT = "BreakerSymbolTripped"


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 0.25,
             raise_: bool = True) -> Any:
    """``check()``'s first truthy answer; on timeout an AssertionError naming ``what`` (or,
    with ``raise_=False``, the last answer)."""
    deadline = time.monotonic() + timeout
    got: Any = None
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(every)
    if not raise_:
        return got
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def market_data_connections(venue: Any) -> list[dict[str, Any]]:
    return [c for c in venue.connections() if any("@trade" in s for s in c["streams"])]


def paper_spec(approved: Path, venue: Any, symbol: str, breaker: str, journal: Path,
               name: str, flatten_on_trip: bool = False) -> Any:
    from spark_ray.execution.executor import ExecutorConfig
    from spark_ray.execution.params import load_approved
    from spark_ray.execution.spec import ExecutorSpec

    ap = load_approved(approved)
    return ExecutorSpec(
        config=ExecutorConfig(name=name.replace(":", "-"), symbols=(symbol,), interval="1s",
                              mode="paper", cash=5_000.0, warmup_bars=20, account=ACCOUNT,
                              flatten_on_trip=flatten_on_trip),
        strategy=ap.strategy, params=ap.params, journal_path=str(journal),
        approved_path=ap.path, approval=ap.approval, broker="paper", rest_url=venue.rest_url,
        ws_url=venue.ws_url, breaker_name=breaker, control_port=0)


def scope_state(breaker: Any, scope: str) -> str | None:
    sc = ray.get(breaker.status.remote(), timeout=30)["scopes"].get(scope)
    return None if sc is None else str(sc["state"])


def symbol_alerts(client: Any, alert: str, breaker: str) -> list[dict[str, Any]]:
    """Active instances of ``alert`` for ``breaker`` (other tests' breakers may share Ray)."""
    return [a for a in client.alerts() if a["labels"].get("alertname") == alert
            and a["labels"].get("breaker") == breaker]


def start_prometheus(tmp_path: Path) -> Any:
    """A real Prometheus scraping this session's Ray (its file SD) with the repo's rules."""
    from spark_ray.app.session import current_session_dir
    from spark_ray.observe import prom

    if prom.find_binary("prometheus") is None:
        msg = f"prometheus not installed (apt-get install -y {prom.APT_PACKAGE})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return prom.start(tmp_path / "prom", sd_path=prom.sd_file(current_session_dir()),
                      port=prom.free_port())


def test_long_lived_fabric_shared_by_executors_and_feeding_the_breaker(
        ray_session: Any, make_venue: Any, tmp_path: Path) -> None:
    from spark_ray.actors.breaker import get_breaker
    from spark_ray.app import fabric_service
    from spark_ray.app.trading import TradingRun
    from spark_ray.breaker.models import Order, Signal
    from spark_ray.chaos.approval import synthetic_approval
    from spark_ray.observe import prom

    prom_state = start_prometheus(tmp_path)
    client = prom.PromClient(prom_state.url)
    venue = make_venue(trades_per_second=50)
    addr = ray_session.address
    env = cli_env()
    bname = f"breaker:t{uuid.uuid4().hex[:8]}"
    journal = tmp_path / "breaker.jsonl"
    breaker, _ = get_breaker(bname, config=BreakerConfig.model_validate(RULES),
                             journal_path=journal)
    store = tmp_path / "lake"
    sma = synthetic_approval(tmp_path / "sma", "sma_cross", {"fast": 2, "slow": 3}, "1s",
                             note="fabric service", signer=signer("ci"))
    probe = synthetic_approval(tmp_path / "probe", "spark_ray.execution.probe:Alternate",
                               {"size_pct": 0.2}, "1s", note="fabric service", signer=signer("ci"))
    runs: list[TradingRun] = []
    ages: list[float] = []

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

        # --- three paper executors on the one fabric, one account: a `trade` run (BTCUSDT,
        # its own strategy scope from the CLI) and this driver's two probes, one per symbol ---
        trade = subprocess.Popen(
            [sys.executable, "-m", "spark_ray", "trade", "--params", str(sma), "--symbols",
             "BTCUSDT", "--paper", "--rest-url", venue.rest_url, "--ws-url", venue.ws_url,
             "--warmup-bars", "20", "--duration", "12", "--breaker", bname, "--port", "0",
             "--name", f"executor:cli-{uuid.uuid4().hex[:6]}", "--journal",
             str(tmp_path / "cli-journal.jsonl"), "--out", str(tmp_path / "runs"),
             "--account", ACCOUNT, "--strategy", "sma-cli", "--address", addr],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        execs: dict[str, Any] = {}
        for sym in ("ETHUSDT", "BTCUSDT"):
            spec = paper_spec(probe, venue, sym, bname, tmp_path / f"probe-{sym}.jsonl",
                              f"executor:probe-{sym.lower()}-{uuid.uuid4().hex[:6]}")
            shared = fabric_service.join("binance", [sym])
            assert shared is not None
            runs.append(TradingRun(spec, spec.config.name, fabric.cfg, shared=shared).start())
            execs[sym] = runs[-1].executor
        eth, btc = execs["ETHUSDT"], execs["BTCUSDT"]
        for ex in (eth, btc):
            wait_for(partial(bars_seen, ex, 3), 90, "the joined executors' first bars")
        counts = [len(market_data_connections(venue))]
        out, err = trade.communicate(timeout=240)
        counts.append(len(market_data_connections(venue)))
        assert trade.returncode == 0, err[-3000:]
        assert "joining the running fabric:binance" in err and "joined fabric:binance" in out
        assert f"scopes account:{ACCOUNT} strategy:sma-cli" in out, out
        summary = json.loads([ln for ln in out.splitlines() if ln.startswith('{"bars"')][-1])
        assert summary["bars"] >= 3, summary
        assert counts == [1, 1], counts  # one market-data connection, every executor fed
        lacking = run_cli("trade", "--params", str(sma), "--symbols", "SOLUSDT", "--paper",
                          "--address", addr, "--out", str(tmp_path / "runs"), env=env)
        assert lacking.code == 2 and "--symbols" in lacking.err and "SOLUSDT" in lacking.err
        tree = ray.get(breaker.status.remote())["tree"]["accounts"][ACCOUNT]
        assert {"sma-cli"} <= set(tree["strategies"]), tree["strategies"].keys()
        assert len(tree["reporters"]) == 3, tree["reporters"]  # three executors add up
        assert tree["equity"] == pytest.approx(sum(tree["reporters"].values()))

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
        assert client.wait_ray_scraped(60), "Prometheus never scraped Ray's metrics"
        assert not symbol_alerts(client, SYMBOL_ALERT, bname)

        # --- the stall: BTCUSDT goes silent, ETHUSDT keeps flowing -------------------------
        fault = venue.inject("stall", symbol="BTCUSDT")
        t_stall, stall_wall = time.monotonic(), time.time()
        wait_for(partial(tripped, fabric, breaker, ages), MAX_AGE_S + 20,
                 "symbol:BTCUSDT to trip on BTCUSDT's silence")
        trip_s = time.monotonic() - t_stall
        print(f"symbol:BTCUSDT tripped {trip_s:.1f} s after the stall; BTCUSDT ages {ages}")
        assert trip_s <= MAX_AGE_S + 5, trip_s
        tail = ages[-8:]  # the first samples may still see frames sent before the stall
        assert tail == sorted(tail) and ages[-1] >= MAX_AGE_S - 1.5, ages  # the age grows
        snap = ray.get(breaker.status.remote())
        scopes = snap["scopes"]
        assert scopes["symbol:BTCUSDT"]["state"] == "TRIPPED"
        assert scopes["symbol:BTCUSDT"]["last_trip"]["rule"] == "stale_data"
        assert snap["global_state"] == "ARMED", snap["conditions"]  # the trip is not global
        for other in ("symbol:ETHUSDT", f"account:{ACCOUNT}", "strategy:sma-cli"):
            assert scopes[other]["state"] == "ARMED", (other, scopes[other])
        (cond,) = [c for c in snap["conditions"] if c["rule"] == "stale_data"]
        assert cond["scope"] == "symbol:BTCUSDT" and cond["values"]["source"] == "BTCUSDT"
        refused = ray.get(breaker.allow.remote(Order("BTCUSDT", "buy", 0.01, who="test")))
        assert not refused.allowed and any("symbol:BTCUSDT" in r for r in refused.reasons)
        assert ray.get(breaker.allow.remote(Order("ETHUSDT", "buy", 0.01, who="test"))).allowed

        # A reduce-only exit on BTCUSDT, asked as the executors ask (with the position it
        # reduces in the same message): allowed through the tripped scope, journaled.
        who = "exit-probe"
        exit_order = Order("BTCUSDT", "sell", 0.01, order_id=f"x-{uuid.uuid4().hex[:6]}",
                           who=who, account=ACCOUNT, strategy="exits", reduce_only=True,
                           tag="flatten")
        (dec,) = ray.get(breaker.allow_many.remote(
            [exit_order], [Signal("position", 0.05, "BTCUSDT", who=who)]), timeout=30)
        assert dec.allowed and "symbol:BTCUSDT" in dec.reasons[0], dec
        entry = Order("BTCUSDT", "buy", 0.01, who=who, account=ACCOUNT, strategy="exits")
        assert not ray.get(breaker.allow.remote(entry), timeout=30).allowed

        def exit_events() -> list[dict[str, Any]]:
            evs = [json.loads(ln) for ln in journal.read_text().splitlines() if ln.strip()]
            return [e for e in evs if e.get("kind") == "exit"
                    and e.get("scope") == "symbol:BTCUSDT"
                    and (e.get("order") or {}).get("order_id") == exit_order.order_id]

        (ev,) = wait_for(exit_events, 10, "the breaker journal's record of the exit")
        assert ev["values"]["allowed"] is True and ev["order"]["reduce_only"] is True, ev
        bad = cli("status", "--max-age-s", str(MAX_AGE_S))
        assert bad.code == 1 and "BTCUSDT" in bad.out and "no message for" in bad.out, bad.out

        # The alert: Prometheus (scraping Ray's metrics export) fires it for this scope only.
        fired = wait_for(lambda: [a for a in symbol_alerts(client, SYMBOL_ALERT, bname)
                                  if a["state"] == "firing"], 90,
                         f"{SYMBOL_ALERT} firing in Prometheus", every=1.0)
        fired_s = time.monotonic() - t_stall
        assert [a["labels"]["scope"] for a in fired] == ["symbol:BTCUSDT"], fired
        assert "spark-ray streams status" in fired[0]["annotations"]["runbook"]
        assert not [a for a in symbol_alerts(client, "BreakerTripped", bname)
                    if a["state"] == "firing"], "a symbol trip is not the breaker's global trip"
        print(f"{SYMBOL_ALERT} firing {fired_s:.0f} s after the stall")
        eth_filled_tripped = [o for o in ray.get(eth.orders.remote()) if o["status"] == "FILLED"
                              and o["created_ms"] >= (stall_wall + trip_s) * 1000]
        assert scope_state(breaker, "symbol:BTCUSDT") == "TRIPPED"
        assert eth_filled_tripped, "the ETHUSDT executor stopped trading on BTCUSDT's trip"

        # --- the stall ends: fresh data, cooldown, re-armed --------------------------------
        venue.clear_faults(fault)
        t_clear, clear_wall = time.monotonic(), time.time()
        wait_for(lambda: scope_state(breaker, "symbol:BTCUSDT") == "ARMED",
                 COOLDOWN_S + 30, "symbol:BTCUSDT to re-arm after fresh data and the cooldown")
        rearm_s = time.monotonic() - t_clear
        print(f"re-armed {rearm_s:.1f} s after the stall ended")
        assert rearm_s >= COOLDOWN_S
        # In the cooldown the BTCUSDT bars came back: its flatten filled and its entries were
        # refused by the symbol's scope; the ETHUSDT executor was never refused anything.
        btc_orders = ray.get(btc.orders.remote())
        refused_entries = [o for o in btc_orders if o["side"] == "buy"
                           and o["status"] == "REJECTED" and o["reason"].startswith("breaker:")
                           and o["created_ms"] >= stall_wall * 1000]
        assert refused_entries, [(o["side"], o["status"], o["reason"]) for o in btc_orders[-8:]]
        assert all("symbol:BTCUSDT" in o["reason"] for o in refused_entries), refused_entries
        eth_orders = ray.get(eth.orders.remote())
        assert not [o for o in eth_orders if o["status"] == "REJECTED"], eth_orders
        assert [o for o in eth_orders if o["status"] == "FILLED"
                and o["created_ms"] >= clear_wall * 1000 - 60_000]
        resolved = wait_for(lambda: not [a for a in symbol_alerts(client, SYMBOL_ALERT, bname)
                                         if a["state"] == "firing"], 90,
                            f"{SYMBOL_ALERT} to resolve", every=1.0)
        assert resolved
        print(f"{SYMBOL_ALERT} resolved {time.monotonic() - t_clear:.0f} s after the stall ended")
        snap = ray.get(breaker.status.remote())
        assert snap["state"] == "ARMED" and snap["trips"].get("max_drawdown", 0) == 0 \
            and snap["trips"].get("daily_loss", 0) == 0, snap["trips"]
        assert cli("status", "--max-age-s", str(MAX_AGE_S)).code == 0
        for r in runs:
            r.stop(collect=False)
        runs.clear()
        assert ray.get(fabric.normalizers[0].status.remote())["subscribers"] == [], \
            "the CLI run and the probes all left the shared fabric"

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
        for r in runs:
            r.stop(collect=False)
        left = fabric_service.running("binance")
        if left is not None:
            left.kill()
        with contextlib.suppress(Exception):
            ray.kill(breaker, no_restart=True)
        prom.stop(prom_state)


def bars_seen(ex: Any, n: int) -> bool:
    return bool(ray.get(ex.status.remote(), timeout=30)["stats"].get("bars", 0) >= n)


def tripped(fabric: Any, breaker: Any, ages: list[float]) -> bool:
    """symbol:BTCUSDT TRIPPED yet? Records BTCUSDT's last-message age as the fabric sees it."""
    ages.append(fabric.feed_status()["symbols"]["BTCUSDT"]["last_message_age_s"])
    return scope_state(breaker, "symbol:BTCUSDT") == "TRIPPED"


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
                                  note="driver joins", signer=signer("ci"))
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
