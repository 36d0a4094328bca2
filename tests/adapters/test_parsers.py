"""Venue adapters: the frame parsers, connection plans and control messages of each exchange."""

from __future__ import annotations

import json

import pytest

from spark_ray.adapters import get_adapter
from spark_ray.adapters.binance.websocket import BinanceParser
from spark_ray.adapters.btcturk.websocket import BTCTurkParser

T0 = 1_795_000_000_000


def trade(tid: int, sym: str = "BTCUSDT", e: int = T0, price: str = "100.5") -> bytes:
    return json.dumps({"stream": f"{sym.lower()}@trade", "data": {
        "e": "trade", "E": e, "s": sym, "t": tid, "p": price, "q": "0.25", "T": e,
        "m": tid % 2 == 0, "M": True}}, separators=(",", ":")).encode()


def test_parser_accepts_the_venue_formats_and_validates() -> None:
    p = BinanceParser({"BTCUSDT"})
    agg = json.dumps({"stream": "btcusdt@aggTrade", "data": {
        "e": "aggTrade", "E": T0, "s": "BTCUSDT", "a": 7, "p": "1.0", "q": "2.0", "f": 10,
        "l": 12, "T": T0, "m": False, "M": True}}).encode()
    depth = json.dumps({"stream": "btcusdt@depth@100ms", "data": {
        "e": "depthUpdate", "E": T0, "s": "BTCUSDT", "U": 5, "u": 9,
        "b": [["100.0", "1.5"]], "a": [["101.0", "0"]]}}).encode()
    ticker = json.dumps({"stream": "btcusdt@bookTicker", "data": {
        "u": 3, "s": "BTCUSDT", "b": "100.0", "B": "1", "a": "101.0", "A": "2"}}).encode()
    bad = [trade(1, price="nan"), trade(2).replace(b'"t":2', b'"t":"2"'),
           trade(3).replace(b"btcusdt@trade", b"ethusdt@trade"), trade(4, sym="ETHUSDT"),
           b"{", b"[1,2]", b'{"stream":"btcusdt@trade","data":3}']
    out = p.parse([trade(1), agg, depth, ticker, b'{"result":null,"id":1}', *bad],
                  [T0 + 5] * 12)
    assert out.cols("trades").trade_id == [1] and out.cols("agg_trades").trade_id == [7]
    assert out.depth[0].bids == [(100.0, 1.5)] and out.tickers[0].update_id == 3
    assert len(out.control) == 1
    assert [d.reason for d in out.dead] == ["bad_value:p", "bad_type:t", "symbol_mismatch",
                                            "unknown_symbol", "bad_json", "not_object",
                                            "bad_envelope"]
    assert out.lags[("BTCUSDT", "trade")] == [5]


def test_btcturk_trades_map_to_our_symbols() -> None:
    p = BTCTurkParser({"BTCUSDT"}, symbol_map={"BTC_TRY": "BTCTRY"})
    single = json.dumps([422, {"D": str(T0), "I": "41", "A": "0.5", "P": "86699", "PS": "BTCUSDT",
                               "S": 1, "channel": "trade", "event": "BTCUSDT", "type": 422}])
    lst = json.dumps([421, {"symbol": "BTCTRY", "items": [
        {"D": str(T0), "I": "5", "A": "1", "P": "2", "PS": "BTCTRY", "S": 0}]}])
    out = p.parse([single.encode(), lst.encode(), b'[991,{"type":991}]', b'[422,{"PS":"X"}]'],
                  [T0] * 4)
    c = out.cols("trades")
    assert c.symbol == ["BTCUSDT", "BTCTRY"] and c.trade_id == [41, 5] and c.maker == [True, False]
    assert len(out.control) == 1 and [d.reason for d in out.dead] == ["unknown_symbol"]


def test_connection_plans() -> None:
    binance = get_adapter("binance")
    names = [f"s{i}@trade" for i in range(2500)]
    assert [len(c) for c in binance.connection_shards(names, 1024)] == [1024, 1024, 452]
    assert binance.channels(["BTCUSDT"], ["trade", "depth"]) == ["btcusdt@trade",
                                                                 "btcusdt@depth@100ms"]
    btcturk = get_adapter("btcturk")
    assert btcturk.connection_shards(["BTCTRY", "ETHTRY"], 1) == [["BTCTRY", "ETHTRY"]]
    assert btcturk.channels(["BTC_TRY", "ETHTRY"], ["trade", "depth", "ticker"]) == [
        "trade:BTCTRY", "obdiff:BTCTRY", "ticker:BTCTRY", "trade:ETHTRY", "obdiff:ETHTRY",
        "ticker:ETHTRY"]
    with pytest.raises(ValueError, match="BTCTurk supports trade, depth, ticker only"):
        btcturk.channels(["BTCTRY"], ["kline"])
    with pytest.raises(ValueError, match="exchange 'kraken'"):
        get_adapter("kraken")


def test_control_messages_are_classified_per_venue() -> None:
    binance = get_adapter("binance")
    assert binance.control_kind({"e": "serverShutdown", "E": T0}) == "shutdown"
    assert binance.control_kind({"result": None, "id": 1}) == "answer"
    assert binance.control_kind({"error": {"code": 2, "msg": "x"}, "id": 1}) == "error"
    assert binance.control_kind({"e": "trade"}) == "data"
    assert binance.is_data_frame(trade(1)[:10]) and not binance.is_data_frame(b'{"result":')
    btcturk = get_adapter("btcturk")
    assert not btcturk.is_data_frame(b"[991,{}]") and btcturk.is_data_frame(b"[422,{}]")
    assert json.loads(btcturk.subscribe_messages(["trade:BTCTRY"], 1)[0]) == [
        151, {"type": 151, "channel": "trade", "event": "BTCTRY", "join": True}]
    # A book out of sync: leave the channel, then join it again (BTCTurk sends a new 431).
    assert [json.loads(m) for m in btcturk.resubscribe_messages(["obdiff:BTCTRY"])] == [
        [151, {"type": 151, "channel": "obdiff", "event": "BTCTRY", "join": False}],
        [151, {"type": 151, "channel": "obdiff", "event": "BTCTRY", "join": True}]]
    assert btcturk.depth_channel("BTC_TRY") == "obdiff:BTCTRY"
