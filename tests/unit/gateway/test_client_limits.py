"""Per-client limits in the gateway: calls per minute and concurrent calls, with bounded waits."""

from __future__ import annotations

import asyncio

import pytest

from gateway.client_limits import ClientLimiter
from shared import errors
from shared.policies import ClientLimits
from tests.polling import wait_until_async


def test_requests_per_minute_refuses_with_retry_after() -> None:
    async def scenario() -> None:
        limiter = ClientLimiter(max_wait_s=0.1)
        limits = ClientLimits(requests_per_min=3)
        for _ in range(3):
            async with limiter.admit("c", limits):
                pass
        with pytest.raises(errors.RateLimited) as caught:
            async with limiter.admit("c", limits):
                pass
        assert caught.value.retry_after_s and 15 < caught.value.retry_after_s <= 20
        async with limiter.admit("other-client", limits):
            pass  # limits are per client

    asyncio.run(scenario())


def test_concurrency_waits_for_a_slot_then_refuses() -> None:
    async def scenario() -> None:
        limiter = ClientLimiter(max_wait_s=0.2)
        limits = ClientLimits(max_concurrency=1)
        release, holding = asyncio.Event(), asyncio.Event()

        async def hold() -> None:
            async with limiter.admit("c", limits):
                holding.set()
                await release.wait()

        holder = asyncio.create_task(hold())
        await asyncio.wait_for(holding.wait(), 1)
        with pytest.raises(errors.RateLimited, match="1 calls in flight"):
            async with limiter.admit("c", limits):
                pass
        waiter_done = asyncio.Event()

        async def wait_then_run() -> None:
            async with limiter.admit("c", limits):
                waiter_done.set()

        waiter = asyncio.create_task(wait_then_run())
        released = limiter._clients["c"].released
        await wait_until_async(lambda: released._waiters, 1, "the second call waits for the slot")  # type: ignore[attr-defined]
        release.set()
        await asyncio.wait_for(waiter_done.wait(), 1)
        await asyncio.gather(holder, waiter)

    asyncio.run(scenario())
