"""The Anthropic API emulator: ``/v1/messages`` (plain and streamed) and ``/v1/models``.

Auth is ``x-api-key`` or ``Authorization: Bearer`` (newer SDKs send the latter), and every
API call also needs an ``anthropic-version`` header. Errors are
``{"type": "error", "error": {type, message}, "request_id": ...}``. There are no
embeddings: ``/v1/embeddings`` is a 404 like any unknown path.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from emulators import anthropic_format as af
from emulators.anthropic_reply import decide
from emulators.anthropic_request import BUDGETED, ThinkingRules
from emulators.base import ApiError, Call, Emulator, bearer_token
from emulators.wire import json_response

__all__ = ["DEFAULT_MODELS", "AnthropicEmulator", "AnthropicModel"]

REQUESTS_LIMIT = 4_000
TOKENS_LIMIT = 400_000


@dataclass(frozen=True, slots=True)
class AnthropicModel:
    id: str
    display_name: str
    created_at: str  # RFC 3339
    line: str | None = None
    max_input_tokens: int = 200_000
    max_tokens: int = 64_000
    structured_outputs: bool = True  # takes output_config.format (older models do not)
    sampling_exclusive: bool = True  # refuses temperature and top_p together (the 4.5 models do)
    thinking: ThinkingRules = BUDGETED  # the thinking types and effort levels it takes

    def card(self) -> dict[str, Any]:
        return {
            "type": "model", "id": self.id, "display_name": self.display_name, "created_at": self.created_at,
            "lifecycle": "active", "line": self.line,
            "max_input_tokens": self.max_input_tokens, "max_tokens": self.max_tokens,
            "capabilities": self.capabilities(),
        }

    def capabilities(self) -> dict[str, Any]:
        """The card's capabilities object: vision, structured outputs, thinking types and effort."""
        yes, no = {"supported": True}, {"supported": False}
        efforts = self.thinking.efforts
        return {
            "batch": yes, "citations": yes, "code_execution": no, "context_management": no,
            "effort": {"supported": bool(efforts), **{e: yes if e in efforts else no
                                                      for e in ("low", "medium", "high", "max")}},
            "image_input": yes, "pdf_input": yes,
            "server_tools": {"supported": False, "code_execution": no, "web_search": no},
            "structured_outputs": yes if self.structured_outputs else no,
            "thinking": {"supported": True, "types": {
                t: yes if t in self.thinking.types else no
                for t in ("adaptive", "between_tools", "disabled", "enabled")}},
        }


# Sonnet 4.6 thinks adaptively (output_config.effort steers it) and still takes a budget
# (deprecated there); Haiku 4.5 takes only a budget and no effort. Sonnet 4.5 retired on
# 2026-11-30, so the real API (and this one) answers it with not_found_error.
SONNET_4_6_THINKING = ThinkingRules(frozenset({"adaptive", "enabled", "disabled"}), ("low", "medium", "high", "max"))
DEFAULT_MODELS = (
    AnthropicModel("claude-sonnet-4-6", "Claude Sonnet 4.6", "2026-02-17T00:00:00Z", "sonnet",
                   max_input_tokens=1_000_000, max_tokens=128_000, thinking=SONNET_4_6_THINKING),
    AnthropicModel("claude-haiku-4-5", "Claude Haiku 4.5", "2025-10-15T00:00:00Z", "haiku"),
)

# Realistic (type, message) per status for a ``status`` fault; the table in design.md §5.
_STATUS_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "There was an issue with the format or content of your request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}


class AnthropicEmulator(Emulator):
    provider = "anthropic"
    label = "Anthropic"

    def __init__(
        self,
        api_key: str | None = None,
        *,
        chunk_delay_s: float = 0.0,
        models: Iterable[AnthropicModel] = DEFAULT_MODELS,
    ) -> None:
        self.models = {model.id: model for model in models}
        self._served = 0
        self._reset_cache = (0, "")
        super().__init__(api_key, chunk_delay_s=chunk_delay_s)

    def api_routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/messages", self.endpoint(self.messages), methods=["POST"]),
            Route("/v1/models", self.endpoint(self.list_models), methods=["GET"]),
            Route("/v1/models/{model_id:path}", self.endpoint(self.get_model), methods=["GET"]),
        ]

    # ---- endpoints ---------------------------------------------------------------------

    async def messages(self, call: Call) -> Response:
        self._check_headers(call.request)
        name = call.json_object().get("model")
        known = self.models.get(name) if isinstance(name, str) else None
        req = af.parse_messages(call, structured_outputs=known is None or known.structured_outputs,
                                both_refused=known is None or known.sampling_exclusive,
                                thinking=known.thinking if known is not None else BUDGETED)
        model = self._model(req.model)
        violate = call.fault is not None and call.fault.mode == "schema_violation"
        turn = decide(self.label, req.messages, req.max_tokens, req.features, violate)
        if req.stream:
            return self.event_stream(call, af.stream_plan(model.id, turn, req, call.fault))
        return json_response(af.message(model.id, turn, req), headers=self.response_headers(call))

    async def list_models(self, call: Call) -> Response:
        self._check_headers(call.request)
        page = af.models_page([m.card() for m in self.models.values()], call.request.query_params)
        return json_response(page, headers=self.response_headers(call))

    async def get_model(self, call: Call) -> Response:
        self._check_headers(call.request)
        return json_response(self._model(call.request.path_params["model_id"]).card(),
                             headers=self.response_headers(call))

    async def unknown_path(self, call: Call) -> Response:
        raise ApiError(404, "not_found_error", "Not Found")

    # ---- checks ------------------------------------------------------------------------

    def _check_headers(self, request: Request) -> None:
        key = self.presented_key(request)
        if not key:
            raise ApiError(401, "authentication_error", "x-api-key header is required")
        if self.api_key is not None and not hmac.compare_digest(key.encode(), self.api_key.encode()):
            raise ApiError(401, "authentication_error", "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            raise ApiError(400, "invalid_request_error", "anthropic-version: header is required")

    def _model(self, model_id: str) -> AnthropicModel:
        model = self.models.get(model_id)
        if model is None:
            raise ApiError(404, "not_found_error", f"model: {model_id}")
        return model

    # ---- wire details ------------------------------------------------------------------

    def response_headers(self, call: Call) -> dict[str, str]:
        self._served += 1
        reset = self._reset_time()
        return {
            "request-id": call.request_id,
            "anthropic-organization-id": "00000000-0000-4000-8000-000000000000",
            "anthropic-ratelimit-requests-limit": str(REQUESTS_LIMIT),
            "anthropic-ratelimit-requests-remaining": str(REQUESTS_LIMIT - 1 - (self._served - 1) % REQUESTS_LIMIT),
            "anthropic-ratelimit-requests-reset": reset,
            "anthropic-ratelimit-tokens-limit": str(TOKENS_LIMIT),
            "anthropic-ratelimit-tokens-remaining": str(max(0, TOKENS_LIMIT - len(call.raw_body) // 4)),
            "anthropic-ratelimit-tokens-reset": reset,
        }

    def _reset_time(self) -> str:
        """RFC 3339 time a minute ahead; formatted at most once a second."""
        now = int(time.time())
        if self._reset_cache[0] != now:
            self._reset_cache = (now, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 60)))
        return self._reset_cache[1]

    def render_error(self, call: Call, error: ApiError, extra_headers: dict[str, str] | None = None) -> Response:
        headers = self.response_headers(call)
        if extra_headers:
            headers.update(extra_headers)
        return json_response(af.error_body(error, call.request_id), error.status, headers)

    def status_fault_error(self, status: int, code: str | None) -> ApiError:
        fallback = ("api_error", "Internal server error") if status >= 500 else (
            "invalid_request_error", "Request failed.")
        type_, message = _STATUS_ERRORS.get(status, fallback)
        return ApiError(status, type_, message)

    def echo_key_error(self, key: str, status: int) -> ApiError:
        return ApiError(status, "authentication_error", f"invalid x-api-key: {key}")

    def presented_key(self, request: Request) -> str | None:
        return request.headers.get("x-api-key") or bearer_token(request)
