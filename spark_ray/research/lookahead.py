"""The look-ahead detector: does a strategy decide with bars it could not have seen yet?

A backtest hands ``init`` the whole series at once, so a vectorized indicator that reads one bar
too far (``shift(-1)``, a centered rolling window, ``close[i + 1]``) trades on tomorrow's prices
and looks brilliant; live, that bar does not exist yet. Reading the code does not catch it
reliably; running it does: a decision the strategy takes on bar ``c`` must be the same whatever
comes after ``c``. :func:`check_lookahead` runs the strategy on the full series, then on the
series cut after bar ``c`` (truncated) and on the full-length series whose bars after ``c`` are
replaced by a random walk (noise), for many ``c``, and compares every decision on bars ``<= c``.

Cut points. A one-bar peek only shows on the cut bar itself (earlier decisions saw real data
in both runs), so cuts spread evenly over the series alone would catch it only when one happens
to land on a bar where the strategy acts. The check therefore cuts at evenly spaced bars (seeded
jitter) *and* at bars where the full run decided or the strategy declared a signal; once it has
found a difference it also cuts at every such bar before it, so it names the earliest decision
that looked ahead, not merely one of them.

Decisions are what ``on_bar`` asked for: each order's terms (bar, symbol, side, kind, sizing,
limit, stop, tag) and each cancel. Fills are not compared: an order placed on the cut bar fills
on the next bar, which differs by construction.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from spark_ray.backtest.data import session_bars
from spark_ray.backtest.engine import Engine
from spark_ray.fills.costs import CostModel
from spark_ray.fills.orders import BUY, Order
from spark_ray.strategy.bars import BarData
from spark_ray.strategy.base import Strategy
from spark_ray.strategy.loader import load_strategy, make_strategy

# Two runs of an honest strategy compute every value of bar <= c from the same bars in the same
# order, so they agree bit for bit; a tolerance this small only forgives numerics whose rounding
# depends on the series length (an FFT convolution, a length-blocked sum), which carry no
# information about later prices. A peek moves a price or a quantity by far more than 1e-12.
REL_TOL = 1e-12
TRUNCATED, NOISE = "truncated", "noise"
# After a difference is found, at most this many cuts per requested cut go into looking for an
# earlier one: bounds the failing case on long series.
REFINE_FACTOR = 10


@dataclass(frozen=True)
class Decision:
    """One thing ``on_bar`` asked for on bar ``bar``: an order (``action`` "order") or the cancel
    of an order placed on bar ``placed_at`` (``action`` "cancel")."""

    bar: int
    action: str
    symbol: str
    side: str
    kind: str
    qty: float | None = None
    notional: float | None = None
    pct: float | None = None
    limit: float | None = None
    stop: float | None = None
    tag: str = ""
    placed_at: int | None = None

    def matches(self, other: Decision) -> bool:
        """Same decision: equal fields, numbers equal to :data:`REL_TOL` (NaN equals NaN)."""
        return (self.bar == other.bar and self.action == other.action
                and self.symbol == other.symbol and self.side == other.side
                and self.kind == other.kind and self.tag == other.tag
                and self.placed_at == other.placed_at
                and all(_same(a, b) for a, b in zip(self._numbers(), other._numbers(),
                                                    strict=True)))

    def _numbers(self) -> tuple[float | None, ...]:
        return self.qty, self.notional, self.pct, self.limit, self.stop

    def describe(self, primary: str = "") -> str:
        """``BUY market pct=1.0``, ``SELL stop qty=2.5 stop=0.0451 tag='atr stop'``,
        ``cancel SELL stop placed at bar 120``; the symbol only when it is not ``primary``."""
        sym = f" {self.symbol}" if self.symbol != primary else ""
        if self.action == "cancel":
            text = f"cancel {self.side} {self.kind}{sym} placed at bar {self.placed_at}"
        else:
            terms = [f"{k}={_fmt(v)}" for k, v in zip(("qty", "notional", "pct", "limit", "stop"),
                                                     self._numbers(), strict=True)
                     if v is not None]
            text = " ".join([f"{self.side} {self.kind}{sym}", *terms])
        return f"{text} tag={self.tag!r}" if self.tag else text

    def to_dict(self) -> dict[str, Any]:
        return {"bar": self.bar, "action": self.action, "symbol": self.symbol, "side": self.side,
                "kind": self.kind, "qty": _json_num(self.qty),
                "notional": _json_num(self.notional), "pct": _json_num(self.pct),
                "limit": _json_num(self.limit), "stop": _json_num(self.stop), "tag": self.tag,
                "placed_at": self.placed_at}


@dataclass(frozen=True)
class Difference:
    """Where a cut run first decided differently from the full run."""

    bar: int
    time: str
    cut: int
    variant: str
    full: Decision | None
    cut_run: Decision | None
    primary: str = ""
    note: str = ""

    def how(self) -> str:
        if self.variant == TRUNCATED:
            return f"the data is cut at bar {self.cut}"
        return f"the bars after bar {self.cut} are replaced by noise"

    def full_text(self) -> str:
        return self.full.describe(self.primary) if self.full else "no order"

    def cut_text(self) -> str:
        if self.cut_run is None:
            return self.note or "no order"
        text = self.cut_run.describe(self.primary)
        return f"{text} ({self.note})" if self.note else text

    def to_dict(self) -> dict[str, Any]:
        return {"bar": self.bar, "time": self.time, "cut": self.cut, "variant": self.variant,
                "full": self.full.to_dict() if self.full else None, "full_text": self.full_text(),
                "cut_run": self.cut_run.to_dict() if self.cut_run else None,
                "cut_run_text": self.cut_text(), "note": self.note}


@dataclass
class LookaheadReport:
    """The verdict: ``clean`` when every decision up to every cut matched the full run."""

    strategy: str
    params: dict[str, Any]
    bars: int
    decisions: int
    cuts_checked: int
    runs: int
    noise: bool
    seed: int
    first: Difference | None
    seconds: float
    cut_bars: list[int] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return self.first is None

    def summary(self) -> str:
        """One line: the verdict, and for look-ahead the bar, its time, the cut and both
        decisions."""
        if self.first is None:
            variants = "truncated and noise" if self.noise else "truncated"
            return (f"look-ahead: clean: {self.decisions} decisions identical to the full run "
                    f"at {self.cuts_checked} cuts ({variants}) over {self.bars} bars")
        f = self.first
        return (f"look-ahead: decisions differ first at bar {f.bar} ({f.time}) when {f.how()}: "
                f"full run: {f.full_text()}, cut run: {f.cut_text()}")

    def to_dict(self) -> dict[str, Any]:
        return {"clean": self.clean, "strategy": self.strategy, "params": self.params,
                "bars": self.bars, "decisions": self.decisions,
                "cuts_checked": self.cuts_checked, "runs": self.runs, "noise": self.noise,
                "seed": self.seed, "first": self.first.to_dict() if self.first else None,
                "seconds": round(self.seconds, 3), "cut_bars": self.cut_bars,
                "summary": self.summary()}


# --- running --------------------------------------------------------------------------------------

class _Recorder(Engine):
    """The backtest engine, logging each order and cancel as ``on_bar`` asks for it (in call
    order, so the two runs' logs line up one to one)."""

    def __init__(self, data: BarData, strategy: Strategy, cash: float,
                 costs: CostModel) -> None:
        super().__init__(data, strategy, cash=cash, costs=costs)
        self.log: list[Decision] = []

    def submit(self, order: Order) -> Order:
        self.log.append(Decision(order.created_i, "order", order.symbol, _side(order.side),
                                 order.kind, order.qty, order.notional, order.pct, order.limit,
                                 order.stop, order.tag))
        return super().submit(order)

    def cancel(self, order: Order) -> bool:
        self.log.append(Decision(self.i, "cancel", order.symbol, _side(order.side), order.kind,
                                 tag=order.tag, placed_at=order.created_i))
        return super().cancel(order)


@dataclass
class _Run:
    decisions: list[Decision]
    error: str | None = None
    error_bar: int | None = None  # the bar being decided when it raised; -1: in init


@dataclass
class _Setup:
    cls: type[Strategy]
    params: Any
    cash: float
    costs: CostModel

    def run(self, data: BarData) -> _Run:
        """A cut run: an exception is a finding (the strategy needed bars that were not there),
        reported at the bar it was deciding."""
        eng = _Recorder(data, self.cls(self.params), self.cash, self.costs)
        try:
            eng.run()
        except Exception as exc:  # the strategy's own code failed on the cut data
            return _Run(eng.log, f"{type(exc).__name__}: {exc}", eng.i)
        return _Run(eng.log)


def check_lookahead(data: BarData, strategy: str | type[Strategy], params: dict[str, Any],
                    costs: CostModel | None = None, cuts: int = 40, seed: int = 0,
                    noise: bool = True, cash: float = 10_000.0) -> LookaheadReport:
    """Run ``strategy`` on ``data`` and on ``data`` cut at ``cuts`` evenly spaced bars plus up
    to ``cuts`` bars where it acts (decided in the full run, or declared a signal); report the
    earliest decision that differs from the full run.

    Once a difference is found, every bar where the strategy acts before it is cut too (at
    most ``REFINE_FACTOR * cuts`` more cuts), so ``first`` is the first leaking decision rather
    than the first one the planned cuts happened to meet. Bars outside the exchange's sessions
    are dropped first, as the backtest does, so bar indices are the backtest's. Raises what the
    strategy raises on the full series; an exception in a cut run is a finding."""
    started = time.perf_counter()
    if cuts < 1:
        raise ValueError("cuts must be at least 1")
    cls = load_strategy(strategy) if isinstance(strategy, str) else strategy
    model = make_strategy(cls, params).params
    data, _ = session_bars(data)
    setup = _Setup(cls, model, cash, costs or CostModel())
    full_eng = _Recorder(data, cls(model), cash, setup.costs)
    full_eng.run()
    full = full_eng.log
    n = len(data)
    rng = np.random.default_rng(seed)
    candidates = _action_bars(full, full_eng.strategy.signal_bars, n)
    planned = sorted(set(_even_cuts(n, cuts, rng)) | set(_spread(candidates, cuts)))
    checker = _Checker(data, setup, full, noise, seed)
    for c in planned:
        checker.check(c)
    if checker.first is not None:
        # Look for an earlier one among the bars where the strategy acts before it.
        budget = REFINE_FACTOR * cuts
        for c in candidates:
            if c >= checker.first.bar or budget <= 0:
                break
            if c not in checker.checked:
                checker.check(c)
                budget -= 1
    return LookaheadReport(
        strategy=cls.name, params=model.model_dump(mode="json"), bars=n, decisions=len(full),
        cuts_checked=len(checker.checked), runs=checker.runs, noise=noise, seed=seed,
        first=checker.first, seconds=time.perf_counter() - started,
        cut_bars=sorted(checker.checked))


class _Checker:
    """Runs the cut variants of one bar and keeps the earliest difference seen."""

    def __init__(self, data: BarData, setup: _Setup, full: list[Decision], noise: bool,
                 seed: int) -> None:
        self.data = data
        self.setup = setup
        self.full = full
        self.full_bars = [d.bar for d in full]
        self.noise = noise
        self.seed = seed
        self.first: Difference | None = None
        self.checked: set[int] = set()
        self.runs = 0

    def check(self, c: int) -> None:
        self.checked.add(c)
        variants = [(TRUNCATED, lambda: truncated(self.data, c))]
        if self.noise:
            rng = np.random.default_rng([self.seed, c])
            variants.append((NOISE, lambda: with_noise(self.data, c, rng)))
        for variant, make in variants:
            self.runs += 1
            diff = self._compare(self.setup.run(make()), c, variant)
            if diff is not None and (self.first is None or diff.bar < self.first.bar):
                self.first = diff

    def _compare(self, run: _Run, c: int, variant: str) -> Difference | None:
        failed_at = None  # the cut run raised on this bar (-1: in init) before the cut
        if run.error is not None and run.error_bar is not None and run.error_bar <= c:
            failed_at = run.error_bar
        upto = c if failed_at is None else failed_at - 1
        a = self.full[:bisect_right(self.full_bars, upto)]
        b = [d for d in run.decisions if d.bar <= upto]
        found = _first_mismatch(a, b)
        if found is not None:
            return self._difference(found[0], c, variant, found[1], found[2])
        if failed_at is None:
            return None
        bar = failed_at if failed_at >= 0 else c
        where = f"on bar {bar}" if failed_at >= 0 else "in init"
        k = bisect_right(self.full_bars, bar - 1)
        at = self.full[k] if k < len(self.full) and self.full[k].bar == bar else None
        return self._difference(bar, c, variant, at, None,
                                note=f"raised {where}: {run.error}")

    def _difference(self, bar: int, c: int, variant: str, full: Decision | None,
                    cut_run: Decision | None, note: str = "") -> Difference:
        return Difference(bar, iso_time(int(self.data.time[bar])), c, variant, full, cut_run,
                          self.data.symbols[0], note)


def _first_mismatch(a: list[Decision], b: list[Decision]
                    ) -> tuple[int, Decision | None, Decision | None] | None:
    """The first position where two decision logs part: its bar and each log's decision on
    that bar (None when that log has none there)."""
    for k in range(max(len(a), len(b))):
        x = a[k] if k < len(a) else None
        y = b[k] if k < len(b) else None
        if x is not None and y is not None and x.matches(y):
            continue
        bar = min(d.bar for d in (x, y) if d is not None)
        return (bar, x if x is not None and x.bar == bar else None,
                y if y is not None and y.bar == bar else None)
    return None


# --- cut points -----------------------------------------------------------------------------------

def _even_cuts(n: int, cuts: int, rng: np.random.Generator) -> list[int]:
    """``cuts`` bars spread evenly after a short head (a cut of a few bars tests little), each
    jittered within its stride; never the last bar (cutting there changes nothing)."""
    last = n - 2
    if last < 0:
        return []
    head = min(last, max(1, n // 50))
    stride = (last - head + 1) / cuts
    u = rng.random(cuts)
    return sorted({min(last, head + int((k + u[k]) * stride)) for k in range(cuts)})


def _action_bars(full: list[Decision], signal_bars: np.ndarray | None, n: int) -> list[int]:
    """Bars where the strategy acted in the full run or declared it might: where a peek shows."""
    bars = {d.bar for d in full}
    if signal_bars is not None:
        bars.update(int(i) for i in signal_bars)
    return sorted(b for b in bars if 0 <= b <= n - 2)


def _spread(bars: list[int], k: int) -> list[int]:
    """At most ``k`` of ``bars``, evenly over the list, always the first."""
    if len(bars) <= k:
        return list(bars)
    return [bars[int(i)] for i in np.unique(np.linspace(0, len(bars) - 1, k).round())]


# --- the cut series -------------------------------------------------------------------------------

def window(data: BarData, start: int, stop: int) -> BarData:
    """Bars ``start..stop-1`` (views, no copy)."""
    return data.window(start, stop)


def truncated(data: BarData, c: int) -> BarData:
    """Bars ``0..c``: the series as it stood when bar ``c`` closed."""
    return window(data, 0, c + 1)


def with_noise(data: BarData, c: int, rng: np.random.Generator) -> BarData:
    """The full-length series with every bar after ``c`` replaced by a random walk from bar
    ``c``'s close: log steps as volatile as the bars up to ``c``, opens at the previous close,
    wicks around the body (valid OHLC, positive prices), volumes drawn from the past ones."""
    m = len(data) - c - 1
    cols: dict[str, dict[str, np.ndarray]] = {k: {} for k in ("open", "high", "low", "close",
                                                              "volume")}
    for s in data.symbols:
        walk = _walk(data.close[s][:c + 1], data.volume[s][:c + 1], m, rng)
        for k, tail in zip(cols, walk, strict=True):
            past = getattr(data, k)[s][:c + 1]
            cols[k][s] = np.concatenate([np.asarray(past, dtype=np.float64), tail])
    return BarData(time=data.time, open=cols["open"], high=cols["high"], low=cols["low"],
                   close=cols["close"], volume=cols["volume"], symbols=data.symbols,
                   interval=data.interval, fingerprint=f"{data.fingerprint}[noise after {c}]",
                   extra=data.extra, exchange=data.exchange)


def _walk(close: np.ndarray, volume: np.ndarray, m: int, rng: np.random.Generator
          ) -> tuple[np.ndarray, ...]:
    """``m`` random-walk bars (open, high, low, close, volume) continuing from ``close[-1]``."""
    base = float(close[-1])
    if not (math.isfinite(base) and base > 0):
        base = 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        steps = np.diff(np.log(close))
    steps = steps[np.isfinite(steps)]
    sigma = float(steps.std()) if len(steps) > 1 else 0.0
    if not (math.isfinite(sigma) and sigma > 0):
        sigma = 1e-3
    closes = base * np.exp(np.cumsum(rng.normal(0.0, sigma, m)))
    opens = np.concatenate([[base], closes[:-1]])[:m]
    wicks = np.abs(rng.normal(0.0, sigma / 2, (2, m)))
    highs = np.maximum(opens, closes) * np.exp(wicks[0])
    lows = np.minimum(opens, closes) * np.exp(-wicks[1])
    vol = np.asarray(volume, dtype=np.float64)
    vol = vol[np.isfinite(vol)]
    volumes = rng.choice(vol, m) if len(vol) else np.zeros(m)
    return opens, highs, lows, closes, volumes


# --- small helpers --------------------------------------------------------------------------------

def _side(side: int) -> str:
    return "BUY" if side == BUY else "SELL"


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    if a == b or (a != a and b != b):
        return True
    return abs(a - b) <= REL_TOL * max(abs(a), abs(b))


def _fmt(v: float) -> str:
    """Shortest exact form (``1.0``, ``0.04512``): two different prices never print alike."""
    return repr(float(v))


def _json_num(v: float | None) -> float | str | None:
    if v is None:
        return None
    return float(v) if math.isfinite(v) else repr(float(v))


def iso_time(ms: int) -> str:
    """``2018-01-15T10:05:00Z`` (milliseconds only when the bar has them)."""
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    spec = "milliseconds" if ms % 1000 else "seconds"
    return dt.replace(tzinfo=None).isoformat(timespec=spec) + "Z"

