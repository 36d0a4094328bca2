"""More of the fabric against the venue: aggTrade end to end with REST repair, a killed
connector, and subscribers that receive every stored trade."""

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


def rest_agg_ids(rest_url: str, symbol: str) -> list[int]:
    """Every aggregate trade id the venue answers over REST (its own ground truth)."""
    ids: list[int] = []
    from_id = 0
    while True:
        url = f"{rest_url}/api/v3/aggTrades?symbol={symbol}&fromId={from_id}&limit=1000"
        with _OPENER.open(url, timeout=10) as r:
            rows = json.loads(r.read())
        if not rows:
            return ids
        ids += [int(x["a"]) for x in rows]
        from_id = ids[-1] + 1


def test_agg_trades_end_to_end_with_drops_repaired(make_venue: Any, make_fabric: Any) -> None:
    n = 1200
    v = make_venue(max_trades_per_symbol=n, trades_per_second=300)
    first = {s: rest_agg_ids(v.rest_url, s) for s in v.config.symbols}
    f = make_fabric(v, streams=["aggTrade"], start_ids={
        f"agg_trades:{s}": (ids[0] if ids else 0) for s, ids in first.items()})
    v.resume()
    v.wait_for_trades("BTCUSDT", 100)
    v.inject("drop", probability=0.1, duration_s=1.5)
    for s in v.config.symbols:
        v.wait_for_trades(s, n, timeout=60)
    truth = {s: rest_agg_ids(v.rest_url, s) for s in v.config.symbols}
    got = f.wait_stored({f"agg_trades:{s}": len(ids) for s, ids in truth.items()}, 60)
    f.quiesce(10.0)
    st = f.status()
    f.stop(compact=True)
    assert total(st, "normalizer", "repaired_rows") > 0, got  # drops came back over REST
    assert total(st, "normalizer", "gaps_unrepaired") == 0
    for s, ids in truth.items():
        lake = DataStore(f.cfg.store).read("agg_trades", "binance", s)["trade_id"].to_pylist()
        assert lake == ids, (s, len(lake), len(ids))


def test_killing_the_connector_loses_nothing(make_venue: Any, make_fabric: Any) -> None:
    n = 1500
    v = make_venue(max_trades_per_symbol=n, trades_per_second=300)
    f = make_fabric(v)
    v.resume()
    for k in (300, 800):
        v.wait_for_trades("BTCUSDT", k)
        ray.kill(ray.get_actor(actor_name("connector", "binance", 0), namespace=f.cfg.namespace),
                 no_restart=False)
        time.sleep(0.3)  # trades keep flowing while nobody reads them
    st = run_to_halt(v, f, n)  # supervises: the restarted connector is started again
    assert total(st, "normalizer", "repaired_rows") > 0  # the outage came back over REST
    assert total(st, "normalizer", "gaps_unrepaired") == 0
    assert_lake_equals_truth(v, f.cfg.store)


@ray.remote(num_cpus=0)
class Collector:
    def __init__(self, first_call_s: float = 0.0) -> None:
        self.ids: dict[str, list[int]] = {}
        self.books = 0
        self.first_call_s = first_call_s  # a subscriber slow to start (a busy node)

    def on_market_data(self, payload: dict[str, Any]) -> None:
        if self.first_call_s:
            time.sleep(self.first_call_s)
            self.first_call_s = 0.0
        for t in payload["trades"].values():
            for sym, tid in zip(t["symbol"].to_pylist(), t["trade_id"].to_pylist(), strict=True):
                self.ids.setdefault(sym, []).append(tid)
        if payload["book"] is not None:
            self.books += payload["book"].num_rows

    def seen(self) -> tuple[dict[str, list[int]], int]:
        return self.ids, self.books


def test_subscribers_receive_every_stored_trade_and_book_updates(make_venue: Any,
                                                                 make_fabric: Any) -> None:
    n = 800
    v = make_venue(max_trades_per_symbol=n, trades_per_second=300)
    f = make_fabric(v, streams=["trade", "bookTicker"])
    # Its first call outlasts the market: the rest piles up in the normalizer's backlog, and
    # the stop must hand all of it over rather than drop it (seen under CI load).
    sub = Collector.remote(first_call_s=5.0)  # type: ignore[attr-defined]
    ray.get(f.normalizers[0].subscribe.remote(sub))
    v.resume()
    v.inject("gap", symbol="BTCUSDT", count=20)  # repaired rows reach subscribers too
    st = run_to_halt(v, f, n)
    assert total(st, "normalizer", "subscriber_drops") == 0
    ids, books = ray.get(sub.seen.remote())
    for s in v.config.symbols:
        assert sorted(ids[s]) == v.ground_truth_ids(s)
    assert books > 0
    ray.kill(sub)
