"""Local order books kept in sync with Binance's documented snapshot + diff procedure.

Binance ("How to manage a local order book correctly"): buffer the ``depthUpdate`` events, get a
REST snapshot (``lastUpdateId``), drop buffered events with ``u <= lastUpdateId``; the first event
applied must satisfy ``U <= lastUpdateId + 1 <= u`` (else fetch a new snapshot); after that every
event's ``U`` must be the previous ``u + 1``, or the book is out of sync and starts over. A
quantity of 0 removes the level. The shell performs the REST call; this class decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from spark_ray.adapters.events import DepthEvent

MAX_BUFFER = 5_000


@dataclass
class LocalBook:
    """Price -> quantity per side; the best levels are what subscribers read."""

    bids: dict[float, float] = field(default_factory=dict)
    asks: dict[float, float] = field(default_factory=dict)
    last_update_id: int = 0

    def reset(self, last_update_id: int, bids: list[tuple[float, float]],
              asks: list[tuple[float, float]]) -> None:
        self.bids = {p: q for p, q in bids if q > 0}
        self.asks = {p: q for p, q in asks if q > 0}
        self.last_update_id = last_update_id

    def apply(self, ev: DepthEvent) -> None:
        for side, levels in ((self.bids, ev.bids), (self.asks, ev.asks)):
            for p, q in levels:
                if q == 0:
                    side.pop(p, None)
                else:
                    side[p] = q
        self.last_update_id = ev.last_id

    def best(self) -> tuple[float, float, float, float] | None:
        """(bid price, bid qty, ask price, ask qty), or None while a side is empty."""
        if not self.bids or not self.asks:
            return None
        bp = max(self.bids)
        ap = min(self.asks)
        return bp, self.bids[bp], ap, self.asks[ap]


@dataclass
class DepthSync:
    """One symbol's sync state machine. Feed events and snapshots; read ``book`` when synced."""

    symbol: str
    book: LocalBook = field(default_factory=LocalBook)
    synced: bool = False
    want_snapshot: bool = True  # the shell should fetch a snapshot (and call on_snapshot)
    snapshot_pending: bool = False
    buffer: list[DepthEvent] = field(default_factory=list)
    resyncs: int = 0
    gaps: int = 0
    fresh: bool = False  # synced from a snapshot, no event applied yet

    def on_event(self, ev: DepthEvent) -> list[DepthEvent]:
        """Take one event; returns the events applied to the book (0 or 1)."""
        if not self.synced:
            self.buffer.append(ev)
            if len(self.buffer) > MAX_BUFFER:
                del self.buffer[: len(self.buffer) - MAX_BUFFER]
            if not self.snapshot_pending:
                self.want_snapshot = True
            return []
        if ev.last_id <= self.book.last_update_id:
            return []  # already applied (duplicate or overlap after a reconnect)
        if self.fresh and ev.first_id <= self.book.last_update_id + 1:
            # First event after a snapshot newer than every buffered one: it straddles it.
            self.fresh = False
            self.book.apply(ev)
            return [ev]
        if ev.first_id != self.book.last_update_id + 1:
            self.gaps += 1
            self._restart(ev)
            return []
        self.fresh = False
        self.book.apply(ev)
        return [ev]

    def _restart(self, ev: DepthEvent | None = None) -> None:
        self.synced = False
        self.resyncs += 1
        self.buffer = [ev] if ev is not None else []
        self.want_snapshot = True
        self.snapshot_pending = False

    def snapshot_requested(self) -> None:
        self.want_snapshot = False
        self.snapshot_pending = True

    def snapshot_failed(self) -> None:
        self.snapshot_pending = False
        self.want_snapshot = True

    def on_snapshot(self, last_update_id: int, bids: list[tuple[float, float]],
                    asks: list[tuple[float, float]]) -> list[DepthEvent]:
        """Apply a REST snapshot and the buffered events after it; returns events applied."""
        self.snapshot_pending = False
        pending = [e for e in self.buffer if e.last_id > last_update_id]
        if pending and pending[0].first_id > last_update_id + 1:
            # The snapshot is older than the first event we still hold: try again.
            self.buffer = pending
            self.want_snapshot = True
            self.resyncs += 1
            return []
        self.book.reset(last_update_id, bids, asks)
        self.synced = True
        self.buffer = []
        applied: list[DepthEvent] = []
        self.fresh = True
        for e in pending:
            applied.extend(self.on_event(e))
            if not self.synced:
                break
        return applied

    def on_reconnect(self) -> None:
        """A new connection may have missed events: resync from a fresh snapshot."""
        if self.synced:
            self._restart()


REJOIN_RETRY_MS = 5_000  # a re-join whose full book never came is asked for again


@dataclass
class StreamBookSync:
    """One symbol's book on a venue whose depth stream sends its own full book on joining
    (``caps.book_from_stream``; BTCTurk, https://docs.btcturk.com/websocket-feed/models):
    a snapshot event (431) resets the book and its change set ``CS`` starts the chain; each diff
    (432) must carry ``CS`` = previous + 1. A diff at or below the book's ``CS`` was applied
    already (a duplicated frame, a resend): skipped. Any other ``CS`` means the book is out of
    sync: count a resync, drop diffs until a new full book, and ask the shell to leave and
    re-join the channel (``want_rejoin``), which makes the venue send one. Diffs before any full
    book (a restarted normalizer) ask for a re-join too. The shell sends the request; this class
    decides."""

    symbol: str
    book: LocalBook = field(default_factory=LocalBook)
    synced: bool = False
    want_rejoin: bool = False
    rejoin_asked_ms: int | None = None  # receive time of the diff that last asked
    resyncs: int = 0
    gaps: int = 0

    def on_event(self, ev: DepthEvent) -> list[DepthEvent]:
        """Take one event; returns the events applied to the book (0 or 1)."""
        if ev.snapshot:
            self.book.reset(ev.last_id, ev.bids, ev.asks)
            self.synced = True
            self.want_rejoin = False
            self.rejoin_asked_ms = None
            return [ev]
        if not self.synced:
            asked = self.rejoin_asked_ms
            if asked is None or ev.recv_time - asked >= REJOIN_RETRY_MS:
                self._ask(ev.recv_time)
            return []
        if ev.last_id <= self.book.last_update_id:
            return []  # applied already (duplicate frame or a resent batch)
        if ev.first_id != self.book.last_update_id + 1:
            self.gaps += 1
            self.resyncs += 1
            self.synced = False
            self._ask(ev.recv_time)
            return []
        self.book.apply(ev)
        return [ev]

    def _ask(self, now_ms: int) -> None:
        self.want_rejoin = True
        self.rejoin_asked_ms = now_ms

    def rejoin_requested(self) -> None:
        """The shell took the request (it travels with the batch's acknowledgement)."""
        self.want_rejoin = False
