"""The LM Studio adapter: the OpenAI wire format under ``/v1``, plus LM Studio's quirks.

* An unknown path answers HTTP 200 with ``{"error": "Unexpected endpoint or method. (GET /x)"}``.
  That maps to ``NotFound``: the server is up but does not offer the endpoint (an old
  LM Studio, or a base URL pointing at something else), so retrying cannot help, and
  ``list_models`` uses exactly this signal to fall back to the older listing.
* "No models loaded" arrives as an ``invalid_request_error`` (with HTTP 404 on some
  versions). It maps to ``InvalidRequest`` with a message saying how to fix it, not to
  ``NotFound``: the model exists, it is just not in memory.
* ``stream_options.include_usage`` is ignored, so a streamed result may carry ``Usage()``.
* The key is optional: LM Studio usually runs without auth.

What a discovered model can do comes from, in order: providers.json, the server's own
model ``type`` (``/api/v0/models``), a one-time probe (a tiny embeddings call to a loaded
model; LM Studio runs locally, so it costs nothing), and only then the model's name.
Each model says which (``capability_source``).
"""

from __future__ import annotations

import re
from typing import Any

from shared import errors
from shared.chat_parts import Feature
from shared.models import Capability, ModelInfo
from workers.config_record import ProviderRecord
from workers.http_client import HttpClient
from workers.providers.http_base import Scrub, as_int, model_ids, parse_openai_error_body, provider_detail
from workers.providers.lmstudio.kind import KIND
from workers.providers.openai_compatible import OpenAICompatibleAdapter, map_openai_error
from workers.retry_hints import HeadersLike

__all__ = ["LMStudioAdapter", "map_lmstudio_error", "server_features"]

_NO_MODEL = re.compile(r"\bno models? (?:are |is )?loaded\b|\bnot loaded\b", re.IGNORECASE)
_UNEXPECTED_ENDPOINT = "unexpected endpoint or method"
# LM Studio's native model types (``/api/v0/models``) and what each can do.
SERVER_TYPE_CAPABILITIES: dict[str, list[Capability]] = {
    "llm": ["chat", "chatStream"],
    "vlm": ["chat", "chatStream"],
    "embeddings": ["embed"],
}
# A probe that the server refused this way has its answer: the model does not embed.
_PROBE_VERDICTS = (errors.InvalidRequest, errors.NotFound, errors.Unsupported)


def map_lmstudio_error(
    status: int, headers: HeadersLike, body: bytes, provider: str, scrub: Scrub
) -> errors.LLMCallerError:
    """Like ``map_openai_error``, plus LM Studio's two quirks (see the module docstring)."""
    info = parse_openai_error_body(body)
    detail = provider_detail(info.message, scrub)
    # A 5xx mentioning an unloaded model is a crash mid-request, not a setup problem.
    if status < 500 and _NO_MODEL.search(info.message):
        message = (
            f"{provider} has no model loaded for this request; load it in LM Studio "
            f"(or with `lms load`), or enable just-in-time loading ({detail})"
        )
        return errors.InvalidRequest(message, provider=provider)
    if _UNEXPECTED_ENDPOINT in info.message.lower():
        message = (
            f"{provider} does not offer this endpoint; check that the base URL is an "
            f"LM Studio server and that it is recent enough ({detail})"
        )
        return errors.NotFound(message, provider=provider)
    return map_openai_error(status, headers, body, provider, scrub)


def server_features(kind: str | None, capabilities: Any) -> list[Feature] | None:
    """What a chat model can do beyond text, by the server's word: type ``vlm`` sees images,
    ``capabilities`` listing ``tool_use`` calls tools, and every chat model takes a JSON
    schema (LM Studio enforces it by grammar). None where the server says nothing of it
    (an embedding model, or a server before 0.3.16 listing an ``llm``)."""
    if kind not in ("llm", "vlm") or (kind == "llm" and not isinstance(capabilities, list)):
        return None
    found: list[Feature] = ["json_schema"]
    if kind == "vlm":
        found.append("vision")
    if isinstance(capabilities, list) and "tool_use" in capabilities:
        found.append("tools")
    return found


class LMStudioAdapter(OpenAICompatibleAdapter):
    kind = KIND.name
    capabilities = KIND.capabilities
    # OpenAI-compatible servers know the classic field, not max_completion_tokens.
    max_tokens_field = "max_tokens"

    def __init__(self, name: str, config: ProviderRecord, secret: str | None, client: HttpClient) -> None:
        super().__init__(name, config, secret, client)
        # Probe verdicts, per model id: asked once per worker, not at every discovery.
        self._probed: dict[str, list[Capability]] = {}

    @property
    def api_base(self) -> str:
        return f"{self.config.base_url}/v1"  # base_url is the host root for this kind

    def map_error(self, status: int, headers: HeadersLike, body: bytes) -> errors.LLMCallerError:
        return map_lmstudio_error(status, headers, body, self.name, self.scrub)

    async def list_models(self) -> list[ModelInfo]:
        """The native listing (type, loaded state, context length), else ``/v1/models``."""
        if not self.config.discover_models:
            return self.configured_models()  # the operator asked us not to ask the server
        try:
            data = await self.request_json("GET", f"{self.config.base_url}/api/v0/models")
        except errors.NotFound:
            # Servers before the native REST API answer 404 or the 200-with-error quirk;
            # their OpenAI-style listing names loaded models only and says nothing of type.
            listing = await self.request_json("GET", f"{self.api_base}/models")
            return [await self._untyped_info(model_id, None) for model_id in model_ids(listing, self)]
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise self.bad_payload("an unreadable model list")
        return [
            await self._native_info(item)
            for item in items
            if isinstance(item, dict) and isinstance(item.get("id"), str)
        ]

    async def _native_info(self, item: dict[str, Any]) -> ModelInfo:
        kind = item.get("type") if isinstance(item.get("type"), str) else None
        state = item.get("state")
        loaded = state == "loaded" if isinstance(state, str) else None
        extra: dict[str, Any] = {"kind": kind, "context_length": as_int(item.get("max_context_length")),
                                 "features": server_features(kind, item.get("capabilities"))}
        by_type = SERVER_TYPE_CAPABILITIES.get(kind or "")
        if by_type is not None or self.configured(item["id"]):
            return self.model_info(item["id"], by_type, "server", loaded=loaded, **extra)
        return await self._untyped_info(item["id"], loaded, **extra)  # a type this code does not know

    async def _untyped_info(self, model_id: str, loaded: bool | None, **extra: Any) -> ModelInfo:
        """Config, else a one-time probe (loaded models only: a probe must not load one), else the name."""
        if self.configured(model_id) or loaded is False:
            return self.model_info(model_id, loaded=loaded, **extra)
        verdict = self._probed.get(model_id)
        if verdict is None:
            verdict = await self._probe(model_id)
        if verdict is None:
            return self.model_info(model_id, loaded=loaded, **extra)  # probe inconclusive: the name
        return self.model_info(model_id, verdict, "probe", loaded=loaded, **extra)

    async def _probe(self, model_id: str) -> list[Capability] | None:
        """Ask the server to embed one word with this model: it either can or says it cannot."""
        payload = {"model": model_id, "input": ["capability probe"], "encoding_format": "float"}
        try:
            await self.request_json("POST", f"{self.api_base}/embeddings", payload)
        except _PROBE_VERDICTS:
            verdict: list[Capability] = ["chat", "chatStream"]
        except errors.LLMCallerError:
            return None  # the server is busy or away: no verdict, ask again next time
        else:
            verdict = ["embed"]
        self._probed[model_id] = verdict
        return verdict
