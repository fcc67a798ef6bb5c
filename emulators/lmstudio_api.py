"""The LM Studio server emulator: OpenAI-compatible ``/v1`` plus native ``/api/v0/models``.

No auth and no rate-limit headers, like a local LM Studio. Its quirks are kept on
purpose, because a client must cope with them: an unknown path answers **HTTP 200** with
``{"error": "Unexpected endpoint or method. (GET /foo)"}``; ``include_usage`` is ignored
in streams (and ``encoding_format`` in embeddings: vectors are always floats); calls fail
with ``invalid_request_error`` when no model, or not the one asked for, is loaded.
Just-in-time loading is modelled as off, so ``/v1/models`` lists loaded models only.
Tests swap the model list with ``PUT /_emulator/models``.

One deliberate deviation: ``/v1/models`` entries carry ``created`` (LM Studio omits it),
because the official SDK's strict validation requires it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from emulators import openai_format as oaf
from emulators.base import ApiError, Call, Emulator, bearer_token, control_error
from emulators.content import last_user_text, make_reply
from emulators.openai_api import status_error
from emulators.openai_features import PLAIN, answer, from_reply, parse_features
from emulators.wire import json_response

__all__ = ["DEFAULT_MODELS", "LMStudioEmulator", "LMStudioModel"]

ModelType = Literal["llm", "vlm", "embeddings"]


class LMStudioModel(BaseModel):
    """One entry of ``/api/v0/models``; also the shape ``PUT /_emulator/models`` accepts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    object: Literal["model"] = "model"
    type: ModelType = "llm"
    publisher: str = "lmstudio-community"
    arch: str = "llama"
    compatibility_type: str = "gguf"
    quantization: str = "Q4_K_M"
    state: Literal["loaded", "not-loaded"] = "loaded"
    max_context_length: int = Field(default=32768, ge=1)
    # LM Studio 0.3.16+ lists what a model can do beyond text; "tool_use": it calls tools.
    capabilities: list[str] = Field(default_factory=list)


class _ModelList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: list[LMStudioModel]


DEFAULT_MODELS = (
    LMStudioModel(id="qwen2.5-7b-instruct", arch="qwen2", capabilities=["tool_use"]),
    LMStudioModel(id="nomic-embed-text-v1.5", type="embeddings", publisher="nomic-ai", arch="nomic-bert",
                  max_context_length=2048),
    LMStudioModel(id="llama-3.2-3b-instruct", quantization="Q8_0", state="not-loaded", max_context_length=131072),
)

_NO_MODELS = "No models loaded. Please load a model in the developer page or use the `lms load` command."


class LMStudioEmulator(Emulator):
    provider = "lmstudio"
    label = "LM Studio"
    accepts_key = False

    def __init__(self, *, chunk_delay_s: float = 0.0, models: Iterable[LMStudioModel] = DEFAULT_MODELS) -> None:
        self.models = list(models)
        super().__init__(chunk_delay_s=chunk_delay_s)

    def api_routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/chat/completions", self.endpoint(self.chat), methods=["POST"]),
            Route("/v1/embeddings", self.endpoint(self.embeddings), methods=["POST"]),
            Route("/v1/models", self.endpoint(self.list_models), methods=["GET"]),
            Route("/api/v0/models", self.endpoint(self.native_models), methods=["GET"]),
            Route("/api/v0/models/{model_id:path}", self.endpoint(self.native_model), methods=["GET"]),
        ]

    def extra_control_routes(self) -> list[BaseRoute]:
        return [Route("/_emulator/models", self._replace_models, methods=["PUT"])]

    # ---- endpoints ---------------------------------------------------------------------

    async def chat(self, call: Call) -> Response:
        req = oaf.parse_chat(call, model_required=False)
        model = self._pick(req.model, "chat")
        # LM Studio takes reasoning_effort for every model (a model that cannot reason ignores it).
        feats = parse_features(req.body, req.messages, reasoning_model=True)
        if feats is PLAIN:  # the plain text path stays as cheap as it was
            reply = from_reply(make_reply(self.label, last_user_text(req.messages), req.max_tokens))
        else:
            if feats.images and model.type != "vlm":
                raise ApiError(400, "invalid_request_error",
                               f'Model "{model.id}" does not support images. Load a vision model (type vlm).',
                               param="messages")
            violate = call.fault is not None and call.fault.mode == "schema_violation"
            reply = answer(self.label, req.messages, feats, req.max_tokens, violate=violate)
        prompt = oaf.prompt_tokens(req.messages)
        if req.stream:
            plan = oaf.chat_stream_plan(model.id, reply, prompt, include_usage=False, fingerprint=model.id,
                                        fault=call.fault)
            return self.event_stream(call, plan)
        body = oaf.chat_completion(model.id, reply, prompt, model.id)
        body["stats"] = {}
        return json_response(body)

    async def embeddings(self, call: Call) -> Response:
        # Modelled as ignoring encoding_format: always floats (the SDK copes with either).
        req = dataclasses.replace(oaf.parse_embeddings(call, model_required=False), base64=False)
        model = self._pick(req.model, "embeddings")
        return json_response(oaf.embeddings_response(model.id, req))

    async def list_models(self, call: Call) -> Response:
        data = [{"id": m.id, "object": "model", "created": 0, "owned_by": "organization_owner"}
                for m in self.models if m.state == "loaded"]
        return json_response({"object": "list", "data": data})

    async def native_models(self, call: Call) -> Response:
        return json_response({"object": "list", "data": [m.model_dump() for m in self.models]})

    async def native_model(self, call: Call) -> Response:
        model_id = call.request.path_params["model_id"]
        for model in self.models:
            if model.id == model_id:
                return json_response(model.model_dump())
        return json_response({"error": f"Model {model_id} not found"}, 404)

    async def unknown_path(self, call: Call) -> Response:
        # Yes, 200: LM Studio answers unknown routes this way.
        return json_response({"error": f"Unexpected endpoint or method. ({call.request.method} {call.path})"})

    async def _replace_models(self, request: Request) -> Response:
        try:
            body = _ModelList.model_validate_json(await request.body())
        except ValidationError as exc:
            return control_error(exc)
        self.models = list(body.data)
        return json_response({"data": [m.model_dump() for m in self.models]})

    # ---- model choice ------------------------------------------------------------------

    def _pick(self, model_id: str | None, use: Literal["chat", "embeddings"]) -> LMStudioModel:
        """The model a call runs on, or LM Studio's error for why there is none."""
        loaded = [m for m in self.models if m.state == "loaded"]
        if not loaded:
            raise ApiError(400, "invalid_request_error", _NO_MODELS, code="model_not_loaded")
        if model_id is None:  # LM Studio falls back to a loaded model of the right kind
            fits = [m for m in loaded if _usable_for(m.type, use)]
            if not fits:
                raise ApiError(400, "invalid_request_error", f"No {use} model loaded. {_NO_MODELS}",
                               code="model_not_loaded")
            return fits[0]
        model = next((m for m in self.models if m.id == model_id), None)
        if model is None:
            raise ApiError(400, "invalid_request_error",
                           f'Model "{model_id}" not found. It is not loaded and not among the downloaded models; '
                           f"load it with `lms load`.", param="model", code="model_not_found")
        if model.state != "loaded":
            raise ApiError(400, "invalid_request_error",
                           f'Model "{model_id}" is not loaded. Load it with `lms load {model_id}` '
                           "or enable Just-In-Time model loading.", param="model", code="model_not_loaded")
        if not _usable_for(model.type, use):
            raise ApiError(400, "invalid_request_error",
                           f'Model "{model_id}" is of type {model.type} and cannot be used for {use}.',
                           param="model")
        return model

    # ---- wire details ------------------------------------------------------------------

    def render_error(self, call: Call, error: ApiError, extra_headers: dict[str, str] | None = None) -> Response:
        return json_response(oaf.error_body(error), error.status, extra_headers)

    def status_fault_error(self, status: int, code: str | None) -> ApiError:
        return status_error(status, code)

    def echo_key_error(self, key: str, status: int) -> ApiError:
        return ApiError(status, "invalid_request_error", f"Invalid API key: {key}", code="invalid_api_key")

    def presented_key(self, request: Request) -> str | None:
        return bearer_token(request)


def _usable_for(model_type: ModelType, use: Literal["chat", "embeddings"]) -> bool:
    return (model_type == "embeddings") == (use == "embeddings")
