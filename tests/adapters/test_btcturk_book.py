"""BTCTurk's order-book and ticker models (431, 432, 402) through the parser, on frames shaped
as https://docs.btcturk.com/websocket-feed/models shows them."""

from __future__ import annotations

import json
from typing import Any

from spark_ray.adapters.btcturk.websocket import BTCTurkParser
from spark_ray.adapters.events import NO_UPDATE_ID

T0 = 1_795_000_000_000


def frame(model: int, **body: Any) -> bytes:
    return json.dumps([model, {**body, "type": model}], separators=(",", ":")).encode()


def full(cs: int, pair: str = "BTCTRY") -> bytes:
    return frame(431, CS=cs, PS=pair,
                 AO=[{"A": "0.0092056", "P": "86701"}, {"A": "1.2", "P": "86710"}],
                 BO=[{"A": "0.5", "P": "86699"}, {"A": "2", "P": "86650"}],
                 channel="obdiff", event=pair)


def diff(cs: int, bo: list[dict[str, Any]], ao: list[dict[str, Any]] | None = None,
         pair: str = "BTCTRY") -> bytes:
    return frame(432, CS=cs, PS=pair, AO=ao or [], BO=bo, channel="obdiff", event=pair)


def test_full_book_and_differences_become_depth_events() -> None:
    p = BTCTurkParser({"BTCTRY"})
    frames = [full(41),
              diff(42, [{"CP": 0, "P": "86699", "A": "0.75"}, {"CP": 1, "P": "86690", "A": "3"}],
                   [{"CP": 3, "P": "86701", "A": "0.0092056"}])]
    out = p.parse(frames, [T0, T0 + 7])
    assert not out.dead and len(out.depth) == 2
    snap, d = out.depth
    assert snap.snapshot and (snap.first_id, snap.last_id) == (41, 41)
    assert snap.bids == [(86699.0, 0.5), (86650.0, 2.0)]
    assert snap.asks == [(86701.0, 0.0092056), (86710.0, 1.2)]
    assert snap.event_time is None and snap.recv_time == T0  # BTCTurk's book has no timestamp
    assert not d.snapshot and (d.first_id, d.last_id) == (42, 42)
    assert d.bids == [(86699.0, 0.75), (86690.0, 3.0)]
    assert d.asks == [(86701.0, 0.0)]  # CP 3: the level is gone
    assert out.counts[("BTCTRY", "depth")] == 2


def test_ticker_pair_is_the_best_bid_and_offer() -> None:
    p = BTCTurkParser({"BTCTRY"})
    tick = frame(402, PS="BTCTRY", B="86699", BA="0.5", A="86701", AA="0.0092056", LA="86700",
                 H="87000", L="85000", channel="ticker", event="BTCTRY")
    out = p.parse([tick], [T0])
    (t,) = out.tickers
    assert (t.symbol, t.bid_price, t.bid_qty, t.ask_price, t.ask_qty, t.recv_time) == (
        "BTCTRY", 86699.0, 0.5, 86701.0, 0.0092056, T0)
    assert t.update_id == NO_UPDATE_ID  # no sequence: the normalizer numbers the rows


def test_malformed_book_frames_are_dead_letters_with_their_reason() -> None:
    p = BTCTurkParser({"BTCTRY"})
    bad = [
        frame(431, PS="BTCTRY", AO=[], BO=[]),  # no change set
        frame(431, CS="7", PS="BTCTRY", AO=[], BO=[]),
        frame(432, CS=8, PS="BTCTRY", AO=[], BO=[{"CP": 2, "P": "1", "A": "1"}]),
        frame(432, CS=8, PS="BTCTRY", AO=[], BO=[{"CP": 0, "P": "x", "A": "1"}]),
        frame(432, CS=8, PS="BTCTRY", AO={}, BO=[]),
        frame(432, CS=8, PS="ETHTRY", AO=[], BO=[]),
        frame(402, PS="BTCTRY", B="1", BA="1", A="2"),
        frame(499, PS="BTCTRY"),
    ]
    out = p.parse(bad, [T0] * len(bad))
    assert not out.depth and not out.tickers
    assert [d.reason for d in out.dead] == [
        "missing_field:CS", "bad_type:CS", "bad_value:BO.CP", "bad_value:P", "bad_type:AO",
        "unknown_symbol", "missing_field:AA", "unknown_event"]
