"""Our parsers on payloads the real exchanges sent (``tests/data/``, sources in its README).

Every recorded frame must land with the values it carries and nothing may be dead-lettered; a
copy corrupted in one field must be dead-lettered with the reason naming that field. Values
asserted below are read off the recorded files, not computed from them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from spark_ray.adapters import get_adapter
from spark_ray.adapters.binance import fastparse, rest
from spark_ray.adapters.binance.spot import SpotRest
from spark_ray.adapters.binance.websocket import BinanceParser
from spark_ray.adapters.btcturk.websocket import BTCTurkParser
from spark_ray.adapters.events import ParsedBatch

DATA = Path(__file__).resolve().parent.parent / "data"
BINANCE = DATA / "binance-format"
BTCTURK = DATA / "btcturk-format"


def capture() -> list[tuple[int, bytes]]:
    """cryptofeed's capture: (receive time in ms, frame bytes exactly as recorded)."""
    lines = (BINANCE / "cryptofeed-BINANCE.ws.1.0.head.txt").read_bytes().split(b"\n")
    assert lines[0].startswith(b"wss://stream.binance.com:9443/stream?streams=")
    out = []
    for line in lines[1:]:
        if line:
            ts, frame = line.split(b": ", 1)
            out.append((int(float(ts) * 1000), frame))
    return out


def parse(frames: list[bytes], recv: list[int] | int, symbols: set[str] | None = None,
          ) -> ParsedBatch:
    times = recv if isinstance(recv, list) else [recv] * len(frames)
    return BinanceParser(symbols).parse(frames, times)


def data_of(frame: bytes) -> bytes:
    """The payload of a combined-stream frame, cut from the recorded bytes (what a raw
    ``/ws/<stream>`` connection carries)."""
    assert frame.startswith(b'{"stream":') and frame.endswith(b"}")
    return frame[frame.index(b',"data":') + len(b',"data":'):-1]


def jsonl(path: Path) -> list[bytes]:
    return [line.encode() for line in path.read_text().splitlines() if line]


# --- Binance WebSocket ----------------------------------------------------------------------------
def test_binance_capture_every_frame_lands_with_its_recorded_values() -> None:
    cap = capture()
    frames, recv = [f for _, f in cap], [t for t, _ in cap]
    out = parse(frames, recv, {"FTMUSDT", "XMRBTC", "SXPBTC", "BADGERBTC"})
    assert out.dead == [] and out.control == [] and out.frames == 25
    assert (len(out.depth), len(out.tickers), len(out.klines)) == (17, 6, 1)
    assert len(out.cols("agg_trades")) == 1 and "trades" not in out.trades

    first = out.depth[0]  # 1628952395.799805: xmrbtc@depth@100ms
    assert (first.symbol, first.first_id, first.last_id) == ("XMRBTC", 717720856, 717720857)
    assert first.bids == [] and first.asks == [(0.005787, 31.231), (0.005788, 26.049)]
    assert (first.event_time, first.recv_time) == (1628952395768, 1628952395799)
    ftm = out.depth[1]  # a zero quantity removes a level: it must survive as 0.0
    assert ftm.bids == [(0.33988, 1500.0), (0.33984, 4625.8), (0.33983, 0.0), (0.33974, 0.0)]
    # Binance's ids chain without gaps within a stream: U is the previous u + 1.
    ftm_events = [d for d in out.depth if d.symbol == "FTMUSDT"]
    assert len(ftm_events) == 8
    assert all(b.first_id == a.last_id + 1 for a, b in itertools.pairwise(ftm_events))

    t = out.tickers[0]  # 1628952397.5236201: ftmusdt@bookTicker
    assert (t.symbol, t.update_id, t.bid_price, t.bid_qty, t.ask_price, t.ask_qty) == (
        "FTMUSDT", 800360982, 0.33989, 1565.6, 0.34012, 703.0)
    assert t.recv_time == 1628952397523

    agg = out.cols("agg_trades")
    assert (agg.symbol, agg.trade_id, agg.price, agg.qty, agg.maker) == (
        ["FTMUSDT"], [31718372], [0.33993], [99.9], [True])
    assert (agg.trade_time, agg.event_time, agg.recv_time) == (
        [1628952396572], [1628952396573], [1628952397705])

    k = out.klines[0]
    assert (k.symbol, k.interval, k.open_time, k.close_time, k.event_time) == (
        "FTMUSDT", "1m", 1628952360000, 1628952419999, 1628952396573)
    assert (k.open, k.high, k.low, k.close, k.volume, k.trades, k.closed) == (
        0.34064, 0.3407, 0.33934, 0.33993, 208601.0, 78, False)
    assert (k.quote_volume, k.taker_buy_base, k.taker_buy_quote) == (
        70846.769689, 156046.3, 52984.169322)

    assert out.counts[("FTMUSDT", "depth")] == 8 and out.counts[("XMRBTC", "bookTicker")] == 1
    assert out.lags[("XMRBTC", "depth")][0] == 1628952395799 - 1628952395768


def test_binance_raw_stream_payloads_parse_like_combined_frames() -> None:
    """A raw ``/ws/<stream>`` connection sends the payload alone: the same events, no stream
    name to check against."""
    cap = capture()
    combined = parse([f for _, f in cap], 1628952400000)
    raw = parse([data_of(f) for _, f in cap], 1628952400000)
    assert raw.dead == [] and combined.dead == []
    assert (raw.depth, raw.tickers, raw.klines) == (combined.depth, combined.tickers,
                                                   combined.klines)
    assert raw.trades == combined.trades


def test_binance_recorded_agg_trades_take_the_vectorized_path_with_the_same_result() -> None:
    ftm = capture()[22][1]
    assert b'"e":"aggTrade"' in ftm
    eth = (BINANCE / "ws-combined-aggTrade.json").read_bytes().strip()
    frames = [ftm, eth] * 40
    index = fastparse.split(frames, 1 << 20)["aggTrade"]
    assert index == list(range(80))
    ft = fastparse.parse("aggTrade", frames, index, [1] * 80, None)
    assert ft is not None and len(ft.index) == 80  # every recorded frame accepted

    fast = parse(frames, 1675759521000)
    slow = [parse([f], 1675759521000) for f in frames[:2]]  # below MIN_BATCH: per frame
    assert fast.dead == []
    agg = fast.cols("agg_trades")
    assert list(agg.trade_id[:2]) == [31718372, 226532]
    assert list(agg.price[:2]) == [0.33993, 1632.46] and list(agg.qty[:2]) == [99.9, 0.34305]
    assert list(agg.maker[:2]) == [True, False]
    assert list(agg.trade_time[:2]) == [1628952396572, 1675759520847]
    for i, one in enumerate(slow):
        c = one.cols("agg_trades")
        assert [agg.symbol[i], agg.trade_id[i], agg.price[i], agg.qty[i], agg.maker[i],
                agg.trade_time[i], agg.event_time[i]] == [
            c.symbol[0], c.trade_id[0], c.price[0], c.qty[0], c.maker[0], c.trade_time[0],
            c.event_time[0]]
    assert fast.counts[("FTMUSDT", "aggTrade")] == 40


def test_binance_trade_payload() -> None:
    """The spot ``trade`` stream, on Binance's documentation example (no recording with a
    nameable source was found, see tests/data/README.md), raw and in a combined envelope."""
    raw = (BINANCE / "ws-trade-doc-example.json").read_bytes().strip()
    combined = b'{"stream":"bnbbtc@trade","data":' + raw + b"}"
    out = parse([raw, combined], 1672515782200)
    assert out.dead == []
    c = out.cols("trades")
    assert (c.symbol, c.trade_id, c.price, c.qty, c.maker) == (
        ["BNBBTC"] * 2, [12345] * 2, [0.001] * 2, [100.0] * 2, [True] * 2)
    assert c.trade_time == [1672515782136] * 2 and c.event_time == [1672515782136] * 2
    fast = parse([combined] * 64, 1672515782200)
    assert fast.dead == [] and list(fast.cols("trades").trade_id) == [12345] * 64


def corrupt(frame: bytes, old: bytes, new: bytes) -> bytes:
    assert frame.count(old) == 1, old
    return frame.replace(old, new)


def test_binance_corrupted_recorded_frames_are_dead_lettered_with_the_field() -> None:
    cap = capture()
    depth, ticker, agg, kline = cap[0][1], cap[6][1], cap[22][1], cap[24][1]
    cases = [
        (corrupt(depth, b'"U":717720856', b'"U":"717720856"'), "bad_type:U"),
        (corrupt(depth, b'"u":717720857', b'"u":717720855'), "bad_value:u"),
        (corrupt(depth, b'"0.00578700"', b'"0.005787O0"'), "bad_value:p"),
        (corrupt(ticker, b'"b":"0.33989000"', b'"b":"-0.33989000"'), "bad_value:b"),
        (corrupt(ticker, b'"s":"FTMUSDT"', b'"s":"XMRBTC"'), "symbol_mismatch"),
        (corrupt(agg, b'"p":"0.33993000"', b'"p":"NaN"'), "bad_value:p"),
        (corrupt(agg, b'"m":true', b'"m":"true"'), "bad_type:m"),
        (corrupt(agg, b'"l":38248910', b'"l":38248909'), "bad_value:l"),
        (corrupt(kline, b'"n":78', b'"n":"78"'), "bad_type:n"),
        (corrupt(kline, b'"x":false', b'"x":0'), "bad_type:x"),
        (corrupt(kline, b'"ftmusdt@kline_1m"', b'"ftmusdt@depth@100ms"'), "stream_mismatch"),
        (depth[:-1], "bad_json"),
    ]
    out = parse([f for f, _ in cases], 1628952400000)
    assert [d.reason for d in out.dead] == [r for _, r in cases]
    assert [d.raw for d in out.dead] == [f for f, _ in cases]  # never lost: kept byte for byte
    assert out.depth == [] and out.tickers == [] and out.klines == [] and not out.trades


def test_binance_one_corrupted_frame_in_a_vectorized_batch() -> None:
    ftm = capture()[22][1]
    bad = corrupt(ftm, b'"q":"99.90000000"', b'"q":"0.00000000"')
    frames = [ftm] * 70 + [bad] + [ftm] * 9
    out = parse(frames, 1628952400000)
    assert [(d.reason, d.raw) for d in out.dead] == [("bad_value:q", bad)]
    assert len(out.cols("agg_trades")) == 79


# --- Binance REST ---------------------------------------------------------------------------------
def test_binance_rest_depth_snapshot() -> None:
    body = json.loads((BINANCE / "spot-depth-response.json").read_text())
    last, bids, asks = get_adapter("binance").parse_depth_snapshot(body)
    assert last == 14527958487 and len(bids) == len(asks) == 10
    assert bids[0] == (60650.0, 0.00213) and bids[-1] == (60639.93, 0.07282)
    assert asks[0] == (60650.01, 0.61982) and asks[-1] == (60659.94, 0.9617)

    for broken, match in [({**body, "lastUpdateId": "14527958487"}, "lastUpdateId"),
                          ({k: v for k, v in body.items() if k != "asks"}, "asks"),
                          ({**body, "bids": [["60650.00000000"], *body["bids"][1:]]},
                           "not enough values"),
                          ({**body, "asks": [["abc", "1"]]}, "could not convert")]:
        with pytest.raises(ValueError, match=match):
            rest.parse_depth_snapshot(broken)


@pytest.mark.parametrize("name", ["spot-trades-response.json",
                                  "spot-historicalTrades-response.json"])
def test_binance_rest_trade_rows(name: str) -> None:
    rows = json.loads((BINANCE / name).read_text())
    adapter = get_adapter("binance")
    cols, bad = adapter.parse_trade_rows("trades", "BTCUSDT", rows, 1634943300000)
    assert bad == 0 and len(cols) == 10
    assert cols.trade_id == [r["id"] for r in rows]
    assert cols.trade_id == list(range(cols.trade_id[0], cols.trade_id[0] + 10))  # contiguous
    assert [adapter.row_id("trades", r) for r in rows] == cols.trade_id
    if name == "spot-trades-response.json":
        assert (cols.trade_id[0], cols.price[0], cols.qty[0], cols.maker[0],
                cols.trade_time[0]) == (1111468873, 60650.0, 0.02924, True, 1634942949263)
        assert (cols.price[6], cols.qty[6], cols.maker[6]) == (60655.0, 0.011, False)
    else:
        assert (cols.trade_id[-1], cols.price[-1], cols.qty[-1], cols.maker[-1],
                cols.trade_time[-1]) == (1111471905, 60814.79, 0.06902, False, 1634943220769)
    assert cols.event_time == [None] * 10 and cols.recv_time == [1634943300000] * 10

    broken = [dict(r) for r in rows]
    broken[2]["price"] = "sixty thousand"
    broken[5]["id"] = str(broken[5]["id"])
    del broken[7]["isBuyerMaker"]
    cols, bad = rest.parse_trade_rows("trades", "BTCUSDT", broken, 0)
    assert bad == 3 and len(cols) == 7 and rows[2]["id"] not in cols.trade_id


def test_binance_rest_agg_trade_rows() -> None:
    rows = json.loads((BINANCE / "spot-aggTrades-response.json").read_text())
    cols, bad = rest.parse_trade_rows("agg_trades", "BTCUSDT", rows, 1634944100000)
    assert bad == 0 and cols.trade_id == list(range(966492862, 966492872))
    assert (cols.price[0], cols.qty[0], cols.maker[0], cols.trade_time[0]) == (
        60759.6, 0.00841, False, 1634944096633)
    assert (cols.price[2], cols.maker[2]) == (60759.59, True)
    assert [rest.row_id("agg_trades", r) for r in rows] == cols.trade_id
    # aggTrades rows read as historicalTrades rows are all malformed, not silently wrong.
    cols, bad = rest.parse_trade_rows("trades", "BTCUSDT", rows, 0)
    assert bad == 10 and len(cols) == 0
    broken = [dict(r) for r in rows]
    broken[0]["T"] = 1634944096.633
    cols, bad = rest.parse_trade_rows("agg_trades", "BTCUSDT", broken, 0)
    assert bad == 1 and cols.trade_id[0] == 966492863


def test_binance_rest_klines() -> None:
    rows = json.loads((BINANCE / "spot-klines-response-2021-10-22.json").read_text())
    t = rest.parse_klines(rows).to_pylist()
    assert len(t) == 10 and [r["open_time"] for r in t] == list(
        range(1634943780000, 1634944380000, 60000))
    assert t[0] == {"open_time": 1634943780000, "open": 60685.22, "high": 60729.84,
                    "low": 60670.9, "close": 60719.27, "volume": 21.63272,
                    "close_time": 1634943839999, "quote_volume": 1313200.0134041,
                    "trades": 617, "taker_buy_base": 12.28492, "taker_buy_quote": 745719.4102284}
    assert t[-1]["trades"] == 7 and t[-1]["open"] == t[-1]["close"] == 60739.85
    broken = [list(r) for r in rows]
    broken[3][4] = "n/a"
    with pytest.raises(ValueError):
        rest.parse_klines(broken)


async def _serve_recorded(seen: list[tuple[str, dict[str, str], bool]]) -> web.AppRunner:
    """A real HTTP server on 127.0.0.1 answering each REST path with its recorded body, byte
    for byte (``seen``: path, query and whether an API key header came)."""
    bodies = {"/api/v3/klines": "spot-klines-response-2021-10-22.json",
              "/api/v3/depth": "spot-depth-response.json",
              "/api/v3/historicalTrades": "spot-historicalTrades-response.json",
              "/api/v3/aggTrades": "spot-aggTrades-response.json"}

    async def answer(request: web.Request) -> web.Response:
        seen.append((request.path, dict(request.query), "X-MBX-APIKEY" in request.headers))
        body = (BINANCE / bodies[request.path]).read_bytes()
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    for path in bodies:
        app.router.add_get(path, answer)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


def test_binance_rest_client_reads_the_recorded_bodies_over_http() -> None:
    """The REST client and the parsers together, on the recorded bodies served over HTTP."""
    seen: list[tuple[str, dict[str, str], bool]] = []

    async def main() -> tuple[Any, ...]:
        runner = await _serve_recorded(seen)
        host, port = runner.addresses[0][:2]
        client = SpotRest(f"http://{host}:{port}", api_key="recorded-test")
        try:
            bars = await client.closed_bars("BTCUSDT", "1m", 1634944260000, 10)
            depth = await client.depth("BTCUSDT", 10)
            hist = await client.trades_page("trades", "BTCUSDT", 1111471896, 10)
            aggs = await client.trades_page("agg_trades", "BTCUSDT", 966492862, 10)
        finally:
            await client.close()
            await runner.cleanup()
        return bars, depth, hist, aggs

    bars, depth, hist, aggs = asyncio.run(main())
    # closed_bars keeps klines opening at or before end_open_ms: 9 of the 10 recorded.
    assert [b.time for b in bars] == list(range(1634943780000, 1634944320000, 60000))
    first = bars[0]
    assert (first.symbol, first.open, first.high, first.low, first.close, first.volume,
            first.trades) == ("BTCUSDT", 60685.22, 60729.84, 60670.9, 60719.27, 21.63272, 617)
    assert get_adapter("binance").parse_depth_snapshot(depth)[0] == 14527958487
    assert rest.parse_trade_rows("trades", "BTCUSDT", hist, 0)[1] == 0
    assert rest.parse_trade_rows("agg_trades", "BTCUSDT", aggs, 0)[0].trade_id[-1] == 966492871
    assert [(p, q.get("fromId"), key) for p, q, key in seen[2:]] == [
        ("/api/v3/historicalTrades", "1111471896", True), ("/api/v3/aggTrades", "966492862", False)]


# --- BTCTurk ----------------------------------------------------------------------------------
BT_SYMBOLS = {"BTCTRY", "BTCUSDT", "AVAXTRY", "AVAXUSDT", "ETHUSDT"}


def btcturk(frames: list[bytes], recv: int = 1_800_000_000_000) -> ParsedBatch:
    return BTCTurkParser(BT_SYMBOLS).parse(frames, [recv] * len(frames))


def model(frame: bytes) -> int:
    return int(json.loads(frame)[0])


def recorded_btcturk(*models: int) -> list[bytes]:
    return [f for p in sorted(BTCTURK.glob("ws-*.jsonl")) for f in jsonl(p) if model(f) in models]


def test_btcturk_recorded_single_trades() -> None:
    frames = recorded_btcturk(422)
    assert len(frames) == 4
    out = btcturk(frames)
    assert out.dead == []
    c = out.cols("trades")
    got = {s: (t, p, q, m, tt) for s, t, p, q, m, tt in zip(
        c.symbol, c.trade_id, c.price, c.qty, c.maker, c.trade_time, strict=True)}
    assert got == {
        # ExchangeSharp, 2022-04-29: S=1 (taker sold), so the buyer was the maker
        "BTCTRY": (100163785789620825, 586950.0, 0.00087777, True, 1651204593830),
        # hummingbot fork, 2022-03-18 and 2022-03-11, 2022-03-15
        "BTCUSDT": (101963781951665674, 40670.0, 0.0002456604, False, 1647588210843),
        "AVAXUSDT": (110163781755762126, 76.59, 15.37, False, 1647000816026),
        "AVAXTRY": (110063781755340883, 1011.3, 0.0000503001, True, 1647357507716),
    }
    assert c.event_time == [None] * 4


def test_btcturk_recorded_control_and_book_frames_are_not_dead_lettered() -> None:
    control = recorded_btcturk(991, 100)
    books = recorded_btcturk(431, 432)
    assert len(control) == 10 and len(books) == 9
    out = btcturk(control + books)
    assert out.dead == [] and out.frames == 19
    assert len(out.control) == 10
    assert [c["type"] for c in out.control].count(991) == 5
    assert {c.get("message") for c in out.control if c["type"] == 100} == {
        "join|trade:BTCTRY", "join|obdiff:BTCUSDT", "join|trade:AVAXUSDT", "join|obdiff:BTCTRY"}


def test_btcturk_recorded_421_trade_lists() -> None:
    frames = recorded_btcturk(421)
    assert len(frames) == 2
    out = btcturk(frames)
    assert out.dead == []
    c = out.cols("trades")
    assert c.symbol == ["BTCTRY"] * 2 + ["AVAXUSDT"] * 10
    assert c.trade_id[:2] == [100163785789620803, 100163785789620737]
    assert c.maker[:2] == [False, True] and c.price[:2] == [586484.0, 585778.0]


def test_btcturk_corrupted_recorded_trades_are_dead_lettered_with_the_field() -> None:
    (single,) = [f for f in recorded_btcturk(422) if b'"BTCTRY"' in f]
    cases = [
        (corrupt(single, b'"S":1', b'"S":2'), "bad_value:S"),
        (corrupt(single, b'"I":"100163785789620825"', b'"I":100163785789620825'), "bad_type:I"),
        (corrupt(single, b'"D":"1651204593830"', b'"D":"1651204593830000"'), "bad_value:D"),
        (corrupt(single, b'"P":"586950.0000000000"', b'"P":"-586950"'), "bad_value:P"),
        (corrupt(single, b'"A":"0.0008777700"', b'"A":"0"'), "bad_value:A"),
        (corrupt(single, b'"PS":"BTCTRY"', b'"PS":"DOGETRY"'), "unknown_symbol"),
        (corrupt(single, b"[422,", b"[429,"), "unknown_event"),
        (single[:-2], "bad_json"),
    ]
    out = btcturk([f for f, _ in cases])
    assert [(d.reason, d.raw) for d in out.dead] == [(r, f) for f, r in cases]
    assert len(out.cols("trades")) == 0


def test_every_recorded_file_has_its_source_named() -> None:
    """A payload without a named source is not evidence: each data file has a row naming its
    source, in tests/data/README.md (a repository and commit, or the project's shared data) or
    in the README of its own folder (a repository, a documentation URL)."""
    rows = [line for line in (DATA / "README.md").read_text().splitlines()
            if line.startswith("| `")]
    files = sorted(p for d in (BINANCE, BTCTURK) for p in d.rglob("*")
                   if p.is_file() and p.name != "README.md")
    assert len(files) >= 26
    for p in files:
        top = [r for r in rows if f"`{p.name}`" in r.split(" | ")[0]]
        if top:
            (row,) = top
            assert "commit `" in row or "shared" in row, p.name
            continue
        folder = p.relative_to(DATA).parts[0]
        rel = p.relative_to(DATA / folder).as_posix()
        local = [line for line in (DATA / folder / "README.md").read_text().splitlines()
                 if line.startswith(f"| `{rel}`")]
        assert len(local) == 1, f"{p.relative_to(DATA)} has no row naming its source"
        assert "github.com/" in local[0] or "https://" in local[0], p.name
