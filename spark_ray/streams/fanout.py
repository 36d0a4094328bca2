"""Normalized batches to subscribers (the executor) without stalling ingestion or losing rows.

A subscriber gets at most ``max_inflight`` calls at a time. While it is busy, new batches wait in
its backlog and go out *merged* into one call when a slot frees, so a subscriber slower per call
than the stream still sees every row, just in fewer, larger batches. Only a backlog beyond
``max_backlog_rows`` (a subscriber that stopped) sheds its oldest batches, counted as drops.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

# {"trades": {dataset: Table}, "book": Table | None, "order": [epoch, seq], and "repaired":
# {symbol: [trade ids]} naming raw trades that came over REST (gap repair), not the stream}
Payload = dict[str, Any]


def payload_rows(p: Payload) -> int:
    n = sum(t.num_rows for t in p["trades"].values())
    return n + (p["book"].num_rows if p["book"] is not None else 0)


def merge(payloads: list[Payload]) -> Payload:
    """One payload with every row of ``payloads``, in order."""
    if len(payloads) == 1:
        return payloads[0]
    trades: dict[str, list[pa.Table]] = {}
    books: list[pa.Table] = []
    repaired: dict[str, list[int]] = {}
    for p in payloads:
        for ds, t in p["trades"].items():
            trades.setdefault(ds, []).append(t)
        if p["book"] is not None:
            books.append(p["book"])
        for sym, ids in (p.get("repaired") or {}).items():
            repaired.setdefault(sym, []).extend(ids)
    out: Payload = {"trades": {ds: pa.concat_tables(ts) for ds, ts in trades.items()},
                    "book": pa.concat_tables(books) if books else None}
    if repaired:
        out["repaired"] = repaired
    return out


@dataclass
class Subscriber:
    handle: Any
    method: str
    pending: list[Any] = field(default_factory=list)  # in-flight call refs
    backlog: list[Payload] = field(default_factory=list)
    backlog_rows: int = 0
    sent_rows: int = 0
    dropped_rows: int = 0
    seq: int = 0  # calls sent so far: each carries its number (see spark_ray.inorder)


class Fanout:
    def __init__(self, send: Callable[[Subscriber, Payload], Any],
                 done: Callable[[Any], bool], max_inflight: int = 8,
                 max_backlog_rows: int = 2_000_000) -> None:
        self.send = send  # returns a ref to track
        self.done = done
        self.max_inflight = max_inflight
        self.max_backlog_rows = max_backlog_rows
        self.subs: list[Subscriber] = []
        # Names this sender's numbering: a restarted normalizer starts again at 0 under a new
        # name, so a receiver never mistakes its first call for a redelivery.
        self.epoch = uuid.uuid4().hex

    def add(self, handle: Any, method: str) -> int:
        """Subscribe ``handle.<method>``; subscribing the same actor again (a supervisor that
        re-subscribes after a restart) keeps one subscription, so no row goes out twice. Its
        in-flight calls are forgotten (they may have died with the old process); its backlog
        stays."""
        key = _identity(handle)
        for sub in self.subs:
            if sub.method == method and key is not None and _identity(sub.handle) == key:
                sub.handle, sub.pending = handle, []
                return len(self.subs)
        self.subs.append(Subscriber(handle, method))
        return len(self.subs)

    def prime(self, sub: Subscriber, payload: Payload) -> None:
        """Put ``payload`` first in ``sub``'s backlog: what a new subscriber must see before
        anything else (the book in force when it joined)."""
        rows = payload_rows(payload)
        if rows:
            sub.backlog.insert(0, payload)
            sub.backlog_rows += rows

    def remove(self, handle: Any) -> int:
        """Unsubscribe ``handle`` (every method): a subscriber leaving a long-lived fabric must
        not leave a backlog behind that grows until it is shed. Returns how many were left."""
        key = _identity(handle)
        self.subs = [s for s in self.subs if _identity(s.handle) != key]
        return len(self.subs)

    def publish(self, payload: Payload | None) -> None:
        """Queue ``payload`` (if any) for everyone, then send what free slots allow. Called per
        batch and from a timer, so a backlog drains when the stream goes quiet."""
        rows = payload_rows(payload) if payload is not None else 0
        for sub in self.subs:
            if payload is not None and rows:
                sub.backlog.append(payload)
                sub.backlog_rows += rows
            sub.pending = [r for r in sub.pending if not self.done(r)]
            if sub.backlog and len(sub.pending) < self.max_inflight:
                merged = {**merge(sub.backlog), "order": [self.epoch, sub.seq]}
                sub.backlog, sub.sent_rows = [], sub.sent_rows + sub.backlog_rows
                sub.backlog_rows, sub.seq = 0, sub.seq + 1
                sub.pending.append(self.send(sub, merged))
            while sub.backlog_rows > self.max_backlog_rows and sub.backlog:
                old = sub.backlog.pop(0)
                n = payload_rows(old)
                sub.backlog_rows -= n
                sub.dropped_rows += n

    def settled(self) -> bool:
        """Every subscriber has taken every row queued for it: no backlog and no call in
        flight. A stopping fabric waits for this, so rows it stored also reach a subscriber
        that was slow to start (a new actor's worker on a busy node) instead of being dropped
        with the backlog. A dead subscriber's calls end (in error), so it does not hold this
        up for long."""
        for sub in self.subs:
            sub.pending = [r for r in sub.pending if not self.done(r)]
            if sub.backlog or sub.pending:
                return False
        return True

    def view(self) -> list[dict[str, Any]]:
        """Per subscriber: calls in flight, rows waiting, sent and shed (status, debugging)."""
        return [{"method": s.method, "pending": len(s.pending), "backlog_rows": s.backlog_rows,
                 "sent_rows": s.sent_rows, "dropped_rows": s.dropped_rows} for s in self.subs]

    @property
    def dropped_rows(self) -> int:
        return sum(s.dropped_rows for s in self.subs)

    @property
    def backlog_rows(self) -> int:
        return sum(s.backlog_rows for s in self.subs)


def _identity(handle: Any) -> Any:
    """A Ray actor handle's actor id (stable across restarts); the object itself otherwise."""
    actor_id = getattr(handle, "_actor_id", None)
    return actor_id.hex() if actor_id is not None else handle

