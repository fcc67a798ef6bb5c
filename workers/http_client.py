"""The worker's HTTP client: exactly what the adapters need, on one aiohttp session.

Adapters send a request and read a status, case-insensitive headers and the body, whole
or chunk by chunk as it arrives (SSE); when no answer comes they need to know what kind
of failure it was. ``HttpClient`` is that contract; ``AiohttpClient`` fulfils it for the
running worker. Why aiohttp and not httpx: a provider call cost the worker 740-975 us of
CPU through httpx, 200-250 us through aiohttp (decision D16). Unit tests drive the
adapters through an httpx ``MockTransport`` behind the same contract.

``TransportFailure`` is the one exception for "no HTTP answer". It is classified by what
went wrong (a server that disconnects mid-headers or mid-body is ``protocol``, not a
connect failure: the adapters call it ``stream_interrupted`` once a stream has sent text,
``provider_error`` before), and its message never holds the URL, which may carry
credentials.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import errno
import socket
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import aiohttp
    from multidict import CIMultiDictProxy
else:
    # Imported with the first request (``_import_aiohttp``): ~11 MB resident that a worker
    # whose provider is never called does not need. Every use below runs after a session exists.
    aiohttp = None

__all__ = ["AiohttpClient", "FullReply", "HttpClient", "Reply", "Timeouts", "TransportFailure", "TransportKind"]

TransportKind = Literal["connect_timeout", "read_timeout", "connect", "protocol", "network", "other"]

_CONNECT_REASONS = {
    errno.ECONNREFUSED: "connection refused (is the server running?)",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ECONNRESET: "connection reset",
}
_KEEPALIVE_S = 5.0  # close idle connections before a provider's balancer does
# After a stream's end marker: how long, and how many bytes, to read for the body's end.
_END_WAIT_S = 0.1
_END_BYTES = 4096


class TransportFailure(Exception):
    """The request got no (complete) HTTP answer; ``kind`` says why, ``reason`` in words (no URL)."""

    def __init__(self, kind: TransportKind, detail: str, reason: str = "") -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect_s: float  # TCP and TLS connect
    read_s: float  # each socket read, so also the longest silence inside a stream
    pool_s: float  # waiting for a free connection


class Reply(abc.ABC):
    """An answer whose body has not been read yet."""

    status: int
    headers: Mapping[str, str]  # looked up case-insensitively
    # The caller read what it needed (its stream's end marker); only the body's end may follow.
    end_expected: bool = False

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def expect_end(self) -> None:
        """Say the caller has everything it needs: the client may wait briefly for the body's
        end and keep the connection, instead of closing it."""
        self.end_expected = True

    @abc.abstractmethod
    def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives (raises ``TransportFailure`` if it breaks off)."""

    async def read(self, limit: int | None = None) -> bytes:
        """The body, or its first ``limit`` bytes (enough of an error page to say what it is)."""
        buf = bytearray()
        async for chunk in self.chunks():
            buf += chunk
            if limit is not None and len(buf) >= limit:
                return bytes(buf[:limit])
        return bytes(buf)


@dataclass(frozen=True, slots=True)
class FullReply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class HttpClient(abc.ABC):
    @abc.abstractmethod
    def open(self, method: str, url: str, *, headers: Mapping[str, str],
             content: bytes | None = None) -> contextlib.AbstractAsyncContextManager[Reply]:
        """Send the request; the context holds the reply until the body is read or abandoned."""

    async def fetch(self, method: str, url: str, *, headers: Mapping[str, str],
                    content: bytes | None = None) -> FullReply:
        """Send the request and read the whole answer."""
        async with self.open(method, url, headers=headers, content=content) as reply:
            body = await reply.read()
        return FullReply(reply.status, reply.headers, body)

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Close every pooled connection."""


class AiohttpClient(HttpClient):
    """One aiohttp session (its connection pool), made on first use inside the running loop."""

    def __init__(self, timeouts: Timeouts, *, max_connections: int, ssl_context: ssl.SSLContext | None = None) -> None:
        self._timeouts = timeouts
        self._max_connections = max_connections
        self._ssl = ssl_context  # None: certifi's authorities, loaded on the first https request
        self._session: aiohttp.ClientSession | None = None

    def _tls(self, url: str) -> ssl.SSLContext | bool:
        """What verifies an ``https`` URL's server: our context, made when first needed.

        Loading the CA bundle costs ~2 MB resident that a worker calling a local ``http``
        server (LM Studio, Ollama) never needs. ``True`` (aiohttp's default) for plain http,
        where there is nothing to verify.
        """
        if url[:6].lower() != "https:":
            return True
        if self._ssl is None:
            import certifi  # with the CA bundle: its import alone pulls in importlib.resources

            self._ssl = ssl.create_default_context(cafile=certifi.where())
        return self._ssl

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None:
            _import_aiohttp()
            t = self._timeouts
            timeout = aiohttp.ClientTimeout(total=None, connect=t.pool_s + t.connect_s, sock_connect=t.connect_s,
                                            sock_read=t.read_s)
            connector = aiohttp.TCPConnector(limit=self._max_connections, keepalive_timeout=_KEEPALIVE_S)
            self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)
            # aiohttp resends an idempotent request (our model listings) once when a kept-alive
            # connection closes before the answer. Retries are the resilience layer's (budget,
            # counters, circuit): a hidden one would reach the provider uncounted. There is no
            # public switch; this is the attribute aiohttp's own test client turns off.
            self._session._retry_connection = False
        return self._session

    @contextlib.asynccontextmanager
    async def open(self, method: str, url: str, *, headers: Mapping[str, str],
                   content: bytes | None = None) -> AsyncIterator[Reply]:
        try:
            response = await self._session_now().request(method, url, headers=dict(headers), data=content,
                                                         allow_redirects=False, ssl=self._tls(url))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise failure(exc, connecting=True) from None
        reply = _AiohttpReply(response)
        try:
            yield reply
        finally:
            try:
                if reply.end_expected and not response.content.is_eof():
                    await _await_end(response.content)
            finally:
                # A body read to its end leaves a connection fit for reuse; anything else (the
                # caller stopped early, the peer broke off) closes it, so no half-read answer
                # is ever handed to the next request.
                if response.content.is_eof():
                    response.release()
                else:
                    response.close()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class _AiohttpReply(Reply):
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers: CIMultiDictProxy[str] = response.headers

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            # iter_any: whatever has arrived, at once (an SSE delta must not wait for a full buffer).
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise failure(exc, connecting=False) from None

    async def read(self, limit: int | None = None) -> bytes:
        if limit is not None:
            return await super().read(limit)
        try:
            return await self._response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise failure(exc, connecting=False) from None


async def _await_end(content: aiohttp.StreamReader) -> None:
    """Read what is left of a body whose caller saw its end marker, briefly and boundedly.

    After an SSE stream's last event a server sends only the chunked body's terminator,
    usually a moment later; waiting for it keeps the connection. A server that sends more,
    or nothing for ``_END_WAIT_S``, gets its connection closed as before: a stream still
    being generated is never read on (that would keep it running, and costing).
    """
    left = _END_BYTES
    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
        async with asyncio.timeout(_END_WAIT_S):
            while left > 0 and not content.is_eof():
                chunk = await content.readany()
                if not chunk:
                    return
                left -= len(chunk)


def _import_aiohttp() -> None:
    """Bind the module-level ``aiohttp`` on first use (see the import block above)."""
    global aiohttp
    if aiohttp is None:
        import aiohttp as module

        aiohttp = module


def failure(exc: BaseException, *, connecting: bool) -> TransportFailure:
    """Classify an aiohttp failure; ``connecting``: before any response headers arrived."""
    _import_aiohttp()
    kind: TransportKind
    reason = ""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        kind = "connect_timeout"  # the connect itself, or the wait for a pooled connection
    elif isinstance(exc, TimeoutError):  # aiohttp's SocketTimeoutError: a read went silent
        kind = "read_timeout"
    elif isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        # Said apart: behind a TLS-intercepting proxy this is the first thing to check.
        kind, reason = "connect", "its TLS certificate was not accepted (is a proxy intercepting TLS?)"
    elif isinstance(exc, aiohttp.ClientConnectorError):  # refused, unreachable, DNS
        kind, reason = "connect", _connect_reason(exc.os_error)
    elif isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        kind = "protocol"  # closed early, truncated, or not HTTP
    elif isinstance(exc, aiohttp.ClientConnectionError):  # reset or refused mid-request
        kind = "network"
    else:  # an unusable URL or scheme, anything else
        kind = "other"
    return TransportFailure(kind, f"{type(exc).__name__} while {'connecting' if connecting else 'reading'}", reason)


def _connect_reason(error: OSError) -> str:
    """Why a connection failed, in words an operator acts on (never the address: it may hold credentials)."""
    if isinstance(error, socket.gaierror):
        return "host name not found"
    return _CONNECT_REASONS.get(error.errno or 0, "connection failed")
