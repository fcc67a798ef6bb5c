"""A retry budget with a floor: deposits that expire, a reserve that does not depend on traffic.

Modelled on Finagle's ``RetryBudget(ttl, minRetriesPerSec, percentCanRetry)``. Every first
attempt deposits ``ratio`` of a retry; every retry withdraws one; both expire ``ttl_s``
after they were made. On top of that a standing reserve of ``min_retries_per_s * ttl_s``
retries per window is always there. So:

* a quiet worker (one person's editor) can always retry: the reserve covers it, whatever
  the traffic was;
* under a flood, retries in any ``ttl_s`` window stay near ``reserve + ratio * requests``,
  i.e. about ``ratio`` of traffic once traffic is well above ``reserve / ratio``.

Amounts are kept in integer milli-retries so that ten deposits of 0.1 make exactly one
retry, with no float drift. The window is cut into slices; a slice older than the window
is forgotten as a whole, which makes expiry cheap and accurate to ``ttl_s / slices``.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

__all__ = ["RetryBudget"]

_UNIT = 1000  # one retry, in milli-retries
_SLICES = 10


class RetryBudget:
    """Grants or refuses retries; see the module docstring for the rule."""

    def __init__(
        self, ratio: float, *, ttl_s: float = 10.0, min_retries_per_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ratio = ratio
        self.ttl_s = ttl_s
        self.min_retries_per_s = min_retries_per_s
        self._clock = clock
        self._deposit = round(ratio * _UNIT)
        self._reserve = round(min_retries_per_s * ttl_s * _UNIT)
        self._slice_s = ttl_s / _SLICES
        # (slice number, net milli-retries deposited in it), oldest first.
        self._slices: deque[list[int]] = deque()
        self._sum = 0
        self.granted = 0
        self.refused = 0

    def record_attempt(self) -> None:
        """A first attempt went out: deposit ``ratio`` of a retry."""
        self._add(self._deposit)

    def try_spend(self) -> bool:
        """Take one retry if the balance allows it; count the verdict either way."""
        if self.balance() >= _UNIT:
            self._add(-_UNIT)
            self.granted += 1
            return True
        self.refused += 1
        return False

    def balance(self) -> int:
        """Milli-retries available now: the reserve plus the unexpired deposits less withdrawals."""
        self._expire(self._slice_now())
        return self._reserve + self._sum

    def available(self) -> int:
        """Whole retries the budget would grant right now."""
        return max(0, math.floor(self.balance() / _UNIT))

    def _slice_now(self) -> int:
        return math.floor(self._clock() / self._slice_s)

    def _expire(self, now: int) -> None:
        while self._slices and self._slices[0][0] <= now - _SLICES:
            self._sum -= self._slices.popleft()[1]

    def _add(self, amount: int) -> None:
        now = self._slice_now()
        self._expire(now)
        if self._slices and self._slices[-1][0] == now:
            self._slices[-1][1] += amount
        else:
            self._slices.append([now, amount])
        self._sum += amount
