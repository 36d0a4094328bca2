"""The circuit breaker's state machines: plain Python, shared by the backtest and the live actor.

One machine per scope (see :mod:`spark_ray.breaker.scopes`): ``global``, ``account:NAME``,
``strategy:NAME``, ``symbol:SYMBOL``. Each has the states ARMED (its orders pass) -> TRIPPED (a
rule's condition is active; its orders are blocked) -> COOLDOWN (every condition cleared; still
blocking for ``cooldown_s``) -> ARMED. A condition returning during COOLDOWN trips again. A
manual trip (the kill switch) and any rule configured ``latch`` stay until a manual reset of that
scope; a reset re-arms it at once, re-baselines its drawdown high-water mark and loss streak, and
re-evaluates, so a live violation (stale data, today's loss) trips again immediately and says so.

An order passes when every scope it belongs to is ARMED; a position-reducing order (``reduce_only``
and confirmed by the breaker's own position reading of its sender) passes any tripped scope, and
that decision is journaled (``exit``): nothing goes around the breaker, exits are allowed by
policy. Equity is kept per reporter and summed per account and per strategy, so several
executors on one account add up instead of overwriting one series.

Every durable change is an :class:`Event` (tagged with its scope) written to the journal *first*
and then applied by :meth:`CircuitBreaker._apply`, the only code that mutates durable state;
replaying the journal through the same method therefore rebuilds exactly the state the breaker
acted on, scope by scope. Journals from before scopes replay into the global scope (their equity
marks into ``account:default``). Dry-run (global, or per scope, switchable at run time and
journaled) runs the same machines and journals the same transitions (flagged ``dry_run``),
records would-block events, and allows the orders.

Time is always an argument (``now``/``ts``, epoch seconds) or the injected ``clock``, so the
backtest drives the breaker in bar time and tests need no sleeps.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from spark_ray.breaker.journal import Journal, MemoryJournal
from spark_ray.breaker.models import (
    DEFAULT_ACCOUNT,
    MANUAL,
    RULE_NAMES,
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
from spark_ray.breaker.scopes import (
    DATA_RULES,
    GLOBAL,
    KINDS,
    PNL_RULES,
    ScopeKind,
    account_scope,
    order_scopes,
    parse_scope,
    scope_kind,
    scope_name,
    strategy_scope,
    symbol_scope,
)

log = logging.getLogger(__name__)

ARMED, TRIPPED, COOLDOWN = BreakerState.ARMED, BreakerState.TRIPPED, BreakerState.COOLDOWN
ALLOWED = Decision(True)
DAY_S = 86_400
AUTO = "breaker"  # ``who`` of automatic transitions
_PNL_KINDS = ("account", "strategy")
_RANK = {ARMED: 0, COOLDOWN: 1, TRIPPED: 2}
_DATA_KINDS = frozenset({"lag", "heartbeat", "source_closed", "gaps", "venue_error",
                         "clock_offset"})
_GLOBAL_RULES = tuple(n for n in RULE_NAMES if n not in PNL_RULES and n not in DATA_RULES)
_KIND_RULES: dict[ScopeKind, tuple[str, ...]] = {
    "global": _GLOBAL_RULES, "account": PNL_RULES, "strategy": PNL_RULES, "symbol": DATA_RULES}


def worst(states: Iterable[BreakerState]) -> BreakerState:
    """TRIPPED over COOLDOWN over ARMED."""
    out = ARMED
    for s in states:
        if _RANK[s] > _RANK[out]:
            out = s
    return out


@dataclass
class Scope:
    """One scope's machine: durable state (changed only by ``_apply``) and its readings."""

    name: str
    kind: ScopeKind
    readings: Readings
    rules: list[Rule]
    state: BreakerState = ARMED
    since: float | None = None
    cooldown_until: float | None = None
    active: dict[str, Condition] = field(default_factory=dict)
    trips: dict[str, int] = field(default_factory=dict)
    last_trip: Condition | None = None
    blocked: int = 0
    would_block: int = 0
    exits: int = 0
    marks: Marks = field(default_factory=Marks)
    dry_run: bool = False
    account: str | None = None  # a strategy's account (for the status tree)
    touched: bool = False  # an event applied to it (replay must rebuild it)

    def __post_init__(self) -> None:
        self.by_name = {r.name: r for r in self.rules}
        self.level = [r for r in self.rules if r.level]
        self.time = [r for r in self.rules if r.level and r.time_driven]

    def durable(self) -> dict[str, Any]:
        return {"state": self.state, "since": self.since, "cooldown_until": self.cooldown_until,
                "active": dict(self.active), "trips": dict(self.trips),
                "last_trip": self.last_trip, "blocked": self.blocked,
                "would_block": self.would_block, "exits": self.exits, "marks": self.marks,
                "dry_run": self.dry_run}


class CircuitBreaker:
    """One breaker: feed it equity, trades and health signals; ask it before every order."""

    def __init__(self, config: BreakerConfig | None = None, *, journal: Journal | None = None,
                 clock: Callable[[], float] = time.time,
                 listener: Callable[[Event], None] | None = None) -> None:
        self.config = config or BreakerConfig()
        self.journal: Journal = journal if journal is not None else MemoryJournal()
        self.listener = listener
        self._clock = clock
        self._started = clock()
        cfg = self.config
        self._kind_rules = {k: build_rules(cfg, _KIND_RULES[k]) for k in KINDS}
        self._all_rules = build_rules(cfg)
        self._order = [r for r in self._kind_rules["global"] if r.order_rule]
        self._scopes: dict[str, Scope] = {}
        self._g = self.scope(GLOBAL)
        self._g.dry_run = cfg.dry_run
        self._required = frozenset(cfg.stale_data.required_sources)
        for src in cfg.stale_data.required_sources:
            self.scope(symbol_scope(src.upper()))
        self._seq = 0
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

    # --- scopes ------------------------------------------------------------------------------

    def scope(self, name: str) -> Scope:
        """The scope ``name`` (created ARMED on first use)."""
        sc = self._scopes.get(name)
        if sc is None:
            kind = scope_kind(name)
            cfg = self.config
            key = scope_name(name)
            r = Readings(started=self._clock(), reject_window_s=cfg.reject_rate.window_s,
                         error_window_s=cfg.error_rate.window_s,
                         order_window_s=cfg.order_rate.window_s,
                         venue_error_window_s=cfg.venue_errors.window_s,
                         expected=tuple(s for s in cfg.stale_data.required_sources
                                        if kind == "symbol" and s.upper() == key))
            sc = self._scopes[name] = Scope(name, kind, r, self._kind_rules[kind])
        return sc

    def scope_state(self, name: str) -> BreakerState:
        sc = self._scopes.get(name)
        return sc.state if sc is not None else ARMED

    def scope_readings(self, name: str) -> Readings:
        return self.scope(name).readings

    @property
    def scopes(self) -> dict[str, Scope]:
        return dict(self._scopes)

    def dry(self, sc: Scope) -> bool:
        """Effective dry-run of a scope: its own switch or the global one."""
        return sc.dry_run or self._g.dry_run

    # --- reading state ---------------------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        """The worst state of any scope (what the one-word status and alert report)."""
        return worst(sc.state for sc in self._scopes.values())

    @property
    def readings(self) -> Readings:
        """The global scope's readings (prices, positions, order and error windows)."""
        return self._g.readings

    @property
    def dry_run(self) -> bool:
        return self._g.dry_run

    @property
    def conditions(self) -> tuple[Condition, ...]:
        return tuple(c for sc in self._scopes.values() for c in sc.active.values())

    @property
    def subscribers(self) -> dict[str, str]:
        return dict(self._subscribers)

    @property
    def blocked_total(self) -> int:
        return sum(sc.blocked for sc in self._scopes.values())

    @property
    def trips(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for sc in self._scopes.values():
            for rule, n in sc.trips.items():
                out[rule] = out.get(rule, 0) + n
        return out

    def durable(self) -> dict[str, Any]:
        """Everything the journal carries; ``replay(journal).durable() == live.durable()``."""
        return {"seq": self._seq, "subscribers": dict(self._subscribers),
                "scopes": {n: sc.durable() for n, sc in sorted(self._scopes.items())
                           if sc.touched}}

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        """JSON-safe status for people and the CLI: the headline (worst scope), every scope,
        and the tree global -> accounts -> strategies; symbols with their data health."""
        from spark_ray.breaker.snapshot import build_snapshot

        return build_snapshot(self, self._clock() if now is None else now)

    @property
    def seq(self) -> int:
        return self._seq

    @property
    def started(self) -> float:
        return self._started

    @property
    def rule_names(self) -> list[str]:
        return [r.name for r in self._all_rules]

    # --- inputs ------------------------------------------------------------------------------

    def allow(self, order: Order, now: float | None = None) -> Decision:
        """May ``order`` go out? Every scope of it must be ARMED, unless it reduces a position
        (then it goes out and the decision is journaled); dry-run scopes allow, with reasons."""
        if now is None:
            now = self._clock()
        account = order.account or DEFAULT_ACCOUNT
        scopes = [self.scope(n) for n in order_scopes(order.symbol, account, order.strategy)]
        for sc in scopes:
            if sc.state is ARMED:
                for rule in sc.time:
                    v = rule.check(sc.readings, now)
                    if v is not None:
                        self._trip(sc, v, now, AUTO, rule)
                        break
            else:
                self._evaluate(sc, now, AUTO)
        if order.strategy:
            scopes[2].account = account
        blocking = [sc for sc in scopes if sc.state is not ARMED]
        reduces = order.reduce_only and self._reduces(order)
        if blocking:
            reasons = tuple(r for sc in blocking for r in self._state_reasons(sc))
            if reduces:
                v = self._fat_finger(order, now)
                if v is None:
                    self._emit("exit", now, scope=blocking[0].name, rule=self._first_rule(
                        blocking[0]), reason="reduce-only order allowed: " + "; ".join(reasons),
                        who=order.who or "order", order=order.as_dict(),
                        values={"allowed": True, "through": [sc.name for sc in blocking]})
                    self._g.readings.orders.add(now)
                    return Decision(True, ("reduce-only exit allowed through "
                                           + ", ".join(sc.name for sc in blocking),))
                reasons = (f"{v.rule}: {v.reason}", *reasons)
            elif order.reduce_only:
                reasons = (*reasons, f"reduce_only: {order.who or 'order'} holds no "
                                     f"{order.symbol} position this order reduces")
            return self._block(blocking, order, now, reasons, self._first_rule(blocking[0]))
        for rule in self._order:
            v = rule.check_order(order, self._g.readings, now)
            if v is not None:
                if rule.trips_on_order:
                    self._trip(self._g, v, now, order.who or "order", rule)
                return self._block([self._g], order, now, (f"{v.rule}: {v.reason}",), v.rule)
        self._g.readings.orders.add(now)
        if order.reduce_only and order.tag == "flatten":
            self._emit("exit", now, scope=GLOBAL, reason="flatten order allowed (all armed)",
                       who=order.who or "order", order=order.as_dict(),
                       values={"allowed": True, "through": []})
        return ALLOWED

    def on_equity(self, ts: float, equity: float, who: str = "equity", account: str = "",
                  strategy: str = "") -> BreakerState:
        """``who``'s equity at ``ts``: summed with the other reporters of its account (and of
        its strategy); drawdown from each scope's high-water mark, loss since the UTC day
        opened. Returns the worst state of the scopes touched."""
        if not math.isfinite(equity):
            raise ValueError(f"equity must be finite, got {equity!r}")
        acc = account or DEFAULT_ACCOUNT
        touched = [self.scope(account_scope(acc))]
        if strategy:
            st = self.scope(strategy_scope(strategy))
            st.account = acc
            touched.append(st)
        for sc in touched:
            r = sc.readings
            new_reporter = who not in r.equity_by
            total = r.set_equity(who, equity)
            mark = new_reporter
            day = int(ts // DAY_S)
            if r.day is None or day > r.day:  # days only roll forward (late readings don't
                r.day, r.day_start = day, total   # reopen)
                mark = True
            elif new_reporter and r.day_start is not None:
                r.day_start += equity  # a reporter joining mid-day is not a gain
            if new_reporter and r.peak is not None and len(r.equity_by) > 1:
                r.peak += equity  # nor a new high: it keeps the others' drawdown
            if r.peak is None or total > r.peak:
                r.peak = total
                last = sc.marks.peak
                if last is None or total > last * (1.0 + self.config.peak_checkpoint):
                    mark = True
            if mark:
                self._emit("mark", ts, scope=sc.name, who=who, marks=self._current_marks(sc),
                           values={"account": acc} if sc.kind == "strategy" else None)
            self._evaluate(sc, ts, who)
        return worst(sc.state for sc in touched)

    def on_trade_closed(self, ts: float, pnl: float, who: str = "trades", account: str = "",
                        strategy: str = "") -> BreakerState:
        """A closed trade's realized PnL: a loss extends the losing streak of its account and
        strategy, anything else ends it."""
        acc = account or DEFAULT_ACCOUNT
        touched = [self.scope(account_scope(acc))]
        if strategy:
            st = self.scope(strategy_scope(strategy))
            st.account = acc
            touched.append(st)
        for sc in touched:
            r = sc.readings
            streak = r.loss_streak + 1 if pnl < 0 else 0
            if streak != r.loss_streak:
                r.loss_streak = streak
                values: dict[str, Any] = {"pnl": pnl}
                if sc.kind == "strategy":
                    values["account"] = acc
                self._emit("mark", ts, scope=sc.name, who=who, values=values,
                           marks=self._current_marks(sc))
            self._evaluate(sc, ts, who)
        return worst(sc.state for sc in touched)

    def report(self, signal: Signal, now: float | None = None) -> BreakerState:
        """A health or PnL signal from another actor (see ``SignalKind`` for the vocabulary).
        Returns the state of the scope it fed."""
        if now is None:
            now = self._clock()
        ts = signal.ts if signal.ts is not None else now
        kind, key, value = signal.kind, signal.key, signal.value
        who = signal.who or kind
        if kind == "equity":
            return self.on_equity(ts, value, who, signal.account, signal.strategy)
        if kind == "trade_closed":
            return self.on_trade_closed(ts, value, who, signal.account, signal.strategy)
        if kind in _DATA_KINDS:
            sc = self.scope(symbol_scope(key.upper()))
            self._data(sc.readings, kind, key, value, ts)
        else:
            sc = self._g
            r = sc.readings
            if kind == "price":
                r.prices[key] = value
            elif kind == "position":
                r.set_position(signal.who, key, value)
            elif kind == "order_ack":
                r.acks.add(ts, value)
            elif kind == "order_reject":
                r.rejects.add(ts, value)
            elif kind == "error":
                r.errors.add(ts, value)
        self._evaluate(sc, now, who)
        return sc.state

    @staticmethod
    def _data(r: Readings, kind: str, key: str, value: float, ts: float) -> None:
        if kind in ("lag", "heartbeat"):
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
            r.clock_offset = None
        elif kind == "gaps":
            if value > 0:
                g = r.gaps.get(key)
                if g is None:
                    r.gaps[key] = GapState(value, ts)
                else:
                    g.count = value
            else:
                r.gaps.pop(key, None)
        elif kind == "venue_error":
            if value > 0:
                r.venue_errors.add(ts, value)
        elif kind == "clock_offset":
            r.clock_offset = value

    def tick(self, now: float | None = None) -> BreakerState:
        """Re-evaluate every scope with only time passing: staleness, windows draining,
        cooldowns ending. Returns the worst state."""
        now = self._clock() if now is None else now
        for sc in list(self._scopes.values()):
            self._evaluate(sc, now, AUTO)
        return self.state

    def trip(self, reason: str, who: str, now: float | None = None,
             scope: str = GLOBAL) -> BreakerState:
        """The kill switch: trip ``scope`` now; only a manual :meth:`reset` of it clears it."""
        if not reason.strip():
            raise ValueError("a manual trip needs a reason")
        sc = self.scope(parse_scope(scope))
        now = self._clock() if now is None else now
        self._emit("trip", now, scope=sc.name, rule=MANUAL, reason=reason, who=who,
                   to_state=TRIPPED, latched=True, marks=self._pnl_marks(sc))
        return sc.state

    def reset(self, reason: str, who: str, now: float | None = None,
              scope: str = GLOBAL) -> BreakerState:
        """Manual reset of ``scope``: clear its conditions, re-arm, re-baseline, re-evaluate."""
        if not reason.strip():
            raise ValueError("a reset needs a reason")
        sc = self.scope(parse_scope(scope))
        now = self._clock() if now is None else now
        r = sc.readings
        marks = self._pnl_marks(sc)
        if marks is not None:
            marks = marks.model_copy(update={
                "peak": r.equity if r.equity is not None else r.peak, "loss_streak": 0})
        self._emit("reset", now, scope=sc.name, reason=reason, who=who, to_state=ARMED,
                   marks=marks, values={"cleared": sorted(sc.active)})
        self._evaluate(sc, now, who)
        return sc.state

    def set_dry_run(self, on: bool, who: str, reason: str = "", now: float | None = None,
                    scope: str = GLOBAL) -> bool:
        """Switch dry-run of ``scope`` (journaled, so a restarted breaker keeps it); returns
        the scope's effective dry-run (a global dry-run covers every scope)."""
        sc = self.scope(parse_scope(scope))
        now = self._clock() if now is None else now
        if sc.dry_run != on:
            self._emit("dry_run", now, scope=sc.name, who=who, values={"on": on},
                       reason=reason or f"dry-run {'on' if on else 'off'}")
        return self.dry(sc)

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

    def _evaluate(self, sc: Scope, now: float, who: str) -> None:
        r = sc.readings
        if sc.active:
            for name, cond in list(sc.active.items()):
                if cond.latched:
                    continue
                rule = sc.by_name.get(name)
                if rule is None or rule.cleared(r, now):  # a disabled rule's condition clears
                    self._emit("clear", now, scope=sc.name, rule=name, who=who,
                               reason=f"{name} clear")
        for rule in sc.level:
            if rule.name not in sc.active:
                v = rule.check(r, now)
                if v is not None:
                    self._trip(sc, v, now, who, rule)
        if sc.state is TRIPPED and not sc.active:
            until = now + self.config.cooldown_s
            self._emit("cooldown", now, scope=sc.name, who=AUTO, to_state=COOLDOWN,
                       values={"until": until},
                       reason=f"all conditions clear; re-arming at {iso(until)}")
        if sc.state is COOLDOWN and sc.cooldown_until is not None \
                and now >= sc.cooldown_until:
            self._emit("arm", now, scope=sc.name, who=AUTO, to_state=ARMED,
                       reason="cooldown elapsed")

    def _trip(self, sc: Scope, v: Violation, now: float, who: str, rule: Rule) -> None:
        latched = bool(getattr(getattr(self.config, rule.name), "latch", False))
        self._emit("trip", now, scope=sc.name, rule=v.rule, reason=v.reason, who=who,
                   values=v.values, to_state=TRIPPED, latched=latched,
                   marks=rule.after_trip(self._current_marks(sc)) if sc.kind in
                   _PNL_KINDS else None)

    def _reduces(self, order: Order) -> bool:
        """The breaker's own reading of ``order.who``'s position confirms the order shrinks
        it without flipping it (a reduce-only flag alone is not trusted)."""
        pos = self._g.readings.positions_by.get((order.who, order.symbol), 0.0)
        q = order.signed_qty
        return pos != 0.0 and q * pos < 0 and abs(q) <= abs(pos) * (1 + 1e-9)

    def _fat_finger(self, order: Order, now: float) -> Violation | None:
        rule = self._g.by_name.get("fat_finger")
        return rule.check_order(order, self._g.readings, now) if rule is not None else None

    def _block(self, blocking: list[Scope], order: Order, now: float,
               reasons: tuple[str, ...], rule: str | None) -> Decision:
        who = order.who or "order"
        enforcing = [sc for sc in blocking if not self.dry(sc)]
        if not enforcing:
            self._emit("would_block", now, scope=blocking[0].name, rule=rule,
                       reason="; ".join(reasons), who=who, order=order.as_dict())
            self._g.readings.orders.add(now)  # it does go out
            return Decision(True, reasons, dry_run=True)
        self._emit("blocked", now, scope=enforcing[0].name, rule=rule, reason="; ".join(reasons),
                   who=who, order=order.as_dict())
        return Decision(False, reasons)

    def _state_reasons(self, sc: Scope) -> tuple[str, ...]:
        pre = "" if sc.kind == "global" else f"{sc.name} "
        if sc.state is TRIPPED:
            return tuple(f"{pre}{c.rule}: {c.reason}" for c in sc.active.values())
        last = sc.last_trip
        after = f" after {last.rule}: {last.reason}" if last else ""
        return (f"{pre}cooldown until {iso(sc.cooldown_until)}{after}",)

    @staticmethod
    def _first_rule(sc: Scope) -> str | None:
        if sc.state is TRIPPED and sc.active:
            return next(iter(sc.active))
        return sc.last_trip.rule if sc.last_trip else None

    def _pnl_marks(self, sc: Scope) -> Marks | None:
        """Marks travel with a trip or reset of an account or strategy (nowhere else: a
        global event's marks would read as a journal from before scopes)."""
        return self._current_marks(sc) if sc.kind in _PNL_KINDS else None

    @staticmethod
    def _current_marks(sc: Scope) -> Marks:
        r = sc.readings
        return Marks(peak=r.peak, day=r.day, day_start=r.day_start, loss_streak=r.loss_streak,
                     parts=dict(r.equity_by) if r.equity_by else None)

    def _emit(self, kind: EventKind, now: float, *, scope: str = GLOBAL,
              rule: str | None = None, reason: str = "", who: str = "",
              values: dict[str, Any] | None = None, to_state: BreakerState | None = None,
              latched: bool = False, order: dict[str, Any] | None = None,
              marks: Marks | None = None) -> Event:
        sc = self.scope(scope)
        to = sc.state if to_state is None else to_state
        ev = Event(seq=self._seq + 1, ts=now, time=iso(now), kind=kind, scope=scope, rule=rule,
                   reason=reason, who=who, values=values or {}, from_state=sc.state.name,
                   to_state=to.name, dry_run=self.dry(sc), latched=latched, order=order,
                   marks=marks)
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
        name = ev.scope
        if name == GLOBAL and ev.rule in PNL_RULES and kind in ("trip", "clear"):
            name = account_scope(DEFAULT_ACCOUNT)  # a journal from before scopes
        sc = self.scope(name)
        sc.touched = True
        if kind in ("trip", "cooldown", "arm", "reset") and ev.to_state is not None:
            new = BreakerState[ev.to_state]
            if new is not sc.state:
                sc.state = new
                sc.since = ev.ts
        if kind == "trip":
            rule = ev.rule or MANUAL
            cond = Condition(rule=rule, since=ev.ts, reason=ev.reason, who=ev.who,
                             values=ev.values, latched=ev.latched)
            sc.active[rule] = cond
            sc.trips[rule] = sc.trips.get(rule, 0) + 1
            sc.last_trip = cond
            sc.cooldown_until = None
        elif kind == "clear":
            sc.active.pop(ev.rule or "", None)
        elif kind == "cooldown":
            sc.cooldown_until = float(ev.values["until"])
        elif kind in ("arm", "reset"):
            sc.active.clear()
            sc.cooldown_until = None
        elif kind == "blocked":
            sc.blocked += 1
        elif kind == "would_block":
            sc.would_block += 1
        elif kind == "exit":
            sc.exits += 1
        elif kind == "dry_run":
            sc.dry_run = bool(ev.values.get("on"))
        elif kind == "mark" and sc.kind == "strategy" and ev.values.get("account"):
            sc.account = str(ev.values["account"])  # where the status tree shows it
        elif kind == "subscribe":
            self._subscribers[str(ev.values["name"])] = str(ev.values["method"])
        elif kind == "unsubscribe":
            self._subscribers.pop(str(ev.values["name"]), None)
        if ev.marks is not None:
            target = sc
            if sc.kind in ("global", "symbol"):  # equity marks from before scopes
                target = self.scope(account_scope(DEFAULT_ACCOUNT))
                target.touched = True
            m = target.marks = ev.marks
            r = target.readings
            r.peak, r.day, r.day_start, r.loss_streak = m.peak, m.day, m.day_start, m.loss_streak
            if m.parts:  # live these equal the readings; on replay they stand in for
                r.equity_by.update(m.parts)  # reporters until each reports again (the scope's
                # equity itself waits for a fresh reading: a checkpoint is no current value)
