"""The active faults: which frames, requests and orders they take, and the log of every injection.

The :class:`FaultPlan` holds the active faults (each a :class:`~spark_ray.venue.faults.FaultSpec`
plus its counters) and decides, frame by frame or request by request, what to do; the server only
carries the decision out. Every activation, injection and retirement goes to the
:class:`FaultLog` with wall-clock time, so chaos tests can match each detection to its injection.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from spark_ray.venue.faults import (
    CONNECTION_KINDS,
    FRAME_KINDS,
    ORDER_KINDS,
    REST_KINDS,
    TRADE_STREAM_KINDS,
    FaultKind,
    FaultSpec,
)


@dataclass
class Fault:
    """An active fault: its spec plus the counters and ranges it has used so far."""

    id: int
    spec: FaultSpec
    created: float
    expires: float | None
    rng: random.Random
    injected: int = 0
    gap_ranges: dict[str, tuple[int, int]] = field(default_factory=dict)
    seen_connections: set[int] = field(default_factory=set)
    last_applied: float | None = None
    retired: bool = False

    def matches_stream(self, symbol: str | None, kind: str, connection: int) -> bool:
        s = self.spec
        if s.connection is not None and s.connection != connection:
            return False
        if s.symbol is not None and symbol is not None and s.symbol != symbol:
            return False
        if s.symbol is not None and symbol is None:
            return False
        streams = s.streams or (TRADE_STREAM_KINDS if s.kind is FaultKind.GAP else ())
        return not streams or kind in streams


@dataclass(frozen=True)
class FaultEvent:
    """One line of the fault log."""

    seq: int
    time_ms: int  # wall clock, epoch ms
    fault_id: int
    kind: str
    action: str  # activated | injected | cleared | expired | exhausted
    symbol: str | None = None
    connection: int | None = None
    stream: str | None = None
    first_id: int | None = None
    last_id: int | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultLog:
    """Bounded, thread-safe log of fault events (oldest dropped past `maxlen`, counted)."""

    def __init__(self, maxlen: int = 200_000) -> None:
        self._events: deque[FaultEvent] = deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self._seq = 0

    def add(self, fault: Fault, action: str, **kw: Any) -> FaultEvent:
        with self._lock:
            self._seq += 1
            ev = FaultEvent(self._seq, int(time.time() * 1000), fault.id, fault.spec.kind.value,
                            action, **kw)
            self._events.append(ev)
            return ev

    def events(self) -> list[FaultEvent]:
        with self._lock:
            return list(self._events)

    @property
    def total(self) -> int:
        return self._seq


@dataclass
class FrameDecision:
    """What to do with one frame on one connection."""

    drop: bool = False
    duplicate: bool = False
    malformed: str | None = None
    size_bytes: int = 0
    delay_ms: float = 0.0


@dataclass(frozen=True)
class OrderDecision:
    """What to do with one order submission (kind None: nothing)."""

    kind: FaultKind | None = None
    placed: bool = True
    status: int = 500
    delay_ms: float = 0.0
    drop_connection: bool = False


@dataclass(frozen=True)
class RestDecision:
    """What to do with one REST request."""

    error_status: int | None = None
    timeout_ms: float | None = None
    drop_connection: bool = False
    delay_ms: float = 0.0


class FaultPlan:
    """The active faults and the decisions they imply. Owned by the server's event loop."""

    def __init__(self, log: FaultLog | None = None) -> None:
        self.log = log or FaultLog()
        self.faults: dict[int, Fault] = {}
        self.version = 0
        self._next_id = 1
        self._cache: dict[tuple[int, str | None, str], list[Fault]] = {}
        self._cache_version = -1

    # --- lifecycle -----------------------------------------------------------------------
    def add(self, spec: FaultSpec, now: float) -> Fault:
        fid = self._next_id
        self._next_id += 1
        expires = now + spec.duration_s if spec.duration_s is not None else None
        fault = Fault(fid, spec, now, expires, random.Random(spec.seed * 1_000_003 + fid))  # nosec B311  # reproducible simulated faults, not cryptography
        self.faults[fid] = fault
        self.version += 1
        self.log.add(fault, "activated", symbol=spec.symbol, connection=spec.connection,
                     detail=spec.describe())
        return fault

    def remove(self, fault_id: int | None, now: float) -> int:
        """Clear one fault (or all with None); returns how many were cleared."""
        ids = list(self.faults) if fault_id is None else [fault_id]
        n = 0
        for fid in ids:
            fault = self.faults.pop(fid, None)
            if fault is not None:
                n += 1
                self.log.add(fault, "cleared", symbol=fault.spec.symbol)
        if n:
            self.version += 1
        return n

    def _retire(self, fault: Fault, action: str) -> None:
        if self.faults.pop(fault.id, None) is not None:
            fault.retired = True
            self.version += 1
            self.log.add(fault, action, symbol=fault.spec.symbol)

    def expire(self, now: float) -> None:
        for fault in list(self.faults.values()):
            if fault.expires is not None and now >= fault.expires:
                self._retire(fault, "expired")

    def active(self) -> list[Fault]:
        return list(self.faults.values())

    def _count(self, fault: Fault) -> None:
        fault.injected += 1
        if fault.spec.count is not None and fault.injected >= fault.spec.count:
            self._retire(fault, "exhausted")

    # --- frames --------------------------------------------------------------------------
    def frame_faults(self, connection: int, symbol: str | None, kind: str) -> list[Fault]:
        """Active frame faults touching this connection, symbol and stream kind (cached)."""
        if self._cache_version != self.version:
            self._cache.clear()
            self._cache_version = self.version
        key = (connection, symbol, kind)
        hit = self._cache.get(key)
        if hit is None:
            hit = [
                f for f in self.faults.values()
                if f.spec.kind in FRAME_KINDS and f.matches_stream(symbol, kind, connection)
            ]
            self._cache[key] = hit
        return hit

    def decide_frame(
        self,
        faults: list[Fault],
        *,
        connection: int,
        symbol: str | None,
        stream: str,
        first_id: int | None,
        last_id: int | None,
        now: float,
    ) -> FrameDecision:
        """Apply the matching faults to one frame, logging each injection."""
        d = FrameDecision()
        for f in faults:
            if f.retired:
                continue
            s = f.spec
            kind = s.kind
            if kind is FaultKind.STALL:
                d.drop = True
                if connection not in f.seen_connections:
                    f.seen_connections.add(connection)
                    self.log.add(f, "injected", symbol=symbol, connection=connection,
                                 stream=stream, detail="stall: data withheld")
            elif kind is FaultKind.GAP:
                if first_id is None or last_id is None or symbol is None:
                    continue
                rng_ = f.gap_ranges.get(symbol)
                if rng_ is None:
                    assert s.count is not None  # nosec B101  # narrows Optional for mypy, not a check
                    rng_ = (first_id, first_id + s.count - 1)
                    f.gap_ranges[symbol] = rng_
                    self.log.add(f, "injected", symbol=symbol, connection=s.connection,
                                 stream=stream, first_id=rng_[0], last_id=rng_[1],
                                 detail=f"gap: trade ids {rng_[0]}..{rng_[1]} skipped")
                if first_id <= rng_[1] and last_id >= rng_[0]:
                    d.drop = True
                elif first_id > rng_[1] and s.symbol is not None:
                    self._retire(f, "exhausted")
            elif kind is FaultKind.LATENCY:
                d.delay_ms += s.delay_ms
                if connection not in f.seen_connections:
                    f.seen_connections.add(connection)
                    self.log.add(f, "injected", symbol=symbol, connection=connection,
                                 stream=stream, detail=f"latency: +{s.delay_ms:g} ms")
            elif f.rng.random() < s.probability:
                if kind is FaultKind.DROP:
                    if d.drop:
                        continue
                    d.drop = True
                elif kind is FaultKind.DUPLICATE:
                    d.duplicate = True
                elif kind is FaultKind.MALFORMED:
                    d.malformed = s.variant
                    d.size_bytes = s.size_bytes
                self.log.add(f, "injected", symbol=symbol, connection=connection, stream=stream,
                             first_id=first_id, last_id=last_id, detail=kind.value)
                self._count(f)
        return d

    # --- connections ---------------------------------------------------------------------
    def due_connection_faults(self, now: float) -> list[Fault]:
        """DISCONNECT/CLOSE faults to carry out now (once, or every interval_s while active)."""
        due: list[Fault] = []
        for f in list(self.faults.values()):
            if f.spec.kind not in CONNECTION_KINDS:
                continue
            if f.last_applied is None or (
                f.spec.interval_s is not None and now - f.last_applied >= f.spec.interval_s
            ):
                f.last_applied = now
                due.append(f)
                if f.spec.interval_s is None:
                    self._retire(f, "exhausted")
        return due

    def log_connection_fault(self, fault: Fault, connection: int, symbol: str | None) -> None:
        self.log.add(fault, "injected", symbol=symbol, connection=connection,
                     detail=f"{fault.spec.kind.value} code={fault.spec.close_code}"
                     if fault.spec.kind is FaultKind.CLOSE else fault.spec.kind.value)

    # --- REST ----------------------------------------------------------------------------
    def decide_rest(self, path: str, symbol: str | None, now: float) -> RestDecision:
        error: int | None = None
        timeout: float | None = None
        drop = False
        delay = 0.0
        for f in list(self.faults.values()):
            s = f.spec
            if s.kind not in REST_KINDS:
                continue
            if s.path is not None and not path.startswith(s.path):
                continue
            if s.symbol is not None and s.symbol != symbol:
                continue
            if s.kind is FaultKind.REST_LATENCY:
                delay += s.delay_ms
                self.log.add(f, "injected", symbol=symbol, stream=path,
                             detail=f"rest latency +{s.delay_ms:g} ms")
                continue
            if error is not None or timeout is not None or f.rng.random() >= s.probability:
                continue
            if s.kind is FaultKind.REST_ERROR:
                error = s.status
            else:
                timeout = s.delay_ms or 30_000.0
                drop = s.drop_connection
            self.log.add(f, "injected", symbol=symbol, stream=path,
                         detail=f"{s.kind.value} status={s.status}"
                         if s.kind is FaultKind.REST_ERROR else f"{s.kind.value} {timeout:g} ms")
            self._count(f)
        return RestDecision(error, timeout, drop, delay)

    # --- orders --------------------------------------------------------------------------
    def decide_order(self, symbol: str | None, now: float) -> OrderDecision:
        """The first active order fault (in injection order) that takes this submission."""
        for f in list(self.faults.values()):
            s = f.spec
            if s.kind not in ORDER_KINDS or f.retired:
                continue
            if s.symbol is not None and s.symbol != symbol:
                continue
            if f.rng.random() >= s.probability:
                continue
            detail = (f"{s.kind.value} status={s.status}" if s.kind is FaultKind.ORDER_ERROR
                      else f"{s.kind.value} {s.delay_ms:g} ms")
            self.log.add(f, "injected", symbol=symbol, stream="/api/v3/order",
                         detail=f"{detail} placed={s.placed}")
            self._count(f)
            return OrderDecision(s.kind, s.placed, s.status, s.delay_ms, s.drop_connection)
        return OrderDecision()
