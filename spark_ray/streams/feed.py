"""Per-symbol market-data health, and the readings the circuit breaker gets from the fabric.

The fabric's supervisor polls its normalizers about once a second (cumulative counters per
symbol) and hands each poll to a :class:`FeedTracker`. The tracker turns counter deltas into

- the breaker's readings (``kind``/``key``/``value``/``who`` dicts for ``report_many``):
  ``heartbeat`` and ``lag`` only when a live message arrived since the last poll (so a silent
  symbol's last-message age grows at the breaker and its stale rule sees it), ``gaps`` every
  poll (0 clears), ``venue_error`` when errors happened since the last poll, ``clock_offset``
  (venue event time minus local receive time: the median of the recent lag samples, negated);
- the per-symbol view ``spark-ray streams status`` prints (age, rate, lag, gaps, errors).

Plain Python (no Ray): the supervisor actor is the shell, this is the decision.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field
from typing import Any

OFFSET_WINDOW = 30  # lag samples (one per poll with news) behind the clock-offset median


@dataclass(frozen=True)
class SymbolReading:
    """One poll of one symbol: cumulative counters as the normalizer reports them."""

    messages: int  # live stream messages so far (REST backfill does not count)
    lag_ms: float | None  # last ingest lag (local receive minus venue event time)
    gaps: int  # gaps open (being repaired) or unrepaired right now: the breaker's reading
    unrepaired: int  # of those, the ones REST repair gave up on
    errors: int  # venue errors so far on the symbol's shard (reconnects, dead letters, REST)


@dataclass
class _Track:
    messages: int = 0
    errors: int = 0
    last_message_s: float | None = None
    lag_s: float | None = None
    gaps: int = 0
    unrepaired: int = 0
    errors_total: int = 0
    rate: float = 0.0
    last_poll_s: float | None = None
    offsets: deque[float] = field(default_factory=lambda: deque(maxlen=OFFSET_WINDOW))


def _delta(now: int, before: int) -> int:
    """Counter increase; a counter that went down was reset (its actor restarted)."""
    return now - before if now >= before else now


class FeedTracker:
    """Turns polls into breaker readings and a status view (see the module docstring)."""

    def __init__(self, exchange: str, symbols: list[str], started_s: float) -> None:
        self.who = f"fabric:{exchange}"
        self.started_s = started_s
        self.tracks: dict[str, _Track] = {s.upper(): _Track() for s in symbols}

    def update(self, polls: dict[str, SymbolReading], now_s: float) -> list[dict[str, Any]]:
        """Take one poll (symbols missing from it were unreachable: no news from them) and
        return the readings for the breaker."""
        out: list[dict[str, Any]] = []
        for sym, r in polls.items():
            key = sym.upper()
            t = self.tracks.setdefault(key, _Track())
            new = _delta(r.messages, t.messages)
            errs = _delta(r.errors, t.errors)
            if t.last_poll_s is not None and now_s > t.last_poll_s:
                t.rate = new / (now_s - t.last_poll_s)
            t.messages, t.errors, t.last_poll_s = r.messages, r.errors, now_s
            t.gaps, t.unrepaired = r.gaps, r.unrepaired
            t.errors_total += errs
            if new > 0:
                t.last_message_s = now_s
                out.append(self._reading("heartbeat", key, 1.0))
                if r.lag_ms is not None:
                    t.lag_s = r.lag_ms / 1000
                    t.offsets.append(-t.lag_s)
                    out.append(self._reading("lag", key, t.lag_s))
                    out.append(self._reading("clock_offset", key,
                                             statistics.median(t.offsets)))
            out.append(self._reading("gaps", key, float(r.gaps)))
            if errs > 0:
                out.append(self._reading("venue_error", key, float(errs)))
        return out

    def closing(self) -> list[dict[str, Any]]:
        """Readings that tell the breaker these symbols stop on purpose (``streams down``)."""
        return [self._reading("source_closed", s, 1.0) for s in self.tracks]

    def view(self, now_s: float) -> dict[str, dict[str, Any]]:
        """Per symbol: last-message age (since start if none yet), rate, lag, gaps, errors."""
        out: dict[str, dict[str, Any]] = {}
        for sym, t in sorted(self.tracks.items()):
            last = t.last_message_s
            out[sym] = {
                "last_message_age_s": round(now_s - (last if last is not None
                                                     else self.started_s), 3),
                "messages_seen": last is not None,
                "rate_msg_s": round(t.rate, 2), "messages": t.messages,
                "ingest_lag_s": None if t.lag_s is None else round(t.lag_s, 3),
                "clock_offset_s": round(statistics.median(t.offsets), 3) if t.offsets
                else None,
                "gaps": t.gaps, "unrepaired_gaps": t.unrepaired, "venue_errors": t.errors_total,
            }
        return out

    def _reading(self, kind: str, key: str, value: float) -> dict[str, Any]:
        return {"kind": kind, "key": key, "value": value, "who": self.who}


def unhealthy_symbols(view: dict[str, dict[str, Any]], max_age_s: float) -> dict[str, str]:
    """Symbols a person should look at, with why: silent longer than ``max_age_s``, or holding
    unrepaired gaps."""
    bad: dict[str, str] = {}
    for sym, v in view.items():
        if v["last_message_age_s"] > max_age_s:
            bad[sym] = f"no message for {v['last_message_age_s']:.1f} s"
        elif v["unrepaired_gaps"]:
            bad[sym] = f"{v['unrepaired_gaps']} unrepaired gap(s)"
    return bad
