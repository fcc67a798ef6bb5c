"""HTTP-level building blocks shared by the emulators: JSON and SSE responses, connection drops.

Everything here talks plain ASGI underneath Starlette, for two reasons: speed (orjson, no
per-stream task group) and faults that Starlette's own responses cannot express: a stream
that goes silent without ending, and a connection closed with no HTTP response at all.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

__all__ = [
    "ABORT",
    "RAW_SEND_KEY",
    "DropConnection",
    "EmulatorStarlette",
    "EventStream",
    "Silence",
    "StreamItem",
    "drop_connection",
    "json_response",
    "sse_data",
    "sse_event",
    "wait_for_disconnect",
]

# The server's own ``send`` callable, stashed in the scope before Starlette wraps it.
RAW_SEND_KEY: Final = "emulator.raw_send"


class EmulatorStarlette(Starlette):
    """A Starlette app that remembers the server's raw ``send`` for :func:`drop_connection`."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[RAW_SEND_KEY] = send
        await super().__call__(scope, receive, send)


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type="application/json")


async def drop_connection(scope: Scope) -> None:
    """Close the client's TCP connection without sending any HTTP response.

    ASGI has no message for "hang up", and an app that raises or returns without a
    response gets a 500 from the server. So this reaches the transport through uvicorn's
    raw ``send``: it is a bound method of uvicorn's per-request cycle object (h11 and
    httptools alike), which holds the asyncio transport. ``abort()`` closes the socket at
    once; after one loop turn uvicorn's ``connection_lost`` has marked the cycle
    disconnected, so it neither answers 500 nor logs an error when the app returns.
    Under any other server this raises, which still fails the request, just less cleanly.
    """
    cycle = getattr(scope.get(RAW_SEND_KEY), "__self__", None)
    transport = getattr(cycle, "transport", None)
    if not isinstance(transport, asyncio.WriteTransport):
        raise ConnectionAbortedError("emulator: cannot reach the transport to drop the connection")
    transport.abort()
    for _ in range(10):  # connection_lost is scheduled with call_soon: normally one turn
        await asyncio.sleep(0)
        if getattr(cycle, "disconnected", True):
            break


class DropConnection(Response):
    """A "response" that hangs up instead of answering (the ``drop`` fault).

    With ``partial`` it first writes those raw bytes (the start of a status line and
    headers) and hangs up before the blank line that ends the headers: the
    ``close_mid_headers`` fault.
    """

    def __init__(self, partial: bytes = b"") -> None:
        super().__init__(status_code=500)
        self.partial = partial

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.partial:
            transport = getattr(getattr(scope.get(RAW_SEND_KEY), "__self__", None), "transport", None)
            if isinstance(transport, asyncio.WriteTransport):
                transport.write(self.partial)
                await asyncio.sleep(0.05)  # let the bytes reach the client before the reset
        await drop_connection(scope)


async def wait_for_disconnect(receive: Receive) -> None:
    """Return once the client has gone. Only valid after the request body was read."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


@dataclass(frozen=True, slots=True)
class Silence:
    """Stream item: send nothing for ``seconds`` (or until the client leaves or we shut down)."""

    seconds: float


class _Abort:
    """Stream item: cut the TCP connection mid-stream."""


ABORT: Final = _Abort()

StreamItem = bytes | Silence | _Abort


class EventStream(Response):
    """A ``text/event-stream`` response whose frames come from an async iterator of items.

    Unlike Starlette's StreamingResponse this does not run a disconnect watcher task for
    every stream (a write to a gone client is simply dropped by the server); it only
    listens for a disconnect while deliberately silent, where it would otherwise hang on.
    """

    media_type = "text/event-stream"

    def __init__(
        self, frames: AsyncGenerator[StreamItem, None], headers: Mapping[str, str], closing: asyncio.Event,
        on_left: Callable[[], None] | None = None,
    ) -> None:
        self.frames = frames
        self.closing = closing
        # Given for paced streams: a watcher notices the client leaving mid-stream at once,
        # stops the stream and calls this (the stats' ``streams_left``).
        self.on_left = on_left
        self.status_code = 200
        self.background = None
        self.init_headers({"cache-control": "no-cache", **headers})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        if self.on_left is None:
            await self._play(scope, receive, send, None)
            return
        gone = asyncio.Event()
        serving = asyncio.current_task()

        async def watch() -> None:
            await wait_for_disconnect(receive)
            gone.set()
            if serving is not None:
                serving.cancel()

        watcher = asyncio.ensure_future(watch())
        try:
            await self._play(scope, receive, send, gone)
        except asyncio.CancelledError:
            if not gone.is_set():
                raise
            self.on_left()
        finally:
            watcher.cancel()

    async def _play(self, scope: Scope, receive: Receive, send: Send, gone: asyncio.Event | None) -> None:
        async with contextlib.aclosing(self.frames) as frames:
            async for item in frames:
                if isinstance(item, bytes):
                    await send({"type": "http.response.body", "body": item, "more_body": True})
                elif isinstance(item, Silence):
                    if await self._stay_silent(receive, item.seconds, gone):
                        if self.closing.is_set():
                            break  # shutting down: end the response cleanly
                        return  # the client left: nothing more to send to
                else:
                    await drop_connection(scope)
                    return
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _stay_silent(self, receive: Receive, seconds: float, gone: asyncio.Event | None) -> bool:
        """Wait out a silence; True if it was cut short by a disconnect or a shutdown."""
        watchers = {
            asyncio.ensure_future(wait_for_disconnect(receive) if gone is None else gone.wait()),
            asyncio.ensure_future(self.closing.wait()),
        }
        try:
            done, _ = await asyncio.wait(watchers, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in watchers:
                task.cancel()
        return bool(done)


def sse_data(payload: Any) -> bytes:
    """An OpenAI-style frame: ``data: {json}`` and a blank line."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def sse_event(name: str, payload: Any) -> bytes:
    """An Anthropic-style frame: ``event: NAME``, ``data: {json}`` and a blank line."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"
