"""Each trip rule trips and untrips on the plain-Python core (time injected, no Ray, no sleeps)."""

from __future__ import annotations

from typing import Any

import pytest

from spark_ray.breaker.core import CircuitBreaker
from spark_ray.breaker.journal import MemoryJournal
from spark_ray.breaker.models import BreakerConfig, BreakerState, Order, Signal

ARMED, TRIPPED, COOLDOWN = BreakerState.ARMED, BreakerState.TRIPPED, BreakerState.COOLDOWN
T0 = 1_800_000_000.0  # a fixed epoch second, mid-day UTC-agnostic for these tests
COOL = 10.0


def make(**cfg: Any) -> CircuitBreaker:
    cfg.setdefault("cooldown_s", COOL)
    return CircuitBreaker(BreakerConfig.model_validate(cfg), journal=MemoryJournal(),
                          clock=lambda: T0)


def events(b: CircuitBreaker, kind: str | None = None) -> list[Any]:
    assert isinstance(b.journal, MemoryJournal)
    return [e for e in b.journal.events if kind is None or e.kind == kind]


def rules_tripped(b: CircuitBreaker) -> list[str | None]:
    return [e.rule for e in events(b, "trip")]


def assert_untrips(b: CircuitBreaker, now: float) -> None:
    """From TRIPPED with conditions already clear: COOLDOWN, then ARMED once it elapses."""
    assert b.tick(now) is COOLDOWN
    assert b.tick(now + COOL - 0.001) is COOLDOWN
    assert b.tick(now + COOL) is ARMED
    assert b.allow(Order("X", "buy", 1e-9, 1.0), now + COOL).allowed


def test_max_drawdown_trips_and_untrips() -> None:
    b = make(daily_loss={"enabled": False})
    b.on_equity(T0, 100.0)
    b.on_equity(T0 + 1, 110.0)
    assert b.on_equity(T0 + 2, 99.5) is ARMED  # 9.5 %
    assert b.on_equity(T0 + 3, 98.0) is TRIPPED  # 10.9 %
    (trip,) = events(b, "trip")
    assert trip.rule == "max_drawdown" and trip.reason == "drawdown 10.9% > 10.0%"
    assert trip.values["peak"] == 110.0 and trip.values["equity"] == 98.0
    d = b.allow(Order("X", "buy", 1.0, 1.0), T0 + 4)
    assert not d.allowed and d.reasons == (
        "account:default max_drawdown: drawdown 10.9% > 10.0%",)
    assert trip.scope == "account:default"
    assert b.on_equity(T0 + 5, 98.5) is TRIPPED  # still beyond
    assert b.on_equity(T0 + 6, 100.0) is COOLDOWN  # 9.1 %: clear, cooling down
    assert not b.allow(Order("X", "buy", 1.0, 1.0), T0 + 7).allowed
    assert b.tick(T0 + 6 + COOL) is ARMED


def test_disabled_rule_never_trips() -> None:
    b = make(max_drawdown={"enabled": False}, daily_loss={"enabled": False})
    b.on_equity(T0, 100.0)
    assert b.on_equity(T0 + 1, 10.0) is ARMED


def test_daily_loss_trips_and_clears_on_recovery_and_on_a_new_day() -> None:
    b = make(max_drawdown={"enabled": False}, daily_loss={"limit": 0.05})
    day0 = (T0 // 86_400) * 86_400
    b.on_equity(day0 + 10, 100.0)
    assert b.on_equity(day0 + 20, 94.0) is TRIPPED
    assert rules_tripped(b) == ["daily_loss"]
    assert b.on_equity(day0 + 30, 96.0) is COOLDOWN
    assert b.tick(day0 + 30 + COOL) is ARMED
    assert b.on_equity(day0 + 100, 90.0) is TRIPPED
    # Same equity, next UTC day: today's loss is zero, so it clears.
    assert b.on_equity(day0 + 86_400 + 1, 90.0) is COOLDOWN


def test_daily_loss_absolute_limit() -> None:
    b = make(max_drawdown={"enabled": False}, daily_loss={"limit": 0.5, "limit_abs": 1000})
    b.on_equity(T0, 100_000.0)
    assert b.on_equity(T0 + 1, 99_100.0) is ARMED
    assert b.on_equity(T0 + 2, 98_900.0) is TRIPPED
    assert events(b, "trip")[0].reason == "daily loss 1100 > 1000"


def test_consecutive_losses_trip_then_cooldown_is_the_pause() -> None:
    b = make(consecutive_losses={"limit": 3})
    b.on_trade_closed(T0, -1.0)
    b.on_trade_closed(T0 + 1, -1.0)
    assert b.on_trade_closed(T0 + 2, 5.0) is ARMED  # a win ends the streak
    for i in range(2):
        assert b.on_trade_closed(T0 + 3 + i, -2.0) is ARMED
    assert b.on_trade_closed(T0 + 5, -0.5) is TRIPPED
    assert events(b, "trip")[0].reason == "3 losing trades in a row >= 3"
    assert b.readings.loss_streak == 0  # restarted at the trip
    assert_untrips(b, T0 + 6)


def test_reject_rate_trips_and_clears_when_the_window_passes() -> None:
    b = make(reject_rate={"limit": 0.5, "window_s": 60, "min_orders": 10})
    for i in range(5):
        b.report(Signal("order_reject", ts=T0 + i), now=T0 + i)
    assert b.state is ARMED  # 5 results: below min_orders
    for i in range(4):
        b.report(Signal("order_ack", ts=T0 + 5 + i), now=T0 + 5 + i)
    assert b.state is ARMED
    assert b.report(Signal("order_reject", ts=T0 + 9), now=T0 + 9) is TRIPPED  # 6/10
    assert events(b, "trip")[0].values["rate"] == pytest.approx(0.6)
    assert b.tick(T0 + 30) is TRIPPED
    assert_untrips(b, T0 + 70)  # every result is older than 60 s


def test_error_rate_trips_and_clears() -> None:
    b = make(error_rate={"limit": 3, "window_s": 60})
    b.report(Signal("error", ts=T0), now=T0)
    assert b.report(Signal("error", ts=T0 + 1), now=T0 + 1) is ARMED
    assert b.report(Signal("error", ts=T0 + 2, who="ingest:x"), now=T0 + 2) is TRIPPED
    assert events(b, "trip")[0].who == "ingest:x"
    assert b.tick(T0 + 59) is TRIPPED
    assert_untrips(b, T0 + 61)


def test_stale_data_lag_trips_and_clears() -> None:
    b = make(stale_data={"max_lag_s": 5, "max_age_s": 30})
    b.report(Signal("lag", 1.0, "binance:BTCUSDT", ts=T0), now=T0)
    assert b.report(Signal("lag", 7.5, "binance:BTCUSDT", ts=T0 + 1), now=T0 + 1) is TRIPPED
    assert events(b, "trip")[0].reason == "binance:BTCUSDT: ingest lag 7.5s > 5s"
    assert b.report(Signal("lag", 0.5, "binance:BTCUSDT", ts=T0 + 2), now=T0 + 2) is COOLDOWN
    assert b.tick(T0 + 2 + COOL) is ARMED


def test_stale_data_message_age_trips_on_the_order_itself_and_clears() -> None:
    """Stale data trips the symbol's scope only: its orders are blocked, other symbols trade."""
    b = make(stale_data={"max_age_s": 30})
    b.report(Signal("heartbeat", key="X", ts=T0), now=T0)
    assert b.allow(Order("X", "buy", 1e-9), T0 + 29).allowed is False  # no price: notional
    b.report(Signal("price", 1.0, "X", ts=T0 + 29), now=T0 + 29)
    b.report(Signal("price", 1.0, "Y", ts=T0 + 29), now=T0 + 29)
    assert b.allow(Order("X", "buy", 1e-9), T0 + 29).allowed
    d = b.allow(Order("X", "buy", 1e-9), T0 + 31)
    assert not d.allowed and d.reasons[0].startswith(
        "symbol:X stale_data: X: last message 31.0s ago")
    assert b.state is TRIPPED and b.scope_state("global") is ARMED
    assert b.allow(Order("Y", "buy", 1e-9), T0 + 31).allowed  # another symbol is not stale
    assert b.report(Signal("heartbeat", key="X", ts=T0 + 32), now=T0 + 32) is COOLDOWN
    assert b.tick(T0 + 32 + COOL) is ARMED


def test_stale_data_required_source_and_source_closed() -> None:
    b = make(stale_data={"max_age_s": 30, "required_sources": ["feed"]})
    assert b.tick(T0 + 30) is ARMED  # grace since start
    assert b.tick(T0 + 31) is TRIPPED
    assert "feed: no message since start" in events(b, "trip")[0].reason
    b.report(Signal("heartbeat", key="feed", ts=T0 + 40), now=T0 + 40)
    assert b.state is COOLDOWN
    b.report(Signal("heartbeat", key="other", ts=T0 + 40), now=T0 + 40)
    b.report(Signal("source_closed", key="other"), now=T0 + 45)
    b.report(Signal("heartbeat", key="feed", ts=T0 + 49), now=T0 + 49)
    assert b.tick(T0 + 75) is ARMED  # "other" would be 35 s old but is no longer tracked


def test_sequence_gaps_trip_after_grace_and_clear_when_repaired() -> None:
    b = make(sequence_gaps={"limit": 0, "grace_s": 10})
    b.report(Signal("gaps", 2, "binance:BTCUSDT", ts=T0), now=T0)
    assert b.tick(T0 + 9) is ARMED  # repair still has time
    assert b.tick(T0 + 10) is TRIPPED
    assert events(b, "trip")[0].values["gaps"] == 2
    assert b.report(Signal("gaps", 0, "binance:BTCUSDT", ts=T0 + 12), now=T0 + 12) is COOLDOWN
    assert b.tick(T0 + 12 + COOL) is ARMED


def test_fat_finger_blocks_and_trips_then_untrips() -> None:
    b = make()
    b.report(Signal("price", 100.0, "BTC"), now=T0)
    assert b.allow(Order("BTC", "buy", 0.1, 104.9), T0).allowed
    d = b.allow(Order("BTC", "buy", 0.1, 106.0, order_id="o-2"), T0 + 1)
    assert not d.allowed and d.reasons == (
        "fat_finger: BTC price 106 is 6.0% from last trade 100 > 5.0%",)
    assert b.state is TRIPPED
    (blocked,) = events(b, "blocked")
    assert blocked.order is not None and blocked.order["order_id"] == "o-2"
    assert_untrips(b, T0 + 2)  # an order-triggered condition clears at the next evaluation


def test_fat_finger_block_only_and_require_reference() -> None:
    b = make(fat_finger={"trip": False, "require_reference": True})
    assert not b.allow(Order("ETH", "sell", 1.0, 3000.0), T0).allowed  # no last trade
    b.report(Signal("price", 3000.0, "ETH"), now=T0)
    assert not b.allow(Order("ETH", "sell", 1.0, 2000.0), T0).allowed
    assert b.state is ARMED and b.allow(Order("ETH", "sell", 1.0, 2990.0), T0).allowed


def test_max_position_blocks_orders_and_trips_on_reported_position() -> None:
    b = make(max_position={"per_symbol": {"BTC": 1.0}}, max_notional={"enabled": False},
             max_total_notional={"enabled": False})
    b.report(Signal("position", 0.8, "BTC"), now=T0)
    d = b.allow(Order("BTC", "buy", 0.5), T0)
    assert not d.allowed and d.reasons == ("max_position: BTC position would be 1.3, "
                                           "beyond 1",)
    assert b.state is ARMED  # trip_on_order is off: the order alone is blocked
    assert b.allow(Order("BTC", "sell", 0.5), T0).allowed  # reducing is fine
    assert b.allow(Order("ETH", "buy", 100.0), T0).allowed  # no limit for ETH
    assert b.report(Signal("position", -1.5, "BTC"), now=T0 + 1) is TRIPPED
    assert b.report(Signal("position", -0.5, "BTC"), now=T0 + 2) is COOLDOWN
    assert b.tick(T0 + 2 + COOL) is ARMED


def test_max_position_trip_on_order() -> None:
    b = make(max_position={"default": 2.0, "trip_on_order": True})
    b.report(Signal("price", 10.0, "SOL"), now=T0)
    assert not b.allow(Order("SOL", "sell", 3.0), T0).allowed
    assert b.state is TRIPPED and rules_tripped(b) == ["max_position"]
    assert_untrips(b, T0 + 1)


def test_max_notional_per_symbol() -> None:
    b = make(max_notional={"default": 50_000}, max_total_notional={"enabled": False})
    assert not b.allow(Order("BTC", "buy", 0.1), T0).allowed  # market order, no price known
    b.report(Signal("price", 60_000.0, "BTC"), now=T0)
    assert not b.allow(Order("BTC", "buy", 1.0), T0).allowed  # 60k > 50k
    assert b.allow(Order("BTC", "buy", 0.5), T0).allowed
    assert b.report(Signal("position", 1.0, "BTC"), now=T0 + 1) is TRIPPED
    assert events(b, "trip")[0].reason == "BTC notional 60000 > 50000"
    assert b.report(Signal("price", 45_000.0, "BTC"), now=T0 + 2) is COOLDOWN  # 45k now
    assert b.tick(T0 + 2 + COOL) is ARMED


def test_max_total_notional() -> None:
    b = make(max_notional={"enabled": False}, max_total_notional={"limit": 100_000})
    b.report(Signal("price", 60_000.0, "BTC"), now=T0)
    b.report(Signal("price", 3_000.0, "ETH"), now=T0)
    b.report(Signal("position", 1.0, "BTC"), now=T0)
    assert b.allow(Order("ETH", "buy", 10.0), T0).allowed  # 90k
    assert not b.allow(Order("ETH", "buy", 15.0), T0).allowed  # 105k
    assert b.report(Signal("position", 15.0, "ETH"), now=T0 + 1) is TRIPPED
    assert b.report(Signal("position", 0.0, "ETH"), now=T0 + 2) is COOLDOWN
    assert b.tick(T0 + 2 + COOL) is ARMED


def test_order_rate_trips_and_clears_as_the_window_drains() -> None:
    b = make(order_rate={"limit": 3, "window_s": 60})
    b.report(Signal("price", 1.0, "X"), now=T0)
    for i in range(3):
        assert b.allow(Order("X", "buy", 1.0), T0 + i).allowed
    d = b.allow(Order("X", "buy", 1.0), T0 + 3)
    assert not d.allowed and d.reasons == ("order_rate: 4 orders in 60s > 3",)
    assert b.tick(T0 + 59.9) is TRIPPED  # all three still inside the window
    assert b.tick(T0 + 60) is COOLDOWN  # the first aged out: 2 < 3
    assert b.tick(T0 + 60 + COOL) is ARMED


def test_latched_rule_needs_a_manual_reset() -> None:
    b = make(max_drawdown={"latch": True}, daily_loss={"enabled": False})
    b.on_equity(T0, 100.0)
    assert b.on_equity(T0 + 1, 80.0) is TRIPPED
    assert b.on_equity(T0 + 2, 100.0) is TRIPPED  # recovered, but latched
    assert b.tick(T0 + 1000) is TRIPPED
    b.reset("reviewed", "cli:alice", T0 + 1001)  # resets global, not the account
    assert b.state is TRIPPED
    assert b.reset("reviewed", "cli:alice", T0 + 1001, scope="account:default") is ARMED
    reset = events(b, "reset")[-1]
    assert reset.who == "cli:alice" and reset.values["cleared"] == ["max_drawdown"]
