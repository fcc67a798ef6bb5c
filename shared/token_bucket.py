"""A token bucket: ``per_minute`` tokens, refilled continuously, never above one minute's worth.

Both sides use it: workers for each provider's requests and tokens per minute, the
gateway for each client's calls per minute.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.tokens = self.capacity
        self._clock = clock
        self._updated = clock()

    def _refill(self) -> None:
        now = self._clock()
        self.tokens = min(self.capacity, self.tokens + (now - self._updated) * self.rate)
        self._updated = now

    def wait_time(self, amount: float) -> float:
        """Seconds until ``amount`` tokens are available (0 if now); inf if never."""
        self._refill()
        if amount > self.capacity:
            return float("inf")
        return max(0.0, (amount - self.tokens) / self.rate)

    def take(self, amount: float) -> None:
        self._refill()
        self.tokens -= amount
