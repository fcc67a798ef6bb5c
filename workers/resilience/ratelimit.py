"""Provider rate limits held in the worker: requests/min and tokens/min token buckets.

The configured limits are the operator's ceiling; the provider's own headers can only
tighten them (a quota the adapter reads as used up from its kind's headers, or a 429 with
Retry-After, pauses the bucket until the provider's reset). A 429 whose wait is in its body
instead (Gemini's ``google.rpc.RetryInfo.retryDelay``) pauses it the same way: the adapter
reads the body and passes the hint, and the same ceiling applies. A call waits a bounded time for capacity, then fails
fast with ``rate_limited`` and a retry-after, rather than queueing without end.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

from shared import errors
from shared.token_bucket import TokenBucket
from workers.config_record import RateLimitsRecord
from workers.retry_hints import retry_after_s

__all__ = ["ProviderLimiter", "estimate_tokens"]


def estimate_tokens(text_chars: int, max_tokens: int | None) -> int:
    """A cheap, conservative token estimate: ~4 characters a token, plus the reply budget."""
    return text_chars // 4 + 1 + (max_tokens or 256)


class ProviderLimiter:
    def __init__(self, provider: str, limits: RateLimitsRecord, clock: Callable[[], float] = time.monotonic) -> None:
        self.provider = provider
        self.limits = limits
        self._clock = clock
        self.requests = TokenBucket(limits.requests_per_min, clock) if limits.requests_per_min else None
        self.tokens = TokenBucket(limits.tokens_per_min, clock) if limits.tokens_per_min else None
        self.paused_until = 0.0
        self.waits = 0
        self.rejections = 0

    def _wait_needed(self, tokens: int) -> float:
        wait = max(0.0, self.paused_until - self._clock())
        if self.requests is not None:
            wait = max(wait, self.requests.wait_time(1))
        if self.tokens is not None:
            wait = max(wait, self.tokens.wait_time(tokens))
        return wait

    async def acquire(self, tokens: int, deadline: float) -> None:
        """Take capacity for one call, waiting at most ``max_wait_s`` (and never past the deadline)."""
        wait = self._wait_needed(tokens)
        budget = min(self.limits.max_wait_s, deadline - self._clock())
        if wait > budget:
            self.rejections += 1
            retry = None if wait == float("inf") else round(wait, 3)
            raise errors.RateLimited(
                f"{self.provider} rate limit reached in this worker; retry in {wait:.1f}s"
                if retry is not None else f"{self.provider}: this call is larger than the per-minute token limit",
                provider=self.provider,
                retry_after_s=retry,
            )
        if wait > 0:
            self.waits += 1
            await asyncio.sleep(wait)
        if self.requests is not None:
            self.requests.take(1)
        if self.tokens is not None:
            self.tokens.take(tokens)

    def observe(
        self, status: int, headers: Mapping[str, str], exhausted_s: float | None = None,
        body_hint_s: float | None = None,
    ) -> None:
        """Tighten to what the provider says: a 429's wait, from its body (``body_hint_s``, what
        the adapter read there; it is also what the error carries) else its Retry-After, or
        ``exhausted_s``, how long the adapter read from its kind's headers that the request
        quota stays used up."""
        pause = exhausted_s
        if status == 429:
            hint = body_hint_s
            if hint is None:
                hint = retry_after_s({k.lower(): v for k, v in headers.items()})
            pause = 1.0 if hint is None else hint  # an explicit 0 means "go ahead", not "unknown"
        if pause:
            self.paused_until = max(self.paused_until, self._clock() + min(pause, 120.0))
