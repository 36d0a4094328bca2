"""Books kept from the stream alone (BTCTurk: 431 full book, 432 change sets), the re-join
request that recovers one out of sync, and BTCTurk's trade lists deduplicated in the core."""

from __future__ import annotations

import json
from typing import Any

from spark_ray.adapters.events import DepthEvent
from spark_ray.streams.depth import REJOIN_RETRY_MS, StreamBookSync
from spark_ray.streams.normalize import NormalizerConfig, NormalizerCore

T0 = 1_795_000_000_000


def _ev(cs: int, bids: list[tuple[float, float]], asks: list[tuple[float, float]] | None = None,
        snapshot: bool = False, recv: int = T0) -> DepthEvent:
    return DepthEvent("BTCTRY", cs, cs, bids, asks or [], None, recv, snapshot=snapshot)


def test_change_sets_must_follow_one_another_or_the_book_is_rejoined() -> None:
    bs = StreamBookSync("BTCTRY")
    assert bs.on_event(_ev(5, [(100.0, 1.0)])) == [] and bs.want_rejoin  # diff before any book
    bs.rejoin_requested()
    assert bs.on_event(_ev(6, [(100.0, 1.0)], recv=T0 + 10)) == [] and not bs.want_rejoin
    snap = _ev(10, [(100.0, 1.0), (99.0, 2.0)], [(101.0, 1.0)], snapshot=True)
    assert bs.on_event(snap) == [snap] and bs.synced and bs.resyncs == 0
    assert bs.on_event(_ev(11, [(100.0, 0.0)])) and bs.book.best() == (99.0, 2.0, 101.0, 1.0)
    assert bs.on_event(_ev(11, [(100.0, 5.0)])) == []  # a duplicated frame: skipped
    assert bs.on_event(_ev(13, [(98.0, 1.0)], recv=T0 + 50)) == []  # 12 is missing
    assert not bs.synced and bs.want_rejoin and (bs.resyncs, bs.gaps) == (1, 1)
    bs.rejoin_requested()
    # Diffs of the broken chain until the new full book: dropped, not asked again at once...
    assert bs.on_event(_ev(14, [(97.0, 1.0)], recv=T0 + 60)) == [] and not bs.want_rejoin
    # ...but again if the full book never comes (the re-join was lost with its connection).
    bs.on_event(_ev(15, [(97.0, 1.0)], recv=T0 + 50 + REJOIN_RETRY_MS))
    assert bs.want_rejoin and bs.resyncs == 1
    fresh = _ev(3, [(96.0, 1.0)], [(102.0, 4.0)], snapshot=True)  # change sets restart per join
    assert bs.on_event(fresh) == [fresh] and bs.synced and not bs.want_rejoin
    assert bs.book.best() == (96.0, 1.0, 102.0, 4.0) and bs.book.last_update_id == 3
    assert bs.on_event(_ev(4, [], [(102.0, 0.0), (103.0, 1.0)]))
    assert bs.book.best() == (96.0, 1.0, 103.0, 1.0)


def frame(model: int, **body: Any) -> bytes:
    return json.dumps([model, {**body, "type": model}], separators=(",", ":")).encode()


def full(cs: int, bid: str = "86699") -> bytes:
    return frame(431, CS=cs, PS="BTCTRY", AO=[{"A": "1", "P": "86701"}],
                 BO=[{"A": "0.5", "P": bid}], channel="obdiff", event="BTCTRY")


def diff(cs: int, bid: str, amount: str = "1", cp: int = 1) -> bytes:
    return frame(432, CS=cs, PS="BTCTRY", AO=[], BO=[{"CP": cp, "P": bid, "A": amount}],
                 channel="obdiff", event="BTCTRY")


def test_normalizer_rows_resyncs_and_the_rejoin_request() -> None:
    core = NormalizerCore(NormalizerConfig(exchange="btcturk", symbols=("BTCTRY",),
                                           detect_gaps=False, repair=False))
    out = core.process([full(100), diff(101, "86700"), diff(101, "86700")],
                       [T0, T0, T0 + 1], T0 + 1)
    assert out.book is not None and not out.resubscribe
    assert out.book["source"].to_pylist() == ["depth", "depth"]
    assert out.book["bid_price"].to_pylist() == [86699.0, 86700.0]
    # Row ids only grow (the sink keeps a book row only above the last one stored), even
    # though BTCTurk's change sets restart with every join: receive time based.
    first_ids = out.book["update_id"].to_pylist()
    assert first_ids == [T0 * 1000, T0 * 1000 + 1]
    assert core.best["BTCTRY"]["bid_price"] == 86700.0
    out = core.process([diff(103, "86705")], [T0 + 5], T0 + 5)  # 102 lost
    assert out.book is None and out.resubscribe == ["obdiff:BTCTRY"]
    assert core.counters.depth_resyncs == 1
    assert core.counters.book_resyncs == {("BTCTRY", "depth"): 1}
    out = core.process([diff(104, "86706")], [T0 + 6], T0 + 6)
    assert out.book is None and not out.resubscribe  # asked once; waiting for the full book
    out = core.process([full(100, bid="86690"), diff(101, "86691")], [T0 + 7, T0 + 7], T0 + 7)
    assert out.book is not None and out.book["bid_price"].to_pylist() == [86690.0, 86691.0]
    assert out.book["update_id"].to_pylist() == [(T0 + 7) * 1000, (T0 + 7) * 1000 + 1]
    assert core.stream_books["BTCTRY"].synced and core.counters.depth_resyncs == 1
    tick = frame(402, PS="BTCTRY", B="86690", BA="0.5", A="86701", AA="1", LA="86695",
                 channel="ticker", event="BTCTRY")
    out = core.process([tick, tick], [T0 + 8, T0 + 8], T0 + 8)
    assert out.book is not None and out.book["source"].to_pylist() == ["bookTicker"] * 2
    assert out.book["update_id"].to_pylist() == [(T0 + 8) * 1000, (T0 + 8) * 1000 + 1]


def test_a_restarted_normalizer_asks_for_a_full_book() -> None:
    core = NormalizerCore(NormalizerConfig(exchange="btcturk", symbols=("BTCTRY",),
                                           detect_gaps=False, repair=False))
    out = core.process([diff(57, "86700")], [T0], T0)
    assert out.resubscribe == ["obdiff:BTCTRY"] and core.counters.depth_resyncs == 0


def test_unsynced_book_channels_name_every_symbol_without_a_book() -> None:
    """What a restarted normalizer asks to re-join at once, before any diff (a quiet market may
    send none): every symbol's depth channel until its full book came; none for Binance."""
    core = NormalizerCore(NormalizerConfig(exchange="btcturk", symbols=("BTCTRY", "ETHTRY"),
                                           detect_gaps=False, repair=False))
    assert core.unsynced_book_channels() == ["obdiff:BTCTRY", "obdiff:ETHTRY"]
    core.process([full(56)], [T0], T0)
    assert core.unsynced_book_channels() == ["obdiff:ETHTRY"]
    binance = NormalizerCore(NormalizerConfig(exchange="binance", symbols=("BTCUSDT",)))
    assert binance.unsynced_book_channels() == []


def test_binance_depth_gaps_still_go_to_a_rest_snapshot() -> None:
    core = NormalizerCore(NormalizerConfig(symbols=("BTCUSDT",)))
    depth = json.dumps({"stream": "btcusdt@depth@100ms", "data": {
        "e": "depthUpdate", "E": T0, "s": "BTCUSDT", "U": 5, "u": 9,
        "b": [["100.0", "1.5"]], "a": [["101.0", "0"]]}}).encode()
    out = core.process([depth], [T0], T0)
    assert not out.resubscribe and core.snapshots_wanted() == ["BTCUSDT"]


def trade_list(ids: list[int]) -> bytes:
    items = [{"D": str(T0 + i), "I": str(i), "A": "0.1", "P": "86700", "PS": "BTCTRY", "S": i % 2}
             for i in ids]
    return frame(421, symbol="BTCTRY", items=items, channel="trade", event="BTCTRY")


def single(i: int) -> bytes:
    return frame(422, D=str(T0 + i), I=str(i), A="0.1", P="86700", PS="BTCTRY", S=0,
                 channel="trade", event="BTCTRY")


def test_trade_lists_on_rejoin_are_deduplicated_and_fill_what_a_disconnect_missed() -> None:
    core = NormalizerCore(NormalizerConfig(exchange="btcturk", symbols=("BTCTRY",),
                                           detect_gaps=False, repair=False))
    # Ids with holes of their own (BTCTurk's are not contiguous per pair): no gap is opened.
    out = core.process([trade_list([10, 12, 15]), single(17)], [T0, T0], T0)
    assert out.trades["trades"]["trade_id"].to_pylist() == [10, 12, 15, 17]
    assert core.open_gaps() == 0
    # Disconnected while 18 and 21 printed; the re-join's list repeats what is stored.
    out = core.process([trade_list([12, 15, 17, 18, 21]), single(22), single(21)],
                       [T0 + 9] * 3, T0 + 9)
    assert out.trades["trades"]["trade_id"].to_pylist() == [18, 21, 22]
    assert core.counters.dups[("BTCTRY", "trade")] == 4
    assert core.open_gaps() == 0 and not core.repairs_due(T0 + 10_000)


def test_latest_trades_poll_hook() -> None:
    """Off by default (the fabric sets it from ``caps.latest_trades_poll_ms``); when set, each
    series gets a one-page "latest trades" request at that
    cadence (and after a reconnect), whose rows on_repair deduplicates."""
    cfg = NormalizerConfig(exchange="btcturk", symbols=("BTCTRY",), detect_gaps=False,
                           idle_check_ms=0)
    core = NormalizerCore(cfg)
    core.process([single(7)], [T0], T0)
    assert core.repairs_due(T0 + 60_000) == []
    cfg.latest_poll_ms = 1_000
    (req,) = core.repairs_due(T0 + 1_000)
    # from id 0: every row of the page counts, so holes below the newest id are filled too
    assert req.latest and (req.dataset, req.symbol, req.lo, req.hi) == ("trades", "BTCTRY", 0,
                                                                        None)
    assert core.repairs_due(T0 + 1_500) == []
    core.on_reconnect()
    (req,) = core.repairs_due(T0 + 1_600)
    assert req.latest
