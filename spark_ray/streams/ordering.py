"""Per-sender batch order at the normalizer.

Ray does not keep the submission order of calls to an async actor: a call whose arguments
must first be fetched from the object store (a large batch of frames) can start after a later
one. For trades that only costs a needless REST repair and late duplicates; for a depth book
it is a broken update chain and a resync. So each connector numbers its batches and tells,
with every batch, the lowest number it has not yet seen acknowledged (``low``): every batch
below it is done, every one from it on is in flight and will arrive (sent again after a
failure). A batch waits here until all in-flight batches before it have been processed, but
at most ``max_wait_s``: after that it goes ahead and the stragglers are processed whenever
they arrive (dedup and gap repair keep the data exact either way).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class _Sender:
    next: int  # every batch below this one is processed (or given up on)
    done: set[int] = field(default_factory=set)  # processed batches at or above ``next``
    waiting: dict[int, asyncio.Future[None]] = field(default_factory=dict)


class BatchOrder:
    """Lets each sender's batches through in sequence order (bounded wait)."""

    def __init__(self, max_wait_s: float) -> None:
        self.max_wait_s = max_wait_s
        self._senders: dict[str, _Sender] = {}
        self.waited = 0  # batches that arrived early and waited for their turn
        self.timeouts = 0  # batches that stopped waiting for a straggler

    async def turn(self, sender: str, seq: int, low: int) -> None:
        """Return when every batch of ``sender`` from ``low`` up to ``seq`` - 1 is processed,
        or after ``max_wait_s`` (the missing ones are then skipped over)."""
        st = self._state(sender, low)
        if seq <= st.next:
            return
        self.waited += 1
        fut = st.waiting.get(seq)
        if fut is None:
            fut = st.waiting[seq] = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(asyncio.shield(fut), self.max_wait_s)
        except TimeoutError:
            self.timeouts += 1
            st.waiting.pop(seq, None)
            if seq > st.next:  # give up on the stragglers: they go through when they come
                self._jump(st, seq)

    def done(self, sender: str, seq: int) -> None:
        """``seq`` was processed: the next batch in line may go."""
        st = self._senders.get(sender)
        if st is None or seq < st.next:
            return
        st.done.add(seq)
        self._advance(st)

    def pending(self) -> int:
        """Batches waiting for their turn now."""
        return sum(len(s.waiting) for s in self._senders.values())

    def _state(self, sender: str, low: int) -> _Sender:
        st = self._senders.get(sender)
        if st is None:
            st = self._senders[sender] = _Sender(next=low)
        elif low > st.next:  # the sender saw everything below ``low`` acknowledged
            self._jump(st, low)
        return st

    def _jump(self, st: _Sender, to: int) -> None:
        st.next = to
        st.done = {s for s in st.done if s >= to}
        self._advance(st)

    def _advance(self, st: _Sender) -> None:
        while st.next in st.done:
            st.done.discard(st.next)
            st.next += 1
        # The batch now in line, and any skipped over (after a timeout or a higher ``low``).
        for s in [s for s in st.waiting if s <= st.next]:
            f = st.waiting.pop(s)
            if not f.done():
                f.set_result(None)


class Turns:
    """Publishing in processing order.

    A batch is processed in its turn (above) but then awaits the sink before its rows go to
    subscribers, and a later batch's write can finish first: its rows would reach the
    subscribers first. Consumers that join streams by receive time (a trade and the book in
    force at it) need them in the order they were processed. So each processed batch takes a
    ticket, and publishes only when every earlier ticket has published or given up
    (:meth:`release` in a ``finally``, so a failed write never blocks the ones behind it).
    """

    def __init__(self) -> None:
        self._next_ticket = 0
        self._turn = 0  # the ticket that may publish now
        self._released: set[int] = set()
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self.waited = 0  # publishes that waited for an earlier one

    def ticket(self) -> int:
        t = self._next_ticket
        self._next_ticket += 1
        return t

    async def wait(self, ticket: int) -> None:
        if ticket <= self._turn:
            return
        self.waited += 1
        fut = self._waiting[ticket] = asyncio.get_running_loop().create_future()
        try:
            await fut
        finally:
            self._waiting.pop(ticket, None)

    def release(self, ticket: int) -> None:
        self._released.add(ticket)
        while self._turn in self._released:
            self._released.remove(self._turn)
            self._turn += 1
        fut = self._waiting.get(self._turn)
        if fut is not None and not fut.done():
            fut.set_result(None)
