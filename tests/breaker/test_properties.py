"""Hypothesis: the state machines' invariants hold for any sequence of inputs.

- no order is allowed unless every scope it belongs to is ARMED (outside dry-run), and dry-run
  allows every order;
- every blocked (or would-block) order and every trip has its own journal event;
- the journal is one continuous chain of states per scope, and replaying it (also through JSON)
  rebuilds exactly the live breaker's durable state.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from spark_ray.breaker.core import CircuitBreaker
from spark_ray.breaker.journal import MemoryJournal, parse_lines
from spark_ray.breaker.models import BreakerConfig, BreakerState, Order, Signal

T0 = 1_800_000_000.0
SYMBOLS = ("BTC", "ETH")
SOURCES = ("feed-a", "feed-b")

_order = st.tuples(st.just("order"), st.sampled_from(SYMBOLS), st.sampled_from(("buy", "sell")),
                   st.floats(0.01, 3.0), st.one_of(st.none(), st.floats(50.0, 150.0)),
                   st.booleans())
_signal = st.one_of(
    st.tuples(st.just("signal"), st.sampled_from(("price",)), st.sampled_from(SYMBOLS),
              st.floats(50.0, 150.0)),
    st.tuples(st.just("signal"), st.sampled_from(("position",)), st.sampled_from(SYMBOLS),
              st.floats(-4.0, 4.0)),
    st.tuples(st.just("signal"), st.sampled_from(("lag", "gaps")), st.sampled_from(SOURCES),
              st.floats(0.0, 10.0)),
    st.tuples(st.just("signal"), st.sampled_from(("heartbeat", "source_closed")),
              st.sampled_from(SOURCES), st.just(1.0)),
    st.tuples(st.just("signal"), st.sampled_from(("order_ack", "order_reject", "error")),
              st.just(""), st.just(1.0)),
)
_op = st.one_of(
    _order, _order, _signal,
    st.tuples(st.just("equity"), st.floats(50.0, 150.0)),
    st.tuples(st.just("trade"), st.floats(-10.0, 10.0)),
    st.tuples(st.just("trip")), st.tuples(st.just("reset")), st.tuples(st.just("tick")),
)
_steps = st.lists(st.tuples(st.floats(0.0, 40.0), _op), max_size=60)


def _config(dry_run: bool, latch: bool) -> BreakerConfig:
    return BreakerConfig.model_validate({
        "cooldown_s": 20.0, "dry_run": dry_run, "peak_checkpoint": 0.02,
        "max_drawdown": {"limit": 0.1, "latch": latch},
        "daily_loss": {"limit": 0.15},
        "consecutive_losses": {"limit": 3},
        "reject_rate": {"limit": 0.5, "min_orders": 4, "window_s": 60},
        "error_rate": {"limit": 3, "window_s": 60},
        "stale_data": {"max_lag_s": 5, "max_age_s": 60},
        "sequence_gaps": {"limit": 0, "grace_s": 5},
        "fat_finger": {"limit": 0.05},
        "max_position": {"default": 2.0},
        "max_notional": {"default": 200.0},
        "max_total_notional": {"limit": 300.0},
        "order_rate": {"limit": 5, "window_s": 60},
    })


def _check_state_shape(b: CircuitBreaker) -> None:
    for sc in b.scopes.values():
        if sc.state is BreakerState.ARMED:
            assert not sc.active and sc.cooldown_until is None
        elif sc.state is BreakerState.TRIPPED:
            assert sc.active
        else:
            assert not sc.active and sc.cooldown_until is not None


def _order_armed(b: CircuitBreaker, symbol: str) -> bool:
    return all(b.scope_state(n) is BreakerState.ARMED
               for n in ("global", "account:default", f"symbol:{symbol}"))


@settings(max_examples=150, deadline=None)
@given(steps=_steps, dry_run=st.booleans(), latch=st.booleans())
def test_invariants_hold_for_any_input_sequence(steps: list[tuple[float, Any]], dry_run: bool,
                                                latch: bool) -> None:
    cfg = _config(dry_run, latch)
    journal = MemoryJournal()
    b = CircuitBreaker(cfg, journal=journal, clock=lambda: T0)
    now = T0
    last_state: dict[str, str] = {}
    refused = 0
    for i, (dt, op) in enumerate(steps):
        now += dt
        before = len(journal.events)
        kind = op[0]
        if kind == "order":
            _, sym, side, qty, price, reduce_only = op
            pos = b.readings.positions_by.get(("", sym), 0.0)
            d = b.allow(Order(sym, side, qty, price, order_id=f"o-{i}",
                              reduce_only=reduce_only), now)
            new = journal.events[before:]
            blocks = [e for e in new if e.kind in ("blocked", "would_block")]
            exits = [e for e in new if e.kind == "exit"]
            if exits:  # a tripped scope let a confirmed position-reducing order out
                assert d.allowed and reduce_only and not blocks and len(exits) == 1
                signed = qty if side == "buy" else -qty
                assert pos * signed < 0 and abs(signed) <= abs(pos) * (1 + 1e-9)
                assert exits[0].order is not None and exits[0].order["order_id"] == f"o-{i}"
            elif dry_run:
                assert d.allowed and d.dry_run == bool(d.reasons)
                assert len(blocks) == (1 if d.reasons else 0)
            elif d.allowed:
                assert _order_armed(b, sym) and not blocks
            else:
                refused += 1
                assert len(blocks) == 1 and blocks[0].kind == "blocked"
            if blocks:
                assert blocks[0].order is not None and blocks[0].order["order_id"] == f"o-{i}"
                assert new[-1] is blocks[0]  # nothing happens after the block is journaled
        elif kind == "signal":
            _, skind, key, value = op
            b.report(Signal(skind, value, key), now=now)
        elif kind == "equity":
            b.on_equity(now, op[1])
        elif kind == "trade":
            b.on_trade_closed(now, op[1])
        elif kind == "trip":
            b.trip("property test", "test", now)
        elif kind == "reset":
            b.reset("property test", "test", now)
        else:
            b.tick(now)
        _check_state_shape(b)
        for e in journal.events[before:]:
            assert e.from_state == last_state.get(e.scope, "ARMED")  # unbroken chain a scope
            last_state[e.scope] = e.to_state or last_state.get(e.scope, "ARMED")
            assert e.dry_run == dry_run
        for name, sc in b.scopes.items():  # every state change is journaled
            assert last_state.get(name, "ARMED") == sc.state.name
    events = journal.events
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert sum(b.trips.values()) == sum(e.kind == "trip" for e in events)
    assert b.blocked_total == refused == sum(e.kind == "blocked" for e in events)
    assert CircuitBreaker.replay(events, cfg).durable() == b.durable()
    text = b"".join(e.model_dump_json().encode() + b"\n" for e in events)
    parsed, skipped = parse_lines(text)
    assert skipped == 0
    assert CircuitBreaker.replay(parsed, cfg).durable() == b.durable()


@settings(max_examples=50, deadline=None)
@given(steps=_steps)
def test_dry_run_tracks_the_same_states_as_live(steps: list[tuple[float, Any]]) -> None:
    """Dry-run is a faithful shadow: same inputs, same transitions, only nothing is blocked.

    Orders are left out: a live breaker's blocked orders never reach the order-rate window
    while a dry-run's do, so their histories legitimately differ once orders flow.
    """
    live = CircuitBreaker(_config(False, False), clock=lambda: T0)
    shadow = CircuitBreaker(_config(True, False), clock=lambda: T0)
    now = T0
    for dt, op in steps:
        now += dt
        for b in (live, shadow):
            if op[0] == "signal":
                b.report(Signal(op[1], op[3], op[2]), now=now)
            elif op[0] == "equity":
                b.on_equity(now, op[1])
            elif op[0] == "trade":
                b.on_trade_closed(now, op[1])
            elif op[0] == "trip":
                b.trip("p", "t", now)
            elif op[0] == "reset":
                b.reset("p", "t", now)
            else:
                b.tick(now)
        assert live.state is shadow.state
        assert {n: sc.state for n, sc in live.scopes.items()} == \
            {n: sc.state for n, sc in shadow.scopes.items()}
        assert [c.rule for c in live.conditions] == [c.rule for c in shadow.conditions]
