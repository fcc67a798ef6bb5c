"""A stream read to its end marker leaves its connection for the next call (workers.http_client).

Against a raw HTTP/1.1 server on 127.0.0.1 that answers each request with a chunked SSE
stream in the OpenAI shape, through the real OpenAI adapter on the worker's aiohttp client.
The server sends the chunked body's terminator a moment after ``[DONE]``, as real servers
may; a stream the caller leaves early, or one whose terminator never comes, still closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import orjson

from shared.models import ChatRequest, ChatResult, Message, TextDelta
from tests.unit.workers.providers.helpers import SECRET, config
from workers.http_client import AiohttpClient, Timeouts
from workers.providers.adapters import create_adapter

REQUEST = ChatRequest(model="gpt-4o-mini", messages=[Message("user", "hello")], stream=True)
_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _event(payload: object) -> bytes:
    return _chunk(b"data: " + (payload if isinstance(payload, bytes) else orjson.dumps(payload)) + b"\n\n")


class StreamServer:
    """Counts connections; answers every request with two deltas, ``[DONE]`` and (after
    ``end_delay_s``, or never when None) the body's terminator."""

    def __init__(self, end_delay_s: float | None = 0.02, pause_after_first_s: float = 0.0) -> None:
        self.end_delay_s = end_delay_s
        self.pause_after_first_s = pause_after_first_s
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                await reader.readexactly(length)
                writer.write(_HEAD + _event({"choices": [{"delta": {"content": "hel"}}]}))
                await writer.drain()
                await asyncio.sleep(self.pause_after_first_s)
                writer.write(_event({"choices": [{"delta": {"content": "lo"}, "finish_reason": "stop"}]})
                             + _event(b"[DONE]"))
                await writer.drain()
                if self.end_delay_s is None:
                    await asyncio.sleep(30)  # never ends the body
                    return
                await asyncio.sleep(self.end_delay_s)
                writer.write(b"0\r\n\r\n")
                await writer.drain()


async def _streams(server: StreamServer, calls: int, stop_early: bool = False) -> list[list[TextDelta | ChatResult]]:
    async with server as base_url:
        client = AiohttpClient(Timeouts(connect_s=5.0, read_s=5.0, pool_s=5.0), max_connections=4)
        adapter = create_adapter("openai", config("openai", base_url=base_url), SECRET, client)
        results: list[list[TextDelta | ChatResult]] = []
        try:
            for _ in range(calls):
                items: list[TextDelta | ChatResult] = []
                async with contextlib.aclosing(adapter.stream_chat(REQUEST)) as stream:
                    async for item in stream:
                        items.append(item)
                        if stop_early:
                            break
                results.append(items)
        finally:
            await client.aclose()
    return results


def test_streams_read_to_their_end_marker_share_one_connection() -> None:
    server = StreamServer(end_delay_s=0.02)
    results = asyncio.run(_streams(server, 3))
    for items in results:
        assert [i.text for i in items if isinstance(i, TextDelta)] == ["hel", "lo"]
        assert isinstance(items[-1], ChatResult) and items[-1].text == "hello"
    assert server.connections == 1


def test_a_stream_left_before_its_end_marker_closes_its_connection() -> None:
    # The model may still be generating (and costing): its connection is closed, never read on.
    server = StreamServer(pause_after_first_s=0.5)
    results = asyncio.run(_streams(server, 2, stop_early=True))
    assert [[i.text for i in items if isinstance(i, TextDelta)] for items in results] == [["hel"], ["hel"]]
    assert server.connections == 2


def test_a_body_that_never_ends_after_the_marker_costs_a_new_connection_not_a_hang() -> None:
    server = StreamServer(end_delay_s=None)
    started = time.monotonic()
    results = asyncio.run(_streams(server, 2))
    elapsed = time.monotonic() - started
    assert all(isinstance(items[-1], ChatResult) and items[-1].text == "hello" for items in results)
    assert server.connections == 2
    print(f"two streams whose bodies never ended took {elapsed:.3f} s")
    assert elapsed < 5.0  # the wait for the end is a fraction of a second per stream, not the read timeout
