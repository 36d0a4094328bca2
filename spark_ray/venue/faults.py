"""Fault injection: what can go wrong on the wire, where, and a timestamped log of every injection.

A fault is a :class:`FaultSpec` (kind plus scope: symbol, connection, stream kinds, REST path,
and limits: probability, count, duration). The :class:`FaultPlan` holds the active faults and
decides, frame by frame or request by request, what to do; the server only carries the decision
out. Faults act on what clients receive, never on the market or the ground-truth ledger, so a
client that recovers (resubscribes, backfills over REST) can always reach the truth again.
Every activation, injection and retirement goes to the :class:`FaultLog` with wall-clock time,
so chaos tests can match each detection to its injection.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any


class FaultKind(StrEnum):
    LATENCY = "latency"  # WS frames held back delay_ms (lag spike); order kept
    DROP = "drop"  # a share (probability) or number (count) of frames never sent
    GAP = "gap"  # the next `count` trade ids of a symbol skipped on the stream
    DUPLICATE = "duplicate"  # frames sent twice
    MALFORMED = "malformed"  # frames replaced: bad_json, wrong_types, missing_fields, oversized
    DISCONNECT = "disconnect"  # abrupt TCP reset (RST, no close frame)
    CLOSE = "close"  # clean WebSocket close with close_code
    STALL = "stall"  # connection stays open, data frames withheld
    REST_ERROR = "rest_error"  # REST answers 5xx with a Binance error body
    REST_TIMEOUT = "rest_timeout"  # REST holds the request delay_ms, then 503 (or drops it)
    REST_LATENCY = "rest_latency"  # REST answers after delay_ms
    # Order submissions (POST /api/v3/order, after authentication): `placed` says whether the
    # order is really placed before the client is failed -- the nasty case where it exists
    # although the client saw an error or nothing at all.
    ORDER_ERROR = "order_error"  # answer `status` (5xx, Binance error body) instead
    ORDER_TIMEOUT = "order_timeout"  # hold the answer delay_ms (then the answer, or a reset)


FRAME_KINDS = frozenset(
    {FaultKind.LATENCY, FaultKind.DROP, FaultKind.GAP, FaultKind.DUPLICATE, FaultKind.MALFORMED,
     FaultKind.STALL}
)
CONNECTION_KINDS = frozenset({FaultKind.DISCONNECT, FaultKind.CLOSE})
REST_KINDS = frozenset({FaultKind.REST_ERROR, FaultKind.REST_TIMEOUT, FaultKind.REST_LATENCY})
ORDER_KINDS = frozenset({FaultKind.ORDER_ERROR, FaultKind.ORDER_TIMEOUT})
MALFORMED_VARIANTS = ("bad_json", "wrong_types", "missing_fields", "oversized")
TRADE_STREAM_KINDS = ("trade", "aggTrade", "btcturk.trade")
STREAM_KINDS = (
    "trade", "aggTrade", "kline", "depth", "bookTicker",
    "btcturk.trade", "btcturk.obdiff", "btcturk.orderbook", "userData",
)


@dataclass(frozen=True)
class FaultSpec:
    """One fault and its scope. Unset scope fields mean "all"."""

    kind: FaultKind
    symbol: str | None = None
    connection: int | None = None
    streams: tuple[str, ...] = ()
    probability: float = 1.0
    count: int | None = None
    duration_s: float | None = None
    delay_ms: float = 0.0
    variant: str = "bad_json"
    size_bytes: int = 2 * 1024 * 1024
    status: int = 500
    path: str | None = None
    close_code: int = 1000
    interval_s: float | None = None
    drop_connection: bool = False
    placed: bool = True  # order faults: the order is placed (and executes) before the failure
    seed: int = 0

    def __post_init__(self) -> None:
        kind = FaultKind(self.kind)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "streams", tuple(self.streams))
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability: must be between 0 and 1")
        if self.count is not None and self.count < 1:
            raise ValueError("count: must be >= 1")
        if self.duration_s is not None and self.duration_s <= 0:
            raise ValueError("duration_s: must be > 0")
        if self.delay_ms < 0:
            raise ValueError("delay_ms: must be >= 0")
        if kind is FaultKind.MALFORMED and self.variant not in MALFORMED_VARIANTS:
            raise ValueError(f"variant: must be one of {', '.join(MALFORMED_VARIANTS)}")
        if kind is FaultKind.GAP and self.count is None:
            raise ValueError("count: a gap needs the number of trade ids to skip")
        if kind in (FaultKind.REST_ERROR, FaultKind.ORDER_ERROR) and not 500 <= self.status <= 599:
            raise ValueError(f"status: a {kind.value} must be a 5xx status")
        if kind in (FaultKind.LATENCY, FaultKind.REST_LATENCY) and self.delay_ms <= 0:
            raise ValueError("delay_ms: latency needs a delay > 0")
        if kind is FaultKind.ORDER_TIMEOUT and self.delay_ms <= 0:
            raise ValueError("delay_ms: an order timeout needs a delay > 0")
        if self.interval_s is not None and self.interval_s <= 0:
            raise ValueError("interval_s: must be > 0")
        for s in self.streams:
            if s not in STREAM_KINDS:
                raise ValueError(f"streams: unknown stream kind {s!r}; one of {STREAM_KINDS}")
        if self.symbol is not None:
            object.__setattr__(self, "symbol", self.symbol.upper())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultSpec:
        """Build from JSON (admin endpoint); unknown keys and bad values raise ValueError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(unknown)}")
        if "kind" not in data:
            raise ValueError("kind: required")
        try:
            FaultKind(data["kind"])
        except ValueError:
            raise ValueError(
                f"kind: unknown fault kind {data['kind']!r}; one of "
                + ", ".join(k.value for k in FaultKind)
            ) from None
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["kind"] = self.kind.value
        d["streams"] = list(self.streams)
        return d


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
        fault = Fault(fid, spec, now, expires, random.Random(spec.seed * 1_000_003 + fid))
        self.faults[fid] = fault
        self.version += 1
        self.log.add(fault, "activated", symbol=spec.symbol, connection=spec.connection,
                     detail=_describe(spec))
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
                    assert s.count is not None
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


def _event_object(doc: Any) -> Any:
    """The event inside a frame: combined `data`, BTCTurk's model (element 1), else the doc."""
    if isinstance(doc, dict) and isinstance(doc.get("data"), dict):
        return doc["data"]
    if isinstance(doc, list) and len(doc) == 2 and isinstance(doc[1], dict):
        return doc[1]
    return doc


def _swap_type(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return 12345
    return value


def malform(payload: bytes, variant: str, size_bytes: int = 2 * 1024 * 1024) -> bytes:
    """A corrupted version of a frame's payload, as a faulty venue or proxy might send it."""
    if variant == "bad_json":
        return payload[: max(1, len(payload) // 2)] + b"\x00}"
    doc = json.loads(payload)
    event = _event_object(doc)
    if not isinstance(event, dict):
        return payload[: max(1, len(payload) // 2)]
    if variant == "wrong_types":
        for k in list(event):
            if k not in ("e", "channel", "event", "type"):
                event[k] = _swap_type(event[k])
    elif variant == "missing_fields":
        for i, k in enumerate(list(event)):
            if i % 2 == 1 or k in ("t", "a", "I", "U", "u"):
                del event[k]
    elif variant == "oversized":
        event["pad"] = "x" * max(0, size_bytes)
    return json.dumps(doc, separators=(",", ":")).encode()


def _describe(spec: FaultSpec) -> str:
    parts = [spec.kind.value]
    for name in ("probability", "count", "duration_s", "delay_ms", "variant", "status", "path",
                 "close_code", "interval_s", "placed"):
        value = getattr(spec, name)
        default = FaultSpec.__dataclass_fields__[name].default
        if value != default:
            parts.append(f"{name}={value}")
    if spec.streams:
        parts.append("streams=" + ",".join(spec.streams))
    return " ".join(parts)
