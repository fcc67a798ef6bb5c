"""Shared fixtures for adapter tests: mock transports, SSE bodies, stream collectors.

Every test runs against ``httpx.MockTransport`` behind ``HttpxTestClient``, which gives
the adapters the same ``HttpClient`` contract the worker's aiohttp client does: no
network, no sockets. (The emulator tests in ``tests/unit/workers/resilience`` run the real one.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

import httpx
import orjson
from multidict import CIMultiDict

from shared import errors
from shared.config import ProviderConfig
from shared.models import ChatRequest, ChatResult, Message, TextDelta
from workers.http_client import HttpClient, Reply, TransportFailure, TransportKind
from workers.providers.base import ProviderAdapter
from workers.providers.registry import KINDS

T = TypeVar("T")
Handler = Callable[[httpx.Request], httpx.Response]

# Key-shaped and not: the scrubber must catch the exact value, not just the sk- pattern.
SECRET = "sk-test-SECRET0123456789abcdef"
PLAIN_SECRET = "lmstudio-local-key-7Q2x9"

BASE_URLS = {
    "openai": "https://api.openai.test/v1",
    "anthropic": "https://api.anthropic.test",
    "lmstudio": "http://localhost:1234",
    "gemini": "https://generativelanguage.googleapis.test/v1beta",
    "ollama": "http://localhost:11434",
}


def config(kind: str, *, models: Iterable[dict[str, Any]] = (), **extra: Any) -> ProviderConfig:
    data: dict[str, Any] = {"kind": kind, "base_url": BASE_URLS[kind], "models": list(models), **extra}
    if KINDS[kind].needs_key:
        data["secret"] = {"env": "TEST_PROVIDER_KEY"}
    return ProviderConfig.model_validate(data)


def _kind(exc: httpx.HTTPError) -> TransportKind:
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return "connect_timeout"
    if isinstance(exc, httpx.TimeoutException):
        return "read_timeout"
    if isinstance(exc, httpx.ConnectError):
        return "connect"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "protocol"
    if isinstance(exc, httpx.NetworkError):
        return "network"
    return "other"


class _HttpxReply(Reply):
    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status = response.status_code
        self.headers = CIMultiDict(response.headers.multi_items())

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_bytes():
                yield chunk
        except httpx.HTTPError as exc:
            raise TransportFailure(_kind(exc), type(exc).__name__) from None


class HttpxTestClient(HttpClient):
    """The adapters' HTTP contract over an ``httpx.AsyncClient`` (in tests, on a MockTransport)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    @contextlib.asynccontextmanager
    async def open(self, method: str, url: str, *, headers: Mapping[str, str],
                   content: bytes | None = None) -> AsyncIterator[Reply]:
        request = self.http.build_request(method, url, headers=dict(headers), content=content)
        try:
            response = await self.http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise TransportFailure(_kind(exc), type(exc).__name__) from None
        try:
            yield _HttpxReply(response)
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()


def run_with(
    adapter_cls: type[ProviderAdapter],
    handler: Handler,
    op: Callable[[ProviderAdapter], Awaitable[T]],
    *,
    cfg: ProviderConfig | None = None,
    secret: str | None = SECRET,
) -> T:
    """Build the adapter on a mock transport inside a fresh event loop and run ``op``."""

    async def main() -> T:
        transport = httpx.MockTransport(handler)
        async with httpx.AsyncClient(transport=transport) as http:
            adapter = adapter_cls("prov", cfg or config(adapter_cls.kind), secret, HttpxTestClient(http))
            return await op(adapter)

    return asyncio.run(main())


async def collect(stream: AsyncIterator[TextDelta | ChatResult]) -> tuple[list[Any], BaseException | None]:
    """Everything a stream yielded, and the exception that ended it (if any)."""
    items: list[Any] = []
    try:
        async for item in stream:
            items.append(item)
    except errors.LLMCallerError as exc:
        return items, exc
    return items, None


def request(**extra: Any) -> ChatRequest:
    messages = [Message("system", "Be brief."), Message("user", "Hi")]
    return ChatRequest(model="m-1", messages=messages, **extra)


def deltas(items: list[Any]) -> list[str]:
    return [i.text for i in items if isinstance(i, TextDelta)]


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status, content=orjson.dumps(body), headers={"content-type": "application/json", **(headers or {})}
    )


def sse(*events: Any, event: str | None = None, eol: str = "\n") -> bytes:
    """SSE bytes: dicts become JSON data lines, strings are sent verbatim as data."""
    out = []
    for item in events:
        data = item if isinstance(item, str) else orjson.dumps(item).decode()
        head = f"event: {event}{eol}" if event else ""
        out.append(f"{head}data: {data}{eol}{eol}")
    return "".join(out).encode()


def named(name: str, data: dict[str, Any]) -> bytes:
    """One Anthropic-style event: an ``event:`` line naming it and its JSON data."""
    return f"event: {name}\ndata: {orjson.dumps(data).decode()}\n\n".encode()


def split(data: bytes, size: int) -> list[bytes]:
    """Chunks of ``size`` bytes: boundaries fall inside lines, field names and CRLF pairs."""
    return [data[i : i + size] for i in range(0, len(data), size)]


class ChunkStream(httpx.AsyncByteStream):
    """A response body sent chunk by chunk, optionally failing midway, that records closing."""

    def __init__(self, chunks: list[bytes], fail_with: Exception | None = None) -> None:
        self.chunks = chunks
        self.fail_with = fail_with
        self.sent = 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            self.sent += 1
            yield chunk
        if self.fail_with is not None:
            raise self.fail_with

    async def aclose(self) -> None:
        self.closed = True


def stream_response(
    chunks: list[bytes] | bytes,
    *,
    status: int = 200,
    fail_with: Exception | None = None,
    content_type: str = "text/event-stream",
) -> httpx.Response:
    parts = split(chunks, 7) if isinstance(chunks, bytes) else chunks
    return httpx.Response(
        status, headers={"content-type": content_type}, stream=ChunkStream(parts, fail_with)
    )


class Recorder:
    """A MockTransport handler that records each request and answers from a function."""

    def __init__(self, answer: Handler | httpx.Response) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, req: httpx.Request) -> httpx.Response:
        self.requests.append(req)
        return self.answer(req) if callable(self.answer) else self.answer

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def body(self, index: int = -1) -> Any:
        return orjson.loads(self.requests[index].content)
