"""Breaker data: configuration, orders, health signals, decisions, conditions, journal events.

Configuration and journal events are pydantic because they cross trust boundaries (YAML files,
JSON lines read back after a crash). Orders, signals and decisions are slotted dataclasses
because they sit on the ``allow`` hot path, where a pydantic model would cost microseconds.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field


class BreakerState(enum.IntEnum):
    """The breaker's state; the int value is what the ``breaker_state`` gauge reports."""

    ARMED = 0
    TRIPPED = 1
    COOLDOWN = 2


MANUAL = "manual"  # the rule name of a trip from the kill switch (cleared only by a reset)


class _Strict(BaseModel):
    """Config base: unknown keys are errors so a typo names itself (own copy: no import cycle
    with ``spark_ray.config``, which may embed :class:`BreakerConfig` as a section)."""

    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=True)


class RuleConfig(_Strict):
    enabled: bool = True
    latch: bool = Field(False, description="Once tripped, stay tripped until a manual reset.")


class MaxDrawdownConfig(RuleConfig):
    limit: float = Field(0.10, gt=0, lt=1, description="Fraction below the equity high-water mark.")


class DailyLossConfig(RuleConfig):
    limit: float = Field(0.05, gt=0, lt=1, description="Fraction of the UTC day's opening equity.")
    limit_abs: float | None = Field(None, gt=0, description="Also trip at this absolute loss.")


class ConsecutiveLossesConfig(RuleConfig):
    limit: int = Field(5, ge=1, description="Trip when this many closed trades in a row lost.")


class RejectRateConfig(RuleConfig):
    limit: float = Field(0.5, gt=0, le=1, description="Trip when rejects/(acks+rejects) exceeds.")
    window_s: float = Field(300.0, gt=0)
    min_orders: int = Field(10, ge=1, description="No verdict on fewer order results.")


class ErrorRateConfig(RuleConfig):
    limit: int = Field(10, ge=1, description="Trip when this many errors arrive within window_s.")
    window_s: float = Field(60.0, gt=0)


class StaleDataConfig(RuleConfig):
    max_lag_s: float = Field(5.0, gt=0, description="Ingest lag a source may report.")
    max_age_s: float = Field(30.0, gt=0, description="Age of a source's last message.")
    required_sources: tuple[str, ...] = Field(
        (), description="Sources that count as stale until first heard from (after max_age_s).")


class SequenceGapsConfig(RuleConfig):
    limit: int = Field(0, ge=0, description="Unrepaired gaps a source may hold ...")
    grace_s: float = Field(10.0, ge=0, description="... longer than this (time to repair).")


class VenueErrorsConfig(RuleConfig):
    limit: int = Field(20, ge=1, description="Trip a symbol when its venue reports this many "
                                             "errors within window_s.")
    window_s: float = Field(60.0, gt=0)


class ClockOffsetConfig(RuleConfig):
    max_offset_s: float = Field(1.0, gt=0, description="Trip a symbol when |venue time - local "
                                                       "time| exceeds this (recvWindow risk).")


class FatFingerConfig(RuleConfig):
    limit: float = Field(0.05, gt=0, description="Max |order price / last trade - 1|.")
    require_reference: bool = Field(False, description="Block priced orders with no last trade.")
    trip: bool = Field(True, description="Trip the breaker, not only block the order.")


class PositionLimitConfig(RuleConfig):
    """Per-symbol limit (absolute position quantity, or notional in quote currency)."""

    per_symbol: dict[str, float] = Field(default_factory=dict)
    default: float | None = Field(None, gt=0, description="Limit for symbols not listed.")
    trip_on_order: bool = Field(False, description="An order that would breach trips the breaker "
                                                   "(else it is only blocked).")


class NotionalLimitConfig(PositionLimitConfig):
    default: float | None = Field(50_000.0, gt=0, description="Limit for symbols not listed.")


class TotalNotionalConfig(RuleConfig):
    limit: float = Field(100_000.0, gt=0, description="Sum of |position| x price, all symbols.")
    trip_on_order: bool = False


class OrderRateConfig(RuleConfig):
    limit: int = Field(60, ge=1, description="Orders allowed per window_s; the next one trips.")
    window_s: float = Field(60.0, gt=0)


class BreakerConfig(_Strict):
    """Every rule's limits, each rule enable-able on its own; defaults are conservative."""

    cooldown_s: float = Field(300.0, ge=0, description="Quiet time after all conditions clear.")
    dry_run: bool = Field(False, description="Evaluate and journal everything, block nothing.")
    journal_path: str | None = Field(None, description="Default ~/.spark-ray/breaker/journal.jsonl")
    tick_s: float = Field(1.0, gt=0, description="How often the actor re-evaluates time rules.")
    peak_checkpoint: float = Field(
        0.001, ge=0, description="Journal the equity high-water mark when it rises by this "
                                 "fraction (0: every new high); bounds what a restart can lose.")
    max_drawdown: MaxDrawdownConfig = Field(default_factory=MaxDrawdownConfig)
    daily_loss: DailyLossConfig = Field(default_factory=DailyLossConfig)
    consecutive_losses: ConsecutiveLossesConfig = Field(default_factory=ConsecutiveLossesConfig)
    reject_rate: RejectRateConfig = Field(default_factory=RejectRateConfig)
    error_rate: ErrorRateConfig = Field(default_factory=ErrorRateConfig)
    stale_data: StaleDataConfig = Field(default_factory=StaleDataConfig)
    sequence_gaps: SequenceGapsConfig = Field(default_factory=SequenceGapsConfig)
    venue_errors: VenueErrorsConfig = Field(default_factory=VenueErrorsConfig)
    clock_offset: ClockOffsetConfig = Field(default_factory=ClockOffsetConfig)
    fat_finger: FatFingerConfig = Field(default_factory=FatFingerConfig)
    max_position: PositionLimitConfig = Field(default_factory=PositionLimitConfig)
    max_notional: NotionalLimitConfig = Field(default_factory=NotionalLimitConfig)
    max_total_notional: TotalNotionalConfig = Field(default_factory=TotalNotionalConfig)
    order_rate: OrderRateConfig = Field(default_factory=OrderRateConfig)


RULE_NAMES: tuple[str, ...] = (
    "max_drawdown", "daily_loss", "consecutive_losses", "reject_rate", "error_rate", "stale_data",
    "sequence_gaps", "venue_errors", "clock_offset", "fat_finger", "max_position",
    "max_notional", "max_total_notional", "order_rate",
)

# --- hot-path values ---------------------------------------------------------------------------

Side = Literal["buy", "sell"]


DEFAULT_ACCOUNT = "default"


@dataclass(slots=True, frozen=True)
class Order:
    """An order about to be sent; ``price`` None is a market order.

    ``account`` and ``strategy`` name the scopes the order belongs to (with ``symbol`` and the
    global scope); ``reduce_only`` says the sender means it to shrink its position in
    ``symbol``: a tripped scope lets it through when the breaker's own position reading for
    ``who`` confirms it does. ``tag`` is free text journaled with the decision (``flatten``).
    """

    symbol: str
    side: Side
    qty: float
    price: float | None = None
    order_id: str = ""
    who: str = ""
    account: str = DEFAULT_ACCOUNT
    strategy: str = ""
    reduce_only: bool = False
    tag: str = ""

    def __post_init__(self) -> None:
        if self.side not in ("buy", "sell"):
            raise ValueError(f"order side must be 'buy' or 'sell', got {self.side!r}")
        if not self.qty > 0:
            raise ValueError(f"order qty must be > 0, got {self.qty!r}")
        if self.price is not None and not self.price > 0:
            raise ValueError(f"order price must be > 0, got {self.price!r}")

    @property
    def signed_qty(self) -> float:
        return self.qty if self.side == "buy" else -self.qty

    def as_dict(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "side": self.side, "qty": self.qty, "price": self.price,
                "order_id": self.order_id, "who": self.who, "account": self.account,
                "strategy": self.strategy, "reduce_only": self.reduce_only, "tag": self.tag}


SignalKind = Literal[
    "equity",         # value: equity of the reporter ``who`` (its account and strategy add up)
    "trade_closed",   # value: realized PnL of a closed trade (account and strategy)
    "price",          # key: symbol, value: last trade price (fat finger, notional)
    "position",       # key: symbol, value: signed position quantity of ``who``
    "lag",            # key: symbol, value: ingest lag in seconds (also a message from it)
    "heartbeat",      # key: symbol: a message arrived (last-message age)
    "source_closed",  # key: symbol: stop tracking it (unsubscribed on purpose)
    "gaps",           # key: symbol, value: unrepaired sequence gaps right now
    "venue_error",    # key: symbol, value: venue errors since the last report (count)
    "clock_offset",   # key: symbol, value: venue time minus local time, seconds
    "order_ack",      # value: how many orders the venue accepted (default 1)
    "order_reject",   # value: how many orders the venue rejected (default 1)
    "error",          # value: how many errors (default 1)
]
SIGNAL_KINDS: frozenset[str] = frozenset(get_args(SignalKind))


@dataclass(slots=True, frozen=True)
class Signal:
    """A health or PnL reading from another actor; ``ts`` None means "now".

    ``account`` and ``strategy`` place equity and closed-trade readings (empty account: the
    default one; empty strategy: no strategy scope). Data-health kinds are keyed by symbol and
    feed the ``symbol:KEY`` scope.
    """

    kind: SignalKind
    value: float = 1.0
    key: str = ""
    ts: float | None = None
    who: str = ""
    account: str = ""
    strategy: str = ""

    def __post_init__(self) -> None:
        if self.kind not in SIGNAL_KINDS:
            raise ValueError(f"unknown signal kind {self.kind!r}; "
                             f"expected one of {', '.join(sorted(SIGNAL_KINDS))}")
        if not math.isfinite(self.value):
            raise ValueError(f"signal {self.kind} value must be finite, got {self.value!r}")


@dataclass(slots=True, frozen=True)
class Decision:
    """``allow``'s answer. In dry-run ``allowed`` is True and ``reasons`` say what would block."""

    allowed: bool
    reasons: tuple[str, ...] = ()
    dry_run: bool = False


@dataclass(slots=True, frozen=True)
class Violation:
    """A rule's finding: which rule, a human reason and the numbers behind it."""

    rule: str
    reason: str
    values: dict[str, Any]


@dataclass(slots=True, frozen=True)
class Condition:
    """An active tripping condition (durable: rebuilt from the journal)."""

    rule: str
    since: float
    reason: str
    who: str
    values: dict[str, Any] = field(default_factory=dict)
    latched: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "since": self.since, "time": iso(self.since),
                "reason": self.reason, "who": self.who, "values": self.values,
                "latched": self.latched}


# --- journal events ----------------------------------------------------------------------------

EventKind = Literal[
    "trip",         # a rule's condition became active (state -> TRIPPED)
    "clear",        # a condition cleared
    "cooldown",     # TRIPPED -> COOLDOWN (all conditions clear)
    "arm",          # COOLDOWN -> ARMED (cooldown elapsed)
    "reset",        # manual reset -> ARMED (reason, who)
    "blocked",      # an order was blocked
    "would_block",  # dry-run: an order would have been blocked
    "mark",         # durable measures checkpoint (high-water mark, day open, loss streak)
    "subscribe",    # a named actor subscribed to trips
    "unsubscribe",
    "start",        # the actor (re)started; informational
    "dry_run",      # dry-run switched on or off for ``scope`` (values: on)
    "exit",         # a reduce-only order decided while a scope of it was not ARMED
]


class Marks(BaseModel):
    """Measures that must survive a restart: without them a restart would forget the drawdown."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    peak: float | None = None
    day: int | None = None
    day_start: float | None = None
    loss_streak: int = 0
    parts: dict[str, float] | None = Field(
        None, description="Equity per reporter at the checkpoint: a restarted breaker sums "
                          "these for reporters that have not reported again yet.")


class Event(BaseModel):
    """One journal line: time, kind, rule, values, who; the only way durable state changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int
    ts: float
    time: str
    kind: EventKind
    scope: str = "global"  # journals older than scopes carry none: global
    rule: str | None = None
    reason: str = ""
    who: str = ""
    values: dict[str, Any] = Field(default_factory=dict)
    from_state: str | None = None
    to_state: str | None = None
    dry_run: bool = False
    latched: bool = False
    order: dict[str, Any] | None = None
    marks: Marks | None = None


def iso(ts: float | None) -> str:
    """Epoch seconds as ISO-8601 UTC with milliseconds (``...Z``); '' for None."""
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")
