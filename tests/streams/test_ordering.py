"""BatchOrder: one sender's batches are processed in sequence order, with a bounded wait."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import ray

from spark_ray.streams.normalize import NormalizerConfig
from spark_ray.streams.ordering import BatchOrder


async def _run(order: BatchOrder, arrivals: list[tuple[int, int, float]],
               sender: str = "c:1") -> list[int]:
    """Start one task per (seq, low, start delay s); returns the order they were processed."""
    processed: list[int] = []

    async def one(seq: int, low: int, delay: float) -> None:
        await asyncio.sleep(delay)
        await order.turn(sender, seq, low)
        processed.append(seq)
        order.done(sender, seq)

    await asyncio.gather(*(one(*a) for a in arrivals))
    return processed


def test_batches_that_start_out_of_order_are_processed_in_order() -> None:
    order = BatchOrder(max_wait_s=5.0)
    # 1..5 in flight (low=1 each); they start 3, 1, 5, 2, 4.
    arrivals = [(3, 1, 0.00), (1, 1, 0.01), (5, 1, 0.02), (2, 1, 0.03), (4, 1, 0.04)]
    assert asyncio.run(_run(order, arrivals)) == [1, 2, 3, 4, 5]
    assert order.waited == 2 and order.timeouts == 0 and order.pending() == 0  # 3 and 5


def test_in_order_batches_never_wait() -> None:
    order = BatchOrder(max_wait_s=5.0)
    # each batch sent once the one before was acked: low == seq
    assert asyncio.run(_run(order, [(s, s, s * 0.001) for s in range(1, 50)])) == \
        list(range(1, 50))
    assert order.waited == 0


def test_low_releases_batches_acked_before_a_restart() -> None:
    """A fresh normalizer (after a restart) sees resends from 57 on: it must not wait for 1..56."""
    order = BatchOrder(max_wait_s=5.0)
    arrivals = [(58, 57, 0.0), (57, 57, 0.01), (59, 57, 0.02)]
    assert asyncio.run(_run(order, arrivals)) == [57, 58, 59]
    assert order.timeouts == 0


def test_a_straggler_that_never_comes_costs_one_bounded_wait() -> None:
    order = BatchOrder(max_wait_s=0.2)

    async def scenario() -> tuple[list[int], float]:
        loop = asyncio.get_running_loop()
        t = loop.time()
        # 2 is lost for good (its sender will resend it much later); 3 and 4 must not each
        # wait the full bound: after 3 gives up, 4 follows it at once.
        got = await _run(order, [(1, 1, 0.0), (3, 2, 0.01), (4, 2, 0.02)])
        return got, loop.time() - t

    got, took = asyncio.run(scenario())
    assert got == [1, 3, 4]
    assert order.timeouts == 1 and took >= 0.2  # one wait gave up, not two
    # The straggler, when it finally comes, goes straight through.
    assert asyncio.run(_run(order, [(2, 2, 0.0)])) == [2]


def test_senders_are_independent() -> None:
    order = BatchOrder(max_wait_s=5.0)

    async def scenario() -> list[tuple[str, int]]:
        seen: list[tuple[str, int]] = []

        async def one(sender: str, seq: int, delay: float) -> None:
            await asyncio.sleep(delay)
            await order.turn(sender, seq, 1)
            seen.append((sender, seq))
            order.done(sender, seq)

        # b's 1 arrives late, but a's batches never wait for it.
        await asyncio.gather(one("a", 2, 0.0), one("b", 2, 0.0), one("a", 1, 0.01),
                             one("b", 1, 0.05))
        return seen

    seen = asyncio.run(scenario())
    assert [s for s in seen if s[0] == "a"] == [("a", 1), ("a", 2)]
    assert [s for s in seen if s[0] == "b"] == [("b", 1), ("b", 2)]
    assert seen.index(("a", 2)) < seen.index(("b", 1))


def _trades(ids: range) -> list[bytes]:
    t0 = 1_795_000_000_000
    return [json.dumps({"stream": "btcusdt@trade", "data": {
        "e": "trade", "E": t0 + i, "s": "BTCUSDT", "t": i, "p": "100.5", "q": "0.25",
        "T": t0 + i, "m": True, "M": True}}).encode() for i in ids]


def test_the_normalizer_actor_puts_one_senders_batches_back_in_order(
        ray_session: Any, tmp_path: Path) -> None:
    """Real sink and normalizer actors: batch 2 arrives first and waits for batch 1, so no
    event counts as out of order; without a sender (no ordering) the same swap does."""
    from spark_ray.actors.normalizer import NormalizerActor
    from spark_ray.actors.sink import SinkActor

    ns = f"test-{uuid.uuid4().hex[:10]}"
    sink = SinkActor.options(namespace=ns).remote(str(tmp_path / "lake"), "binance")
    norm = NormalizerActor.options(namespace=ns).remote(
        NormalizerConfig(symbols=("BTCUSDT",), idle_check_ms=0, repair=False), sink, None,
        str(tmp_path / "dl"), "n0")
    try:
        def send(seq: int, ids: range, sender: str = "") -> Any:
            frames = _trades(ids)
            return norm.ingest.remote(seq, frames, [0] * len(frames), [], sender, 1)

        ray.get(norm.warmup.remote(), timeout=60)
        second = send(2, range(11, 21), "connector:x")
        done, _ = ray.wait([second], timeout=1.0)
        assert not done  # it waits for batch 1
        first = send(1, range(1, 11), "connector:x")
        assert [a["rows"] for a in ray.get([first, second], timeout=60)] == [10, 10]
        st = ray.get(norm.status.remote(), timeout=30)
        assert st["out_of_order"] == {} and st["batches_reordered"] == 1
        assert st["batch_order_timeouts"] == 0 and st["batches_waiting"] == 0

        ray.get(send(4, range(31, 41)), timeout=60)  # no sender: processed as it comes
        ray.get(send(3, range(21, 31)), timeout=60)
        st = ray.get(norm.status.remote(), timeout=30)
        assert st["out_of_order"] == {"BTCUSDT:trade": 10}
    finally:
        ray.kill(norm, no_restart=True)
        ray.kill(sink, no_restart=True)


def test_turns_publish_in_ticket_order_and_a_failure_does_not_block() -> None:
    import asyncio

    from spark_ray.streams.ordering import Turns

    async def run() -> list[int]:
        turns, published = Turns(), []

        async def batch(ticket: int, write_s: float, fail: bool = False) -> None:
            try:
                await asyncio.sleep(write_s)  # the sink write: later batches may finish first
                if fail:
                    raise OSError("sink write failed")
                await turns.wait(ticket)
                published.append(ticket)
            finally:
                turns.release(ticket)

        tickets = [turns.ticket() for _ in range(4)]
        await asyncio.gather(batch(tickets[0], 0.05), batch(tickets[1], 0.0, fail=True),
                             batch(tickets[2], 0.0), batch(tickets[3], 0.01),
                             return_exceptions=True)
        assert turns.waited >= 2
        return published

    assert asyncio.run(run()) == [0, 2, 3]
