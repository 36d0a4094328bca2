"""Control plane (/health, /metrics, token-protected /chaos), the CLI, BTCTurk and depth live."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import ray

from spark_ray.evidence import verify
from spark_ray.lake import DataStore
from spark_ray.streams.control import ControlPlane, fabric_chaos, health, metric_families

from helpers import cli_env
from streams_helpers import assert_lake_equals_truth, run_to_halt, total

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def call(url: str, method: str = "GET", body: Any = None,
         headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with _OPENER.open(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_health_metrics_and_chaos(make_venue: Any, make_fabric: Any) -> None:
    n = 1200
    v = make_venue(max_trades_per_symbol=n)
    f = make_fabric(v)
    token = "s3cret-token-for-test"
    plane = ControlPlane(f.status, fabric_chaos(f, v), port=0, token=token, poll_s=0.2).start()
    try:
        v.resume()
        v.wait_for_trades("BTCUSDT", 200)
        time.sleep(0.5)
        status, body = call(f"{plane.url}/health")
        doc = json.loads(body)
        assert status == 200 and doc["status"] == "ok", doc
        assert set(doc["actors"]) == {"sink", "normalizer:binance:0", "connector:binance:0"}
        assert doc["actors"]["connector:binance:0"]["last_message_age_s"] < 5
        status, text = call(f"{plane.url}/metrics")
        assert status == 200
        assert b'streams_messages_total{exchange="binance",stream="trade",symbol="BTCUSDT"}' \
            in text
        # /chaos: refused without the token, with a wrong one, and with a bad kind.
        assert call(f"{plane.url}/chaos", "POST", {"kind": "gap"})[0] == 401
        assert call(f"{plane.url}/chaos", "POST", {"kind": "gap"},
                    {"Authorization": "Bearer nope"})[0] == 401
        auth = {"Authorization": f"Bearer {token}"}
        assert call(f"{plane.url}/chaos", "POST", {"kind": "meteor"}, auth)[0] == 400
        no_venue = ControlPlane(f.status, fabric_chaos(f), port=0, token=token).start()
        try:  # a venue fault asked of a fabric with no venue attached: refused, not a 500
            assert call(f"{no_venue.url}/chaos", "POST", {"kind": "drop", "target": "venue"},
                        auth)[0] == 400
        finally:
            no_venue.stop()
        # Reorder alone first: each of the 10 swaps is one out-of-order event (the late frame
        # arrives well inside the repair grace, so REST never fetches it first).
        ooo0 = total(f.status(), "normalizer", "out_of_order")
        assert call(f"{plane.url}/chaos", "POST", {"kind": "reorder", "count": 10},
                    auth)[0] == 200

        def swapped() -> bool:
            st = f.status()
            return total(st, "connector", "chaos_reordered") == 10 \
                and total(st, "normalizer", "out_of_order") - ooo0 >= 10
        deadline = time.monotonic() + 30
        while not swapped() and time.monotonic() < deadline:
            time.sleep(0.1)
        st = f.status()
        assert total(st, "connector", "chaos_reordered") == 10
        assert total(st, "normalizer", "out_of_order") - ooo0 == 10
        # Then everything else at once (a swap amid gaps and repairs would count unpredictably).
        for spec in ({"kind": "gap", "count": 30}, {"kind": "duplicate", "count": 20},
                     {"kind": "lag", "delay_ms": 300}, {"kind": "disconnect"},
                     {"kind": "drop", "count": 5, "target": "venue"}):
            status, body = call(f"{plane.url}/chaos", "POST", spec, auth)
            assert status == 200, body
            assert token.encode() not in body
        st = run_to_halt(v, f, n)
        assert total(st, "connector", "chaos_dropped") == 30
        assert total(st, "connector", "chaos_duplicated") == 20
        assert total(st, "connector", "chaos_reordered") == 10
        assert total(st, "connector", "reconnects") >= 1
        assert_lake_equals_truth(v, f.cfg.store)  # every injected fault healed
        plane.refresh()  # actors are gone now: unhealthy
        status, body = call(f"{plane.url}/health")
        assert status == 503 and json.loads(body)["status"] == "unhealthy"
    finally:
        plane.stop()


def test_chaos_is_refused_when_no_token_is_configured(monkeypatch: Any) -> None:
    monkeypatch.delenv("SPARK_RAY_STREAMS_TOKEN", raising=False)
    plane = ControlPlane(lambda: {}, lambda spec: None, port=0).start()
    try:
        assert call(f"{plane.url}/chaos", "POST", {"kind": "gap"},
                    {"Authorization": "Bearer "})[0] == 403
        assert call(f"{plane.url}/health")[0] == 503  # no actors: not healthy
    finally:
        plane.stop()


def test_metric_families_carry_every_counter_with_its_labels() -> None:
    status = {"normalizer:binance:0": {
        "messages": {"BTCUSDT:trade": 10}, "dups": {"BTCUSDT:trade": 2},
        "out_of_order": {"BTCUSDT:trade": 3}, "gaps_unrepaired": {"ETHUSDT:trade": 1},
        "last_ids": {"BTCUSDT:trade": 99}, "dead_letters": {"bad_json": 4}, "lag": {}}}
    got = {(f.name, tuple(sorted(s.labels.items())), s.value)
           for f in metric_families(status, "binance") for s in f.samples}
    lab = (("exchange", "binance"), ("stream", "trade"), ("symbol", "BTCUSDT"))
    assert ("streams_out_of_order", lab, 3) in got
    assert ("streams_dup", lab, 2) in got
    assert ("streams_messages", lab, 10) in got
    assert ("streams_seq_gap", (("exchange", "binance"), ("stream", "trade"),
                                ("symbol", "ETHUSDT")), 1) in got


def test_health_rules() -> None:
    ok, _ = health({"connector:x:0": {"running": True, "last_frame_age_s": 0.1}, "sink": {}})
    assert ok
    ok, body = health({"connector:x:0": {"running": True, "last_frame_age_s": 30.0}})
    assert not ok and "no message" in body["actors"]["connector:x:0"]["reason"]
    ok, _ = health({"normalizer:x:0": {"unrepaired": {"trades:BTCUSDT": [(5, 6)]}}})
    assert not ok


def test_depth_books_and_btcturk_live(make_venue: Any, make_fabric: Any) -> None:
    v = make_venue(start_paused=False, trades_per_second=100)
    # Three streams, at most two per connection: the connector shards over two connections.
    f = make_fabric(v, streams=["trade", "depth", "bookTicker"], start_ids={},
                    symbols=["BTCUSDT"], max_streams_per_connection=2)
    bt = make_fabric(v, exchange="btcturk", ws_url=v.btcturk_ws_url, rest_url=None,
                     symbols=["ETHUSDT"], start_ids={}, store=f.cfg.store + "-bt")
    deadline = time.monotonic() + 30
    best = None
    while time.monotonic() < deadline:
        best = ray.get(f.normalizers[0].best.remote("BTCUSDT"))
        st = ray.get(f.normalizers[0].status.remote())
        if best and st["books"].get("BTCUSDT") and f.stored_counts().get("trades:BTCUSDT"):
            break
        time.sleep(0.2)
    assert best is not None and best["bid_price"] < best["ask_price"]
    assert st["books"]["BTCUSDT"] is True and st["depth_resyncs"] == 0, \
        (st, ray.get(f.connectors[0].status.remote()))
    assert ray.get(f.connectors[0].status.remote())["connections"] == 2
    got_bt = bt.wait_stored({"trades:ETHUSDT": 200}, timeout_s=30)
    assert got_bt.get("trades:ETHUSDT", 0) >= 200
    f.stop()
    bt.stop()
    v.pause()
    book = DataStore(f.cfg.store).read("book", "binance", "BTCUSDT")
    assert book.num_rows > 0 and set(book["source"].to_pylist()) == {"depth", "bookTicker"}
    got = DataStore(bt.cfg.store).read("trades", "btcturk", "ETHUSDT")
    truth = v.ground_truth("ETHUSDT")
    ids = got["trade_id"].to_pylist()
    assert len(ids) >= 200 and len(set(ids)) == len(ids)
    by_id = {r["trade_id"]: r for r in truth.to_pylist()}
    for r in got.to_pylist()[:50]:
        t = by_id[r["trade_id"]]
        assert (r["price"], r["qty"], r["is_buyer_maker"]) == (t["price"], t["qty"],
                                                                t["is_buyer_maker"])


def test_slo_cli_writes_a_verifiable_summary(ray_session: Any, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    proc = subprocess.run(
        [sys.executable, "-m", "spark_ray", "slo", "--duration", "3", "--rate",
         "400", "--symbols", "BTCUSDT,ETHUSDT", "--out", str(out), "--address",
         ray_session.address, "--chaos"],
        capture_output=True, text=True, env=cli_env(), timeout=240, cwd=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    (run,) = out.iterdir()
    summary = json.loads((run / "p95-summary.json").read_text())
    assert summary["lost"] == 0 and summary["lake_duplicates"] == 0
    assert summary["unrepaired_gaps"] == 0 and summary["messages"] > 500
    assert summary["verdict"]["lost"] == "PASS"
    assert verify(run).ok
    bad = subprocess.run([sys.executable, "-m", "spark_ray", "slo", "--symbols",
                          "bad symbol!"], capture_output=True, text=True, env=cli_env(),
                         timeout=60)
    assert bad.returncode == 2 and "--symbols" in bad.stderr


def test_demo_stage_streams_into_the_lake(ray_session: Any, tmp_path: Path) -> None:
    """The demo's streams stage on the long-lived fabric (``streams up``'s code), then down."""
    from spark_ray.app.demo import live as live_mod
    from spark_ray.app.demo.streams import run_demo

    live = live_mod.start(tmp_path / "lake", log=lambda line: None)
    try:
        out = run_demo(tmp_path / "demo", live, seconds=3.0)
        assert out["detached"] is True and out["namespace"] == "spark_ray"
        assert out["unrepaired_gaps"] == 0 and int(out["repaired_rows"]) >= 25
        assert out["market_data_connections_peak"] == out["shards"] == 1
        summary = json.loads((tmp_path / "demo" / "p95-summary.json").read_text())
        assert summary["stored"] == out["stored"] and sum(out["stored"].values()) > 50
        # BTCTurk side by side, one cross-venue line for BTC in USDT, its rate named
        assert out["side_by_side"] == ["btcturk"]
        (line,) = [x for x in out["cross_venue"] if x.startswith("BTC/USDT: ")]
        assert "binance BTCUSDT" in line and "btcturk BTCTRY" in line, line
        assert "btcturk USDTTRY mid (bookTicker)" in line and "spread" in line, line
        view = json.loads((tmp_path / "demo" / "cross-venue.json").read_text())
        assert set(view["assets"]["BTC"]["venues"]) == {"binance", "btcturk"}
    finally:
        down = live.down()
    assert down["lake_equals_ground_truth"] is True, down
    assert down["lost"] == 0 and down["lake_duplicates"] == 0
    assert down["fabric_still_running"] is False
    from spark_ray.actors.naming import NAMESPACE, lookup
    from spark_ray.app import fabric_service

    assert fabric_service.running("btcturk") is None
    assert lookup(fabric_service.CROSS_NAME, NAMESPACE) is None


def test_streams_cli_runs_the_fabric_into_the_lake(ray_session: Any, make_venue: Any,
                                                   tmp_path: Path) -> None:
    v = make_venue(start_paused=False, trades_per_second=100)
    store = tmp_path / "lake"
    proc = subprocess.run(
        [sys.executable, "-m", "spark_ray", "streams", "--symbols", "BTCUSDT",
         "--streams", "trade,bookTicker", "--ws-url", v.ws_url, "--rest-url", v.rest_url,
         "--store", str(store), "--port", "0", "--duration", "4", "--namespace",
         f"cli-{time.monotonic_ns()}", "--address", ray_session.address],
        capture_output=True, text=True, env=cli_env(), timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "control plane http://127.0.0.1:" in proc.stdout
    ids = DataStore(str(store)).read("trades", "binance", "BTCUSDT")["trade_id"].to_pylist()
    assert len(ids) > 100 and ids == list(range(ids[0], ids[0] + len(ids)))  # no holes
    bad = subprocess.run([sys.executable, "-m", "spark_ray", "streams", "--streams",
                          "trade,nope"], capture_output=True, text=True, env=cli_env(),
                         timeout=60)
    assert bad.returncode == 2 and "--streams" in bad.stderr
