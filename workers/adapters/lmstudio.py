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
"""

from __future__ import annotations

import re
from typing import Any

from shared import errors
from shared.models import Capability, ModelInfo
from workers.adapters.openai import (
    OpenAIAdapter,
    Scrub,
    as_int,
    map_openai_error,
    parse_openai_error_body,
    provider_detail,
)
from workers.retry_hints import HeadersLike

__all__ = ["LMStudioAdapter", "map_lmstudio_error"]

_NO_MODEL = re.compile(r"\bno models? (?:are |is )?loaded\b|\bnot loaded\b", re.IGNORECASE)
_UNEXPECTED_ENDPOINT = "unexpected endpoint or method"
_NATIVE_CAPABILITIES: dict[str, list[Capability]] = {
    "llm": ["chat", "chatStream"],
    "vlm": ["chat", "chatStream"],
    "embeddings": ["embed"],
}


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


class LMStudioAdapter(OpenAIAdapter):
    kind = "lmstudio"
    capabilities = frozenset({"chat", "chatStream", "embed"})
    # OpenAI-compatible servers know the classic field, not max_completion_tokens.
    max_tokens_field = "max_tokens"

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
            # Servers before the native REST API answer 404 or the 200-with-error quirk.
            return await super().list_models()
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise self.bad_payload("an unreadable model list")
        return [
            self._native_info(item)
            for item in items
            if isinstance(item, dict) and isinstance(item.get("id"), str)
        ]

    def _native_info(self, item: dict[str, Any]) -> ModelInfo:
        kind = item.get("type") if isinstance(item.get("type"), str) else None
        state = item.get("state")
        return self.model_info(
            item["id"],
            _NATIVE_CAPABILITIES.get(kind or ""),  # an unknown type falls back to guessing by id
            loaded=state == "loaded" if isinstance(state, str) else None,
            kind=kind,
            context_length=as_int(item.get("max_context_length")),
        )
