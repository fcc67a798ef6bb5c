"""The Anthropic adapter: the Messages API (plain and streamed) and model listing.

Anthropic has no embeddings endpoint, so ``embed`` keeps the base class's ``Unsupported``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import Any
from urllib.parse import urlencode

from shared import errors
from shared.models import ChatRequest, ChatResult, Message, ModelInfo, TextDelta, Usage
from workers.config_record import ProviderRecord
from workers.http_client import HttpClient
from workers.providers.anthropic.kind import API_VERSION, KIND, STRUCTURED_OUTPUT
from workers.providers.anthropic.listing import card_facts
from workers.providers.anthropic.replies import BadBlock, BlockLog, finish_reason, read_blocks, usage
from workers.providers.anthropic.wire import add_features, forced_json, wire_messages
from workers.providers.http_base import (
    ErrorClass,
    HttpAdapter,
    Scrub,
    StreamState,
    build_error,
    decode_json,
    model_ids,
    openai_error_class,
    parse_openai_error_body,
    provider_detail,
)
from workers.retry_hints import HeadersLike, retry_after_s

__all__ = ["DEFAULT_MAX_TOKENS", "AnthropicAdapter", "anthropic_error_class", "map_anthropic_error"]

# The API refuses a request without max_tokens; this default suits a chat answer.
DEFAULT_MAX_TOKENS = 1024
_MAX_LISTING_PAGES = 10  # a listing is a health probe: bounded, never a crawl

_BY_TYPE: dict[str, ErrorClass] = {
    "invalid_request_error": errors.InvalidRequest,
    "authentication_error": errors.AuthError,
    "billing_error": errors.QuotaExhausted,
    "permission_error": errors.PermissionDenied,
    "not_found_error": errors.NotFound,
    "request_too_large": errors.InvalidRequest,
    "rate_limit_error": errors.RateLimited,
    "api_error": errors.ProviderError,
    "timeout_error": errors.Timeout,
    "overloaded_error": errors.Overloaded,
}
_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
# Anthropic reports an over-long prompt as a plain invalid_request_error; only the words differ.
_CONTEXT = re.compile(r"prompt is too long|context (?:window|length|limit)", re.IGNORECASE)


def anthropic_error_class(status: int, type_: str, message: str) -> ErrorClass:
    """The body's error type decides (it is all an in-stream error has); else the status."""
    kind = type_ if type_ in _BY_TYPE else _TYPE_BY_STATUS.get(status)
    if kind is None:
        return openai_error_class(status, "", "")  # generic HTTP mapping for anything else
    if kind == "invalid_request_error" and _CONTEXT.search(message):
        return errors.ContextLengthExceeded
    return _BY_TYPE[kind]


def map_anthropic_error(
    status: int, headers: HeadersLike, body: bytes, provider: str, scrub: Scrub
) -> errors.LLMCallerError:
    """One Anthropic failure (HTTP error or in-stream ``event: error``) as one taxonomy error."""
    info = parse_openai_error_body(body)  # {"type": "error", "error": {type, message}} fits the same parser
    cls = anthropic_error_class(status, info.type, info.message)
    detail = provider_detail(info.message, scrub)
    return build_error(cls, provider, status, detail, retry_after=retry_after_s(headers))


class AnthropicAdapter(HttpAdapter):
    kind = KIND.name
    capabilities = KIND.capabilities
    # Per model, whether the listing said it has native structured output (filled by list_models).
    _native_json: dict[str, bool]

    def __init__(self, name: str, config: ProviderRecord, secret: str | None, client: HttpClient) -> None:
        super().__init__(name, config, secret, client)
        self._native_json = {}

    def headers(self, accept: str = "application/json") -> dict[str, str]:
        headers = {
            "accept": accept,
            "content-type": "application/json",
            "anthropic-version": str(self.config.option(API_VERSION)),
            **self.spec.auth_headers(self._secret),
        }
        return headers

    def quota_exhausted_s(self, headers: Mapping[str, str]) -> float | None:
        """``anthropic-ratelimit-requests-remaining: 0``: its reset is a timestamp, so a short
        pause, enough to stop a stampede."""
        lowered = {k.lower(): v for k, v in headers.items()}
        return 1.0 if lowered.get("anthropic-ratelimit-requests-remaining") == "0" else None

    def map_error(self, status: int, headers: HeadersLike, body: bytes) -> errors.LLMCallerError:
        return map_anthropic_error(status, headers, body, self.name, self.scrub)

    def messages_payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        messages = _plain_messages(request.messages)
        payload: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens if request.max_tokens is not None else DEFAULT_MAX_TOKENS,
            "messages": messages if messages is not None else wire_messages(request.messages),
        }
        system = _system_prompt(request.messages)
        if system:
            payload["system"] = system  # the Messages API has no "system" role
        if request.temperature is not None:
            payload["temperature"] = request.temperature
        sampling = request.sampling
        if sampling.stop:
            payload["stop_sequences"] = sampling.stop
        if sampling.top_p is not None:
            payload["top_p"] = sampling.top_p
        if request.tools or request.response_format or request.reasoning:
            add_features(payload, request, str(self.config.option(STRUCTURED_OUTPUT)),
                         self._native_json.get(request.model))
        if stream:
            payload["stream"] = True
        return payload

    async def chat(self, request: ChatRequest) -> ChatResult:
        url = f"{self.config.base_url}/v1/messages"
        payload = self.messages_payload(request, stream=False)
        data = await self.request_json("POST", url, payload, request.traceparent)
        blocks = data.get("content") if isinstance(data, dict) else None
        if not isinstance(blocks, list):
            raise self.bad_payload("an unreadable message")
        json_tool = forced_json(payload)
        try:
            reply = read_blocks(blocks, json_tool=json_tool, include_thoughts=_thoughts(request))
        except BadBlock as exc:
            raise self.bad_payload(str(exc)) from None
        model = data.get("model") if isinstance(data.get("model"), str) else request.model
        return ChatResult(reply.text, model, finish_reason(data.get("stop_reason"), json_tool=json_tool),
                          usage(data.get("usage"), Usage()), reply.tool_calls, reply.thinking)

    async def stream_chat(self, request: ChatRequest) -> AsyncGenerator[TextDelta | ChatResult, None]:
        url = f"{self.config.base_url}/v1/messages"
        state = StreamState(self.name, request.model)
        payload = self.messages_payload(request, stream=True)
        events_of = _Events(forced_json(payload), _thoughts(request))
        async with aclosing(self.sse_events(url, payload, state, request.traceparent)) as events:
            async for event in events:
                data = decode_json(event.data)
                if not isinstance(data, dict):
                    raise state.broken("sent a stream event that is not valid JSON")
                name = event.event if event.event != "message" else str(data.get("type", ""))
                if name == "message_stop":
                    yield self._final(state, events_of)
                    return
                text = self._on_event(name, data, state, event.data, events_of)
                if text:
                    yield TextDelta(text)
        raise state.interrupted()

    def _final(self, state: StreamState, events_of: _Events) -> ChatResult:
        result = state.result()
        if events_of.log.blocks:
            try:
                reply = events_of.log.reply(json_tool=False, include_thoughts=events_of.include_thoughts)
            except BadBlock as exc:
                raise state.broken(f"sent {exc}") from None
            result.tool_calls, result.reasoning = reply.tool_calls, reply.thinking
        if events_of.json_tool and result.finish_reason == "tool_calls":
            result.finish_reason = "stop"
        return result

    def _on_event(self, name: str, data: dict[str, Any], state: StreamState, raw: str,
                  events_of: _Events) -> str:
        """Record one stream event; return its new text ("" when it carries none)."""
        if name == "error":
            # Arrives after a 200: same types as the HTTP errors, and it carries what was sent so far.
            raise state.attach(self.map_error(200, {}, raw.encode()))
        if name == "message_start" and isinstance(data.get("message"), dict):
            message = data["message"]
            if isinstance(message.get("model"), str):
                state.model = message["model"]
            state.usage = usage(message.get("usage"), state.usage)
        elif name == "message_delta":
            delta = data.get("delta")
            if isinstance(delta, dict) and "stop_reason" in delta:
                state.finish_reason = finish_reason(delta["stop_reason"])
            state.usage = usage(data.get("usage"), state.usage)  # cumulative counts
        elif name == "content_block_start" and not events_of.json_tool:
            events_of.log.start(data.get("index"), data.get("content_block"))
        elif name == "content_block_delta":
            delta = data.get("delta")
            if not isinstance(delta, dict):
                return ""
            # Text is answer text, and so is the forced JSON tool's input; tool input and
            # thinking are logged for the final result; signatures are not ours to keep.
            kind = delta.get("type")
            text = delta.get("text") if kind == "text_delta" else (
                delta.get("partial_json") if kind == "input_json_delta" and events_of.json_tool else None)
            if isinstance(text, str) and text:
                state.parts.append(text)
                return text
            events_of.log.delta(data.get("index"), delta)
        # ping, content_block_stop and event types added later carry nothing we need.
        return ""

    async def list_models(self) -> list[ModelInfo]:
        cards: list[dict[str, Any]] = []
        after: str | None = None
        for _ in range(_MAX_LISTING_PAGES):
            query = urlencode({"limit": 1000, **({"after_id": after} if after else {})})
            data = await self.request_json("GET", f"{self.config.base_url}/v1/models?{query}")
            ids = set(model_ids(data, self))
            cards += [c for c in data["data"] if isinstance(c, dict) and c.get("id") in ids]
            last = data.get("last_id")
            if not data.get("has_more") or not isinstance(last, str) or last == after:
                break
            after = last
        # No embedding models at Anthropic: every listed model is a chat model.
        models: list[ModelInfo] = []
        for card in cards:
            facts = card_facts(card)
            if facts.native_json is not None:
                self._native_json[card["id"]] = facts.native_json
            models.append(self.model_info(card["id"], ["chat", "chatStream"], "kind", features=facts.features,
                                          context_length=facts.context_length,
                                          max_output_tokens=facts.max_output_tokens))
        return models


class _Events:
    """What one stream needs besides ``StreamState``: its non-text blocks and how to read them."""

    __slots__ = ("include_thoughts", "json_tool", "log")

    def __init__(self, json_tool: bool, include_thoughts: bool) -> None:
        self.json_tool, self.include_thoughts, self.log = json_tool, include_thoughts, BlockLog()


def _plain_messages(messages: list[Message]) -> list[dict[str, Any]] | None:
    """The conversation as role and text, or None when a message carries more (parts, tool calls
    or results): one pass, so a plain chat costs what it did."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            continue
        if m.role == "tool" or m.tool_calls or not isinstance(m.content, str):
            return None
        out.append({"role": m.role, "content": m.content})
    return out


def _thoughts(request: ChatRequest) -> bool:
    return request.reasoning is not None and request.reasoning.include_thoughts


def _system_prompt(messages: list[Message]) -> str:
    return "\n\n".join(m.text for m in messages if m.role == "system" and m.text)

