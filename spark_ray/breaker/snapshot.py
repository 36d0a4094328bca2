"""The breaker's status as JSON-safe data: a headline, every scope, the scope tree, data health.

The headline (``state``, ``since``, ``conditions``, ...) keeps the shape the kill switch and the
demo always read: ``state`` is the worst state of any scope, so one word still says whether
something is tripped. ``scopes`` has every scope by name; ``tree`` arranges them as
global -> accounts -> strategies, plus symbols with their market-data health (last-message age,
ingest lag, unrepaired gaps, venue error rate, clock offset).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from spark_ray.breaker.models import DEFAULT_ACCOUNT, iso
from spark_ray.breaker.scopes import GLOBAL, scope_name

if TYPE_CHECKING:
    from spark_ray.breaker.core import CircuitBreaker, Scope


def scope_snapshot(core: CircuitBreaker, sc: Scope, now: float) -> dict[str, Any]:
    since = sc.since if sc.since is not None else core.started
    out: dict[str, Any] = {
        "scope": sc.name, "kind": sc.kind, "state": sc.state.name, "state_code": int(sc.state),
        "since": since, "since_time": iso(since), "cooldown_until": sc.cooldown_until,
        "cooldown_until_time": iso(sc.cooldown_until), "dry_run": core.dry(sc),
        "dry_run_own": sc.dry_run,
        "conditions": [{**c.as_dict(), "scope": sc.name} for c in sc.active.values()],
        "last_trip": {**sc.last_trip.as_dict(), "scope": sc.name} if sc.last_trip else None,
        "trips": dict(sc.trips), "blocked": sc.blocked, "would_block": sc.would_block,
        "exits": sc.exits,
    }
    r = sc.readings
    if sc.kind in ("account", "strategy"):
        dd = (1.0 - r.equity / r.peak) if r.equity is not None and r.peak else None
        out.update(equity=r.equity, peak=r.peak, drawdown=dd, day_start=r.day_start,
                   loss_streak=r.loss_streak, reporters=dict(r.equity_by))
        if sc.kind == "strategy":
            out["account"] = sc.account or DEFAULT_ACCOUNT
    elif sc.kind == "symbol":
        out["health"] = symbol_health(core, sc, now)
    return out


def symbol_health(core: CircuitBreaker, sc: Scope, now: float) -> dict[str, Any]:
    """Last-message age, lag, gaps, venue error rate and clock offset of one symbol."""
    r = sc.readings
    h = next(iter(r.sources.values()), None)  # one source per symbol scope
    g = next(iter(r.gaps.values()), None)
    window = core.config.venue_errors.window_s
    errors = r.venue_errors.prune(now)
    return {
        "last_message_age_s": round(now - h.last_ts, 3) if h is not None else None,
        "lag_s": h.lag if h is not None else None,
        "gaps": g.count if g is not None else 0,
        "gaps_open_s": round(now - g.since, 3) if g is not None else None,
        "venue_errors": errors, "venue_error_window_s": window,
        "venue_errors_per_min": round(errors * 60.0 / window, 3),
        "clock_offset_s": r.clock_offset,
    }


def build_snapshot(core: CircuitBreaker, now: float) -> dict[str, Any]:
    scopes = {n: scope_snapshot(core, sc, now) for n, sc in sorted(core.scopes.items())}
    g = scopes[GLOBAL]
    overall = core.state
    # The headline scope: global when it is not ARMED, else the first scope in the worst state.
    head = g if g["state"] != "ARMED" else next(
        (s for s in scopes.values() if s["state"] == overall.name), g)
    conditions = [c for s in scopes.values() for c in s["conditions"]]
    trips = [s["last_trip"] for s in scopes.values() if s["last_trip"]]
    last = max(trips, key=lambda c: c["since"]) if trips else None
    accounts: dict[str, dict[str, Any]] = {}
    symbols: dict[str, dict[str, Any]] = {}
    for s in scopes.values():
        if s["kind"] == "account":
            accounts.setdefault(scope_name(s["scope"]), {}).update(s)
    for s in scopes.values():
        if s["kind"] == "strategy":
            acc = accounts.setdefault(s["account"], {"scope": f"account:{s['account']}"})
            acc.setdefault("strategies", {})[scope_name(s["scope"])] = s
        elif s["kind"] == "symbol":
            symbols[scope_name(s["scope"])] = s
    for acc in accounts.values():
        acc.setdefault("strategies", {})
    default_marks = core.scopes.get(f"account:{DEFAULT_ACCOUNT}")
    return {
        "state": overall.name, "state_code": int(overall), "scope": head["scope"],
        "since": head["since"], "since_time": head["since_time"],
        "cooldown_until": head["cooldown_until"],
        "cooldown_until_time": head["cooldown_until_time"],
        "global_state": g["state"], "dry_run": core.dry_run,
        "dry_run_scopes": sorted(n for n, s in scopes.items() if s["dry_run_own"]),
        "conditions": conditions, "last_trip": last,
        "trips": core.trips, "trips_total": sum(core.trips.values()),
        "blocked_total": core.blocked_total,
        "would_block_total": sum(s["would_block"] for s in scopes.values()),
        "exits_total": sum(s["exits"] for s in scopes.values()),
        "seq": core.seq, "subscribers": core.subscribers,
        "marks": default_marks.marks.model_dump() if default_marks else {},
        "rules": core.rule_names, "scopes": scopes,
        "tree": {"global": g, "accounts": accounts, "symbols": symbols},
    }
