"""Per-client limits in the gateway: requests per minute and concurrent calls.

A client over its limit waits a short, bounded time, then gets ``rate_limited`` with a
retry-after: never an unbounded queue. Limits come from the client's registry entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from shared import errors
from shared.policies import ClientLimits
from shared.token_bucket import TokenBucket

__all__ = ["ClientLimiter"]


@dataclass
class _ClientState:
    bucket: TokenBucket | None
    active: int = 0
    released: asyncio.Condition = field(default_factory=asyncio.Condition)


class ClientLimiter:
    def __init__(self, max_wait_s: float = 1.0, on_reject: Callable[[str], None] | None = None) -> None:
        """``on_reject(client_id)`` is called for each refused call (the metrics hook)."""
        self.max_wait_s = max_wait_s
        self._on_reject = on_reject
        self._clients: dict[str, _ClientState] = {}
        self.rejections = 0

    def _state(self, client_id: str, limits: ClientLimits) -> _ClientState:
        state = self._clients.get(client_id)
        rate = limits.requests_per_min
        if state is None or (state.bucket is None) != (rate is None) or (
            state.bucket is not None and rate is not None and state.bucket.capacity != rate
        ):
            # First call, or the registry entry's limit changed since: start a fresh bucket.
            state = _ClientState(TokenBucket(rate, time.monotonic) if rate else None,
                                 active=state.active if state else 0)
            self._clients[client_id] = state
        return state

    @contextlib.asynccontextmanager
    async def admit(self, client_id: str, limits: ClientLimits) -> AsyncIterator[None]:
        state = self._state(client_id, limits)
        if state.bucket is not None:
            wait = state.bucket.wait_time(1)
            if wait > self.max_wait_s:
                self._rejected(client_id)
                raise errors.RateLimited(
                    f"client {client_id!r} is over its {limits.requests_per_min} calls/min limit",
                    retry_after_s=round(wait, 3))
            if wait > 0:
                await asyncio.sleep(wait)
            state.bucket.take(1)
        if limits.max_concurrency is not None:
            await self._wait_for_slot(client_id, state, limits.max_concurrency)
        state.active += 1
        try:
            yield
        finally:
            state.active -= 1
            async with state.released:
                state.released.notify()

    def _rejected(self, client_id: str) -> None:
        self.rejections += 1
        if self._on_reject is not None:
            self._on_reject(client_id)

    async def _wait_for_slot(self, client_id: str, state: _ClientState, limit: int) -> None:
        try:
            async with asyncio.timeout(self.max_wait_s), state.released:
                await state.released.wait_for(lambda: state.active < limit)
        except TimeoutError:
            self._rejected(client_id)
            raise errors.RateLimited(
                f"client {client_id!r} already has {limit} calls in flight, its limit", retry_after_s=1.0
            ) from None
