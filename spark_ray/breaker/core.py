"""The circuit breaker's state machine: plain Python, shared by the backtest and the live actor.

States: ARMED (orders pass the rules) -> TRIPPED (a rule's condition is active; every order is
blocked) -> COOLDOWN (every condition cleared; still blocking for ``cooldown_s``) -> ARMED. A
condition returning during COOLDOWN trips again. A manual trip (the kill switch) and any rule
configured ``latch`` stay until a manual reset; a reset re-arms at once, re-baselines the
drawdown high-water mark and the loss streak, and re-evaluates, so a live violation (stale data,
today's loss) trips again immediately and says so.

Every durable change is an :class:`Event` written to the journal *first* and then applied by
:meth:`CircuitBreaker._apply`, the only code that mutates durable state; replaying the journal
through the same method therefore rebuilds exactly the state the breaker acted on. Dry-run runs
the same machine and journals the same transitions (flagged ``dry_run``), records would-block
events, and allows every order.

Time is always an argument (``now``/``ts``, epoch seconds) or the injected ``clock``, so the
backtest drives the breaker in bar time and tests need no sleeps.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from typing import Any

from spark_ray.breaker.journal import Journal, MemoryJournal
from spark_ray.breaker.models import (
    MANUAL,
    BreakerConfig,
    BreakerState,
    Condition,
    Decision,
    Event,
    EventKind,
    Marks,
    Order,
    Signal,
    Violation,
    iso,
)
from spark_ray.breaker.readings import GapState, Readings, SourceHealth
from spark_ray.breaker.rules import Rule, build_rules

log = logging.getLogger(__name__)

ARMED, TRIPPED, COOLDOWN = BreakerState.ARMED, BreakerState.TRIPPED, BreakerState.COOLDOWN
ALLOWED = Decision(True)
DAY_S = 86_400
AUTO = "breaker"  # ``who`` of automatic transitions


class CircuitBreaker:
    """One breaker: feed it equity, trades and health signals; ask it before every order."""

    def __init__(self, config: BreakerConfig | None = None, *, journal: Journal | None = None,
                 clock: Callable[[], float] = time.time,
                 listener: Callable[[Event], None] | None = None) -> None:
        self.config = config or BreakerConfig()
        self.journal: Journal = journal if journal is not None else MemoryJournal()
        self.listener = listener
        self._clock = clock
        cfg = self.config
        self._dry = cfg.dry_run
        self._rules = build_rules(cfg)
        self._by_name: dict[str, Rule] = {r.name: r for r in self._rules}
        self._level = [r for r in self._rules if r.level]
        self._time = [r for r in self._rules if r.level and r.time_driven]
        self._order = [r for r in self._rules if r.order_rule]
        self.readings = Readings(started=clock(), reject_window_s=cfg.reject_rate.window_s,
                                 error_window_s=cfg.error_rate.window_s,
                                 order_window_s=cfg.order_rate.window_s)
        # Durable state: changed only by _apply.
        self._seq = 0
        self._state = ARMED
        self._since: float | None = None
        self._cooldown_until: float | None = None
        self._active: dict[str, Condition] = {}
        self._trips: dict[str, int] = {}
        self._blocked = 0
        self._would_block = 0
        self._last_trip: Condition | None = None
        self._marks = Marks()
        self._subscribers: dict[str, str] = {}

    @classmethod
    def replay(cls, events: Iterable[Event], config: BreakerConfig | None = None, *,
               journal: Journal | None = None, clock: Callable[[], float] = time.time,
               listener: Callable[[Event], None] | None = None) -> CircuitBreaker:
        """A breaker whose durable state is rebuilt from ``events`` (nothing is re-journaled)."""
        core = cls(config, journal=journal, clock=clock)
        for ev in events:
            core._apply(ev)
        core.listener = listener
        return core

    # --- reading state ---------------------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        return self._state

    @property
    def dry_run(self) -> bool:
        return self._dry

    @property
    def conditions(self) -> tuple[Condition, ...]:
        return tuple(self._active.values())

    @property
    def subscribers(self) -> dict[str, str]:
        return dict(self._subscribers)

    @property
    def blocked_total(self) -> int:
        return self._blocked

    @property
    def trips(self) -> dict[str, int]:
        return dict(self._trips)

    def durable(self) -> dict[str, Any]:
        """Everything the journal carries; ``replay(journal).durable() == live.durable()``."""
        return {
            "seq": self._seq, "state": self._state, "since": self._since,
            "cooldown_until": self._cooldown_until, "active": dict(self._active),
            "trips": dict(self._trips), "blocked": self._blocked,
            "would_block": self._would_block, "last_trip": self._last_trip,
            "marks": self._marks, "subscribers": dict(self._subscribers),
        }

    def snapshot(self) -> dict[str, Any]:
        """JSON-safe status for people and the CLI."""
        since = self._since if self._since is not None else self.readings.started
        return {
            "state": self._state.name, "state_code": int(self._state), "since": since,
            "since_time": iso(since), "cooldown_until": self._cooldown_until,
            "cooldown_until_time": iso(self._cooldown_until), "dry_run": self._dry,
            "conditions": [c.as_dict() for c in self._active.values()],
            "last_trip": self._last_trip.as_dict() if self._last_trip else None,
            "trips": dict(self._trips), "trips_total": sum(self._trips.values()),
            "blocked_total": self._blocked, "would_block_total": self._would_block,
            "seq": self._seq, "subscribers": dict(self._subscribers),
            "marks": self._marks.model_dump(), "rules": [r.name for r in self._rules],
        }

    # --- inputs ------------------------------------------------------------------------------

    def allow(self, order: Order, now: float | None = None) -> Decision:
        """May ``order`` go out? Blocks everything unless ARMED (dry-run: allows, with reasons)."""
        if now is None:
            now = self._clock()
        r = self.readings
        if self._state is ARMED:
            for rule in self._time:
                v = rule.check(r, now)
                if v is not None:
                    self._trip(v, now, AUTO, rule)
                    break
        else:
            self._evaluate(now, AUTO)
        if self._state is not ARMED:
            return self._block(order, now, self._state_reasons(), self._first_rule())
        for rule in self._order:
            v = rule.check_order(order, r, now)
            if v is not None:
                if rule.trips_on_order:
                    self._trip(v, now, order.who or "order", rule)
                return self._block(order, now, (f"{v.rule}: {v.reason}",), v.rule)
        r.orders.add(now)
        return ALLOWED

    def on_equity(self, ts: float, equity: float, who: str = "equity") -> BreakerState:
        """Account equity at ``ts``: drawdown from the high-water mark, loss since the UTC day
        opened."""
        if not math.isfinite(equity):
            raise ValueError(f"equity must be finite, got {equity!r}")
        r = self.readings
        r.equity = equity
        mark = False
        day = int(ts // DAY_S)
        if r.day is None or day > r.day:  # days only roll forward (late readings don't reopen)
            r.day, r.day_start = day, equity
            mark = True
        if r.peak is None or equity > r.peak:
            r.peak = equity
            last = self._marks.peak
            if last is None or equity > last * (1.0 + self.config.peak_checkpoint):
                mark = True
        if mark:
            self._emit("mark", ts, who=who, marks=self._current_marks())
        self._evaluate(ts, who)
        return self._state

    def on_trade_closed(self, ts: float, pnl: float, who: str = "trades") -> BreakerState:
        """A closed trade's realized PnL: a loss extends the losing streak, anything else
        ends it."""
        r = self.readings
        streak = r.loss_streak + 1 if pnl < 0 else 0
        if streak != r.loss_streak:
            r.loss_streak = streak
            self._emit("mark", ts, who=who, values={"pnl": pnl}, marks=self._current_marks())
        self._evaluate(ts, who)
        return self._state

    def report(self, signal: Signal, now: float | None = None) -> BreakerState:
        """A health or PnL signal from another actor (see ``SignalKind`` for the vocabulary)."""
        if now is None:
            now = self._clock()
        ts = signal.ts if signal.ts is not None else now
        kind, key, value = signal.kind, signal.key, signal.value
        who = signal.who or kind
        if kind == "equity":
            return self.on_equity(ts, value, who)
        if kind == "trade_closed":
            return self.on_trade_closed(ts, value, who)
        r = self.readings
        if kind == "price":
            r.prices[key] = value
        elif kind == "position":
            if value == 0.0:
                r.positions.pop(key, None)
            else:
                r.positions[key] = value
        elif kind in ("lag", "heartbeat"):
            h = r.sources.get(key)
            if h is None:
                r.sources[key] = SourceHealth(ts, value if kind == "lag" else 0.0)
            else:
                h.last_ts = max(h.last_ts, ts)
                if kind == "lag":
                    h.lag = value
        elif kind == "source_closed":
            r.sources.pop(key, None)
            r.gaps.pop(key, None)
        elif kind == "gaps":
            if value > 0:
                g = r.gaps.get(key)
                if g is None:
                    r.gaps[key] = GapState(value, ts)
                else:
                    g.count = value
            else:
                r.gaps.pop(key, None)
        elif kind == "order_ack":
            r.acks.add(ts, value)
        elif kind == "order_reject":
            r.rejects.add(ts, value)
        elif kind == "error":
            r.errors.add(ts, value)
        self._evaluate(now, who)
        return self._state

    def tick(self, now: float | None = None) -> BreakerState:
        """Re-evaluate with only time passing: staleness, windows draining, cooldown ending."""
        self._evaluate(self._clock() if now is None else now, AUTO)
        return self._state

    def trip(self, reason: str, who: str, now: float | None = None) -> BreakerState:
        """The kill switch: trip now; only a manual :meth:`reset` clears it."""
        if not reason.strip():
            raise ValueError("a manual trip needs a reason")
        now = self._clock() if now is None else now
        self._emit("trip", now, rule=MANUAL, reason=reason, who=who, to_state=TRIPPED,
                   latched=True, marks=self._current_marks())
        return self._state

    def reset(self, reason: str, who: str, now: float | None = None) -> BreakerState:
        """Manual reset: clear every condition, re-arm, re-baseline, then re-evaluate."""
        if not reason.strip():
            raise ValueError("a reset needs a reason")
        now = self._clock() if now is None else now
        r = self.readings
        marks = self._current_marks().model_copy(update={
            "peak": r.equity if r.equity is not None else r.peak, "loss_streak": 0})
        self._emit("reset", now, reason=reason, who=who, to_state=ARMED, marks=marks,
                   values={"cleared": sorted(self._active)})
        self._evaluate(now, who)
        return self._state

    def subscribe(self, name: str, method: str, now: float | None = None) -> None:
        """Durably register a named actor to be told about trips (survives restarts)."""
        now = self._clock() if now is None else now
        if self._subscribers.get(name) != method:
            self._emit("subscribe", now, who=name, values={"name": name, "method": method})

    def unsubscribe(self, name: str, now: float | None = None) -> None:
        now = self._clock() if now is None else now
        if name in self._subscribers:
            self._emit("unsubscribe", now, who=name, values={"name": name})

    def record_start(self, info: dict[str, Any], now: float | None = None) -> None:
        """Journal that a breaker (re)started, with what it recovered (informational)."""
        self._emit("start", self._clock() if now is None else now, who=AUTO, values=info)

    # --- the machine -------------------------------------------------------------------------

    def _evaluate(self, now: float, who: str) -> None:
        r = self.readings
        if self._active:
            for name, cond in list(self._active.items()):
                if cond.latched:
                    continue
                rule = self._by_name.get(name)
                if rule is None or rule.cleared(r, now):  # a disabled rule's condition clears
                    self._emit("clear", now, rule=name, who=who, reason=f"{name} clear")
        for rule in self._level:
            if rule.name not in self._active:
                v = rule.check(r, now)
                if v is not None:
                    self._trip(v, now, who, rule)
        if self._state is TRIPPED and not self._active:
            until = now + self.config.cooldown_s
            self._emit("cooldown", now, who=AUTO, to_state=COOLDOWN, values={"until": until},
                       reason=f"all conditions clear; re-arming at {iso(until)}")
        if self._state is COOLDOWN and self._cooldown_until is not None \
                and now >= self._cooldown_until:
            self._emit("arm", now, who=AUTO, to_state=ARMED, reason="cooldown elapsed")

    def _trip(self, v: Violation, now: float, who: str, rule: Rule) -> None:
        latched = bool(getattr(getattr(self.config, rule.name), "latch", False))
        self._emit("trip", now, rule=v.rule, reason=v.reason, who=who, values=v.values,
                   to_state=TRIPPED, latched=latched,
                   marks=rule.after_trip(self._current_marks()))

    def _block(self, order: Order, now: float, reasons: tuple[str, ...],
               rule: str | None) -> Decision:
        if self._dry:
            self._emit("would_block", now, rule=rule, reason="; ".join(reasons),
                       who=order.who or "order", order=order.as_dict())
            self.readings.orders.add(now)  # it does go out
            return Decision(True, reasons, dry_run=True)
        self._emit("blocked", now, rule=rule, reason="; ".join(reasons),
                   who=order.who or "order", order=order.as_dict())
        return Decision(False, reasons)

    def _state_reasons(self) -> tuple[str, ...]:
        if self._state is TRIPPED:
            return tuple(f"{c.rule}: {c.reason}" for c in self._active.values())
        last = self._last_trip
        after = f" after {last.rule}: {last.reason}" if last else ""
        return (f"cooldown until {iso(self._cooldown_until)}{after}",)

    def _first_rule(self) -> str | None:
        if self._state is TRIPPED and self._active:
            return next(iter(self._active))
        return self._last_trip.rule if self._last_trip else None

    def _current_marks(self) -> Marks:
        r = self.readings
        return Marks(peak=r.peak, day=r.day, day_start=r.day_start, loss_streak=r.loss_streak)

    def _emit(self, kind: EventKind, now: float, *, rule: str | None = None, reason: str = "",
              who: str = "", values: dict[str, Any] | None = None,
              to_state: BreakerState | None = None, latched: bool = False,
              order: dict[str, Any] | None = None, marks: Marks | None = None) -> Event:
        to = self._state if to_state is None else to_state
        ev = Event(seq=self._seq + 1, ts=now, time=iso(now), kind=kind, rule=rule, reason=reason,
                   who=who, values=values or {}, from_state=self._state.name, to_state=to.name,
                   dry_run=self._dry, latched=latched, order=order, marks=marks)
        self.journal.append(ev)  # write-ahead: durable before it takes effect
        self._apply(ev)
        if self.listener is not None:
            try:
                self.listener(ev)
            except Exception:  # a metrics or notification failure must not break the breaker
                log.exception("breaker listener failed on %s", ev.kind)
        return ev

    def _apply(self, ev: Event) -> None:
        """The only mutation of durable state; used live and on replay."""
        self._seq = max(self._seq, ev.seq)
        kind = ev.kind
        if kind in ("trip", "cooldown", "arm", "reset") and ev.to_state is not None:
            new = BreakerState[ev.to_state]
            if new is not self._state:
                self._state = new
                self._since = ev.ts
        if kind == "trip":
            rule = ev.rule or MANUAL
            cond = Condition(rule=rule, since=ev.ts, reason=ev.reason, who=ev.who,
                             values=ev.values, latched=ev.latched)
            self._active[rule] = cond
            self._trips[rule] = self._trips.get(rule, 0) + 1
            self._last_trip = cond
            self._cooldown_until = None
        elif kind == "clear":
            self._active.pop(ev.rule or "", None)
        elif kind == "cooldown":
            self._cooldown_until = float(ev.values["until"])
        elif kind in ("arm", "reset"):
            self._active.clear()
            self._cooldown_until = None
        elif kind == "blocked":
            self._blocked += 1
        elif kind == "would_block":
            self._would_block += 1
        elif kind == "subscribe":
            self._subscribers[str(ev.values["name"])] = str(ev.values["method"])
        elif kind == "unsubscribe":
            self._subscribers.pop(str(ev.values["name"]), None)
        if ev.marks is not None:
            m = self._marks = ev.marks
            r = self.readings
            r.peak, r.day, r.day_start, r.loss_streak = m.peak, m.day, m.day_start, m.loss_streak
