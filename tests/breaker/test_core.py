"""The state machine around the rules: manual trip and reset, cooldown, dry-run, replay."""

from __future__ import annotations

from typing import Any

import pytest

from spark_ray.breaker.core import CircuitBreaker
from spark_ray.breaker.journal import MemoryJournal
from spark_ray.breaker.models import BreakerConfig, BreakerState, Order, Signal
from spark_ray.breaker.status import format_status

ARMED, TRIPPED, COOLDOWN = BreakerState.ARMED, BreakerState.TRIPPED, BreakerState.COOLDOWN
T0 = 1_800_000_000.0


def make(**cfg: Any) -> CircuitBreaker:
    cfg.setdefault("cooldown_s", 10.0)
    cfg.setdefault("daily_loss", {"enabled": False})
    return CircuitBreaker(BreakerConfig.model_validate(cfg), journal=MemoryJournal(),
                          clock=lambda: T0)


def journal(b: CircuitBreaker) -> list[Any]:
    assert isinstance(b.journal, MemoryJournal)
    return b.journal.events


def test_manual_trip_holds_until_reset_and_both_need_a_reason() -> None:
    b = make()
    with pytest.raises(ValueError, match="reason"):
        b.trip("  ", "cli:bob", T0)
    assert b.trip("exchange incident", "cli:bob", T0) is TRIPPED
    assert b.tick(T0 + 1e6) is TRIPPED  # no cooldown ends a manual trip
    d = b.allow(Order("X", "buy", 1.0, 1.0), T0 + 1)
    assert d == type(d)(False, ("manual: exchange incident",))
    with pytest.raises(ValueError, match="reason"):
        b.reset("", "cli:bob", T0 + 2)
    assert b.reset("incident over", "cli:carol", T0 + 2) is ARMED
    kinds = [(e.kind, e.who, e.from_state, e.to_state) for e in journal(b)]
    assert kinds == [("trip", "cli:bob", "ARMED", "TRIPPED"),
                     ("blocked", "order", "TRIPPED", "TRIPPED"),
                     ("reset", "cli:carol", "TRIPPED", "ARMED")]


def test_reset_rebaselines_drawdown_but_a_live_violation_trips_again() -> None:
    b = make(stale_data={"max_lag_s": 5})
    b.on_equity(T0, 100.0)
    b.on_equity(T0 + 1, 80.0)
    assert b.state is TRIPPED and b.scope_state("account:default") is TRIPPED
    assert b.scope_state("global") is ARMED  # drawdown is the account's, not everyone's
    assert b.reset("accept the loss", "cli:a", T0 + 2, scope="account:default") is ARMED
    assert b.on_equity(T0 + 3, 75.0) is ARMED  # 6.25 % below the new peak (80)
    b.report(Signal("lag", 9.0, "feed"), now=T0 + 4)
    assert b.state is TRIPPED and b.scope_state("symbol:FEED") is TRIPPED
    assert b.reset("try anyway", "cli:a", T0 + 5, scope="symbol:feed") is TRIPPED  # lagging
    assert [(e.kind, e.scope) for e in journal(b)][-2:] == [("reset", "symbol:FEED"),
                                                            ("trip", "symbol:FEED")]


def test_a_condition_returning_during_cooldown_trips_again() -> None:
    b = make()
    b.on_equity(T0, 100.0)
    b.on_equity(T0 + 1, 85.0)
    assert b.on_equity(T0 + 2, 95.0) is COOLDOWN
    assert b.on_equity(T0 + 3, 89.0) is TRIPPED
    assert b.on_equity(T0 + 4, 95.0) is COOLDOWN
    assert b.tick(T0 + 13.9) is COOLDOWN  # the cooldown restarted at T0 + 4
    assert b.tick(T0 + 14) is ARMED
    assert b.trips == {"max_drawdown": 2}


def test_zero_cooldown_rearms_as_soon_as_clear() -> None:
    b = make(cooldown_s=0)
    b.on_equity(T0, 100.0)
    b.on_equity(T0 + 1, 85.0)
    assert b.on_equity(T0 + 2, 95.0) is ARMED
    assert [e.kind for e in journal(b)][-3:] == ["clear", "cooldown", "arm"]


def test_dry_run_blocks_nothing_but_journals_everything() -> None:
    b = make(dry_run=True)
    b.on_equity(T0, 100.0)
    b.on_equity(T0 + 1, 80.0)
    assert b.state is TRIPPED  # the shadow state machine runs
    d = b.allow(Order("X", "buy", 1.0, 1.0), T0 + 2)
    assert d.allowed and d.dry_run and d.reasons == (
        "account:default max_drawdown: drawdown 20.0% > 10.0%",)
    b.report(Signal("price", 100.0, "BTC"), now=T0 + 3)
    b.on_equity(T0 + 3, 100.0)
    d = b.allow(Order("BTC", "buy", 0.1, 200.0), T0 + 4)  # cooldown and a fat finger
    assert d.allowed and d.reasons[0].startswith("account:default cooldown until")
    assert b.blocked_total == 0
    kinds = [e.kind for e in journal(b)]
    assert kinds.count("would_block") == 2 and "blocked" not in kinds
    assert all(e.dry_run for e in journal(b))
    assert "DRY-RUN" in format_status(b.snapshot())


def test_subscriptions_are_durable() -> None:
    b = make()
    b.subscribe("executor:paper", "on_breaker_trip", T0)
    b.subscribe("executor:paper", "on_breaker_trip", T0)  # idempotent: journaled once
    b.subscribe("risk", "halt", T0)
    b.unsubscribe("risk", T0)
    again = CircuitBreaker.replay(journal(b), b.config)
    assert again.subscribers == {"executor:paper": "on_breaker_trip"}
    assert [e.kind for e in journal(b)] == ["subscribe", "subscribe", "unsubscribe"]


def test_replay_restores_the_tripped_state_and_the_high_water_mark() -> None:
    b = make(peak_checkpoint=0.01)
    for i, eq in enumerate([100.0, 100.5, 101.0, 101.2, 102.0, 101.9]):
        b.on_equity(T0 + i, eq)
    acc = "account:default"
    assert b.scope_readings(acc).peak == 102.0
    again = CircuitBreaker.replay(journal(b), b.config)
    assert again.durable() == b.durable()
    peak = again.scope_readings(acc).peak
    assert peak is not None
    assert 102.0 / 1.01 <= peak <= 102.0  # lags by at most the checkpoint
    b.trip("halt", "cli:x", T0 + 10)
    b.allow(Order("X", "buy", 1.0, 1.0), T0 + 11)
    again = CircuitBreaker.replay(journal(b), b.config)
    assert again.state is TRIPPED and again.blocked_total == 1
    assert again.durable() == b.durable()
    assert not again.allow(Order("X", "buy", 1.0, 1.0), T0 + 12).allowed


def test_status_text_names_state_rule_and_who() -> None:
    b = make()
    b.on_equity(T0, 100.0)
    b.on_equity(T0 + 1, 87.7)
    b.trip("desk says stop", "cli:alice", T0 + 2)
    text = format_status(b.snapshot())
    first = text.splitlines()[0]
    assert first.startswith("TRIPPED  since ")
    assert ("scope=account:default rule=max_drawdown (drawdown 12.3% > 10.0%) by=equity"
            in first)
    assert "also scope=global rule=manual (desk says stop) by=cli:alice" in text
    b.reset("ok", "cli:alice", T0 + 3)
    assert format_status(b.snapshot()).startswith("TRIPPED")  # the account still is
    b.reset("ok", "cli:alice", T0 + 3, scope="account:default")
    assert format_status(b.snapshot()).startswith("ARMED")


def test_allowed_orders_share_one_decision_and_journal_nothing() -> None:
    b = make()
    b.report(Signal("price", 10.0, "X"), now=T0)
    n = len(journal(b))
    d1 = b.allow(Order("X", "buy", 1.0), T0)
    d2 = b.allow(Order("X", "sell", 1.0), T0)
    assert d1 is d2 and d1.allowed and d1.reasons == ()
    assert len(journal(b)) == n


def test_invalid_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="side"):
        Order("X", "hold", 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="qty"):
        Order("X", "buy", 0.0)
    with pytest.raises(ValueError, match="finite"):
        Signal("lag", float("nan"), "feed")
    with pytest.raises(ValueError, match="finite"):
        make().on_equity(T0, float("inf"))
    with pytest.raises(ValueError, match="unknown signal kind"):
        Signal("pnl", 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_drawdown"):
        BreakerConfig.model_validate({"max_drawdown": {"limit": 1.5}})
    with pytest.raises(ValueError, match="Extra inputs"):
        BreakerConfig.model_validate({"max_drawdwn": {}})
