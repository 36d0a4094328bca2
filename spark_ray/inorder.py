"""Calls back in the order they were sent: the receiving side of the fabric's numbering.

The normalizer's fanout (:mod:`spark_ray.streams.fanout`) gives every call to a subscriber
``"order": [epoch, seq]``. A module of its own, beside the streams and signals packages rather
than in either, so the signals can use it without depending on the streams.
"""

from __future__ import annotations

from typing import Any

Payload = dict[str, Any]

class InOrder:
    """A receiver's side of the numbering: payloads in the order they were sent.

    Ray does not promise that an async actor runs calls in the order they were sent, and a
    consumer that joins two streams by time (trades and the book as of each trade) must see
    them in the sender's order. Each sender (``epoch``) is numbered from 0; a payload ahead of
    a missing one waits until the gap fills or ``wait_ms`` passes (then the gap is skipped and
    counted: a shed backlog never leaves one, a dead sender's last call can). A payload with no
    number passes straight through.
    """

    def __init__(self, wait_ms: float = 1_000.0) -> None:
        self.wait_ms = wait_ms
        self._next: dict[str, int] = {}
        self._early: dict[str, dict[int, Payload]] = {}
        self._since: dict[str, float] = {}
        self.reordered = 0  # payloads that waited for an earlier one
        self.skipped = 0  # numbers given up on after wait_ms
        self.redelivered = 0  # numbers already taken

    def push(self, payload: Payload, now_ms: float) -> list[Payload]:
        order = payload.get("order")
        if not order:
            return [payload]
        epoch, seq = str(order[0]), int(order[1])
        nxt = self._next.get(epoch, 0)
        if seq < nxt:
            self.redelivered += 1
            return []
        if seq > nxt:
            self.reordered += 1
            self._early.setdefault(epoch, {})[seq] = payload
            self._since.setdefault(epoch, now_ms)
            return []
        return self._run(epoch, payload)

    def _run(self, epoch: str, payload: Payload | None) -> list[Payload]:
        out = [payload] if payload is not None else []
        nxt = self._next.get(epoch, 0) + (payload is not None)
        early = self._early.get(epoch, {})
        while nxt in early:
            out.append(early.pop(nxt))
            nxt += 1
        self._next[epoch] = nxt
        if early:
            self._since[epoch] = self._since.get(epoch, 0.0)
        else:
            self._early.pop(epoch, None)
            self._since.pop(epoch, None)
        return out

    def due(self, now_ms: float) -> list[Payload]:
        """Payloads held longer than ``wait_ms``: the gap before them is skipped."""
        out: list[Payload] = []
        for epoch in [e for e, t in self._since.items() if now_ms - t >= self.wait_ms]:
            first = min(self._early[epoch])
            self.skipped += first - self._next.get(epoch, 0)
            self._next[epoch] = first
            del self._since[epoch]
            out += self._run(epoch, None)
            if epoch in self._early:
                self._since[epoch] = now_ms  # a further gap waits its own time
        return out

    @property
    def held(self) -> int:
        return sum(len(e) for e in self._early.values())
