"""The trip rules: one small class per rule, each reading :class:`Readings` and nothing else.

A rule can be a *level* rule (``check``: a measured condition such as drawdown, tripping when it
crosses the limit and clearing when it is back within it), an *order* rule (``check_order``: a
pre-trade check on one order), or both (position limits). ``time_driven`` level rules can trip
with nothing but time passing (stale data, gaps left unrepaired), so ``allow`` checks them on
every order. Order-triggered conditions clear at the next evaluation (the cooldown is their
pause) unless the rule's measure still says otherwise (order rate).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from spark_ray.breaker.models import (
    BreakerConfig,
    ClockOffsetConfig,
    ConsecutiveLossesConfig,
    DailyLossConfig,
    ErrorRateConfig,
    FatFingerConfig,
    Marks,
    MaxDrawdownConfig,
    NotionalLimitConfig,
    Order,
    OrderRateConfig,
    PositionLimitConfig,
    RejectRateConfig,
    SequenceGapsConfig,
    StaleDataConfig,
    TotalNotionalConfig,
    VenueErrorsConfig,
    Violation,
)
from spark_ray.breaker.readings import Readings


class Rule:
    """Base: a rule that never fires; subclasses override what they check."""

    name: str = ""
    level: bool = False          # has a measured condition (``check``)
    order_rule: bool = False     # checks single orders (``check_order``)
    time_driven: bool = False    # ``check`` can fire with only time passing
    trips_on_order: bool = True  # an order violation trips (else only that order is blocked)

    def check(self, r: Readings, now: float) -> Violation | None:
        return None

    def cleared(self, r: Readings, now: float) -> bool:
        """Whether an active condition of this rule may clear now (default: check passes)."""
        return self.check(r, now) is None

    def check_order(self, order: Order, r: Readings, now: float) -> Violation | None:
        return None

    def after_trip(self, marks: Marks) -> Marks:
        """Durable measures to record with the trip (a rule may re-baseline its measure)."""
        return marks


def _pct(x: float) -> str:
    return f"{x:.1%}"


class MaxDrawdown(Rule):
    name = "max_drawdown"
    level = True

    def __init__(self, cfg: MaxDrawdownConfig) -> None:
        self.limit = cfg.limit

    def check(self, r: Readings, now: float) -> Violation | None:
        eq, peak = r.equity, r.peak
        if eq is None or peak is None or peak <= 0:
            return None
        dd = 1.0 - eq / peak
        if dd > self.limit:
            return Violation(self.name, f"drawdown {_pct(dd)} > {_pct(self.limit)}",
                             {"drawdown": dd, "limit": self.limit, "equity": eq, "peak": peak})
        return None


class DailyLoss(Rule):
    name = "daily_loss"
    level = True

    def __init__(self, cfg: DailyLossConfig) -> None:
        self.limit = cfg.limit
        self.limit_abs = cfg.limit_abs

    def check(self, r: Readings, now: float) -> Violation | None:
        eq, start = r.equity, r.day_start
        if eq is None or start is None or start <= 0:
            return None
        loss = start - eq
        frac = loss / start
        values = {"loss": loss, "loss_frac": frac, "limit": self.limit,
                  "limit_abs": self.limit_abs, "day_start": start, "equity": eq}
        if frac > self.limit:
            return Violation(self.name, f"daily loss {_pct(frac)} > {_pct(self.limit)}", values)
        if self.limit_abs is not None and loss > self.limit_abs:
            return Violation(self.name, f"daily loss {loss:g} > {self.limit_abs:g}", values)
        return None


class ConsecutiveLosses(Rule):
    """Trips on a losing streak; the streak restarts at the trip, so the cooldown is the pause."""

    name = "consecutive_losses"
    level = True

    def __init__(self, cfg: ConsecutiveLossesConfig) -> None:
        self.limit = cfg.limit

    def check(self, r: Readings, now: float) -> Violation | None:
        if r.loss_streak >= self.limit:
            return Violation(self.name,
                             f"{r.loss_streak} losing trades in a row >= {self.limit}",
                             {"streak": r.loss_streak, "limit": self.limit})
        return None

    def after_trip(self, marks: Marks) -> Marks:
        return marks.model_copy(update={"loss_streak": 0})


class RejectRate(Rule):
    name = "reject_rate"
    level = True

    def __init__(self, cfg: RejectRateConfig) -> None:
        self.limit = cfg.limit
        self.window_s = cfg.window_s
        self.min_orders = cfg.min_orders

    def check(self, r: Readings, now: float) -> Violation | None:
        acks = r.acks.prune(now)
        rejects = r.rejects.prune(now)
        n = acks + rejects
        if n >= self.min_orders and n > 0:
            rate = rejects / n
            if rate > self.limit:
                return Violation(
                    self.name, f"reject rate {_pct(rate)} > {_pct(self.limit)} "
                               f"over {n:g} orders in {self.window_s:g}s",
                    {"rate": rate, "limit": self.limit, "rejects": rejects, "orders": n})
        return None


class ErrorRate(Rule):
    name = "error_rate"
    level = True

    def __init__(self, cfg: ErrorRateConfig) -> None:
        self.limit = cfg.limit
        self.window_s = cfg.window_s

    def check(self, r: Readings, now: float) -> Violation | None:
        n = r.errors.prune(now)
        if n >= self.limit:
            return Violation(self.name, f"{n:g} errors in {self.window_s:g}s >= {self.limit}",
                             {"errors": n, "limit": self.limit, "window_s": self.window_s})
        return None


class StaleData(Rule):
    name = "stale_data"
    level = True
    time_driven = True

    def __init__(self, cfg: StaleDataConfig) -> None:
        self.max_lag_s = cfg.max_lag_s
        self.max_age_s = cfg.max_age_s

    def check(self, r: Readings, now: float) -> Violation | None:
        max_lag, max_age = self.max_lag_s, self.max_age_s
        for src, h in r.sources.items():
            if h.lag > max_lag:
                return Violation(self.name, f"{src}: ingest lag {h.lag:.1f}s > {max_lag:g}s",
                                 {"source": src, "lag_s": h.lag, "limit_s": max_lag})
            age = now - h.last_ts
            if age > max_age:
                return Violation(self.name,
                                 f"{src}: last message {age:.1f}s ago > {max_age:g}s",
                                 {"source": src, "age_s": age, "limit_s": max_age})
        if r.expected and now - r.started > max_age:
            for src in r.expected:
                if src not in r.sources:
                    return Violation(self.name, f"{src}: no message since start "
                                                f"({now - r.started:.0f}s > {max_age:g}s)",
                                     {"source": src, "age_s": now - r.started,
                                      "limit_s": max_age})
        return None


class SequenceGaps(Rule):
    name = "sequence_gaps"
    level = True
    time_driven = True

    def __init__(self, cfg: SequenceGapsConfig) -> None:
        self.limit = cfg.limit
        self.grace_s = cfg.grace_s

    def check(self, r: Readings, now: float) -> Violation | None:
        for src, g in r.gaps.items():
            if g.count > self.limit and now - g.since >= self.grace_s:
                return Violation(
                    self.name, f"{src}: {g.count:g} unrepaired gaps for {now - g.since:.1f}s "
                               f"(limit {self.limit}, grace {self.grace_s:g}s)",
                    {"source": src, "gaps": g.count, "limit": self.limit,
                     "open_s": now - g.since})
        return None


class VenueErrors(Rule):
    """A symbol's venue keeps failing (rejects, 5xx, disconnects the fabric counts)."""

    name = "venue_errors"
    level = True
    time_driven = True

    def __init__(self, cfg: VenueErrorsConfig) -> None:
        self.limit = cfg.limit
        self.window_s = cfg.window_s

    def check(self, r: Readings, now: float) -> Violation | None:
        n = r.venue_errors.prune(now)
        if n >= self.limit:
            return Violation(self.name, f"{n:g} venue errors in {self.window_s:g}s >= "
                                        f"{self.limit}",
                             {"errors": n, "limit": self.limit, "window_s": self.window_s})
        return None


class ClockOffset(Rule):
    """Venue time minus local time beyond the limit: timestamps and signed requests go bad."""

    name = "clock_offset"
    level = True

    def __init__(self, cfg: ClockOffsetConfig) -> None:
        self.max_offset_s = cfg.max_offset_s

    def check(self, r: Readings, now: float) -> Violation | None:
        off = r.clock_offset
        if off is not None and abs(off) > self.max_offset_s:
            return Violation(self.name, f"clock offset {off:+.2f}s beyond "
                                        f"±{self.max_offset_s:g}s",
                             {"offset_s": off, "limit_s": self.max_offset_s})
        return None


class FatFinger(Rule):
    name = "fat_finger"
    order_rule = True

    def __init__(self, cfg: FatFingerConfig) -> None:
        self.limit = cfg.limit
        self.require_reference = cfg.require_reference
        self.trips_on_order = cfg.trip

    def cleared(self, r: Readings, now: float) -> bool:
        return True

    def check_order(self, order: Order, r: Readings, now: float) -> Violation | None:
        price = order.price
        if price is None:
            return None
        ref = r.prices.get(order.symbol)
        if ref is None:
            if self.require_reference:
                return Violation(self.name, f"{order.symbol}: no last trade to check price "
                                            f"{price:g} against", {"price": price})
            return None
        dev = abs(price / ref - 1.0)
        if dev > self.limit:
            return Violation(self.name, f"{order.symbol} price {price:g} is {_pct(dev)} from "
                                        f"last trade {ref:g} > {_pct(self.limit)}",
                             {"price": price, "reference": ref, "deviation": dev,
                              "limit": self.limit})
        return None


class _PerSymbolLimit(Rule):
    level = True
    order_rule = True

    def __init__(self, cfg: PositionLimitConfig) -> None:
        self.per_symbol = dict(cfg.per_symbol)
        self.default = cfg.default
        self.trips_on_order = cfg.trip_on_order

    def limit_for(self, symbol: str) -> float | None:
        return self.per_symbol.get(symbol, self.default)


class MaxPosition(_PerSymbolLimit):
    name = "max_position"

    def check(self, r: Readings, now: float) -> Violation | None:
        for sym, qty in r.positions.items():
            lim = self.limit_for(sym)
            if lim is not None and abs(qty) > lim:
                return Violation(self.name, f"{sym} position {qty:g} beyond {lim:g}",
                                 {"symbol": sym, "position": qty, "limit": lim})
        return None

    def check_order(self, order: Order, r: Readings, now: float) -> Violation | None:
        lim = self.limit_for(order.symbol)
        if lim is None:
            return None
        cur = r.positions.get(order.symbol, 0.0)
        new = cur + order.signed_qty
        if abs(new) > lim and abs(new) > abs(cur):
            return Violation(self.name, f"{order.symbol} position would be {new:g}, "
                                        f"beyond {lim:g}",
                             {"symbol": order.symbol, "position": cur, "after": new,
                              "limit": lim})
        return None


class MaxNotional(_PerSymbolLimit):
    name = "max_notional"

    def __init__(self, cfg: NotionalLimitConfig) -> None:
        super().__init__(cfg)

    def check(self, r: Readings, now: float) -> Violation | None:
        for sym, qty in r.positions.items():
            lim = self.limit_for(sym)
            px = r.prices.get(sym)
            if lim is not None and px is not None and abs(qty) * px > lim:
                return Violation(self.name, f"{sym} notional {abs(qty) * px:g} > {lim:g}",
                                 {"symbol": sym, "notional": abs(qty) * px, "limit": lim})
        return None

    def check_order(self, order: Order, r: Readings, now: float) -> Violation | None:
        lim = self.limit_for(order.symbol)
        if lim is None:
            return None
        cur = r.positions.get(order.symbol, 0.0)
        new = cur + order.signed_qty
        if abs(new) <= abs(cur):
            return None  # reduces exposure
        px = order.price if order.price is not None else r.prices.get(order.symbol)
        if px is None:
            return Violation(self.name, f"{order.symbol}: no price to check notional against "
                                        f"{lim:g}", {"symbol": order.symbol, "limit": lim})
        if abs(new) * px > lim:
            return Violation(self.name, f"{order.symbol} notional would be {abs(new) * px:g} "
                                        f"> {lim:g}",
                             {"symbol": order.symbol, "after": abs(new) * px, "limit": lim})
        return None


class MaxTotalNotional(Rule):
    """Sum of |position| x last price across symbols (unpriced positions are not counted)."""

    name = "max_total_notional"
    level = True
    order_rule = True

    def __init__(self, cfg: TotalNotionalConfig) -> None:
        self.limit = cfg.limit
        self.trips_on_order = cfg.trip_on_order

    def check(self, r: Readings, now: float) -> Violation | None:
        total, _ = r.total_notional()
        if total > self.limit:
            return Violation(self.name, f"total notional {total:g} > {self.limit:g}",
                             {"notional": total, "limit": self.limit})
        return None

    def check_order(self, order: Order, r: Readings, now: float) -> Violation | None:
        sym = order.symbol
        cur = r.positions.get(sym, 0.0)
        new = cur + order.signed_qty
        if abs(new) <= abs(cur):
            return None
        mark = r.prices.get(sym)
        px = order.price if order.price is not None else mark
        if px is None:
            return Violation(self.name, f"{sym}: no price to check total notional against "
                                        f"{self.limit:g}", {"symbol": sym, "limit": self.limit})
        total = 0.0
        prices = r.prices
        for s, q in r.positions.items():
            if s != sym and q != 0.0:
                p = prices.get(s)
                if p is not None:
                    total += abs(q) * p
        after = total + abs(new) * px
        if after > self.limit:
            return Violation(self.name, f"total notional would be {after:g} > {self.limit:g}",
                             {"after": after, "limit": self.limit, "symbol": sym})
        return None


class OrderRate(Rule):
    """Max orders per window; the order over the limit trips, and the window drains to clear."""

    name = "order_rate"
    order_rule = True

    def __init__(self, cfg: OrderRateConfig) -> None:
        self.limit = cfg.limit
        self.window_s = cfg.window_s

    def cleared(self, r: Readings, now: float) -> bool:
        return r.orders.prune(now) < self.limit

    def check_order(self, order: Order, r: Readings, now: float) -> Violation | None:
        n = r.orders.prune(now)
        if n >= self.limit:
            return Violation(self.name, f"{n + 1} orders in {self.window_s:g}s > {self.limit}",
                             {"orders": n + 1, "limit": self.limit, "window_s": self.window_s})
        return None


_FACTORIES: dict[str, Callable[[BreakerConfig], Rule]] = {
    "max_drawdown": lambda c: MaxDrawdown(c.max_drawdown),
    "daily_loss": lambda c: DailyLoss(c.daily_loss),
    "consecutive_losses": lambda c: ConsecutiveLosses(c.consecutive_losses),
    "reject_rate": lambda c: RejectRate(c.reject_rate),
    "error_rate": lambda c: ErrorRate(c.error_rate),
    "stale_data": lambda c: StaleData(c.stale_data),
    "sequence_gaps": lambda c: SequenceGaps(c.sequence_gaps),
    "venue_errors": lambda c: VenueErrors(c.venue_errors),
    "clock_offset": lambda c: ClockOffset(c.clock_offset),
    "fat_finger": lambda c: FatFinger(c.fat_finger),
    "max_position": lambda c: MaxPosition(c.max_position),
    "max_notional": lambda c: MaxNotional(c.max_notional),
    "max_total_notional": lambda c: MaxTotalNotional(c.max_total_notional),
    "order_rate": lambda c: OrderRate(c.order_rate),
}


def build_rules(cfg: BreakerConfig, names: Iterable[str] | None = None) -> list[Rule]:
    """The enabled rules (of ``names``, default all), in a fixed order (the order reasons are
    reported in)."""
    wanted = set(_FACTORIES) if names is None else set(names)
    rules: list[Rule] = []
    for name, factory in _FACTORIES.items():
        section = getattr(cfg, name)
        if section.enabled and name in wanted:
            rules.append(factory(cfg))
    return rules
