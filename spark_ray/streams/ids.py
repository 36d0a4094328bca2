"""Id bookkeeping: a compact set of integer ids (closed intervals) and per-series gap tracking.

Trade ids on an exchange stream are (almost) contiguous, so "every id we hold" is a handful of
intervals however many millions of trades it covers: dedup is a binary search, and the holes
between intervals are exactly the gaps to repair. The normalizer and the sink both use it.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np


class IdRanges:
    """Sorted, disjoint, non-adjacent closed intervals ``[lo, hi]`` of integer ids."""

    def __init__(self, pairs: list[tuple[int, int]] | None = None) -> None:
        self.lo: list[int] = []
        self.hi: list[int] = []
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None
        for a, b in pairs or []:
            self.add_range(a, b)

    def __len__(self) -> int:
        """Number of intervals (not ids: see :meth:`count`)."""
        return len(self.lo)

    def count(self) -> int:
        return int(sum(b - a + 1 for a, b in zip(self.lo, self.hi, strict=True)))

    def pairs(self) -> list[tuple[int, int]]:
        return list(zip(self.lo, self.hi, strict=True))

    @property
    def min(self) -> int | None:
        return self.lo[0] if self.lo else None

    @property
    def max(self) -> int | None:
        return self.hi[-1] if self.hi else None

    def _np(self) -> tuple[np.ndarray, np.ndarray]:
        if self._arrays is None:
            self._arrays = (np.asarray(self.lo, dtype=np.int64),
                            np.asarray(self.hi, dtype=np.int64))
        return self._arrays

    def contains(self, i: int) -> bool:
        k = bisect.bisect_right(self.lo, i) - 1
        return k >= 0 and i <= self.hi[k]

    def contains_mask(self, ids: np.ndarray) -> np.ndarray:
        """Boolean mask: which of ``ids`` are already in the set (vectorized)."""
        ids = np.asarray(ids, dtype=np.int64)
        if not self.lo or len(ids) == 0:
            return np.zeros(len(ids), dtype=bool)
        lo, hi = self._np()
        k = np.searchsorted(lo, ids, side="right") - 1
        ok = k >= 0
        out = np.zeros(len(ids), dtype=bool)
        out[ok] = ids[ok] <= hi[k[ok]]
        return out

    def add_range(self, a: int, b: int) -> None:
        """Add ``[a, b]``, merging with overlapping or adjacent intervals."""
        if b < a:
            return
        self._arrays = None
        i = bisect.bisect_left(self.hi, a - 1)  # first interval that could touch [a, b]
        j = i
        n = len(self.lo)
        while j < n and self.lo[j] <= b + 1:
            a = min(a, self.lo[j])
            b = max(b, self.hi[j])
            j += 1
        self.lo[i:j] = [a]
        self.hi[i:j] = [b]

    def add_ids(self, ids: np.ndarray) -> None:
        """Add many ids: compressed into runs first, so a contiguous batch is one merge."""
        if len(ids) == 0:
            return
        u = np.unique(np.asarray(ids, dtype=np.int64))
        breaks = np.flatnonzero(np.diff(u) != 1)
        starts = np.concatenate(([0], breaks + 1))
        ends = np.concatenate((breaks, [len(u) - 1]))
        for s, e in zip(u[starts].tolist(), u[ends].tolist(), strict=True):
            self.add_range(s, e)

    def holes(self, lo: int | None = None, hi: int | None = None) -> list[tuple[int, int]]:
        """Missing intervals between ``lo`` (default: min) and ``hi`` (default: max)."""
        if not self.lo:
            return [(lo, hi)] if lo is not None and hi is not None and lo <= hi else []
        lo = self.lo[0] if lo is None else lo
        hi = self.hi[-1] if hi is None else hi
        out: list[tuple[int, int]] = []
        cur = lo
        for a, b in zip(self.lo, self.hi, strict=True):
            if b < cur:
                continue
            if a > hi:
                break
            if a > cur:
                out.append((cur, min(a - 1, hi)))
            cur = max(cur, b + 1)
            if cur > hi:
                break
        if cur <= hi:
            out.append((cur, hi))
        return out


@dataclass
class Gap:
    """A detected hole ``[lo, hi]`` in one series, with repair bookkeeping."""

    lo: int
    hi: int
    detected_ms: int
    attempts: int = 0
    in_flight: bool = False
    next_try_ms: int = 0
    retried: bool = False  # an unrepaired gap given another round (already counted)


@dataclass
class SeriesState:
    """Dedup and gap state of one (dataset, symbol) id series."""

    seen: IdRanges = field(default_factory=IdRanges)
    baseline: int | None = None  # ids below this are before our window: neither gaps nor dups
    gaps: list[Gap] = field(default_factory=list)
    last_event_ms: int = 0
    last_tail_check_ms: int = 0
    unrepaired: list[tuple[int, int]] = field(default_factory=list)
    unrepaired_retry_at_ms: int = 0  # when the unrepaired holes get another round of repairs

    @property
    def last_id(self) -> int | None:
        return self.seen.max

    def classify(self, ids: np.ndarray, now_ms: int) -> tuple[np.ndarray, int, int]:
        """Keep-mask for a batch of ids (new ones), plus (duplicates, out_of_order) counts.

        New gaps (an id beyond last+1) are recorded with their detection time; holes filled by a
        late id simply shrink (the repair step later asks only for what is still missing).
        """
        n = len(ids)
        if n == 0:
            return np.zeros(0, dtype=bool), 0, 0
        # The series is alive even if everything was a duplicate (late frames after a REST
        # backfill): no idle tail check, which would only fetch what is arriving anyway.
        self.last_event_ms = now_ms
        dup = self.seen.contains_mask(ids)
        if self.baseline is not None:
            dup |= ids < self.baseline
        # Duplicates inside the batch itself: keep the first occurrence.
        _, first = np.unique(ids, return_index=True)
        inner = np.ones(n, dtype=bool)
        inner[first] = False
        dup |= inner
        keep = ~dup
        new = ids[keep]
        ooo = 0
        if len(new):
            last = self.seen.max
            if last is None and self.baseline is not None:
                last = self.baseline - 1
            # Out of order: below the highest id seen before it (earlier batches or this one).
            start = last if last is not None else new[0]
            running = np.maximum.accumulate(np.concatenate(([start], new)))
            ooo = int(np.count_nonzero(new < running[:-1]))
            # Gaps: holes among (last, max(new)] that this batch does not fill.
            lo = (last + 1) if last is not None else int(new.min())
            hi = int(new.max())
            self.seen.add_ids(new)
            if lo <= hi:
                for a, b in self.seen.holes(lo, hi):
                    self.gaps.append(Gap(a, b, now_ms))
        return keep, int(np.count_nonzero(dup)), ooo

    def missing(self, gap: Gap) -> list[tuple[int, int]]:
        return self.seen.holes(gap.lo, gap.hi)
