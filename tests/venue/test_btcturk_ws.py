"""The BTCTurk-format feed on /btcturk: its model shapes, trade ids and order-book change sets."""

from __future__ import annotations

import asyncio
import itertools
import json
from decimal import Decimal
from typing import Any

from venue_helpers import collect, connect, http


def _join(channel: str, event: str, join: bool = True) -> str:
    return json.dumps([151, {"type": 151, "channel": channel, "event": event, "join": join}])


def test_trade_channel(venue: Any) -> None:
    async def main() -> tuple[Any, list[Any]]:
        async with connect(venue.btcturk_ws_url) as ws:
            welcome = json.loads(await ws.recv())
            await ws.send(_join("trade", "BTCUSDT"))
            frames = await collect(ws, 1.0)
            await ws.send(_join("trade", "BTCUSDT"))
            await ws.send(_join("trade", "NOPEUSDT"))
            await ws.send(_join("trade", "BTCUSDT", join=False))
            frames += await collect(ws, 0.4)
            return welcome, frames

    welcome, frames = asyncio.run(main())
    assert welcome == [991, {"type": 991, "current": "6.0.0", "min": "2.3.0"}]
    assert frames[0] == [100, {"type": 100, "ok": True, "message": "join|trade:BTCUSDT"}]
    assert frames[1][0] == 421
    listing = frames[1][1]
    assert (listing["channel"], listing["event"], listing["type"]) == ("trade", "BTCUSDT", 421)
    singles = [f[1] for f in frames if f[0] == 422]
    assert singles
    assert list(singles[0]) == ["D", "I", "A", "P", "PS", "S", "channel", "event", "type"]
    ids = [int(t["I"]) for t in singles]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert all(isinstance(t["I"], str) and isinstance(t["P"], str) and t["S"] in (0, 1)
               for t in singles)
    results = [f[1] for f in frames if f[0] == 100][1:]
    assert results == [
        {"type": 100, "ok": False, "message": "join|trade:BTCUSDT"},  # duplicate join
        {"type": 100, "ok": True, "message": "join|trade:NOPEUSDT"},  # unknown: ok, silent
        {"type": 100, "ok": True, "message": "leave|trade:BTCUSDT"},
    ]
    truth = {r["trade_id"]: r for r in venue.ground_truth("BTCUSDT").to_pylist()}
    for t in singles + listing["items"]:
        row = truth[int(t["I"])]
        assert float(t["P"]) == row["price"] and float(t["A"]) == row["qty"]
        assert t["S"] == (1 if row["is_buyer_maker"] else 0)
        assert int(t["D"]) == int(row["trade_time"].timestamp() * 1000)


def test_obdiff_change_sets_rebuild_the_book(make_venue: Any) -> None:
    v = make_venue(btcturk_push_s=0.2)

    async def main() -> tuple[list[Any], Any]:
        async with connect(v.btcturk_ws_url) as ws:
            await ws.recv()
            await ws.send(_join("obdiff", "BTCUSDT"))
            await ws.send(_join("orderbook", "BTCUSDT"))
            frames = await collect(ws, 1.2)
            await asyncio.to_thread(v.pause)
            frames += await collect(ws, 0.5)
            _, _, depth = await asyncio.to_thread(
                http, f"{v.rest_url}/api/v3/depth?symbol=BTCUSDT&limit=100")
            return frames, depth

    frames, depth = asyncio.run(main())
    whole = [f[1] for f in frames if f[0] == 431 and f[1]["channel"] == "orderbook"]
    assert len(whole) >= 3 and all(b["CS"] == a["CS"] + 1 for a, b in itertools.pairwise(whole))
    frames = [f for f in frames if f[1].get("channel") != "orderbook"
              and "orderbook" not in f[1].get("message", "")]
    assert frames[0][0] == 100 and frames[1][0] == 431
    snap = frames[1][1]
    assert (snap["channel"], snap["PS"], snap["type"]) == ("obdiff", "BTCUSDT", 431)
    bids = {Decimal(r["P"]): Decimal(r["A"]) for r in snap["BO"]}
    asks = {Decimal(r["P"]): Decimal(r["A"]) for r in snap["AO"]}
    cs = snap["CS"]
    diffs = [f[1] for f in frames[2:] if f[0] == 432]
    assert len(diffs) >= 3
    for d in diffs:
        assert d["CS"] == cs + 1 and d["channel"] == "obdiff"
        cs = d["CS"]
        for book, rows in ((bids, d["BO"]), (asks, d["AO"])):
            for r in rows:
                p, a = Decimal(r["P"]), Decimal(r["A"])
                if r["CP"] == 1:
                    assert p not in book
                    book[p] = a
                elif r["CP"] == 0:
                    assert p in book
                    book[p] = a
                else:
                    assert r["CP"] == 3 and p in book
                    del book[p]
    assert bids == {Decimal(p): Decimal(q) for p, q in depth["bids"]}
    assert asks == {Decimal(p): Decimal(q) for p, q in depth["asks"]}
    assert {Decimal(r["P"]): Decimal(r["A"]) for r in whole[-1]["BO"]} == bids


def test_ticker_channel_sends_the_best_bid_and_offer(make_venue: Any) -> None:
    v = make_venue(btcturk_push_s=0.2)

    async def main() -> tuple[list[Any], Any, Any]:
        async with connect(v.btcturk_ws_url) as ws:
            await ws.recv()
            await ws.send(_join("ticker", "BTCUSDT"))
            frames = await collect(ws, 1.2)
            await asyncio.to_thread(v.pause)
            frames += await collect(ws, 0.5)
            _, _, depth = await asyncio.to_thread(
                http, f"{v.rest_url}/api/v3/depth?symbol=BTCUSDT&limit=5")
            _, _, last = await asyncio.to_thread(
                http, f"{v.rest_url}/api/v3/trades?symbol=BTCUSDT&limit=1")
            return frames, depth, last

    frames, depth, last = asyncio.run(main())
    assert frames[0] == [100, {"type": 100, "ok": True, "message": "join|ticker:BTCUSDT"}]
    ticks = [f[1] for f in frames if f[0] == 402]
    assert len(ticks) >= 2  # one on joining, then with the book's changes
    assert all((t["channel"], t["event"], t["PS"], t["type"]) == ("ticker", "BTCUSDT",
                                                                  "BTCUSDT", 402) for t in ticks)
    assert all(Decimal(t["B"]) < Decimal(t["A"]) for t in ticks)
    t = ticks[-1]  # after the pause: the book and the last trade as REST shows them
    assert (Decimal(t["B"]), Decimal(t["BA"])) == tuple(Decimal(x) for x in depth["bids"][0])
    assert (Decimal(t["A"]), Decimal(t["AA"])) == tuple(Decimal(x) for x in depth["asks"][0])
    assert Decimal(t["LA"]) == Decimal(last[0]["price"])
