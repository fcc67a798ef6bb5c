"""The OpenAI adapter: the OpenAI-compatible wire format as OpenAI itself serves it."""

from __future__ import annotations

from workers.providers.openai.kind import KIND
from workers.providers.openai_compatible import OpenAICompatibleAdapter

__all__ = ["OpenAIAdapter"]


class OpenAIAdapter(OpenAICompatibleAdapter):
    kind = KIND.name
    capabilities = KIND.capabilities
