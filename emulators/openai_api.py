"""The OpenAI API emulator: ``/v1/chat/completions``, ``/v1/embeddings``, ``/v1/models``.

Bearer auth, ``{"error": {message, type, param, code}}`` bodies, ``x-request-id`` and
``x-ratelimit-*`` headers on every response, as the real API sends them.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from emulators import openai_format as oaf
from emulators.base import ApiError, Call, Emulator, bearer_token
from emulators.content import last_user_text, make_reply
from emulators.openai_features import PLAIN, answer, from_reply, parse_features
from emulators.wire import json_response

__all__ = ["DEFAULT_MODELS", "OpenAIEmulator", "OpenAIModel", "mask_key", "status_error"]

REQUESTS_LIMIT = 10_000
TOKENS_LIMIT = 2_000_000
FINGERPRINT = "fp_emulator"


@dataclass(frozen=True, slots=True)
class OpenAIModel:
    id: str
    kind: Literal["chat", "embedding"]
    created: int
    owned_by: str = "system"
    reasoning: bool = False  # a reasoning model: takes reasoning_effort, rejects max_tokens and temperature, thinks
    # Chat Completions takes function tools only with reasoning_effort "none" (GPT-6 Luna's model page).
    tools_without_reasoning: bool = False

    def card(self) -> dict[str, object]:
        return {"id": self.id, "object": "model", "created": self.created, "owned_by": self.owned_by}


DEFAULT_MODELS = (
    OpenAIModel("gpt-4o-mini", "chat", 1721172741),
    OpenAIModel("gpt-4o", "chat", 1715367049),
    # o4-mini was shut down on 2026-10-23: an unknown model now, as a shut-down model no longer answers.
    OpenAIModel("gpt-6-luna", "chat", 1790035200, reasoning=True, tools_without_reasoning=True),
    OpenAIModel("text-embedding-3-small", "embedding", 1705948997),
)

_QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. "
    "For more information on this error, read the docs."
)
_SERVER_MESSAGE = "The server had an error while processing your request. Sorry about that!"

# Realistic (type, code, message) per status for a ``status`` fault.
_STATUS_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    402: ("invalid_request_error", "payment_required", "Payment required to use this API."),
    403: ("invalid_request_error", "unsupported_country_region_territory",
          "Country, region, or territory not supported."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist or you do not have access to it."),
    408: ("invalid_request_error", "timeout", "Request timed out."),
    413: ("invalid_request_error", "request_too_large", "Request too large. Please reduce the size of the input."),
    429: ("requests", "rate_limit_exceeded",
          "Rate limit reached for requests per min (RPM): Limit 500, Used 500, Requested 1. "
          "Please try again in 120ms."),
    500: ("server_error", None, _SERVER_MESSAGE),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
    504: ("server_error", None, "Gateway timeout."),
}


def status_error(status: int, code: str | None = None) -> ApiError:
    """A realistic OpenAI error for ``status``; ``insufficient_quota`` picks the billing 429."""
    if status == 429 and code == "insufficient_quota":
        return ApiError(429, "insufficient_quota", _QUOTA_MESSAGE, code="insufficient_quota")
    fallback = ("server_error", None, _SERVER_MESSAGE) if status >= 500 else (
        "invalid_request_error", None, "Request failed.")
    type_, default_code, message = _STATUS_ERRORS.get(status, fallback)
    return ApiError(status, type_, message, code=default_code)


def mask_key(key: str) -> str:
    """How the real API quotes a wrong key back: a few characters each end, stars between."""
    return key[:3] + "*" * max(4, len(key) - 7) + key[-4:] if len(key) > 8 else "*" * len(key)


class OpenAIEmulator(Emulator):
    provider = "openai"
    label = "OpenAI"

    def __init__(
        self,
        api_key: str | None = None,
        *,
        chunk_delay_s: float = 0.0,
        models: Iterable[OpenAIModel] = DEFAULT_MODELS,
    ) -> None:
        self.models = {model.id: model for model in models}
        self._served = 0
        super().__init__(api_key, chunk_delay_s=chunk_delay_s)

    def api_routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/chat/completions", self.endpoint(self.chat), methods=["POST"]),
            Route("/v1/embeddings", self.endpoint(self.embeddings), methods=["POST"]),
            Route("/v1/models", self.endpoint(self.list_models), methods=["GET"]),
            Route("/v1/models/{model_id:path}", self.endpoint(self.get_model), methods=["GET"]),
        ]

    # ---- endpoints ---------------------------------------------------------------------

    async def chat(self, call: Call) -> Response:
        self._authorize(call.request)
        req = oaf.parse_chat(call)
        model = self._model(req.model or "", "chat")
        if model.reasoning and "max_tokens" in req.body:
            raise ApiError(400, "invalid_request_error", "Unsupported parameter: 'max_tokens' is not supported with "
                           "this model. Use 'max_completion_tokens' instead.", param="max_tokens",
                           code="unsupported_parameter")
        if model.reasoning:
            _check_reasoning_call(model, req.body)
        feats = parse_features(req.body, req.messages, reasoning_model=model.reasoning)
        if feats is PLAIN and not model.reasoning:  # the plain text path stays as cheap as it was
            reply = from_reply(make_reply(self.label, last_user_text(req.messages), req.max_tokens))
        else:
            violate = call.fault is not None and call.fault.mode == "schema_violation"
            reply = answer(self.label, req.messages, feats, req.max_tokens, violate=violate,
                           reasoning=model.reasoning)
        prompt = oaf.prompt_tokens(req.messages)
        if req.stream:
            plan = oaf.chat_stream_plan(
                model.id, reply, prompt, include_usage=req.include_usage, fingerprint=FINGERPRINT,
                fault=call.fault,
            )
            return self.event_stream(call, plan)
        body = oaf.chat_completion(model.id, reply, prompt, FINGERPRINT)
        return json_response(body, headers=self.response_headers(call))

    async def embeddings(self, call: Call) -> Response:
        self._authorize(call.request)
        req = oaf.parse_embeddings(call)
        model = self._model(req.model or "", "embedding")
        return json_response(oaf.embeddings_response(model.id, req), headers=self.response_headers(call))

    async def list_models(self, call: Call) -> Response:
        self._authorize(call.request)
        body = {"object": "list", "data": [model.card() for model in self.models.values()]}
        return json_response(body, headers=self.response_headers(call))

    async def get_model(self, call: Call) -> Response:
        self._authorize(call.request)
        model_id = call.request.path_params["model_id"]
        model = self.models.get(model_id)
        if model is None:
            raise ApiError(404, "invalid_request_error", f"The model '{model_id}' does not exist",
                           param="model", code="model_not_found")
        return json_response(model.card(), headers=self.response_headers(call))

    async def unknown_path(self, call: Call) -> Response:
        method = call.request.method
        raise ApiError(404, "invalid_request_error", f"Invalid URL ({method} {call.path})")

    # ---- checks ------------------------------------------------------------------------

    def _authorize(self, request: Request) -> None:
        key = bearer_token(request)
        if not key:
            raise ApiError(
                401, "invalid_request_error",
                "You didn't provide an API key. You need to provide your API key in an Authorization "
                "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                code="invalid_api_key",
            )
        if self.api_key is not None and not hmac.compare_digest(key.encode(), self.api_key.encode()):
            raise ApiError(401, "invalid_request_error", f"Incorrect API key provided: {mask_key(key)}.",
                           code="invalid_api_key")

    def _model(self, model_id: str, kind: Literal["chat", "embedding"]) -> OpenAIModel:
        model = self.models.get(model_id)
        if model is None:
            raise ApiError(404, "invalid_request_error",
                           f"The model `{model_id}` does not exist or you do not have access to it.",
                           code="model_not_found")
        if model.kind != kind:
            message = (
                "This is not a chat model and thus not supported in the v1/chat/completions endpoint."
                if kind == "chat"
                else f"The model `{model_id}` does not support embeddings."
            )
            raise ApiError(400, "invalid_request_error", message, param="model")
        return model

    # ---- wire details ------------------------------------------------------------------

    def response_headers(self, call: Call) -> dict[str, str]:
        self._served += 1
        used_tokens = len(call.raw_body) // 4  # a rough token estimate is all a client can check
        return {
            "x-request-id": call.request_id,
            "openai-version": "2020-10-01",
            "openai-processing-ms": "1",
            "x-ratelimit-limit-requests": str(REQUESTS_LIMIT),
            "x-ratelimit-remaining-requests": str(REQUESTS_LIMIT - 1 - (self._served - 1) % REQUESTS_LIMIT),
            "x-ratelimit-reset-requests": "6m0s",
            "x-ratelimit-limit-tokens": str(TOKENS_LIMIT),
            "x-ratelimit-remaining-tokens": str(max(0, TOKENS_LIMIT - used_tokens)),
            "x-ratelimit-reset-tokens": "120ms",
        }

    def render_error(self, call: Call, error: ApiError, extra_headers: dict[str, str] | None = None) -> Response:
        headers = self.response_headers(call)
        if extra_headers:
            headers.update(extra_headers)
        return json_response(oaf.error_body(error), error.status, headers)

    def status_fault_error(self, status: int, code: str | None) -> ApiError:
        return status_error(status, code)

    def echo_key_error(self, key: str, status: int) -> ApiError:
        return ApiError(status, "invalid_request_error", f"Incorrect API key provided: {key}.",
                        code="invalid_api_key")

    def presented_key(self, request: Request) -> str | None:
        return bearer_token(request)


def _check_reasoning_call(model: OpenAIModel, body: dict[str, Any]) -> None:
    """What a reasoning model refuses: a temperature other than its default (1), and on GPT-6
    Luna function tools unless reasoning is off (reasoning_effort "none")."""
    temperature = body.get("temperature")
    if temperature is not None and temperature != 1:
        raise ApiError(400, "invalid_request_error", f"Unsupported value: 'temperature' does not support "
                       f"{str(temperature)[:20]} with this model. Only the default (1) value is supported.",
                       param="temperature", code="unsupported_value")
    if model.tools_without_reasoning and body.get("tools") and body.get("reasoning_effort", "medium") != "none":
        raise ApiError(400, "invalid_request_error", f"Function tools with reasoning_effort are not supported for "
                       f"{model.id} in /v1/chat/completions. To use function tools, use /v1/responses or set "
                       "reasoning_effort to 'none'.", param="reasoning_effort")
