"""A task's progress: chatStream deltas become its status message, written at most every so often.

``tool_table``'s chatStream reporter hands each delta here instead of sending an MCP progress
notification when the call runs as a task (``notifications/progress`` is not supported on
tasks). The status message reads ``"streaming: N chunks, T chars so far\\n<text>"`` where the
text is the reply so far, its last ``MAX_TEXT`` characters when longer. Store writes are
coalesced: at most one per ``interval_s``. A call first awaited inline (``TaskRunner.start``)
collects its deltas with no writer: the task row does not exist yet, and is created with
``message()``; ``attach`` then starts the writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable

__all__ = ["CURRENT", "MAX_TEXT", "TaskProgress"]

log = logging.getLogger("gateway.tasks")

MAX_TEXT = 4000
# The progress sink of the task call running in this context, if any.
CURRENT: contextvars.ContextVar[TaskProgress | None] = contextvars.ContextVar("llmc_task_progress", default=None)

Writer = Callable[[str], Awaitable[bool]]


class TaskProgress:
    """Collects deltas; writes the status message through ``write`` no more often than ``interval_s``."""

    def __init__(self, write: Writer | None, interval_s: float) -> None:
        self._write = write
        self._interval_s = interval_s
        self._parts: list[str] = []
        self._chars = 0
        self.chunks = 0
        self._last_write = 0.0
        self._pending: asyncio.Task[None] | None = None

    def attach(self, write: Writer) -> None:
        """The task row now exists: later deltas are written through ``write``."""
        self._write = write

    def message(self) -> str:
        text = "".join(self._parts)
        if len(text) > MAX_TEXT:
            text = "…" + text[-MAX_TEXT:]
            self._parts = [text]
        return f"streaming: {self.chunks} chunks, {self._chars} chars so far\n{text}"

    async def report(self, count: int, delta: str) -> None:
        """One delta (``count`` deltas so far); never waits for the store."""
        self.chunks = count
        self._parts.append(delta)
        self._chars += len(delta)
        if self._write is not None and (self._pending is None or self._pending.done()):
            delay = max(0.0, self._last_write + self._interval_s - time.monotonic())
            self._pending = asyncio.create_task(self._write_after(delay))

    async def _write_after(self, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        self._last_write = time.monotonic()
        write = self._write
        if write is None:  # scheduled only once attached; kept for the type checker
            return
        try:
            await write(self.message())
        except Exception as exc:  # a store hiccup must not end the call; the next write retries
            log.warning("task_progress_write_failed: %s", type(exc).__name__)

    async def close(self) -> None:
        """Stop any pending write (the outcome write follows and carries its own message)."""
        if self._pending is not None and not self._pending.done():
            self._pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pending
