"""When to retry a failed provider call, and how long to wait first.

Rules, in order: retry only what the error type's policy allows (``ErrorPolicy.worker_retry``
in ``shared.errors``: transient errors unless the provider marked them ``x-should-retry:
false``, client errors only if it marked them ``true``, never ``worker_lost``,
``unavailable`` or ``stream_interrupted``); never after a stream has forwarded a chunk (the caller already
has part of an answer); never past the caller's deadline; never beyond the retry budget
(``workers.resilience.retry_budget``: a floor of retries per second plus a share of
traffic, so a quiet worker may always retry and a flood cannot turn into a retry storm).
The wait is the provider's hint (clamped to a window, with every violation logged) or
exponential backoff with full jitter.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

from shared import errors
from shared.logs import log_event
from shared.policies import RetryPolicy
from workers.resilience.retry_budget import RetryBudget

__all__ = ["RetryPlanner"]

log = logging.getLogger("workers.retry")

class RetryPlanner:
    def __init__(
        self,
        provider: str,
        policy: RetryPolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.provider = provider
        self.policy = policy
        self.budget = RetryBudget(policy.budget_ratio, ttl_s=policy.budget_ttl_s,
                                  min_retries_per_s=policy.budget_min_retries_per_s, clock=clock)
        self._clock = clock
        self._rng = rng or random.Random()
        self.hint_violations = 0

    def delay_for(self, error: errors.LLMCallerError, attempt: int, deadline: float) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None when we must not retry."""
        if not self._retryable(error) or attempt >= self.policy.max_attempts:
            return None
        delay = self._wait(error, attempt)
        if self._clock() + delay >= deadline:
            return None
        if not self.budget.try_spend():
            log_event(log, "retry_budget_exhausted", level=logging.WARNING, provider=self.provider,
                      error=error.type, window_s=self.budget.ttl_s)
            return None
        return delay

    def _retryable(self, error: errors.LLMCallerError) -> bool:
        # Which types are retried, and how far the provider's x-should-retry may change
        # that, is each error type's policy (shared.errors).
        return error.policy.worker_retries(error.should_retry)

    def _wait(self, error: errors.LLMCallerError, attempt: int) -> float:
        hint = error.retry_after_s
        if hint is not None:
            return self._clamp(hint)
        ceiling = min(self.policy.max_delay_s, self.policy.base_delay_s * (2 ** (attempt - 1)))
        return self._rng.uniform(0, ceiling)

    def _clamp(self, hint: float) -> float:
        window = self.policy.max_hint_s
        if 0 <= hint <= window:
            return hint
        self.hint_violations += 1
        log_event(log, "retry_hint_clamped", level=logging.WARNING, provider=self.provider,
                  hint_s=hint, window_s=window)
        return min(max(hint, 0.0), window)
