"""Fault injection: what can go wrong on the wire, where, and how a frame gets corrupted.

A fault is a :class:`FaultSpec` (kind plus scope: symbol, connection, stream kinds, REST path,
and limits: probability, count, duration). :mod:`~spark_ray.venue.fault_plan` holds the active
faults, decides frame by frame or request by request what to do, and logs every injection; the
server only carries the decision out. Faults act on what clients receive, never on the market or
the ground-truth ledger, so a client that recovers (resubscribes, backfills over REST) can always
reach the truth again.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
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
    "btcturk.trade", "btcturk.obdiff", "btcturk.orderbook", "btcturk.ticker", "userData",
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
        _check_json_types(data)
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

    def describe(self) -> str:
        """The kind and every non-default setting, as the fault log's activation detail."""
        parts = [self.kind.value]
        for name in ("probability", "count", "duration_s", "delay_ms", "variant", "status",
                     "path", "close_code", "interval_s", "placed"):
            value = getattr(self, name)
            default = FaultSpec.__dataclass_fields__[name].default
            if value != default:
                parts.append(f"{name}={value}")
        if self.streams:
            parts.append("streams=" + ",".join(self.streams))
        return " ".join(parts)


# The JSON type of every FaultSpec field but kind: (accepted types, None allowed, described as).
_JSON_FIELDS: dict[str, tuple[tuple[type, ...], bool, str]] = {
    "symbol": ((str,), True, "a string"), "path": ((str,), True, "a string"),
    "variant": ((str,), False, "a string"),
    "connection": ((int,), True, "an integer"), "count": ((int,), True, "an integer"),
    "size_bytes": ((int,), False, "an integer"), "status": ((int,), False, "an integer"),
    "close_code": ((int,), False, "an integer"), "seed": ((int,), False, "an integer"),
    "probability": ((int, float), False, "a number"), "delay_ms": ((int, float), False, "a number"),
    "duration_s": ((int, float), True, "a number"), "interval_s": ((int, float), True, "a number"),
    "drop_connection": ((bool,), False, "true or false"), "placed": ((bool,), False,
                                                                    "true or false"),
}


def _check_json_types(data: dict[str, Any]) -> None:
    """A field of the wrong JSON type (or a non-finite or huge number) is a ValueError naming
    it, not a TypeError deep inside (or a fault that breaks the engine step later)."""
    for name, value in data.items():
        if name == "streams":
            if not isinstance(value, list | tuple) or not all(isinstance(s, str) for s in value):
                raise ValueError("streams: a list of stream kinds")
            continue
        spec = _JSON_FIELDS.get(name)
        if spec is None:
            continue
        types, nullable, what = spec
        if value is None and nullable:
            continue
        ok = isinstance(value, types) and (bool in types or not isinstance(value, bool))
        if ok and isinstance(value, int | float) and not isinstance(value, bool):
            ok = abs(value) <= 2**53  # False for NaN and infinity; no float() of a huge int
        if not ok:
            raise ValueError(f"{name}: {what}" + (" or null" if nullable else ""))


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
