"""Subscriber fan-out: busy subscribers get merged batches (every row, in order); only a
subscriber that stopped sheds its oldest rows past the cap, and those are counted."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from spark_ray.streams.fanout import Fanout, Subscriber


def batch(lo: int, hi: int) -> dict[str, Any]:
    return {"trades": {"trades": pa.table({"trade_id": list(range(lo, hi))})}, "book": None}


class Calls:
    def __init__(self) -> None:
        self.sent: list[list[int]] = []
        self.done: set[int] = set()

    def send(self, sub: Subscriber, p: dict[str, Any]) -> int:
        self.sent.append(p["trades"]["trades"]["trade_id"].to_pylist())
        return len(self.sent) - 1


def test_busy_subscriber_gets_every_row_merged_in_order() -> None:
    c = Calls()
    f = Fanout(c.send, lambda ref: ref in c.done, max_inflight=2)
    f.add("h", "on_market_data")
    for i in range(10):
        f.publish(batch(i * 10, i * 10 + 10))
    assert len(c.sent) == 2  # two slots, the rest waits
    c.done.update({0, 1})
    f.publish(None)  # the timer drains the backlog in one merged call
    assert len(c.sent) == 3
    assert [x for call in c.sent for x in call] == list(range(100))
    assert f.dropped_rows == 0 and f.backlog_rows == 0


def test_a_stopped_subscriber_sheds_oldest_rows_counted() -> None:
    c = Calls()
    f = Fanout(c.send, lambda ref: False, max_inflight=1, max_backlog_rows=25)
    f.add("h", "on_market_data")
    for i in range(6):
        f.publish(batch(i * 10, i * 10 + 10))
    assert c.sent == [list(range(10))]
    assert f.backlog_rows <= 25
    assert f.dropped_rows == 50 - f.backlog_rows


def test_subscribing_the_same_subscriber_again_keeps_one_subscription() -> None:
    c = Calls()
    f = Fanout(c.send, lambda ref: False, max_inflight=1)
    assert f.add("h", "on_market_data") == 1
    f.publish(batch(0, 10))  # in flight, never answered (the process died)
    f.publish(batch(10, 20))  # waits in the backlog
    assert f.add("h", "on_market_data") == 1  # a supervisor re-subscribes after a restart
    assert f.add("other", "on_market_data") == 2
    f.publish(None)
    # the stale call is forgotten, the backlog goes out once, to the re-subscribed handle
    assert c.sent == [list(range(10)), list(range(10, 20))]


def test_settled_only_when_every_row_was_handed_over() -> None:
    c = Calls()
    f = Fanout(c.send, lambda ref: ref in c.done, max_inflight=1)
    assert f.settled()  # no subscriber
    f.add("h", "on_market_data")
    f.publish(batch(0, 10))
    f.publish(batch(10, 20))  # waits in the backlog behind the call in flight
    assert not f.settled()
    c.done.add(0)
    assert not f.settled()  # the backlog is not yet sent
    f.publish(None)
    assert not f.settled()  # sent, not yet answered
    c.done.add(1)
    assert f.settled()
    assert [x for call in c.sent for x in call] == list(range(20))
