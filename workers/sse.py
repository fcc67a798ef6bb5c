"""An incremental Server-Sent Events parser over an HTTP byte stream.

Providers stream completions as SSE (``text/event-stream``). This parser works on the
raw byte chunks as the HTTP client hands them over, so each event is yielded the moment its
closing blank line arrives: nothing waits for the end of the response.

It follows the WHATWG SSE parsing rules (``event:``/``data:`` fields, multi-line data,
``:`` comments, CR, LF or CRLF line ends, a leading BOM) with one deliberate
difference: an event still pending at end of stream *is* dispatched instead of being
discarded. Servers that write ``data: [DONE]`` and close without the final blank line
have finished properly; dropping that event would turn a complete answer into a
"stream interrupted" error. A genuinely truncated last event is caught by the adapter
(its JSON does not parse, or the end marker never came).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator
from typing import NamedTuple

__all__ = ["MAX_EVENT_BYTES", "SSEDecoder", "SSEError", "SSEEvent", "iter_lines", "iter_sse"]

# A provider event is a few hundred bytes. The cap exists so a server that never sends
# a line end cannot grow a worker's memory without bound.
MAX_EVENT_BYTES = 1024 * 1024

_EOL = re.compile(rb"\r\n|\r|\n")
_BOM = "\ufeff"


class SSEError(ValueError):
    """The stream is not usable SSE (a line or event exceeds the size cap)."""


class SSEEvent(NamedTuple):
    event: str
    data: str


class SSEDecoder:
    """Turns decoded lines into events; feed it one line at a time (without the line end)."""

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._max = max_event_bytes
        self._event = ""
        self._data: list[str] = []
        self._size = 0

    def feed(self, line: str) -> SSEEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # comment; servers send these as keep-alives
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._size += len(value) + 1
            if self._size > self._max:
                raise SSEError(f"an event exceeds {self._max} bytes")
            self._data.append(value)
        # "id", "retry" and unknown fields do not matter for a one-shot completion stream.
        return None

    def flush(self) -> SSEEvent | None:
        """The event still pending at end of stream, if any (see the module docstring)."""
        return self._dispatch()

    def _dispatch(self) -> SSEEvent | None:
        event = None
        if self._data:
            event = SSEEvent(self._event or "message", "\n".join(self._data))
        # Per the spec an event name without data is dropped, and both buffers reset.
        self._event = ""
        self._data = []
        self._size = 0
        return event


async def iter_lines(
    chunks: AsyncIterable[bytes], max_line_bytes: int = MAX_EVENT_BYTES
) -> AsyncIterator[str]:
    """Split a byte stream into lines on CR, LF or CRLF, even when a chunk splits a line end."""
    buf = bytearray()
    after_cr = False  # the previous chunk ended in CR: a leading LF here belongs to it
    first = True
    async for chunk in chunks:
        if not chunk:
            continue
        pos = 1 if after_cr and chunk.startswith(b"\n") else 0
        after_cr = False
        for match in _EOL.finditer(chunk, pos):
            buf += chunk[pos : match.start()]
            yield _decode(buf, first)
            first = False
            buf.clear()
            pos = match.end()
            after_cr = match.group() == b"\r" and pos == len(chunk)
        buf += chunk[pos:]
        if len(buf) > max_line_bytes:
            raise SSEError(f"a line exceeds {max_line_bytes} bytes")
    if buf:
        yield _decode(buf, first)


def _decode(line: bytearray, first: bool) -> str:
    # UTF-8 never uses CR or LF bytes inside a multi-byte character, so decoding per line
    # is safe; SSE is UTF-8 by definition whatever the Content-Type says.
    text = line.decode("utf-8", errors="replace")
    return text.removeprefix(_BOM) if first else text


async def iter_sse(
    chunks: AsyncIterable[bytes], max_event_bytes: int = MAX_EVENT_BYTES
) -> AsyncIterator[SSEEvent]:
    """Yield each event of an SSE byte stream as soon as it is complete."""
    decoder = SSEDecoder(max_event_bytes)
    async for line in iter_lines(chunks, max_event_bytes):
        event = decoder.feed(line)
        if event is not None:
            yield event
    last = decoder.flush()
    if last is not None:
        yield last
