"""Which book update ids a stream has taken: exactly over a recent window, by a floor below it.

The book has no contiguous ids to keep as ranges (as trades do), so a store used to keep a row
only when its id was above the last one stored. That drops rows whenever two writes arrive in
the other order (Ray may start calls to an async actor out of order), and a lake missing book
rows answers "the book in force at this trade" differently from the live reader that saw them.
:class:`RecentIds` keeps the last ``window`` ids exactly, so any order within it loses nothing,
and treats an id at or below the largest id it has forgotten as already taken (a replay or a
resend of something old). The sink and the signal actor's book history both use it, so the lake
and the live join keep the same rows.
"""

from __future__ import annotations

from collections import deque


class RecentIds:
    def __init__(self, window: int = 50_000) -> None:
        self.window = window
        self._seen: set[int] = set()
        self._order: deque[int] = deque()
        self.floor = -(2 ** 63)  # ids at or below it count as taken

    def fresh(self, uid: int) -> bool:
        return uid > self.floor and uid not in self._seen

    def add(self, uid: int) -> None:
        if uid in self._seen:
            return
        self._seen.add(uid)
        self._order.append(uid)
        while len(self._order) > self.window:
            old = self._order.popleft()
            self._seen.discard(old)
            self.floor = max(self.floor, old)

    def take(self, uid: int) -> bool:
        """True (and remembered) when ``uid`` is new."""
        if not self.fresh(uid):
            return False
        self.add(uid)
        return True
