"""The Gemini API emulator (Google's native API, v1beta and v1).

``POST /v1beta/models/{m}:generateContent``, ``:streamGenerateContent`` (SSE with
``?alt=sse``), ``:embedContent``, ``:batchEmbedContents``, ``:countTokens``;
``GET /v1beta/models`` (``pageSize``, ``pageToken``) and ``GET /v1beta/models/{m}``.
Each model takes what the real one does in ``generationConfig`` (``ModelRules``: Gemini 3
models steer thinking by ``thinkingLevel`` and think at their default level unasked; Gemini
3.5 Flash-Lite refuses the penalties). The shut-down gemini-2.5-flash and gemini-2.5-pro
answer as Google routes them since 2026-12-01: by gemini-3.5-flash-lite and gemini-3.8-flash
(their rules, their ``modelVersion``), and are no longer listed.
The key comes in ``x-goog-api-key`` or ``?key=``; a wrong one is the real API's 400
``API_KEY_INVALID``, a missing one its 403. Faults take Gemini's shapes: a 429 carries
``RetryInfo`` (``delay_s`` sets its ``retryDelay``; ``error_code: "no_retry_info"`` leaves
it out), and the ``content_blocked`` fault blocks the prompt (``after_chunks`` 0) or stops
the answer after ``after_chunks`` words with ``finishReason`` ``error_code`` (default SAFETY).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from emulators import features
from emulators import gemini_format as gf
from emulators.base import ApiError, Call, Emulator, new_id
from emulators.content import Reply, embedding_vector, make_reply
from emulators.faults import FaultSpec
from emulators.gemini_request import ModelRules
from emulators.wire import json_response

__all__ = ["DEFAULT_MODELS", "DEFAULT_RETRY_DELAY_S", "GeminiEmulator", "GeminiModel"]

DEFAULT_RETRY_DELAY_S = 1.0  # a 429 fault's retryDelay unless the fault's delay_s says otherwise
EMBED_DIMENSIONS = 8
_VERSIONS = ("v1beta", "v1")
_WORD = re.compile(r"\S+\s*")
_GENERATE_METHODS = ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"]
_EMBED_METHODS = ["embedContent", "countTextTokens", "countTokens", "asyncBatchEmbedContent"]
_NO_KEY = ("Method doesn't allow unregistered callers (callers without established identity). "
           "Please use API Key or other form of API consumer identity to call this API.")
_BAD_KEY = "API key not valid. Please pass a valid API key."
_STATUS_MESSAGES: dict[int, str] = {
    400: "Request contains an invalid argument.",
    401: "Request had invalid authentication credentials.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    429: "You exceeded your current quota, please check your plan and billing details.",
    500: "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}


@dataclass(frozen=True, slots=True)
class GeminiModel:
    id: str
    kind: Literal["chat", "embedding"]
    display_name: str
    input_limit: int = 1_048_576
    output_limit: int = 65_536
    rules: ModelRules | None = None  # what it takes in generationConfig (None: a Gemini 2.5 model's defaults)
    routed_to: str | None = None  # a shut-down id whose calls the API hands to this model

    def card(self) -> dict[str, Any]:
        card: dict[str, Any] = {
            "name": f"models/{self.id}", "version": "001", "displayName": self.display_name,
            "description": f"{self.display_name} (emulated)",
            "inputTokenLimit": self.input_limit, "outputTokenLimit": self.output_limit,
            "supportedGenerationMethods": _GENERATE_METHODS if self.kind == "chat" else _EMBED_METHODS,
        }
        if self.kind == "chat":
            card |= {"temperature": 1, "topP": 0.95, "topK": 64, "maxTemperature": 2, "thinking": True}
        return card


# Thinking levels and defaults: the Google Cloud model pages (3.5 Flash-Lite: MINIMAL to HIGH,
# default MINIMAL; 3.8 Flash: LOW to HIGH, default MEDIUM). A thinkingBudget is still taken by
# Gemini 3 models (backwards compatibility); its range there is not documented, so the emulator
# takes up to the output limit, and 0 (off) only where MINIMAL exists.
FLASH_LITE = ModelRules("gemini-3.5-flash-lite", (0, 65_536), ("MINIMAL", "LOW", "MEDIUM", "HIGH"), "MINIMAL",
                        frozenset({"presencePenalty", "frequencyPenalty"}))
FLASH = ModelRules("gemini-3.8-flash", (1, 65_536), ("LOW", "MEDIUM", "HIGH"), "MEDIUM")

DEFAULT_MODELS = (
    GeminiModel("gemini-3.5-flash-lite", "chat", "Gemini 3.5 Flash-Lite", rules=FLASH_LITE),
    GeminiModel("gemini-3.8-flash", "chat", "Gemini 3.8 Flash", rules=FLASH),
    GeminiModel("gemini-2.5-flash", "chat", "Gemini 2.5 Flash", routed_to="gemini-3.5-flash-lite"),
    GeminiModel("gemini-2.5-pro", "chat", "Gemini 2.5 Pro", routed_to="gemini-3.8-flash"),
    GeminiModel("gemini-embedding-001", "embedding", "Gemini Embedding 001", 2048, 1),
)


def text_reply(text: str, max_tokens: int | None) -> Reply:
    """``text`` as a reply of words (as ``make_reply`` splits them), cut to ``max_tokens``."""
    words = _WORD.findall(text)
    truncated = max_tokens is not None and 0 < max_tokens < len(words)
    if truncated:
        words = words[:max_tokens]
        words[-1] = words[-1].rstrip()
    return Reply("".join(words), tuple(words), truncated)


def _answer(label: str, req: gf.GenerateRequest, fault: FaultSpec | None) -> gf.Answer:
    """What the emulated model answers (``emulators.features`` decides): a function call, the
    words after a function result, JSON under a response schema, or the usual echo; images
    acknowledged first; thoughts first when the request turned thinking on."""
    level = req.thinking_level
    thoughts = features.thinking_text(req.user_text, level.lower() if level else None) if _thinks(req) else None
    if req.may_call():
        tool = req.tool_to_call()
        return gf.Answer(Reply("", (), False), {"name": tool.name, "args": features.sample_instance(tool.schema)},
                         thoughts, req.include_thoughts)
    if req.results:
        name, result = req.results[-1]
        reply = text_reply(features.after_tool_result(name, result), req.max_tokens)
    elif req.json_mode:
        violate = fault is not None and fault.mode == "schema_violation"
        base = make_reply(label, req.user_text)
        reply = text_reply(features.json_reply(req.schema, base.text, violate=violate), req.max_tokens)
    elif req.images:
        reply = text_reply(features.image_note(req.images) + make_reply(label, req.user_text).text, req.max_tokens)
    else:
        reply = make_reply(label, req.user_text, req.max_tokens)
    return gf.Answer(_cut_at_stop(reply, req.stop), None, thoughts, req.include_thoughts)


def _thinks(req: gf.GenerateRequest) -> bool:
    """Whether the model thinks: at any level but MINIMAL, or on any budget but 0 (off)."""
    if req.thinking_level is not None:
        return req.thinking_level != "MINIMAL"
    return req.thinking_budget is not None and req.thinking_budget != 0


def _cut_at_stop(reply: Reply, stops: list[str]) -> Reply:
    """The reply up to the first stop sequence in it (left out, as the API does)."""
    cuts = [index for stop in stops if stop and (index := reply.text.find(stop)) >= 0]
    return text_reply(reply.text[:min(cuts)], None) if cuts else reply


class GeminiEmulator(Emulator):
    provider = "gemini"
    label = "Gemini"

    def __init__(
        self, api_key: str | None = None, *, chunk_delay_s: float = 0.0, models: Iterable[GeminiModel] = DEFAULT_MODELS,
    ) -> None:
        self.models = {model.id: model for model in models}
        super().__init__(api_key, chunk_delay_s=chunk_delay_s)

    def api_routes(self) -> list[BaseRoute]:
        return [
            Route("/{version}/models", self.endpoint(self.list_models), methods=["GET"]),
            Route("/{version}/models/{target:path}", self.endpoint(self.model_call), methods=["GET", "POST"]),
        ]

    def is_stream(self, path: str, body: Any) -> bool:
        return path.endswith(":streamGenerateContent")

    # ---- endpoints ---------------------------------------------------------------------

    async def list_models(self, call: Call) -> Response:
        self._check(call)
        query = call.request.query_params
        try:
            size = int(query.get("pageSize", "50"))
            start = int(query.get("pageToken") or "0")
        except ValueError:
            raise gf.invalid("Invalid value at 'page_size' or 'page_token'") from None
        size = 1000 if size <= 0 or size > 1000 else size  # the API caps it and treats 0 as the default
        cards = [m.card() for m in self.models.values() if m.routed_to is None]
        page: dict[str, Any] = {"models": cards[start:start + size]}
        if start + size < len(cards):
            page["nextPageToken"] = str(start + size)
        return json_response(page)

    async def model_call(self, call: Call) -> Response:
        self._check(call)
        target: str = call.request.path_params["target"]
        model_id, _, method = target.partition(":")
        if call.request.method == "GET":
            if method:
                raise await self._unknown(call)
            return json_response(self._model(model_id, None).card())
        handlers = {
            "generateContent": self._generate, "streamGenerateContent": self._generate,
            "countTokens": self._count, "embedContent": self._embed_one, "batchEmbedContents": self._embed_batch,
        }
        handler = handlers.get(method)
        if handler is None:
            raise await self._unknown(call)
        return await handler(call, model_id)

    async def _generate(self, call: Call, model_id: str) -> Response:
        model = self._model(model_id, "chat")
        req = gf.parse_generate(call, model.rules or ModelRules(model.id))
        answer = _answer(self.label, req, call.fault)
        rid = new_id("", 11)
        fault = call.fault if call.fault is not None and call.fault.mode == "content_blocked" else None
        if call.stream:
            if call.request.query_params.get("alt") != "sse":
                raise gf.invalid("This emulator streams only as SSE: add ?alt=sse")
            return self.event_stream(call, gf.stream_plan(model.id, answer, req.prompt_tokens, call.fault, rid))
        if fault is not None:
            return json_response(gf.blocked_response(model.id, answer.reply, req.prompt_tokens, fault, rid))
        return json_response(gf.generate_response(model.id, answer, req.prompt_tokens, rid))

    async def _count(self, call: Call, model_id: str) -> Response:
        model = self._model(model_id, None)
        return json_response({"totalTokens": gf.parse_generate(call, model.rules).prompt_tokens})

    async def _embed_one(self, call: Call, model_id: str) -> Response:
        self._model(model_id, "embedding")
        text = gf.content_text(call.json_object().get("content"), "content")
        return json_response({"embedding": {"values": embedding_vector(text, EMBED_DIMENSIONS)}})

    async def _embed_batch(self, call: Call, model_id: str) -> Response:
        self._model(model_id, "embedding")
        texts = gf.parse_embed_batch(call, f"models/{model_id}")
        return json_response(gf.embed_batch(texts, EMBED_DIMENSIONS))

    async def unknown_path(self, call: Call) -> Response:
        raise await self._unknown(call)

    async def _unknown(self, call: Call) -> ApiError:
        return ApiError(404, "NOT_FOUND", f"Method not found: {call.request.method} {call.path}")

    # ---- checks ------------------------------------------------------------------------

    def _check(self, call: Call) -> None:
        if call.request.path_params.get("version") not in _VERSIONS:
            raise ApiError(404, "NOT_FOUND", "Requested entity was not found.")
        key = self.presented_key(call.request)
        if not key:
            raise ApiError(403, "PERMISSION_DENIED", _NO_KEY)
        if self.api_key is not None and not hmac.compare_digest(key.encode(), self.api_key.encode()):
            raise ApiError(400, "INVALID_ARGUMENT", _BAD_KEY, code="API_KEY_INVALID")

    def _model(self, model_id: str, kind: Literal["chat", "embedding"] | None) -> GeminiModel:
        """The model serving ``model_id``: itself, or the one the API routes a shut-down id to."""
        model = self.models.get(model_id)
        if model is not None and model.routed_to is not None:
            model = self.models.get(model.routed_to)
        if model is None:
            raise ApiError(404, "NOT_FOUND", f"models/{model_id} is not found for API version v1beta, or is not "
                           "supported for generateContent. Call ListModels to see the list of available models "
                           "and their supported methods.")
        if kind is not None and model.kind != kind:
            method = "generateContent" if kind == "chat" else "embedContent"
            raise ApiError(400, "INVALID_ARGUMENT", f"models/{model_id} is not supported for {method}.")
        return model

    # ---- wire details ------------------------------------------------------------------

    def render_error(self, call: Call, error: ApiError, extra_headers: dict[str, str] | None = None) -> Response:
        delay = None
        fault = call.fault
        if error.status == 429 and not (fault is not None and fault.error_code == "no_retry_info"):
            delay = fault.delay_s if fault is not None and fault.delay_s is not None else DEFAULT_RETRY_DELAY_S
        if error.code == "no_retry_info":
            error = ApiError(error.status, error.type, error.message)
        return json_response(gf.error_body(error, delay), error.status, extra_headers)

    def status_fault_error(self, status: int, code: str | None) -> ApiError:
        name = gf.GRPC_CODES.get(status) or ("INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
        message = _STATUS_MESSAGES.get(status, "An internal error has occurred." if status >= 500 else
                                       "Precondition check failed.")
        return ApiError(status, name, message)

    def echo_key_error(self, key: str, status: int) -> ApiError:
        return ApiError(status, gf.GRPC_CODES.get(status, "INVALID_ARGUMENT"), f"API key not valid: {key}",
                        code="API_KEY_INVALID")

    def presented_key(self, request: Request) -> str | None:
        return request.headers.get("x-goog-api-key") or request.query_params.get("key")
