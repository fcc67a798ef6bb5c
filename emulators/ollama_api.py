"""The Ollama server emulator: its native API at the root (``/api/chat``, ``/api/embed``,
``/api/tags``, ``/api/ps``, ``/api/show``, ``/api/version``).

Like a local Ollama it has no auth (given a key, it wants it as ``Bearer``, like a reverse
proxy in front of Ollama) and loads models on demand: a call to a pulled model loads it
(``/api/ps`` then lists it). Errors are ``{"error": "text"}``: a model that is not pulled is
a 404 ``model "x" not found, try pulling it first`` (``model 'x' not found`` from
``/api/embed`` and ``/api/show``), a chat with an embedding-only model a
400 ``"x" does not support chat``, a full request queue a 503 ``server busy...``. A stream
is NDJSON (``application/x-ndjson``) whose last line is ``done: true``; a failure mid-stream
is a last line ``{"error": ...}`` under the 200 already sent (the ``error_event`` fault).
An unknown path is gin's plain-text ``404 page not found``.

A request without ``stream`` streams, as Ollama's do; the stream-only faults (``silent_stream``,
``truncated_stream``, ``error_event``) apply to requests that send ``"stream": true``, as the
worker and the official client always do.

Chat beyond plain text (``format``, ``tools``, ``images``, ``think``, sampling options) is
checked and answered in ``ollama_chat`` with the decisions of ``emulators.features``; the
``schema_violation`` fault makes a ``format`` answer JSON that matches no schema.

One assumption not checked against the server source: an embedding call to a model without
the ``embedding`` capability is a 400 ``"x" does not support embeddings``.
Tests swap the pulled models with ``PUT /_emulator/models``.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from emulators import ollama_format as of
from emulators.base import ApiError, Call, Emulator, bearer_token, control_error
from emulators.content import last_user_text, make_reply
from emulators.ollama_chat import Answer, decide
from emulators.streams import play
from emulators.wire import EventStream, json_response

__all__ = ["DEFAULT_MODELS", "VERSION", "NdjsonStream", "OllamaEmulator"]

VERSION = "0.12.6"

# The embedding model is named without "embed" on purpose: capabilities must come from /api/show.
DEFAULT_MODELS = (
    of.OllamaModel("llama3.2:3b", "llama", ("completion", "tools")),
    of.OllamaModel("all-minilm:22m", "bert", ("embedding",), parameter_size="23M", quantization_level="F16",
                   context_length=512, size=45_960_996),
    of.OllamaModel("gemma3:1b", "gemma3", ("completion",), parameter_size="999.89M",
                   context_length=32768, size=815_319_791),
    # A model with every feature: images, tools and thinking (its real capabilities).
    of.OllamaModel("qwen3-vl:4b", "qwen3vl", ("completion", "vision", "tools", "thinking"), parameter_size="4.4B",
                   context_length=262144, size=3_300_000_000),
)

# Realistic messages for a ``status`` fault, by status. 401/403/429 come from a reverse proxy.
_STATUS_ERRORS: dict[int, str] = {
    400: "invalid request",
    401: "unauthorized",
    403: "forbidden",
    404: 'model "emulated" not found, try pulling it first',
    429: "too many requests",
    500: "llama runner process has terminated: exit status 2",
    502: "bad gateway",
    503: "server busy, please try again.  maximum pending requests exceeded",
}


class NdjsonStream(EventStream):
    """An ``application/x-ndjson`` stream: the same frame player, Ollama's media type."""

    media_type = "application/x-ndjson"


class _Model(BaseModel):
    """One entry of ``PUT /_emulator/models``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    family: str = "llama"
    capabilities: list[Literal["completion", "embedding", "tools", "vision", "thinking", "insert"]]


class _ModelList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: list[_Model]  # the body LM Studio's control route takes too (EmulatorControl.set_models)


class OllamaEmulator(Emulator):
    provider = "ollama"
    label = "Ollama"

    def __init__(
        self, api_key: str | None = None, *, chunk_delay_s: float = 0.0,
        models: Iterable[of.OllamaModel] = DEFAULT_MODELS,
    ) -> None:
        # api_key None: no auth, like Ollama itself; else the Bearer key a reverse proxy in front wants.
        self.reset_models(models)
        super().__init__(api_key, chunk_delay_s=chunk_delay_s)

    def reset_models(self, models: Iterable[of.OllamaModel]) -> None:
        """Pull ``models`` (and only them); the first one starts loaded."""
        self.models = {m.name: m for m in models}
        self.loaded: set[str] = set(list(self.models)[:1])

    def api_routes(self) -> list[BaseRoute]:
        return [
            Route("/api/chat", self.endpoint(self.chat), methods=["POST"]),
            Route("/api/embed", self.endpoint(self.embed), methods=["POST"]),
            Route("/api/tags", self.endpoint(self.tags), methods=["GET"]),
            Route("/api/ps", self.endpoint(self.ps), methods=["GET"]),
            Route("/api/show", self.endpoint(self.show), methods=["POST"]),
            Route("/api/version", self.endpoint(self.version), methods=["GET"]),
            Route("/", self.endpoint(self.root), methods=["GET", "HEAD"]),
        ]

    def extra_control_routes(self) -> list[BaseRoute]:
        return [Route("/_emulator/models", self._replace_models, methods=["PUT"])]

    # ---- endpoints ---------------------------------------------------------------------

    async def chat(self, call: Call) -> Response:
        self._check_key(call.request)
        req = of.parse_chat(call)
        model = self._use(req.model, "completion", "chat")
        if req.body.get("tools"):
            self._use(req.model, "tools", "tools")
        if req.body.get("think") and "thinking" not in model.capabilities:
            raise ApiError(400, "invalid_request", f'"{req.model}" does not support thinking')
        if not req.messages:  # Ollama's way to load a model: one plain JSON answer, streamed or not
            return json_response(of.load_answer(req.model))
        answer = self._answer(req, model, call)
        if req.stream:
            fault = None if call.fault is not None and call.fault.mode == "schema_violation" else call.fault
            frames = play(of.stream_plan(req, answer, fault), fault, self.chunk_delay_s)
            return NdjsonStream(frames, {}, self.closing)
        return json_response(of.chat_answer(req, answer))

    def _answer(self, req: of.ChatCall, model: of.OllamaModel, call: Call) -> Answer:
        """Plain text as always; with features, what ``emulators.features`` decides."""
        if req.plain and "thinking" not in model.capabilities:
            return Answer(make_reply(self.label, last_user_text(req.messages), req.num_predict), "", [])
        violate = call.fault is not None and call.fault.mode == "schema_violation"
        return decide(req.body, req.messages, model.capabilities, self.label, req.num_predict, violate)

    async def embed(self, call: Call) -> Response:
        self._check_key(call.request)
        req = of.parse_embed(call)
        if req.model not in self.models:
            raise ApiError(404, "not_found", f"model '{req.model}' not found")  # /api/embed's own wording
        self._use(req.model, "embedding", "embeddings")
        if not req.inputs:  # loads the model
            return json_response({"model": req.model, "embeddings": []})
        return json_response(of.embed_answer(req))

    async def tags(self, call: Call) -> Response:
        self._check_key(call.request)
        return json_response({"models": [m.tag() for m in self.models.values()]})

    async def ps(self, call: Call) -> Response:
        self._check_key(call.request)
        return json_response({"models": [m.running() for m in self.models.values() if m.name in self.loaded]})

    async def show(self, call: Call) -> Response:
        self._check_key(call.request)
        body = call.json_object()
        name = body.get("model") or body.get("name")  # older clients send "name"
        if not isinstance(name, str) or not name:
            raise ApiError(400, "invalid_request", "model is required")
        model = self.models.get(name)
        if model is None:
            raise ApiError(404, "not_found", f"model '{name}' not found")
        return json_response(model.show())

    async def version(self, call: Call) -> Response:
        return json_response({"version": VERSION})

    async def root(self, call: Call) -> Response:
        return PlainTextResponse("Ollama is running")

    async def unknown_path(self, call: Call) -> Response:
        return PlainTextResponse("404 page not found", 404)

    async def _replace_models(self, request: Request) -> Response:
        try:
            body = _ModelList.model_validate_json(await request.body())
        except ValidationError as exc:
            return control_error(exc)
        self.reset_models(of.OllamaModel(m.name, m.family, tuple(m.capabilities)) for m in body.data)
        return json_response({"data": [m.model_dump() for m in body.data]})

    # ---- checks ------------------------------------------------------------------------

    def _use(self, name: str, capability: str, what: str) -> of.OllamaModel:
        """The pulled model ``name`` able to do ``capability``, now loaded; else Ollama's error."""
        model = self.models.get(name)
        if model is None:
            raise of.not_found(name)
        if capability not in model.capabilities:
            raise ApiError(400, "invalid_request", f'"{name}" does not support {what}')
        self.loaded.add(name)
        return model

    def _check_key(self, request: Request) -> None:
        if self.api_key is None:
            return
        key = self.presented_key(request) or ""
        if not hmac.compare_digest(key.encode(), self.api_key.encode()):
            raise ApiError(401, "unauthorized", "unauthorized")

    # ---- wire details ------------------------------------------------------------------

    def render_error(self, call: Call, error: ApiError, extra_headers: dict[str, str] | None = None) -> Response:
        return json_response({"error": error.message}, error.status, extra_headers)

    def status_fault_error(self, status: int, code: str | None) -> ApiError:
        fallback = "internal server error" if status >= 500 else "bad request"
        return ApiError(status, "fault", _STATUS_ERRORS.get(status, fallback))

    def echo_key_error(self, key: str, status: int) -> ApiError:
        return ApiError(status, "unauthorized", f"unauthorized: invalid key {key}")

    def presented_key(self, request: Request) -> str | None:
        return bearer_token(request)

