"""Stream guards, applied to every chunk before it is forwarded to the gateway.

A stream always ends in a complete result or a taxonomy error: never a hang (idle
timeout between chunks), never an unbounded answer (per-chunk and total size caps).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from shared import errors
from shared.models import ChatResult, TextDelta
from workers.config_record import StreamGuardsRecord

__all__ = ["guarded"]


async def guarded(
    stream: AsyncGenerator[TextDelta | ChatResult, None], guards: StreamGuardsRecord, provider: str
) -> AsyncGenerator[TextDelta | ChatResult, None]:
    """Yield from ``stream`` while enforcing ``guards``; the caller closes the result."""
    total = 0
    sent: list[str] = []
    try:
        while True:
            try:
                async with asyncio.timeout(guards.idle_timeout_s):
                    item = await anext(stream)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise errors.Timeout(
                    f"{provider} sent nothing for {guards.idle_timeout_s:g}s in the middle of a stream",
                    provider=provider, partial_text="".join(sent),
                ) from None
            if isinstance(item, TextDelta):
                size = len(item.text.encode())
                total += size
                if size > guards.max_chunk_bytes:
                    raise errors.GuardViolation(
                        f"{provider} sent a {size}-byte chunk; the limit is {guards.max_chunk_bytes}",
                        provider=provider, partial_text="".join(sent))
                if total > guards.max_total_bytes:
                    raise errors.GuardViolation(
                        f"{provider}'s answer passed {guards.max_total_bytes} bytes; stopped",
                        provider=provider, partial_text="".join(sent))
                sent.append(item.text)
            yield item
    finally:
        await stream.aclose()
