"""Ground truth is complete: a client that reads everything gets exactly the ledger, and back."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from spark_ray.schemas import TRADE_SCHEMA
from spark_ray.venue import Venue

from venue_helpers import connect, http


def test_every_published_trade_reaches_a_reader_and_the_ledger(make_venue: Any) -> None:
    n = 400
    v = make_venue(trades_per_second=1000, max_trades_per_symbol=n, start_paused=True)

    async def main() -> list[Any]:
        url = f"{v.ws_url}/stream?streams=btcusdt@trade/ethusdt@trade/btcusdt@aggTrade"
        frames: list[Any] = []
        async with connect(url) as ws:
            await asyncio.to_thread(v.resume)  # the market opens once we listen
            while sum(1 for f in frames if f["stream"].endswith("@trade")) < 2 * n:
                frames.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
            await asyncio.sleep(0.2)
            while True:  # the last aggregate trades
                try:
                    frames.append(json.loads(await asyncio.wait_for(ws.recv(), 0.3)))
                except TimeoutError:
                    break
        return frames

    frames = asyncio.run(main())
    assert v.status()["halted"]
    for sym in ("BTCUSDT", "ETHUSDT"):
        truth = v.ground_truth(sym)
        assert truth.schema == TRADE_SCHEMA
        assert truth["trade_id"].to_pylist() == list(range(1, n + 1))
        assert v.ground_truth_ids(sym) == list(range(1, n + 1))
        got = [f["data"] for f in frames if f["stream"] == f"{sym.lower()}@trade"]
        assert [t["t"] for t in got] == list(range(1, n + 1))  # nothing lost, nothing twice
        for t, row in zip(got, truth.to_pylist(), strict=True):
            assert float(t["p"]) == row["price"] and float(t["q"]) == row["qty"]
            assert t["m"] == row["is_buyer_maker"]
            assert t["T"] == int(row["trade_time"].timestamp() * 1000)
            assert t["E"] == int(row["event_time"].timestamp() * 1000)
            assert row["exchange"] == "binance" and row["symbol"] == sym
    aggs = [f["data"] for f in frames if f["stream"] == "btcusdt@aggTrade"]
    covered = [i for a in aggs for i in range(a["f"], a["l"] + 1)]
    assert covered == list(range(1, n + 1))
    assert [a["a"] for a in aggs] == list(range(1, len(aggs) + 1))


def test_process_mode_serves_and_answers_through_the_admin_endpoint() -> None:
    with Venue(symbols=("BTCUSDT",), seed=4, trades_per_second=200, process=True,
               history_minutes=60) as v:
        status, _, body = http(f"{v.rest_url}/api/v3/ping")
        assert (status, body) == (200, {})
        v.wait_for_trades("BTCUSDT", 20)
        fid = v.inject("drop", probability=0.5, symbol="BTCUSDT")
        assert fid == 1 and v.fault_log()[0]["action"] == "activated"
        v.pause()
        truth = v.ground_truth("BTCUSDT")
        assert truth.schema == TRADE_SCHEMA and truth.num_rows >= 20
        assert v.ground_truth_ids("BTCUSDT") == truth["trade_id"].to_pylist()
        assert v.clear_faults() == 1
        assert v.connections() == []
