"""BTCTurk end to end against the venue: the book stays equal to the venue's through duplicated,
dropped (a change-set gap) and malformed book frames, by re-joining ``obdiff``; trades still
equal the ground truth; a killed connector loses nothing the re-join's 421 list covers."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import ray

from spark_ray.actors.naming import actor_name
from spark_ray.lake import DataStore

from streams_helpers import assert_lake_equals_truth, run_to_halt, total

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
BOOK = ["trade", "depth", "ticker"]


def venue_top(rest_url: str, symbol: str) -> tuple[float, float, float, float]:
    """The venue's own best bid and offer (its REST book): the book's ground truth."""
    with _OPENER.open(f"{rest_url}/api/v3/depth?symbol={symbol}&limit=1", timeout=10) as r:
        d = json.loads(r.read())
    (bp, bq), (ap, aq) = d["bids"][0], d["asks"][0]
    return float(bp), float(bq), float(ap), float(aq)


def test_book_resyncs_after_a_change_set_gap_and_equals_the_venue(make_venue: Any,
                                                                   make_fabric: Any) -> None:
    n = 600
    v = make_venue(max_trades_per_symbol=n, trades_per_second=60, btcturk_push_s=0.1)
    f = make_fabric(v, exchange="btcturk", streams=BOOK)
    v.resume()
    v.wait_for_trades("BTCUSDT", 100)
    v.inject("drop", streams=["btcturk.obdiff"], symbol="BTCUSDT", count=2)  # CS gap
    v.inject("duplicate", probability=0.2, duration_s=2.0)  # trades, diffs, tickers
    v.inject("malformed", probability=0.1, duration_s=2.0, variant="wrong_types",
             streams=["btcturk.obdiff", "btcturk.ticker"])
    for s in v.config.symbols:
        v.wait_for_trades(s, n, timeout=60)
    got = f.wait_stored({f"trades:{s}": n for s in v.config.symbols}, timeout_s=60)
    assert all(got.get(f"trades:{s}", 0) >= n for s in v.config.symbols), got
    # The market is halted: the local book must come to equal the venue's.
    deadline = time.monotonic() + 20
    while True:
        tops = {s: venue_top(v.rest_url, s) for s in v.config.symbols}
        best = {s: ray.get(f.normalizers[0].best.remote(s)) for s in v.config.symbols}
        mine = {s: b and (b["bid_price"], b["bid_qty"], b["ask_price"], b["ask_qty"])
                for s, b in best.items()}
        if mine == tops or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert mine == tops
    f.quiesce(10.0)
    st = f.status()
    f.stop(compact=True)
    assert_lake_equals_truth(v, f.cfg.store, "btcturk")
    norm = st["normalizer:btcturk:0"]
    assert norm["depth_resyncs"] >= 1 and norm["books"] == {"BTCUSDT": True, "ETHUSDT": True}
    assert total(st, "connector", "resubscribes") >= 1  # left and re-joined obdiff
    assert total(st, "normalizer", "dups") > 0
    assert total(st, "normalizer", "dead_letters") > 0  # the malformed book frames
    kinds = {e["kind"] for e in v.fault_log() if e["action"] == "injected"}
    assert {"drop", "duplicate", "malformed"} <= kinds
    for s in v.config.symbols:
        book = DataStore(f.cfg.store).read("book", "btcturk", s).to_pylist()
        depth = [r for r in book if r["source"] == "depth"]
        assert {r["source"] for r in book} == {"depth", "bookTicker"}
        last = depth[-1]  # the lake's last book row is the venue's final book
        assert (last["bid_price"], last["bid_qty"], last["ask_price"], last["ask_qty"]) == \
            tops[s]
        assert all(r["bid_price"] < r["ask_price"] for r in book)


def _restart_connector(f: Any) -> None:
    """Kill the connector; start its restart as soon as Ray brings it back (the fabric's
    supervisor's job). The dying incarnation may still answer for a moment: the new one is the
    one whose frame count starts over."""
    conn = f.connectors[0]
    frames = ray.get(conn.status.remote(), timeout=30)["frames"]
    ray.kill(ray.get_actor(actor_name("connector", "btcturk", 0), namespace=f.cfg.namespace),
             no_restart=False)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if ray.get(conn.status.remote(), timeout=5)["frames"] < frames:
                f.supervise()
                return
        except (ray.exceptions.RayError, TimeoutError):
            pass
        time.sleep(0.1)
    raise AssertionError("the connector did not come back")


def test_killing_the_connector_loses_nothing_the_421_list_covers(make_venue: Any,
                                                                 make_fabric: Any) -> None:
    """A restarted connector's outage here is 1.5-4 s (measured): at 8 trades a second that
    stays within the 50 trades BTCTurk repeats on joining (faster markets need the REST poll
    hook)."""
    n = 200
    v = make_venue(max_trades_per_symbol=n, trades_per_second=8, btcturk_push_s=0.2)
    f = make_fabric(v, exchange="btcturk", streams=["trade", "depth"])
    v.resume()
    for k in (50, 120):
        v.wait_for_trades("BTCUSDT", k)
        _restart_connector(f)
    st = run_to_halt(v, f, n)
    assert total(st, "normalizer", "dups") > 0  # the 421 lists overlapped what was stored
    assert_lake_equals_truth(v, f.cfg.store, "btcturk")
