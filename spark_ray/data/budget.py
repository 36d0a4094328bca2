"""A client-side request-weight budget shared by every fetch task (Binance's per-minute limit).

Binance counts request weight per IP per minute and answers 429 (then 418, a ban) past the
limit. Parallel tasks must therefore spend one shared budget: each asks before a request, learns
how long to wait when the minute is spent, folds in the server's own count
(``X-MBX-USED-WEIGHT-1M``) and honours ``Retry-After`` for everyone after a 429/418.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class WeightBudget:
    """Per-minute weight accounting; times are seconds on any monotonic-enough clock."""

    limit_per_minute: int = 6000
    safety: float = 0.8  # spend at most this share of the server's limit
    window_s: float = 60.0
    used: int = 0
    window_start: float = 0.0
    blocked_until: float = 0.0
    waits: int = 0
    penalties: int = 0

    @property
    def budget(self) -> int:
        return max(1, int(self.limit_per_minute * self.safety))

    def _roll(self, now: float) -> None:
        if now - self.window_start >= self.window_s:
            self.window_start = now - (now - self.window_start) % self.window_s
            self.used = 0

    def acquire(self, weight: int, now: float) -> float:
        """Reserve ``weight`` and return 0, or return the seconds to wait before asking again."""
        if now < self.blocked_until:
            self.waits += 1
            return self.blocked_until - now
        self._roll(now)
        if self.used + weight > self.budget:
            self.waits += 1
            return max(0.01, self.window_start + self.window_s - now)
        self.used += weight
        return 0.0

    def observe(self, server_used: int, now: float) -> None:
        """The server's count for this minute is authoritative when it is higher."""
        self._roll(now)
        self.used = max(self.used, server_used)

    def penalize(self, retry_after_s: float, now: float) -> None:
        """A 429/418 arrived: nobody sends until ``Retry-After`` has passed."""
        self.penalties += 1
        self.blocked_until = max(self.blocked_until, now + max(retry_after_s, 1.0))

    def stats(self) -> dict[str, float]:
        return {"used": self.used, "budget": self.budget, "waits": self.waits,
                "penalties": self.penalties}
