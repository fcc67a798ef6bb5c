"""The STDIO front end's stdout: a response leaves only once the client has read the progress before it.

Clients built on the TypeScript SDK (v1 and v2) hand a progress notification to its
handler a microtask later, but settle a response at once and drop the call's progress
handler with it. When the last notification and the result arrived in one read, the
notification found no handler and its delta was lost (issue 13, item 8; 2-9 calls in 100
on a loaded machine). A fixed pause does not cure it: a client descheduled for longer
than the pause reads both at once again. (The other half of the fix is in
``stdio_front.upstream``: the result is not passed on before the relays of its
progress have run.)

So the front end writes stdout itself (``Wire``) and, before a response that follows a
progress notification, waits until every byte it wrote has been read by the client. The
kernel says so from our end: ``FIONREAD`` on a pipe (how Python's SDK launches servers)
counts the bytes not yet read; ``SIOCOUTQ`` on a Unix socket (how Node's child_process
does) counts what the reader has not yet taken. The client handles what it read before
it reads again, so the response arrives in a read of its own. The wait is capped
(``DELIVERY_CAP_S``): a client that stops reading holds up only its own result, and only
that long. When stdout is neither (a file, a terminal), a short fixed pause
(``FALLBACK_GAP_S``) is the best that can be done.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import os
import stat
import termios
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import anyio
import anyio.to_thread
import mcp_types as types
from mcp.shared.message import SessionMessage

__all__ = ["DELIVERY_CAP_S", "FALLBACK_GAP_S", "PacedWrites", "Wire", "claimed_stdout"]

DELIVERY_CAP_S = 0.5
FALLBACK_GAP_S = 0.005
_POLL_S = 0.0005


@contextlib.contextmanager
def claimed_stdout() -> Iterator[int]:
    """A private descriptor for the wire, with fd 1 pointed at stderr meanwhile (stray prints miss the wire)."""
    wire = fcntl.fcntl(1, fcntl.F_DUPFD_CLOEXEC, 3)
    os.dup2(2, 1)
    try:
        yield wire
    finally:
        os.dup2(wire, 1)
        os.close(wire)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class Wire:
    """What the SDK's stdio writer needs of stdout (``write``, then ``flush`` per message), on a raw descriptor."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._pending = bytearray()
        mode = os.fstat(fd).st_mode
        # termios.TIOCOUTQ is SIOCOUTQ's number on Linux.
        self._query = termios.FIONREAD if stat.S_ISFIFO(mode) else termios.TIOCOUTQ if stat.S_ISSOCK(mode) else None
        self.flushed = 0  # messages written to the descriptor so far

    async def write(self, text: str) -> int:
        self._pending += text.encode("utf-8")
        return len(text)

    async def flush(self) -> None:
        data, self._pending = bytes(self._pending), bytearray()
        if data:
            await anyio.to_thread.run_sync(_write_all, self._fd, data)  # a full pipe blocks a thread, not the loop
        self.flushed += 1

    def unread(self) -> int | None:
        """Bytes (on a socket: buffer space) written and not yet read by the client; None if unknowable."""
        if self._query is None:
            return None
        count = array.array("i", [0])
        try:
            fcntl.ioctl(self._fd, self._query, count)
        except OSError:
            return None
        return count[0]

    async def delivered(self, messages: int, cap_s: float = DELIVERY_CAP_S) -> None:
        """Return once ``messages`` messages are written and the client has read them all (or ``cap_s`` passed)."""
        deadline = time.monotonic() + cap_s
        while self.flushed < messages and time.monotonic() < deadline:
            await anyio.sleep(_POLL_S)
        while time.monotonic() < deadline:
            unread = self.unread()
            if unread is None:
                await anyio.sleep(FALLBACK_GAP_S)
                return
            if unread == 0:
                return
            await anyio.sleep(_POLL_S)


def _is_progress(message: Any) -> bool:
    return isinstance(message, types.JSONRPCNotification) and message.method == "notifications/progress"


class PacedWrites:
    """The server's write stream: a response after a progress notification waits for ``Wire.delivered``."""

    def __init__(self, inner: Any, wire: Wire) -> None:
        self._inner = inner
        self._wire = wire
        self._sent = 0
        self._after_progress = False

    async def send(self, item: SessionMessage, /) -> None:
        message = item.message
        if self._after_progress and isinstance(message, types.JSONRPCResponse | types.JSONRPCError):
            self._after_progress = False
            await self._wire.delivered(self._sent)
        await self._inner.send(item)
        self._sent += 1
        self._after_progress = self._after_progress or _is_progress(message)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> PacedWrites:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc_val: BaseException | None,
                        exc_tb: TracebackType | None) -> bool | None:
        result: bool | None = await self._inner.__aexit__(exc_type, exc_val, exc_tb)
        return result
