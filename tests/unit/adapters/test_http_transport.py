"""workers.http_transport: aiohttp under httpx, failures mapped to the httpx errors the adapters classify.

Each case is a small raw TCP server on 127.0.0.1 doing one thing wrong, so the mapping is
checked against real sockets rather than against aiohttp's exception classes.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import httpx
import pytest

from workers.http_transport import AiohttpTransport

Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    return head + await reader.readexactly(length)


def _answer(raw: bytes, *, then_close: bool = True) -> Behaviour:
    async def behave(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(raw)
        await writer.drain()
        if then_close:
            writer.close()
        else:
            await asyncio.sleep(30)

    return behave


async def _call(behaviour: Behaviour, *, read_s: float = 5.0, stream: bool = False) -> httpx.Response:
    server = await asyncio.start_server(behaviour, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(transport=AiohttpTransport(max_connections=4),
                                     timeout=httpx.Timeout(5, read=read_s)) as client:
            if not stream:
                return await client.post(f"http://127.0.0.1:{port}/v1/x", content=b'{"a": 1}')
            async with client.stream("POST", f"http://127.0.0.1:{port}/v1/x", content=b"{}") as response:
                await response.aread()
                return response
    finally:
        server.close()


def test_a_good_answer_keeps_status_headers_and_body() -> None:
    body = b'{"ok": true}'
    raw = (b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\nX-Should-Retry: true\r\n"
           b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    response = asyncio.run(_call(_answer(raw)))
    assert response.status_code == 429 and response.reason_phrase == "Too Many Requests"
    assert response.headers["retry-after"] == "2" and response.headers["X-SHOULD-RETRY"] == "true"
    assert response.json() == {"ok": True}


@pytest.mark.parametrize(("raw", "stream"), [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part", False),  # truncated body
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", True),  # stream cut off
    (b"", False),  # closed without answering
    (b"THIS IS NOT HTTP\r\n\r\n", False),  # malformed
])
def test_broken_answers_are_remote_protocol_errors(raw: bytes, stream: bool) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        asyncio.run(_call(_answer(raw), stream=stream))


def test_a_silent_server_is_a_read_timeout() -> None:
    with pytest.raises(httpx.ReadTimeout):
        asyncio.run(_call(_answer(b"", then_close=False), read_s=0.2))


def test_a_refused_connection_is_a_connect_error_whose_message_has_no_url_or_credentials() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def call() -> None:
        async with httpx.AsyncClient(transport=AiohttpTransport(max_connections=4)) as client:
            await client.get(f"http://user:hunter2@127.0.0.1:{port}/v1/models")

    with pytest.raises(httpx.ConnectError) as caught:
        asyncio.run(call())
    assert "hunter2" not in str(caught.value) and str(port) not in str(caught.value)


def test_a_stream_left_early_does_not_hand_its_connection_to_the_next_request() -> None:
    connections: list[int] = []

    async def behave(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        while True:
            try:
                await _read_request(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            body = b"data: x\n\n" * 200_000
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()

    async def run() -> list[bytes]:
        server = await asyncio.start_server(behave, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/s"
        bodies = []
        try:
            async with httpx.AsyncClient(transport=AiohttpTransport(max_connections=1)) as client:
                async with client.stream("GET", url) as response:
                    async for _ in response.aiter_bytes():
                        break  # stop reading after the first piece
                bodies.append((await client.get(url)).content)  # must not see the rest of the first body
                bodies.append((await client.get(url)).content)  # this one may reuse a clean connection
        finally:
            server.close()
        return bodies

    bodies = asyncio.run(run())
    assert all(b == b"data: x\n\n" * 200_000 for b in bodies)
    assert len(connections) == 2
