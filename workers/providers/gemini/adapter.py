"""The Gemini adapter: Google's native API (v1beta) for chat, streamed chat, embeddings and models.

``models/{m}:generateContent`` answers a chat, ``:streamGenerateContent?alt=sse`` streams
one GenerateContentResponse per ``data:`` line (there is no end marker: the last chunk
carries the ``finishReason``), ``:batchEmbedContents`` embeds many texts in one call in
input order, and ``GET models`` lists models page by page. The key travels in the
``x-goog-api-key`` header, never in the URL.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any
from urllib.parse import quote, urlencode

from shared import errors
from shared.chat_parts import FEATURES, Feature
from shared.models import (
    Capability,
    ChatRequest,
    ChatResult,
    EmbedRequest,
    EmbedResult,
    ModelInfo,
    TextDelta,
    Usage,
)
from workers.providers.gemini import wire
from workers.providers.gemini.error_map import map_gemini_error, parse_google_error, retry_delay_s
from workers.providers.gemini.kind import KIND
from workers.providers.gemini.request import generate_payload
from workers.providers.http_base import HttpAdapter, StreamState, as_int, decode_json
from workers.retry_hints import HeadersLike

__all__ = ["GeminiAdapter", "model_path"]

_MAX_LISTING_PAGES = 10  # a listing is a health probe: bounded, never a crawl
_RESOURCE_PREFIXES = ("models/", "tunedModels/")


def model_path(model: str) -> str:
    """The resource name of ``model`` for a URL: ``models/ID`` (the id escaped, so it stays one segment)."""
    for prefix in _RESOURCE_PREFIXES:
        if model.startswith(prefix):
            return prefix + quote(model[len(prefix):], safe="")
    return "models/" + quote(model, safe="")


def _with_extras(result: ChatResult, extra: wire.CandidateParts, request: ChatRequest) -> ChatResult:
    """``result`` with the function calls the model made and, when the call asked, its thoughts."""
    if extra.tool_calls:
        result.tool_calls = extra.tool_calls
    if extra.thoughts and request.reasoning is not None and request.reasoning.include_thoughts:
        result.reasoning = "".join(extra.thoughts)
    return result


def _features(capabilities: list[Capability], thinking: Any) -> list[Feature] | None:
    """What a listed chat model can do beyond text: every generateContent model takes images,
    tools and a response schema; ``thinking: true`` adds reasoning. None for other models."""
    if "chat" not in capabilities:
        return None
    return [f for f in FEATURES if f in KIND.features and (f != "reasoning" or thinking is True)]


def _capabilities(methods: Any) -> list[Capability]:
    """What a listed model can do for us, from its ``supportedGenerationMethods``."""
    names = set(methods) if isinstance(methods, list) else set()
    found: list[Capability] = []
    if "generateContent" in names:
        found += ["chat", "chatStream"]
    if names & {"embedContent", "batchEmbedContents"}:
        found.append("embed")
    return found


class GeminiAdapter(HttpAdapter):
    kind = KIND.name
    capabilities = KIND.capabilities

    def headers(self, accept: str = "application/json") -> dict[str, str]:
        return {"accept": accept, "content-type": "application/json", **self.spec.auth_headers(self._secret)}

    def map_error(self, status: int, headers: HeadersLike, body: bytes) -> errors.LLMCallerError:
        return map_gemini_error(status, headers, body, self.name, self.scrub)

    def body_retry_after_s(self, body: bytes) -> float | None:
        """A 429's ``google.rpc.RetryInfo.retryDelay``: Gemini's wait is in the body, not a header."""
        return retry_delay_s(parse_google_error(body).details)

    def url(self, model: str, method: str) -> str:
        return f"{self.config.base_url}/{model_path(model)}:{method}"

    def generate_payload(self, request: ChatRequest) -> dict[str, Any]:
        return generate_payload(request)

    async def chat(self, request: ChatRequest) -> ChatResult:
        data = await self.request_json("POST", self.url(request.model, "generateContent"),
                                       self.generate_payload(request), request.traceparent)
        if not isinstance(data, dict):
            raise self.bad_payload("an unreadable response")
        blocked = wire.block_error(data, self.name)
        if blocked is not None:
            raise blocked
        cand = wire.candidate(data)
        if cand is None:
            raise self.bad_payload("a response without candidates")
        text, extra = wire.read_candidate(cand, None)
        if extra is not None and extra.problem:
            raise self.bad_payload(extra.problem)
        version = data.get("modelVersion")
        model = version if isinstance(version, str) else request.model
        result = ChatResult(text, model, wire.finish_reason(cand, extra is not None and bool(extra.tool_calls)),
                            wire.usage(data, Usage()))
        return result if extra is None else _with_extras(result, extra, request)

    async def stream_chat(self, request: ChatRequest) -> AsyncGenerator[TextDelta | ChatResult, None]:
        url = self.url(request.model, "streamGenerateContent") + "?alt=sse"
        state = StreamState(self.name, request.model)
        extra = wire.CandidateParts()  # function calls and thoughts, added up over the chunks
        async with aclosing(
            self.sse_events(url, self.generate_payload(request), state, request.traceparent)
        ) as events:
            async for event in events:
                text = self._on_chunk(event.data, state, extra)
                if text:
                    yield TextDelta(text)
        # No end marker: a stream is complete when its last chunk said why it finished.
        if state.finish_reason is None:
            raise state.interrupted()
        yield _with_extras(state.result(), extra, request)

    def _on_chunk(self, raw: str, state: StreamState, extra: wire.CandidateParts) -> str:
        """Record one GenerateContentResponse chunk (its function calls and thoughts into
        ``extra``); return its new answer text ("" when it carries none)."""
        data = decode_json(raw)
        if not isinstance(data, dict):
            raise state.broken("sent a stream chunk that is not valid JSON")
        if data.get("error"):
            raise state.attach(self.map_error(200, {}, raw.encode()))
        state.usage = wire.usage(data, state.usage)
        if isinstance(data.get("modelVersion"), str):
            state.model = data["modelVersion"]
        cand = wire.candidate(data)
        text, _ = wire.read_candidate(cand, extra)
        if text:
            state.parts.append(text)
        if extra.problem:
            raise state.broken(f"sent {extra.problem}")
        blocked = wire.block_error(data, self.name)
        if blocked is not None:
            raise state.attach(blocked)  # the text of this last chunk is part of what was sent
        finish = wire.finish_reason(cand, bool(extra.tool_calls))
        if finish is not None:
            state.finish_reason = finish
        return text

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        name = model_path(request.model)
        payload = {"requests": [{"model": name, "content": {"parts": [{"text": text}]}} for text in request.inputs]}
        data = await self.request_json("POST", self.url(request.model, "batchEmbedContents"), payload,
                                       request.traceparent)
        items = data.get("embeddings") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise self.bad_payload("unreadable embeddings")
        vectors: list[list[float]] = [
            item["values"] for item in items if isinstance(item, dict) and isinstance(item.get("values"), list)
        ]
        if len(vectors) != len(items):
            raise self.bad_payload("unreadable embeddings")
        if len(vectors) != len(request.inputs):
            raise self.bad_payload(f"{len(vectors)} embeddings for {len(request.inputs)} inputs")
        # The API answers in request order: the i-th embedding is the i-th input's.
        return EmbedResult(vectors, request.model, wire.usage(data, Usage()))

    async def list_models(self) -> list[ModelInfo]:
        found: list[ModelInfo] = []
        token: str | None = None
        for _ in range(_MAX_LISTING_PAGES):
            query = urlencode({"pageSize": 1000, **({"pageToken": token} if token else {})})
            data = await self.request_json("GET", f"{self.config.base_url}/models?{query}")
            found += self._listed(data)
            following = data.get("nextPageToken") if isinstance(data, dict) else None
            if not isinstance(following, str) or not following or following == token:
                break
            token = following
        return found

    def _listed(self, data: Any) -> list[ModelInfo]:
        models = data.get("models", []) if isinstance(data, dict) else None
        if not isinstance(models, list):
            raise self.bad_payload("an unreadable model list")
        found = []
        for item in models:
            name = item.get("name") if isinstance(item, dict) else None
            if not isinstance(name, str):
                continue
            capabilities = _capabilities(item.get("supportedGenerationMethods"))
            if capabilities or self.configured(name.removeprefix("models/")):
                found.append(self.model_info(name.removeprefix("models/"), capabilities, "server",
                                             context_length=as_int(item.get("inputTokenLimit")),
                                             max_output_tokens=as_int(item.get("outputTokenLimit")),
                                             features=_features(capabilities, item.get("thinking"))))
        return found
