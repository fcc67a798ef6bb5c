"""The OpenAI-compatible wire format: chat completions (plain and streamed), embeddings, model listing.

OpenAI itself and servers that copy its API (LM Studio) subclass ``OpenAICompatibleAdapter``;
each kind's folder sets its name, capabilities and quirks.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, ClassVar

from shared import errors
from shared.models import ChatRequest, ChatResult, EmbedRequest, EmbedResult, ModelInfo, TextDelta
from workers.providers import openai_chat_parts as parts
from workers.providers.http_base import (
    HttpAdapter,
    Scrub,
    StreamState,
    as_int,
    build_error,
    decode_json,
    model_ids,
    openai_error_class,
    parse_openai_error_body,
    provider_detail,
)
from workers.retry_hints import HeadersLike, openai_reset_s, parse_duration, retry_after_s
from workers.sse import SSEEvent

__all__ = ["OpenAICompatibleAdapter", "map_openai_error"]


def map_openai_error(
    status: int, headers: HeadersLike, body: bytes, provider: str, scrub: Scrub
) -> errors.LLMCallerError:
    """One OpenAI failure (HTTP status, headers, body) as exactly one taxonomy error."""
    info = parse_openai_error_body(body)
    cls = openai_error_class(status, info.type, info.code)
    hint = retry_after_s(headers)
    if hint is None and cls is errors.RateLimited:
        hint = openai_reset_s(headers)
    return build_error(cls, provider, status, provider_detail(info.message, scrub), retry_after=hint)


class OpenAICompatibleAdapter(HttpAdapter):
    """The OpenAI wire format; a kind that speaks it subclasses this and sets ``kind`` and ``capabilities``."""

    # OpenAI deprecated max_tokens for chat completions and its reasoning models reject it.
    max_tokens_field: ClassVar[str] = "max_completion_tokens"

    @property
    def api_base(self) -> str:
        return self.config.base_url  # already includes the version path, e.g. .../v1

    def headers(self, accept: str = "application/json") -> dict[str, str]:
        return {"accept": accept, "content-type": "application/json", **self.spec.auth_headers(self._secret)}

    def quota_exhausted_s(self, headers: Mapping[str, str]) -> float | None:
        """``x-ratelimit-remaining-requests: 0`` lasts until ``x-ratelimit-reset-requests`` (e.g. "1m30s")."""
        lowered = {k.lower(): v for k, v in headers.items()}
        if lowered.get("x-ratelimit-remaining-requests") != "0":
            return None
        return parse_duration(lowered.get("x-ratelimit-reset-requests"))

    def map_error(self, status: int, headers: HeadersLike, body: bytes) -> errors.LLMCallerError:
        return map_openai_error(status, headers, body, self.name, self.scrub)

    def chat_payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": request.model,
            "messages": [
                {"role": m.role, "content": m.content}
                if m.tool_calls is None and m.role != "tool" and isinstance(m.content, str)
                else parts.wire_message(m)
                for m in request.messages
            ],
        }
        if request.max_tokens is not None:
            payload[self.max_tokens_field] = request.max_tokens
        if request.temperature is not None:
            payload["temperature"] = request.temperature
        if _has_extras(request):
            parts.request_extras(request, payload)
        if stream:
            payload["stream"] = True
            payload["stream_options"] = {"include_usage": True}  # a last chunk then carries usage
        return payload

    async def chat(self, request: ChatRequest) -> ChatResult:
        url = f"{self.api_base}/chat/completions"
        data = await self.request_json("POST", url, self.chat_payload(request, stream=False), request.traceparent)
        try:
            choice = data["choices"][0]
            message = choice["message"]
            content = message.get("content") or ""  # null when the model refused or called a tool
            finish = choice.get("finish_reason")
        except (KeyError, IndexError, TypeError, AttributeError):
            raise self.bad_payload("an unreadable chat completion") from None
        if not isinstance(content, str):
            raise self.bad_payload("an unreadable chat completion")
        if not content and isinstance(message.get("refusal"), str):
            content = message["refusal"]  # the model declined (e.g. a schema it will not fill): say why
        model = data.get("model") if isinstance(data.get("model"), str) else request.model
        result = ChatResult(content, model, parts.finish_reason(finish), parts.usage(data.get("usage")))
        if message.get("tool_calls"):
            result.tool_calls = parts.parse_tool_calls(message["tool_calls"], self.name)
        if request.reasoning is not None and request.reasoning.include_thoughts:
            result.reasoning = _thoughts(message)
        return result

    async def stream_chat(self, request: ChatRequest) -> AsyncGenerator[TextDelta | ChatResult, None]:
        url = f"{self.api_base}/chat/completions"
        state = _OpenAIStream(self.name, request.model)
        events_source = self.sse_events(url, self.chat_payload(request, stream=True), state, request.traceparent)
        async with aclosing(events_source) as events:
            async for event in events:
                if event.data.strip() == "[DONE]":
                    yield state.finish(request)
                    return
                text = self._on_event(event, state)
                if text:
                    yield TextDelta(text)
        raise state.interrupted()

    def _on_event(self, event: SSEEvent, state: _OpenAIStream) -> str:
        """Record one chunk; return its new text ("" when it carries none)."""
        chunk = decode_json(event.data)
        if not isinstance(chunk, dict):
            raise state.broken("sent a stream event that is not valid JSON")
        if event.event == "error" or chunk.get("error"):
            raise state.attach(self.map_error(200, {}, event.data.encode()))
        if isinstance(chunk.get("model"), str):
            state.model = chunk["model"]
        if isinstance(chunk.get("usage"), dict):
            state.usage = parts.usage(chunk["usage"])
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return ""  # the usage chunk has "choices": []
        choice = choices[0]
        if isinstance(choice.get("finish_reason"), str):
            state.finish_reason = parts.finish_reason(choice["finish_reason"])
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            return ""
        content = delta.get("content")
        if isinstance(content, str) and content:
            state.parts.append(content)
            return content
        if delta.get("tool_calls"):  # fragments, put together at the end, never sent as text
            state.tool_calls.add(delta["tool_calls"])
        elif thought := _thoughts(delta):
            state.thoughts.append(thought)
        return ""

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        # Ask for floats explicitly: the official SDK defaults to base64.
        payload = {"model": request.model, "input": request.inputs, "encoding_format": "float"}
        data = await self.request_json("POST", f"{self.api_base}/embeddings", payload, request.traceparent)
        vectors = self._vectors(data, len(request.inputs))
        model = data.get("model") if isinstance(data.get("model"), str) else request.model
        return EmbedResult(vectors, model, parts.usage(data.get("usage")))

    def _vectors(self, data: Any, expected: int) -> list[list[float]]:
        """Vectors in input order: the API tags each with ``index`` and does not promise order."""
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise self.bad_payload("unreadable embeddings")
        by_index: dict[int, list[float]] = {}
        for position, item in enumerate(items):
            index = as_int(item.get("index", position)) if isinstance(item, dict) else None
            vector = item.get("embedding") if isinstance(item, dict) else None
            if index is None or not isinstance(vector, list):
                raise self.bad_payload("unreadable embeddings")
            by_index[index] = vector
        if sorted(by_index) != list(range(expected)):
            raise self.bad_payload(f"{len(by_index)} embeddings for {expected} inputs")
        return [by_index[i] for i in range(expected)]

    async def list_models(self) -> list[ModelInfo]:
        data = await self.request_json("GET", f"{self.api_base}/models")
        return [self.model_info(model_id) for model_id in model_ids(data, self)]


def _has_extras(request: ChatRequest) -> bool:
    """Whether the call uses a sampling parameter, tools, a response format or reasoning (a plain
    text chat does not: plain attribute checks, cheaper than building ``Sampling.given()``)."""
    s = request.sampling
    return (s.stop is not None or s.top_p is not None or s.seed is not None or s.presence_penalty is not None
            or s.frequency_penalty is not None or request.tools is not None or request.tool_choice is not None
            or request.response_format is not None or request.reasoning is not None)


def _thoughts(message: dict[str, Any]) -> str | None:
    """Thinking text where a server gives it (LM Studio: ``reasoning_content``, or ``reasoning`` for gpt-oss)."""
    for key in ("reasoning_content", "reasoning"):
        if isinstance(message.get(key), str) and message[key]:
            return str(message[key])
    return None


@dataclass(slots=True)
class _OpenAIStream(StreamState):
    """A stream's state plus the tool-call fragments and thinking text it carried."""

    tool_calls: parts.ToolCallFragments = field(default_factory=parts.ToolCallFragments)
    thoughts: list[str] = field(default_factory=list)

    def finish(self, request: ChatRequest) -> ChatResult:
        result = self.result()
        result.tool_calls = self.tool_calls.calls(self.provider)
        if self.thoughts and request.reasoning is not None and request.reasoning.include_thoughts:
            result.reasoning = "".join(self.thoughts)
        return result
