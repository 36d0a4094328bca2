"""Metric names (DESIGN.md) and the latency math behind the SLOs.

Ray's histograms export buckets, not percentiles, and cost a call per observation; the SLO summary
needs exact-enough p95s over millions of values. So each actor also keeps a
:class:`LatencyHist`: fixed 0.5 ms buckets up to 60 s (plus overflow) filled with ``np.bincount``,
mergeable across actors by adding counts, with quantiles read off the cumulative sum.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Names from DESIGN.md (Ray exports them with a ``ray_`` prefix), labels exchange/symbol/stream.
MESSAGES = "streams_messages_total"
SEQ_GAPS = "streams_seq_gap_total"  # gaps that repair could not fill
DUPS = "streams_dup_total"
OUT_OF_ORDER = "streams_out_of_order_total"  # events older than one already seen
INGEST_LAG = "streams_ingest_lag_seconds"
LAST_SEQ = "streams_last_seq"
HEARTBEAT = "streams_heartbeat"
EVENT_TO_DB = "streams_event_to_db_ms"
WS_ROUNDTRIP = "streams_ws_roundtrip_ms"
DEAD_LETTERS = "streams_dead_letter_total"
DROPS = "streams_drop_total"
CLOCK_SKEW = "streams_clock_skew_total"  # events whose event time was ahead of ours
BOOK_RESYNCS = "streams_book_resync_total"  # local books that fell out of sync and started over
LABELS = ("exchange", "symbol", "stream")
# The cross-venue view (spark_ray.streams.crossvenue), exported by the ``crossvenue`` actor:
# prices in the reference quote (label ``quote``), per asset and venue; NaN while excluded.
CROSS_BID = "crossvenue_bid"
CROSS_ASK = "crossvenue_ask"
CROSS_QUOTE_AGE = "crossvenue_quote_age_seconds"
CROSS_SPREAD_BPS = "crossvenue_spread_bps"  # best ask vs best bid across venues
CROSS_BASIS_BPS = "crossvenue_basis_bps"  # a venue's mid vs the reference venue's
CROSS_RATE = "crossvenue_rate"  # units of ``currency`` per reference unit, label ``source``
# 300 ms is the event-to-store SLO (alert StreamsEventToStoreSlow): a bucket edge there keeps
# histogram_quantile from interpolating a p95 of 250 ms to 350 ms across a 200-500 bucket.
MS_BOUNDARIES: list[float] = [1, 2, 5, 10, 20, 50, 100, 200, 300, 500, 1000, 2000, 3000, 5000,
                              10000]

BUCKET_MS = 0.5
N_BUCKETS = 120_000  # 60 s


class LatencyHist:
    """Counts of latencies (ms) in 0.5 ms buckets; ``quantile`` returns a bucket's upper edge."""

    def __init__(self, counts: np.ndarray | None = None) -> None:
        self.counts = counts if counts is not None else np.zeros(N_BUCKETS + 1, dtype=np.int64)

    def add(self, values_ms: np.ndarray) -> None:
        if len(values_ms) == 0:
            return
        v = np.asarray(values_ms, dtype=np.float64)
        v = v[np.isfinite(v)]
        idx = np.clip(np.floor(np.maximum(v, 0.0) / BUCKET_MS), 0, N_BUCKETS).astype(np.int64)
        self.counts += np.bincount(idx, minlength=N_BUCKETS + 1)

    def merge(self, other: LatencyHist) -> LatencyHist:
        return LatencyHist(self.counts + other.counts)

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    def quantile(self, q: float) -> float | None:
        n = self.n
        if n == 0:
            return None
        rank = int(np.ceil(q * n))
        i = int(np.searchsorted(np.cumsum(self.counts), max(rank, 1)))
        return (i + 1) * BUCKET_MS if i < N_BUCKETS else float("inf")

    def summary(self) -> dict[str, Any]:
        return {"n": self.n, "p50_ms": self.quantile(0.5), "p95_ms": self.quantile(0.95),
                "p99_ms": self.quantile(0.99), "max_ms": self.max()}

    def max(self) -> float | None:
        nz = np.flatnonzero(self.counts)
        if len(nz) == 0:
            return None
        i = int(nz[-1])
        return (i + 1) * BUCKET_MS if i < N_BUCKETS else float("inf")

    def to_sparse(self) -> dict[int, int]:
        """Non-empty buckets only: what crosses an actor boundary."""
        nz = np.flatnonzero(self.counts)
        return {int(i): int(self.counts[i]) for i in nz}

    @classmethod
    def from_sparse(cls, sparse: dict[int, int]) -> LatencyHist:
        h = cls()
        for i, c in sparse.items():
            h.counts[int(i)] += int(c)
        return h


def sample(values: np.ndarray, k: int = 64) -> np.ndarray:
    """At most k evenly spaced values: what goes to a Ray histogram per batch (each observe is a
    call; the exact distribution lives in :class:`LatencyHist`)."""
    if len(values) <= k:
        return values
    return values[np.linspace(0, len(values) - 1, k).astype(np.int64)]
