"""Waiting for a condition instead of sleeping a fixed time.

A fixed sleep is either too short on a loaded machine (a flaky test) or too long
everywhere else (a slow one). ``wait_until`` polls the condition often and returns as soon
as it holds, failing with a message that says what did not happen and what was last seen.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["wait_until", "wait_until_async"]

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout_s: float, what: str, interval_s: float = 0.02) -> T:
    """Call ``predicate`` until it returns something truthy, and return that.

    Raises ``AssertionError`` naming ``what`` (the condition, e.g. "the openai worker is
    down") and the last value seen when ``timeout_s`` passes first.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s:g}s waiting until {what} (last seen: {value!r})")
        time.sleep(interval_s)  # the poll interval, not a wait for the condition


async def wait_until_async(
    predicate: Callable[[], T | Awaitable[T]], timeout_s: float, what: str, interval_s: float = 0.02
) -> T:
    """``wait_until`` inside an event loop: other tasks run between polls.

    ``predicate`` may be a plain function or return an awaitable (e.g. an MCP call).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s:g}s waiting until {what} (last seen: {value!r})")
        await asyncio.sleep(interval_s)  # the poll interval, not a wait for the condition
