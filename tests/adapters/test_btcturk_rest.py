"""BTCTurk REST: our parsers on real recorded responses, the venue's answers in the same shape,
and the adapter's client (on the shared HTTP client) against the venue on loopback."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spark_ray.adapters.btcturk import rest
from spark_ray.adapters.registry import get_adapter
from spark_ray.venue import Venue

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "btcturk-format" / "rest"
ENVELOPE = {"success", "message", "code"}
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


def get(url: str) -> Any:
    with _OPENER.open(url, timeout=10) as r:
        return json.loads(r.read())


@pytest.fixture(scope="module")
def v() -> Iterator[Venue]:
    with Venue(symbols=("BTCTRY", "ETHTRY"), seed=5, trades_per_second=40,
               history_minutes=3000) as venue:
        venue.wait_for_trades("BTCTRY", 80)
        venue.pause()
        yield venue


# --- recorded responses -----------------------------------------------------------------------
def test_parsers_accept_the_recorded_responses() -> None:
    cols, bad = rest.parse_trade_rows("trades", "BTCTRY", rest.data_of(
        sample("trades.json"), "trades"), recv_ms=1)
    assert bad == 0 and cols.trade_id == [637544252214980918]
    assert cols.price == [462585.0] and cols.qty == [0.01618411]
    assert cols.maker == [True] and cols.trade_time == [1618828421497]  # taker sell: maker bought
    ts, bids, asks = rest.parse_depth_snapshot(sample("orderbook.json"))
    assert ts == 1543836448605 and bids[0] == (33245.0, 2.10695265) and asks[1] == (33499.0, 1.0)
    bars = rest.parse_klines(sample("klines_history.json"))
    assert bars == [(1661990400000, 368388.0, 368388.0, 368388.0, 368388.0, 0.00035208),
                    (1661990520000, 368467.0, 369090.0, 368467.0, 369090.0, 0.2972395)]
    info = rest.data_of(sample("exchangeinfo.json"), "exchangeinfo")
    assert [s["name"] for s in info["symbols"]] == ["BTCTRY"] and int(info["serverTime"]) > 0
    assert rest.data_of(sample("ticker.json"), "ticker")[0]["pair"] == "BTCTRY"
    assert isinstance(sample("ohlcs.json"), list)


def test_parsers_reject_what_is_malformed() -> None:
    rows = [{"tid": "12", "date": 5, "price": "1.5", "amount": "2", "side": "buy"},
            {"tid": "x", "date": 5, "price": "1", "amount": "1", "side": "buy"},
            {"tid": "13", "date": 5, "price": "1", "amount": "1", "side": "up"},
            {"tid": "14", "price": "1", "amount": "1", "side": "sell"}]
    cols, bad = rest.parse_trade_rows("trades", "BTCTRY", rows, recv_ms=1)
    assert (cols.trade_id, bad) == ([12], 3)
    with pytest.raises(ValueError, match="Pair X not found"):
        rest.data_of({"data": None, "success": False, "message": "Pair X not found",
                      "code": 404}, "trades")
    with pytest.raises(ValueError, match="orderbook"):
        rest.parse_depth_snapshot({"data": {"timestamp": 1, "bids": [["1"]], "asks": []}})
    assert rest.parse_klines({"s": "no_data"}) == []
    with pytest.raises(ValueError, match="different lengths"):
        rest.parse_klines({"s": "ok", "t": [1, 2], "o": [1], "h": [1], "l": [1], "c": [1],
                           "v": [1]})
    with pytest.raises(ValueError, match="bad resolution"):
        rest.parse_klines({"s": "error", "errmsg": "bad resolution"})


def _kind(x: Any) -> str:
    """JSON's value types; integers and floats are one (JSON numbers)."""
    if isinstance(x, bool) or x is None:
        return repr(x) if x is None else "bool"
    return "number" if isinstance(x, int | float) else type(x).__name__


def _same_shape(ours: Any, real: Any, path: str = "$") -> list[str]:
    if _kind(ours) != _kind(real):
        return [f"{path}: {_kind(ours)} != {_kind(real)}"]
    if isinstance(real, dict):
        out = [f"{path}: missing {k}" for k in real if k not in ours]
        extra = set(ours) - set(real) - (ENVELOPE if path == "$" else set())
        out += [f"{path}: extra {k}" for k in sorted(extra)]
        return out + [e for k in real if k in ours
                      for e in _same_shape(ours[k], real[k], f"{path}.{k}")]
    if isinstance(real, list) and real and ours:
        return _same_shape(ours[0], real[0], f"{path}[0]")
    return []


@pytest.mark.parametrize(("name", "path"), [
    ("exchangeinfo.json", "/api/v2/server/exchangeinfo"),
    ("ticker.json", "/api/v2/ticker?pairSymbol=BTCTRY"),
    ("orderbook.json", "/api/v2/orderbook?pairSymbol=BTC_TRY&limit=3"),
    ("trades.json", "/api/v2/trades?pairSymbol=BTCTRY&last=3"),
    ("klines_history.json", "/v1/klines/history?symbol=BTCTRY&resolution=1&from=-600"),
    ("ohlcs.json", "/v1/ohlcs?pair=BTC_TRY"),
])
def test_the_venue_answers_in_the_recorded_shapes(v: Venue, name: str, path: str) -> None:
    ours = get(v.btcturk_rest_url + path)
    assert ours, path
    assert _same_shape(ours, sample(name)) == []


# --- the client against the venue ---------------------------------------------------------------
def test_adapter_rest_client_reads_the_venue(v: Venue) -> None:
    adapter = get_adapter("btcturk")
    assert adapter.caps.kline_history and adapter.default_rest_url == "https://api.btcturk.com"
    truth = v.ground_truth("BTCTRY").to_pylist()
    binance = get(f"{v.rest_url}/api/v3/klines?symbol=BTCTRY&interval=1h&limit=4")
    lo, step = int(binance[0][0]), 3_600_000

    async def go() -> tuple[Any, ...]:
        client = adapter.market_rest(v.btcturk_rest_url)
        assert client is not None
        try:
            latest = await client.trades_page("trades", "BTC_TRY", 0)
            tail = await client.trades_page("trades", "BTCTRY", truth[-10]["trade_id"])
            book = await client.depth("BTCTRY", 5)
            history = adapter.kline_history(v.btcturk_rest_url)
            bars = await history.klines("BTCTRY", "1h", lo, lo + 4 * step)
            pairs = await history.symbols()
            await history.close()
            return latest, tail, book, bars, pairs
        finally:
            await client.close()

    latest, tail, book, bars, pairs = asyncio.run(go())
    # the latest 50 trades, oldest first; from_id only filters (BTCTurk cannot page by id)
    assert [adapter.row_id("trades", r) for r in latest] == [r["trade_id"] for r in truth[-50:]]
    assert [adapter.row_id("trades", r) for r in tail] == [r["trade_id"] for r in truth[-10:]]
    cols, bad = adapter.parse_trade_rows("trades", "BTCTRY", latest, recv_ms=0)
    assert bad == 0 and cols.price == [r["price"] for r in truth[-50:]]
    assert cols.maker == [r["is_buyer_maker"] for r in truth[-50:]]
    ts, bids, asks = adapter.parse_depth_snapshot(book)
    depth = get(f"{v.rest_url}/api/v3/depth?symbol=BTCTRY&limit=5")
    assert bids == [(float(p), float(q)) for p, q in depth["bids"]] and ts > 0
    assert asks == [(float(p), float(q)) for p, q in depth["asks"]]
    assert bars == [(int(k[0]), *(float(x) for x in k[1:6])) for k in binance]
    assert len(bars) == 4 and pairs == {"BTCTRY", "ETHTRY"}
