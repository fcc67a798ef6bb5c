"""An httpx transport that sends requests with aiohttp: the adapters keep httpx's API.

Why: a provider call through httpx's own transport (httpcore, h11 and anyio) cost the
worker about 0.75 ms of CPU; through aiohttp's C-accelerated HTTP/1.1 client about 0.45 ms
with httpx still on top (``bench`` microbenchmark against the emulator, decision D16). The
adapters, their unit tests (``httpx.MockTransport``) and the error taxonomy stay as they
were: this module's one job is to turn aiohttp's requests, responses and failures into
httpx's.

Failures are mapped to the httpx exception the adapters already classify, by what went
wrong rather than by aiohttp's class tree (a server that disconnects mid-body is a
``RemoteProtocolError``, the taxonomy's ``stream_interrupted``, not a connect timeout).
Messages name the failure class only: aiohttp's texts can carry the URL, and a base URL
may carry credentials.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import aiohttp
import httpx

__all__ = ["AiohttpTransport"]

_KEEPALIVE_S = 5.0  # httpx's default; providers keep idle connections longer than this


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session (its connection pool) behind an ``httpx.AsyncClient``.

    Timeouts come from each request's httpx ``timeout`` extension: ``connect`` bounds the
    TCP/TLS connect, ``pool`` the wait for a free connection, ``read`` each socket read.
    """

    def __init__(self, *, max_connections: int, ssl_context: ssl.SSLContext | None = None) -> None:
        self._max_connections = max_connections
        self._ssl = ssl_context or httpx.create_ssl_context()
        self._session: aiohttp.ClientSession | None = None

    def _session_now(self) -> aiohttp.ClientSession:
        # Made on first use: aiohttp binds the session to the running loop.
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._max_connections, keepalive_timeout=_KEEPALIVE_S,
                                             ssl=self._ssl)
            # httpx decodes Content-Encoding itself, from the raw bytes handed back here.
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        body = request.content if isinstance(request.stream, httpx.ByteStream) else await request.aread()
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers.raw]
        # httpx already turned any user:password in the URL into an Authorization header;
        # aiohttp refuses a request that carries both.
        url = request.url.copy_with(userinfo=b"") if request.url.userinfo else request.url
        try:
            response = await self._session_now().request(
                request.method, str(url), headers=headers, data=body or None, allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=None, connect=_sum(timeout.get("pool"), timeout.get("connect")),
                                              sock_connect=timeout.get("connect"), sock_read=timeout.get("read")),
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _httpx_error(exc, request, connecting=True) from None
        extensions = {"http_version": b"HTTP/1.1", "reason_phrase": (response.reason or "").encode("latin-1")}
        return httpx.Response(status_code=response.status, headers=response.raw_headers,
                              stream=_ResponseBody(response, request), request=request, extensions=extensions)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class _ResponseBody(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            # iter_any: whatever has arrived, at once (an SSE delta must not wait for a full buffer).
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _httpx_error(exc, self._request, connecting=False) from None

    async def aclose(self) -> None:
        # A body read to its end leaves a connection fit for reuse; anything else (the
        # caller stopped early, the peer broke off) closes it, so no half-read response
        # is ever handed to the next request.
        if self._response.content.is_eof():
            self._response.release()
        else:
            self._response.close()


def _sum(*parts: float | None) -> float | None:
    present = [p for p in parts if p is not None]
    return sum(present) if present else None


def _httpx_error(exc: BaseException, request: httpx.Request, *, connecting: bool) -> httpx.TransportError:
    kind = type(exc).__name__
    mapped: type[httpx.TransportError]
    if isinstance(exc, aiohttp.ConnectionTimeoutError) or (connecting and isinstance(exc, TimeoutError)
                                                           and not isinstance(exc, aiohttp.SocketTimeoutError)):
        mapped = httpx.ConnectTimeout
    elif isinstance(exc, TimeoutError):  # includes aiohttp's SocketTimeoutError (sock_read)
        mapped = httpx.ReadTimeout
    elif isinstance(exc, aiohttp.ClientConnectorError):  # refused, unreachable, DNS, TLS handshake
        mapped = httpx.ConnectError
    elif isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        mapped = httpx.RemoteProtocolError  # closed early, truncated or malformed HTTP
    elif isinstance(exc, aiohttp.InvalidURL):
        mapped = httpx.UnsupportedProtocol
    elif isinstance(exc, aiohttp.ClientOSError | aiohttp.ClientConnectionError):
        mapped = httpx.ReadError if not connecting else httpx.ConnectError
    else:
        mapped = httpx.TransportError
    return mapped(f"{kind} ({'connecting' if connecting else 'reading the response'})", request=request)
