"""Breaker scopes on the plain core (no Ray): accounts add their executors' equity up, each
strategy has its own drawdown, market-data health trips one symbol and lets exits out, dry-run
per scope, and a restarted breaker (journal replay) rebuilds every scope."""

from __future__ import annotations

import json
from typing import Any

import pytest

from spark_ray.breaker.core import CircuitBreaker
from spark_ray.breaker.journal import MemoryJournal, parse_lines
from spark_ray.breaker.models import BreakerConfig, BreakerState, Order, Signal
from spark_ray.breaker.scopes import parse_scope
from spark_ray.breaker.status import format_status

ARMED, TRIPPED, COOLDOWN = BreakerState.ARMED, BreakerState.TRIPPED, BreakerState.COOLDOWN
T0 = 1_800_000_000.0  # 2027-01-15 08:00 UTC: readings below stay within one UTC day
COOL = 10.0
QUIET = {"max_notional": {"enabled": False}, "max_total_notional": {"enabled": False},
         "order_rate": {"enabled": False}}


def make(**cfg: Any) -> CircuitBreaker:
    cfg.setdefault("cooldown_s", COOL)
    for k, v in QUIET.items():
        cfg.setdefault(k, v)
    return CircuitBreaker(BreakerConfig.model_validate(cfg), journal=MemoryJournal(),
                          clock=lambda: T0)


def events(b: CircuitBreaker, kind: str | None = None) -> list[Any]:
    assert isinstance(b.journal, MemoryJournal)
    return [e for e in b.journal.events if kind is None or e.kind == kind]


def eq(b: CircuitBreaker, t: float, who: str, value: float, account: str = "acct",
       strategy: str = "") -> BreakerState:
    return b.report(Signal("equity", value, who=who, account=account, strategy=strategy),
                    now=T0 + t)


def test_two_executors_on_one_account_add_up_instead_of_overwriting() -> None:
    """A big and a small executor report in turn: one overwritten series would read 1000,
    100, ... as a 90 % drawdown; their sum (1100) has none."""
    b = make(daily_loss={"enabled": False})
    for t in range(6):
        eq(b, t, "executor:big", 1000.0 - t)
        eq(b, t + 0.5, "executor:small", 100.0)
    r = b.scope_readings("account:acct")
    assert r.equity == pytest.approx(1095.0) and r.peak == pytest.approx(1100.0)
    assert r.equity_by == {"executor:big": 995.0, "executor:small": 100.0}
    assert b.state is ARMED and not events(b, "trip")


def test_a_loss_of_the_sum_trips_the_account_though_neither_executor_alone_would() -> None:
    b = make(max_drawdown={"enabled": False},
             daily_loss={"limit": 0.5, "limit_abs": 100.0})
    eq(b, 0, "executor:a", 1000.0, strategy="a")
    eq(b, 0, "executor:b", 1000.0, strategy="b")
    eq(b, 1, "executor:a", 940.0, strategy="a")  # a lost 60: under 100 on its own
    assert b.scope_state("account:acct") is ARMED
    assert eq(b, 2, "executor:b", 940.0, strategy="b") is TRIPPED  # together 120 > 100
    assert b.scope_state("account:acct") is TRIPPED
    assert b.scope_state("strategy:a") is ARMED and b.scope_state("strategy:b") is ARMED
    (trip,) = events(b, "trip")
    assert trip.scope == "account:acct" and trip.rule == "daily_loss"
    assert trip.values["loss"] == pytest.approx(120.0)
    # Every order of the account is held; another account's go out.
    assert not b.allow(Order("BTCUSDT", "buy", 1.0, account="acct", strategy="a"),
                       T0 + 3).allowed
    assert b.allow(Order("BTCUSDT", "buy", 1.0, account="other", strategy="c"),
                   T0 + 3).allowed


def test_each_strategy_has_its_own_drawdown() -> None:
    b = make(daily_loss={"enabled": False})
    eq(b, 0, "executor:a", 1000.0, strategy="a")
    eq(b, 0, "executor:b", 1000.0, strategy="b")
    assert eq(b, 1, "executor:a", 850.0, strategy="a") is TRIPPED  # 15 % for strategy a
    assert b.scope_state("strategy:a") is TRIPPED
    assert b.scope_state("strategy:b") is ARMED
    assert b.scope_state("account:acct") is ARMED  # 1850 / 2000: 7.5 %
    d = b.allow(Order("ETHUSDT", "buy", 1.0, account="acct", strategy="a"), T0 + 2)
    assert not d.allowed and d.reasons[0].startswith("strategy:a max_drawdown: drawdown 15.0%")
    assert b.allow(Order("ETHUSDT", "buy", 1.0, account="acct", strategy="b"), T0 + 2).allowed
    assert [e.scope for e in events(b, "blocked")] == ["strategy:a"]


def test_stale_symbol_blocks_entries_lets_a_reduce_only_exit_out_and_rearms() -> None:
    b = make(stale_data={"max_age_s": 5, "max_lag_s": 2})
    who = "executor:x"
    b.report(Signal("position", 2.0, "BTCUSDT", who=who), now=T0)
    b.report(Signal("heartbeat", 1.0, "BTCUSDT", who="fabric:binance"), now=T0)
    b.report(Signal("heartbeat", 1.0, "ETHUSDT", who="fabric:binance"), now=T0 + 5.5)
    assert b.tick(T0 + 6) is TRIPPED
    assert b.scope_state("symbol:BTCUSDT") is TRIPPED
    assert b.scope_state("global") is ARMED and b.scope_state("symbol:ETHUSDT") is ARMED
    entry = b.allow(Order("BTCUSDT", "buy", 1.0, who=who), T0 + 6)
    assert not entry.allowed and "symbol:BTCUSDT stale_data" in entry.reasons[0]
    assert b.allow(Order("ETHUSDT", "buy", 1.0, who=who), T0 + 6).allowed
    exit_ = b.allow(Order("BTCUSDT", "sell", 1.5, who=who, reduce_only=True, order_id="x1"),
                    T0 + 6)
    assert exit_.allowed and "reduce-only exit allowed through symbol:BTCUSDT" in \
        exit_.reasons[0]
    (ev,) = events(b, "exit")
    assert ev.scope == "symbol:BTCUSDT" and ev.order is not None
    assert ev.order["order_id"] == "x1" and ev.values["through"] == ["symbol:BTCUSDT"]
    # A "reduce-only" order the breaker's position reading does not confirm stays blocked.
    for bad in (Order("BTCUSDT", "sell", 3.0, who=who, reduce_only=True),  # flips to short
                Order("BTCUSDT", "buy", 1.0, who=who, reduce_only=True),  # adds
                Order("BTCUSDT", "sell", 1.0, who="executor:y", reduce_only=True)):  # not its
        d = b.allow(bad, T0 + 6)
        assert not d.allowed and "reduce_only" in d.reasons[-1]
    # Fresh data: cooldown, then armed again by itself.
    assert b.report(Signal("heartbeat", 1.0, "BTCUSDT"), now=T0 + 7) is COOLDOWN
    assert not b.allow(Order("BTCUSDT", "buy", 1.0, who=who), T0 + 8).allowed
    b.report(Signal("heartbeat", 1.0, "BTCUSDT"), now=T0 + 7 + COOL)
    b.report(Signal("heartbeat", 1.0, "ETHUSDT"), now=T0 + 7 + COOL)
    assert b.tick(T0 + 7 + COOL) is ARMED
    assert b.allow(Order("BTCUSDT", "buy", 1.0, who=who), T0 + 7 + COOL).allowed


@pytest.mark.parametrize(("signals", "rule"), [
    ([("gaps", 3.0, 0.0), ("gaps", 3.0, 6.0)], "sequence_gaps"),
    ([("lag", 9.0, 0.0)], "stale_data"),
    ([("venue_error", 2.0, 0.0), ("venue_error", 2.0, 1.0)], "venue_errors"),
    ([("clock_offset", -1.6, 0.0)], "clock_offset"),
])
def test_market_data_health_trips_the_symbol_scope(signals: list[tuple[str, float, float]],
                                                   rule: str) -> None:
    cfg = {"sequence_gaps": {"limit": 0, "grace_s": 5}, "stale_data": {"max_lag_s": 5},
           "venue_errors": {"limit": 4, "window_s": 30}, "clock_offset": {"max_offset_s": 1.5}}
    b = make(**cfg)
    for kind, value, t in signals:
        b.report(Signal(kind, value, "SOLUSDT", who="fabric:binance"),  # type: ignore[arg-type]
                 now=T0 + t)
    b.tick(T0 + signals[-1][2])
    assert b.scope_state("symbol:SOLUSDT") is TRIPPED
    assert [(e.scope, e.rule) for e in events(b, "trip")] == [("symbol:SOLUSDT", rule)]
    assert b.scope_state("global") is ARMED
    # The rule can be switched off.
    off = make(**{**cfg, rule: {"enabled": False}})
    for kind, value, t in signals:
        off.report(Signal(kind, value, "SOLUSDT"), now=T0 + t)  # type: ignore[arg-type]
    assert off.tick(T0 + signals[-1][2]) is ARMED


def test_status_shows_the_scope_tree_and_symbol_health() -> None:
    b = make(daily_loss={"enabled": False}, clock_offset={"max_offset_s": 1.0})
    eq(b, 0, "executor:a", 1000.0, strategy="a")
    eq(b, 1, "executor:a", 800.0, strategy="a")
    b.report(Signal("heartbeat", 1.0, "BTCUSDT"), now=T0)
    b.report(Signal("lag", 0.25, "BTCUSDT"), now=T0 + 1)
    b.report(Signal("venue_error", 3.0, "BTCUSDT"), now=T0 + 1)
    b.report(Signal("clock_offset", 0.2, "BTCUSDT"), now=T0 + 1)
    snap = b.snapshot(now=T0 + 2)
    json.dumps(snap)  # JSON-safe for --json
    tree = snap["tree"]
    assert tree["global"]["state"] == "ARMED"
    acct = tree["accounts"]["acct"]
    assert acct["state"] == "TRIPPED" and acct["strategies"]["a"]["state"] == "TRIPPED"
    assert acct["conditions"][0]["rule"] == "max_drawdown"
    health = tree["symbols"]["BTCUSDT"]["health"]
    assert health == {"last_message_age_s": 1.0, "lag_s": 0.25, "gaps": 0, "gaps_open_s": None,
                      "venue_errors": 3.0, "venue_error_window_s": 60.0,
                      "venue_errors_per_min": 3.0, "clock_offset_s": 0.2}
    text = format_status(snap)
    assert text.startswith("TRIPPED  since ")
    lines = text.splitlines()
    i = lines.index("scopes:")
    assert lines[i + 1].split()[:2] == ["global", "ARMED"]
    assert lines[i + 2].split()[:2] == ["account:acct", "TRIPPED"]
    assert lines[i + 3].split()[:2] == ["strategy:a", "TRIPPED"]
    assert "max_drawdown: drawdown 20.0%" in lines[i + 3]
    assert lines[i + 4].split()[:2] == ["symbol:BTCUSDT", "ARMED"]
    assert "age=1.0s lag=0.25s gaps=0 errors/min=3 offset=+0.200s" in lines[i + 4]


def test_dry_run_per_scope_is_switchable_and_journaled() -> None:
    b = make(daily_loss={"enabled": False})
    eq(b, 0, "executor:a", 1000.0, strategy="a")
    eq(b, 1, "executor:a", 800.0, strategy="a")
    order = Order("X", "buy", 1.0, account="acct", strategy="a")
    assert not b.allow(order, T0 + 2).allowed
    assert b.set_dry_run(True, "cli:ops", "shadow the account", scope="account:acct")
    assert not b.allow(order, T0 + 3).allowed  # the strategy scope still enforces
    b.set_dry_run(True, "cli:ops", scope="strategy:a")
    d = b.allow(order, T0 + 4)
    assert d.allowed and d.dry_run and len(d.reasons) == 2
    assert events(b, "would_block")[-1].scope == "account:acct"
    b.set_dry_run(False, "cli:ops", scope="strategy:a")
    assert not b.allow(order, T0 + 5).allowed
    b.set_dry_run(True, "cli:ops")  # global dry-run covers every scope
    assert b.allow(order, T0 + 6).allowed and b.dry_run
    dry = [(e.scope, e.values["on"], e.who) for e in events(b, "dry_run")]
    assert dry == [("account:acct", True, "cli:ops"), ("strategy:a", True, "cli:ops"),
                   ("strategy:a", False, "cli:ops"), ("global", True, "cli:ops")]
    snap = b.snapshot()
    assert snap["dry_run"] and snap["dry_run_scopes"] == ["account:acct", "global"]
    again = CircuitBreaker.replay(events(b), b.config)
    assert again.dry_run and again.scopes["account:acct"].dry_run
    assert not again.scopes["strategy:a"].dry_run


def test_replay_rebuilds_every_scope_and_the_equity_parts() -> None:
    b = make(daily_loss={"enabled": False}, stale_data={"max_lag_s": 2})
    eq(b, 0, "executor:a", 1000.0, strategy="a")
    eq(b, 0, "executor:b", 500.0, strategy="b")
    eq(b, 1, "executor:a", 880.0, strategy="a")  # strategy a: 12 %
    b.report(Signal("lag", 4.0, "BTCUSDT"), now=T0 + 2)
    b.trip("desk halt", "cli:ops", T0 + 3, scope="account:other")
    b.set_dry_run(True, "cli:ops", scope="symbol:ethusdt")
    text = b"".join(e.model_dump_json().encode() + b"\n" for e in events(b))
    parsed, skipped = parse_lines(text)
    again = CircuitBreaker.replay(parsed, b.config, clock=lambda: T0 + 4)
    assert skipped == 0 and again.durable() == b.durable()
    states = {n: sc.state.name for n, sc in again.scopes.items() if sc.state is not ARMED}
    assert states == {"strategy:a": "TRIPPED", "symbol:BTCUSDT": "TRIPPED",
                      "account:other": "TRIPPED"}
    assert again.scopes["symbol:ETHUSDT"].dry_run
    # The restarted breaker hears from executor a first: b's last journaled equity stands in,
    # so the account sum does not read as a 41 % drawdown.
    assert again.report(Signal("equity", 880.0, who="executor:a", account="acct"),
                        now=T0 + 5) is ARMED
    assert again.scope_readings("account:acct").equity == pytest.approx(1380.0)


def test_a_journal_from_before_scopes_still_replays() -> None:
    """Old events carry no scope and keep the equity marks on the breaker as a whole."""
    old = [
        {"seq": 1, "ts": T0, "time": "t", "kind": "mark", "who": "equity",
         "from_state": "ARMED", "to_state": "ARMED",
         "marks": {"peak": 120.0, "day": 20833, "day_start": 110.0, "loss_streak": 2}},
        {"seq": 2, "ts": T0 + 1, "time": "t", "kind": "trip", "rule": "manual",
         "reason": "old halt", "who": "cli:x", "from_state": "ARMED", "to_state": "TRIPPED",
         "latched": True},
        {"seq": 3, "ts": T0 + 2, "time": "t", "kind": "blocked", "rule": "manual",
         "from_state": "TRIPPED", "to_state": "TRIPPED",
         "order": {"symbol": "X", "side": "buy", "qty": 1.0, "price": None, "order_id": "",
                   "who": ""}},
    ]
    parsed, skipped = parse_lines("".join(json.dumps(e) + "\n" for e in old).encode())
    assert skipped == 0 and all(e.scope == "global" for e in parsed)
    b = CircuitBreaker.replay(parsed, make().config)
    assert b.scope_state("global") is TRIPPED and b.blocked_total == 1
    r = b.scope_readings("account:default")
    assert (r.peak, r.day_start, r.loss_streak) == (120.0, 110.0, 2)
    assert b.on_equity(T0 + 3, 100.0) is TRIPPED  # 16.7 % below the replayed peak


def test_scope_names_are_checked() -> None:
    assert parse_scope(" global ") == "global"
    assert parse_scope("symbol:btcusdt") == "symbol:BTCUSDT"
    assert parse_scope("account:main") == "account:main"
    for bad in ("", "acct:x", "account:", "strategy:a b", "symbol"):
        with pytest.raises(ValueError, match=r"not a scope|name after"):
            parse_scope(bad)
    with pytest.raises(ValueError, match="not a scope"):
        make().trip("x", "y", T0, scope="desk:1")


def test_an_executor_joining_keeps_the_others_drawdown_visible() -> None:
    b = make(daily_loss={"enabled": False})
    eq(b, 0, "executor:a", 1000.0)
    eq(b, 1, "executor:a", 920.0)  # 8 % down
    assert eq(b, 2, "executor:b", 1000.0) is ARMED
    r = b.scope_readings("account:acct")
    assert r.peak == pytest.approx(2000.0) and r.equity == pytest.approx(1920.0)
    assert eq(b, 3, "executor:a", 790.0) is TRIPPED  # 1790 / 2000: 10.5 %
