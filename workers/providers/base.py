"""What every provider adapter offers the worker runtime.

An adapter turns the internal request shapes (``shared.models``) into one provider's
HTTP wire format and back, and turns every provider failure into exactly one class of
``shared.errors``. It does not retry, rate-limit or enforce the caller's overall
deadline: the worker runtime owns those, so each adapter stays a translation layer.

The adapter is given a ``workers.http_client.HttpClient`` that the worker creates once
and reuses (connection pooling) with the provider's timeouts already set.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import ClassVar
from urllib.parse import urlsplit

from shared import errors
from shared.kind_spec import KindSpec
from shared.models import (
    Capability,
    ChatRequest,
    ChatResult,
    EmbedRequest,
    EmbedResult,
    ModelInfo,
    TextDelta,
)
from shared.redact import redact
from workers.config_record import ProviderRecord
from workers.http_client import HttpClient, TransportFailure
from workers.providers.registry import kind_spec

__all__ = ["ProviderAdapter", "display_url", "transport_error"]


class ProviderAdapter(abc.ABC):
    kind: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]]

    def __init__(
        self, name: str, config: ProviderRecord, secret: str | None, client: HttpClient
    ) -> None:
        self.name = name
        self.config = config
        self._secret = secret
        self.client = client
        # Called with (status, headers, quota_exhausted_s(headers), body_retry_after_s(body)) of
        # every provider response: the worker's rate limiter learns the provider's own limits.
        self.on_response: Callable[[int, Mapping[str, str], float | None, float | None], None] | None = None

    @property
    def spec(self) -> KindSpec:
        """This adapter's kind declaration (key header, paths, capabilities)."""
        return kind_spec(self.kind)

    def observe(self, status: int, headers: Mapping[str, str], body: bytes | None = None) -> None:
        """Report one response to the rate limiter; ``body`` is an error reply's body, if read."""
        if self.on_response is not None:
            hint = self.body_retry_after_s(body) if body else None
            self.on_response(status, headers, self.quota_exhausted_s(headers), hint)

    def body_retry_after_s(self, body: bytes) -> float | None:
        """The wait an error body asks for, for kinds that put it there rather than in a
        Retry-After header (Gemini's RetryInfo); None for the rest."""
        return None

    def quota_exhausted_s(self, headers: Mapping[str, str]) -> float | None:
        """How long this provider's own rate-limit headers say its request quota stays used up;
        None when they do not say so (each kind reads its own headers)."""
        return None

    @abc.abstractmethod
    async def chat(self, request: ChatRequest) -> ChatResult:
        """One non-streamed completion."""

    @abc.abstractmethod
    def stream_chat(self, request: ChatRequest) -> AsyncGenerator[TextDelta | ChatResult, None]:
        """Yield each ``TextDelta`` as the provider sends it, then exactly one ``ChatResult``.

        A stream that ends without the provider's end marker raises
        ``errors.StreamInterrupted``; it never ends quietly with part of the answer.
        Callers close the generator (``contextlib.aclosing``) so an abandoned stream
        releases its provider connection at once, not at garbage collection.
        """

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        raise errors.Unsupported(f"embed is not supported by {self.kind}", provider=self.name)

    @abc.abstractmethod
    async def list_models(self) -> list[ModelInfo]:
        """The models this provider offers. Must be cheap: a listing, never a paid call."""

    def configured_models(self) -> list[ModelInfo]:
        """The models named in providers.json, for health reports before any listing."""
        return [ModelInfo(id=m.id, capabilities=list(m.capabilities), capability_source="config")
                for m in self.config.models]

    def scrub(self, text: str) -> str:
        """Remove our key (and anything key-shaped) from provider text before it travels."""
        return redact(text, (self._secret,) if self._secret else ())

    def transport_error(self, exc: TransportFailure, *, text_sent: bool = False) -> errors.LLMCallerError:
        return transport_error(exc, self.name, text_sent=text_sent, url=display_url(self.config.base_url))


def display_url(base_url: str) -> str:
    """A base URL fit for messages: scheme, host, port and path; never userinfo, query or fragment."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def transport_error(
    exc: TransportFailure, provider: str, *, text_sent: bool = False, url: str | None = None
) -> errors.LLMCallerError:
    """Map a request that got no (complete) HTTP answer to the taxonomy.

    ``text_sent``: a stream had already forwarded text. Only then is a connection closed
    mid-response ``stream_interrupted``; before the first chunk it is a plain, retryable
    ``provider_error`` (the caller holds nothing, so a retry or a fallback is safe).
    The message names the kind of failure, and ``url`` (from ``display_url``) when given:
    transport messages are not shown, as they can include a URL with credentials in it.
    """
    if exc.kind in ("connect_timeout", "read_timeout"):
        what = "connecting to" if exc.kind == "connect_timeout" else "waiting for"
        return errors.Timeout(f"timed out {what} {provider}", provider=provider)
    if exc.kind == "protocol":
        if text_sent:
            return errors.StreamInterrupted(f"{provider} closed the connection mid-stream", provider=provider)
        return errors.ProviderError(f"{provider} closed the connection before a complete response",
                                    provider=provider)
    if exc.kind == "other":
        return errors.ProviderError(f"HTTP error talking to {provider}: {exc}", provider=provider)
    where = f" at {url}" if url else ""
    return errors.ConnectionFailed(f"cannot reach {provider}{where}: {exc.reason or 'connection failed'}",
                                   provider=provider)
