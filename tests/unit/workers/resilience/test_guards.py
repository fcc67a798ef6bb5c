"""Stream guards on a synthetic stream: idle timeout, chunk and total size caps."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator

import pytest

from shared import errors
from shared.models import ChatResult, TextDelta
from shared.policies import StreamGuards
from workers.resilience.guards import guarded


async def source(chunks: list[str], pause_after: int | None = None) -> AsyncGenerator[TextDelta | ChatResult, None]:
    for index, chunk in enumerate(chunks):
        if pause_after is not None and index == pause_after:
            await asyncio.sleep(60)  # a provider that stalls mid-stream: the guard under test must cut it off
        yield TextDelta(chunk)
    yield ChatResult(text="".join(chunks), model="m")


async def drain(stream: AsyncGenerator[TextDelta | ChatResult, None]) -> list[TextDelta | ChatResult]:
    async with contextlib.aclosing(stream):
        return [item async for item in stream]


def test_passes_a_normal_stream_through() -> None:
    items = asyncio.run(drain(guarded(source(["a", "b"]), StreamGuards(), "p")))
    assert items[:2] == [TextDelta("a"), TextDelta("b")] and isinstance(items[2], ChatResult)


def test_idle_stream_times_out_with_partial_text() -> None:
    with pytest.raises(errors.Timeout) as caught:
        asyncio.run(drain(guarded(source(["a", "b", "c"], pause_after=2), StreamGuards(idle_timeout_s=0.2), "p")))
    assert caught.value.partial_text == "ab"


def test_oversize_chunk_and_total_are_guard_violations() -> None:
    with pytest.raises(errors.GuardViolation, match="100-byte chunk"):
        asyncio.run(drain(guarded(source(["x" * 100]), StreamGuards(max_chunk_bytes=64), "p")))
    with pytest.raises(errors.GuardViolation) as caught:
        asyncio.run(drain(guarded(source(["y" * 600, "z" * 600]), StreamGuards(max_total_bytes=1024), "p")))
    assert caught.value.partial_text == "y" * 600


def test_the_inner_stream_is_closed_when_the_consumer_stops() -> None:
    closed = asyncio.Event()

    async def inner() -> AsyncGenerator[TextDelta | ChatResult, None]:
        try:
            while True:
                yield TextDelta("a")
        finally:
            closed.set()

    async def scenario() -> None:
        stream = guarded(inner(), StreamGuards(), "p")
        async with contextlib.aclosing(stream):
            await anext(stream)
        assert closed.is_set()

    asyncio.run(scenario())
