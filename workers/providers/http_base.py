"""The generic JSON-over-HTTP adapter base and the helpers every HTTP provider adapter shares.

Provider text cleanup, error building, the common ``{"error": {...}}`` body and status
maps, stream bookkeeping, and ``HttpAdapter`` (requests, SSE or other streams, error capture).
Wire formats build on it: ``openai_compatible`` (OpenAI, LM Studio) and each kind's own
``adapter.py`` for native APIs.
"""

from __future__ import annotations

import abc
import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from shared import errors
from shared.models import Capability, CapabilitySource, ChatResult, ModelInfo, Usage, capabilities_by_name
from workers.http_client import Reply, TransportFailure
from workers.providers.base import ProviderAdapter
from workers.retry_hints import HeadersLike, should_retry
from workers.sse import SSEError, SSEEvent, iter_sse

__all__ = [
    "MAX_ERROR_BODY",
    "ErrorBody",
    "ErrorClass",
    "HttpAdapter",
    "Scrub",
    "StreamState",
    "as_int",
    "build_error",
    "decode_json",
    "model_ids",
    "openai_error_class",
    "parse_openai_error_body",
    "provider_detail",
]

Scrub = Callable[[str], str]
T = TypeVar("T")
ErrorClass = type[errors.LLMCallerError]

# ---------------------------------------------------------------- shared helpers

MAX_ERROR_BODY = 64 * 1024  # an error body longer than this is noise, not diagnosis
_MAX_DETAIL = 300
# A base URL may carry credentials in its userinfo, and an error page may echo it.
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://\S+")

_WHAT: dict[ErrorClass, str] = {
    errors.AuthError: "rejected the API key",
    errors.PermissionDenied: "refused access to this model or feature",
    errors.InvalidRequest: "rejected the request as invalid",
    errors.ContextLengthExceeded: "says the prompt does not fit the model's context window",
    errors.NotFound: "does not know this model or endpoint",
    errors.QuotaExhausted: "says the account's quota or credit is used up",
    errors.RateLimited: "is rate limiting requests",
    errors.Overloaded: "is overloaded",
    errors.ProviderError: "failed on its side",
    errors.Timeout: "timed out handling the request",
}


def provider_detail(text: str, scrub: Scrub) -> str:
    """Provider text made safe to show: key-free, URL-free, one line, bounded."""
    text = _URL.sub("[url]", scrub(" ".join(text.split())))
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


def decode_json(body: bytes | str) -> Any:
    """The decoded JSON value, or None when the body is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def build_error(
    cls: ErrorClass, provider: str, status: int, detail: str, *, retry_after: float | None = None
) -> errors.LLMCallerError:
    where = f"HTTP {status}" if status >= 300 else "reported in the response body"
    message = f"{provider} {_WHAT.get(cls, 'reported an error')} ({where})"
    if detail:
        message += f": {detail}"
    # A wait hint only means something for errors that are worth retrying.
    hint = retry_after if issubclass(cls, errors.TransientError) else None
    return cls(message, provider=provider, retry_after_s=hint)


def as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(slots=True)
class StreamState:
    """What a stream has produced so far, so any failure can carry the partial text."""

    provider: str
    model: str
    parts: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    # The stream's end marker arrived: only the body's own end may follow (see ``stream_items``).
    ended: bool = False

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def result(self) -> ChatResult:
        """The finished answer; called once the end marker arrived, so it also marks the stream ended."""
        self.ended = True
        return ChatResult(self.text, self.model, self.finish_reason, self.usage)

    def attach(self, err: errors.LLMCallerError) -> errors.LLMCallerError:
        """``err`` with what the stream produced: the text sent so far and any usage the provider reported."""
        if self.parts:
            err.partial_text = self.text
        if self.usage.input_tokens is not None or self.usage.output_tokens is not None:
            err.usage = self.usage.to_wire()  # what the call cost so far (gateway.pricing)
        return err

    def broken(self, what: str) -> errors.LLMCallerError:
        """A bad stream payload. Once text reached the caller this is an interruption
        (the caller holds half an answer); before that it is a plain provider error."""
        if self.parts:
            message = f"{self.provider} {what}; the stream was cut short"
            return self.attach(errors.StreamInterrupted(message, provider=self.provider))
        return self.attach(errors.ProviderError(f"{self.provider} {what}", provider=self.provider))

    def interrupted(self) -> errors.LLMCallerError:
        """The stream ended without its end marker: interrupted once text went out, else a provider error."""
        if not self.parts:
            return self.attach(errors.ProviderError(f"{self.provider} ended the stream before sending any text",
                                                    provider=self.provider))
        message = f"{self.provider} ended the stream without its end marker; the answer may be incomplete"
        return self.attach(errors.StreamInterrupted(message, provider=self.provider))


# ---------------------------------------------------------------- JSON error bodies
# OpenAI's {"error": {message, type, code}} shape, which most HTTP APIs (Anthropic, LM Studio) follow.


@dataclass(frozen=True, slots=True)
class ErrorBody:
    message: str  # raw provider text: scrub before showing
    type: str = ""
    code: str = ""


def parse_openai_error_body(body: bytes) -> ErrorBody:
    """``{"error": {message, type, code}}``, a bare ``{"error": "text"}``, or anything else."""
    data = decode_json(body)
    if not isinstance(data, dict):
        text = body.decode("utf-8", errors="replace").strip()
        return ErrorBody("" if text.startswith("<") else text)  # an HTML error page says nothing useful
    err = data.get("error")
    if isinstance(err, dict):
        fields = (str(err.get(key) or "") for key in ("message", "type", "code"))
        return ErrorBody(*fields)
    if isinstance(err, str):
        return ErrorBody(err)
    return ErrorBody(str(data.get("message") or data.get("detail") or ""))


_BY_STATUS: dict[int, ErrorClass] = {
    400: errors.InvalidRequest,
    401: errors.AuthError,
    403: errors.PermissionDenied,
    404: errors.NotFound,
    408: errors.Timeout,
    409: errors.ProviderError,
    413: errors.InvalidRequest,
    422: errors.InvalidRequest,
    429: errors.RateLimited,
    500: errors.ProviderError,
    502: errors.ProviderError,
    503: errors.Overloaded,
    504: errors.Timeout,
}

# Without an error status (an in-stream error, a 200 carrying an error) only the body says.
_BY_CODE: dict[str, ErrorClass] = {
    "context_length_exceeded": errors.ContextLengthExceeded,
    "insufficient_quota": errors.QuotaExhausted,
    "rate_limit_exceeded": errors.RateLimited,
    "invalid_api_key": errors.AuthError,
    "model_not_found": errors.NotFound,
    "invalid_request_error": errors.InvalidRequest,
    "authentication_error": errors.AuthError,
    "permission_error": errors.PermissionDenied,
    "not_found_error": errors.NotFound,
    "rate_limit_error": errors.RateLimited,
    "server_error": errors.ProviderError,
}


def openai_error_class(status: int, type_: str, code: str) -> ErrorClass:
    if status < 400:
        return _BY_CODE.get(code) or _BY_CODE.get(type_) or errors.ProviderError
    if status == 429 and "insufficient_quota" in (code, type_):
        return errors.QuotaExhausted  # billing: waiting will not help
    cls = _BY_STATUS.get(status) or (errors.ProviderError if status >= 500 else errors.InvalidRequest)
    if cls is errors.InvalidRequest and "context_length_exceeded" in (code, type_):
        return errors.ContextLengthExceeded
    return cls


# ---------------------------------------------------------------- the base adapter


class HttpAdapter(ProviderAdapter):
    """JSON-over-HTTP plumbing shared by every adapter: requests, streams, error capture."""

    @abc.abstractmethod
    def headers(self, accept: str = "application/json") -> dict[str, str]:
        """Request headers, including the provider's auth."""

    @abc.abstractmethod
    def map_error(self, status: int, headers: HeadersLike, body: bytes) -> errors.LLMCallerError:
        """This provider's error mapping, bound to its name and scrubber."""

    def http_error(self, status: int, headers: HeadersLike, body: bytes) -> errors.LLMCallerError:
        """The mapped error, carrying the provider's x-should-retry verdict when it gave one."""
        error = self.map_error(status, headers, body)
        error.should_retry = should_retry(headers)
        return error

    def bad_payload(self, what: str) -> errors.ProviderError:
        return errors.ProviderError(f"{self.name} returned {what}", provider=self.name)

    async def request_json(
        self, method: str, url: str, payload: dict[str, Any] | None = None, traceparent: str | None = None
    ) -> Any:
        """Send one request; return the decoded JSON of a success or raise the mapped error."""
        content = orjson.dumps(payload) if payload is not None else None
        try:
            headers = self.headers()
            if traceparent:
                headers["traceparent"] = traceparent
            reply = await self.client.fetch(method, url, headers=headers, content=content)
        except TransportFailure as exc:
            # "from None": keep the transport's own exception (it may name the URL) out of the chain.
            raise self.transport_error(exc) from None
        self.observe(reply.status, reply.headers, None if reply.ok else reply.body)
        if not reply.ok:
            raise self.http_error(reply.status, reply.headers, reply.body)
        data = decode_json(reply.body)
        if isinstance(data, dict) and data.get("error"):
            raise self.http_error(reply.status, reply.headers, reply.body)
        if data is None:
            raise self.bad_payload("a response that is not JSON")
        return data

    def sse_events(
        self, url: str, payload: dict[str, Any], state: StreamState, traceparent: str | None = None
    ) -> AsyncGenerator[SSEEvent, None]:
        """POST a streaming request and yield its SSE events as they arrive (see ``stream_items``)."""
        return self.stream_items(url, payload, state, traceparent, parse=iter_sse)

    async def stream_items(
        self, url: str, payload: dict[str, Any], state: StreamState, traceparent: str | None = None, *,
        parse: Callable[[AsyncIterator[bytes]], AsyncIterator[T]], media_type: str = "text/event-stream",
        what: str = "an event stream",
    ) -> AsyncGenerator[T, None]:
        """POST a streaming request and yield what ``parse`` makes of its body as it arrives.

        ``media_type`` is the stream's (SSE for most APIs; Ollama's NDJSON), ``what`` names it in
        errors. A transport failure or an ``SSEError`` from ``parse`` (a line over the size cap)
        becomes the taxonomy error for how far the stream got (``state``). Callers wrap this in
        ``contextlib.aclosing`` so the connection closes as soon as they stop reading (end
        marker, error, or the consumer going away). Once the adapter saw the end marker
        (``state.ended``), the client may wait a moment for the body's end so the connection is
        kept for the next call instead of closed (before, nearly every stream's connection was
        closed and the next call connected again: 270 connects for 305 streams).
        """
        body = orjson.dumps(payload)
        headers = self.headers(media_type)
        if traceparent:
            headers["traceparent"] = traceparent
        try:
            async with self.client.open("POST", url, headers=headers, content=body) as reply:
                await self.check_stream_start(reply, media_type, what)
                try:
                    async for item in parse(reply.chunks()):
                        yield item
                finally:
                    if state.ended:
                        reply.expect_end()
        except TransportFailure as exc:
            raise state.attach(self.transport_error(exc, text_sent=bool(state.parts))) from None
        except SSEError as exc:
            raise state.broken(f"sent an unusable stream ({exc})") from None

    async def check_stream_start(
        self, reply: Reply, media_type: str = "text/event-stream", what: str = "an event stream"
    ) -> None:
        """Raise the mapped error when a stream request was answered with an error instead."""
        if not reply.ok:
            body = await reply.read(MAX_ERROR_BODY)
            self.observe(reply.status, reply.headers, body)
            raise self.http_error(reply.status, reply.headers, body)
        self.observe(reply.status, reply.headers)
        content_type = reply.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "application/json":
            # Not a stream at all, e.g. LM Studio answers an unknown endpoint with 200 and JSON.
            body = await reply.read(MAX_ERROR_BODY)
            data = decode_json(body)
            if isinstance(data, dict) and data.get("error"):
                raise self.http_error(reply.status, reply.headers, body)
            raise self.bad_payload("a plain JSON answer to a streaming request")
        if content_type and content_type != media_type:
            # An HTML page from a proxy, a captive portal or a wrong base URL, sent with 200.
            raise self.bad_payload(f"a {content_type[:60]} page instead of {what} (HTTP {reply.status})")

    def configured(self, model_id: str) -> bool:
        return any(m.id == model_id for m in self.config.models)

    def model_info(
        self, model_id: str, derived: list[Capability] | None = None, source: CapabilitySource = "server",
        **extra: Any,
    ) -> ModelInfo:
        """Capabilities from providers.json when configured (the operator knows best), else
        ``derived`` (from ``source``), else guessed from the id; the result says which."""
        configured = next((m for m in self.config.models if m.id == model_id), None)
        if configured is not None:
            capabilities, source = list(configured.capabilities), "config"
        elif derived is not None:
            capabilities = list(derived)
        else:
            capabilities, source = capabilities_by_name(model_id), "name"
        return ModelInfo(id=model_id, capabilities=capabilities, capability_source=source, **extra)


def model_ids(data: Any, adapter: HttpAdapter) -> list[str]:
    """The ids of a ``{"data": [{"id": ...}, ...]}`` listing (OpenAI, Anthropic, LM Studio)."""
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise adapter.bad_payload("an unreadable model list")
    return [item["id"] for item in items if isinstance(item, dict) and isinstance(item.get("id"), str)]
